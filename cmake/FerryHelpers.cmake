# Helper functions shared by every CMakeLists in the tree: backends, samples, tests, and the
# link-time reference that keeps a statically linked backend registered.

# ferry_add_backend(NAME <name> SOURCES <src>... [LIBS <lib>...] [INCLUDE <dir>] [INSTALL])
#   Builds backends/<name> as the static library ferry_backend_<name> (linked with the in-tree
#   ferry_static). A backend sees only hal/include, sdk/include and its own INCLUDE folder
#   (its public control headers, <dir>/ferry/*.h; also on the include path of whoever links
#   it), never sdk/src (the layer rule); tests/checks/check_layers.cmake verifies its #include
#   lines. Its registration symbol (FERRY_HAL_BACKEND in ferry/hal/backend.h) is what
#   ferry_link_backends() references.
#   INSTALL also installs the backend for applications of an installed Ferry: the static
#   library libferry_<name>.a (prelinked like libferry.a: only its default-visibility symbols
#   stay global), its INCLUDE headers, ferry-<name>.pc, and two exported targets on that one
#   archive: Ferry::<name> (with libferry.so) and Ferry::<name>_static (with libferry.a).
#   Both and the .pc carry the linker option --undefined=ferry_hal_backend_<name> (-u): that
#   undefined reference makes the linker take the backend (and its registration) out of the
#   archive, with nothing to call from the application. Why no shared libferry_<name>.so: a
#   shared library that the executable does not reference is dropped by --as-needed (the
#   default of Debian's and Ubuntu's gcc), -u or not, and its registration with it.
function(ferry_add_backend)
  cmake_parse_arguments(B "INSTALL" "NAME;INCLUDE" "SOURCES;LIBS" ${ARGN})
  if(NOT B_NAME OR NOT B_SOURCES)
    message(FATAL_ERROR "ferry_add_backend: NAME and SOURCES are required")
  endif()
  if(NOT B_NAME MATCHES "^[a-z][a-z0-9_]*$")
    message(FATAL_ERROR "ferry_add_backend: NAME '${B_NAME}' must be a C identifier in lower case")
  endif()
  set(tgt ferry_backend_${B_NAME})
  # The objects, compiled once for every library below (position-independent: the project
  # sets CMAKE_POSITION_INDEPENDENT_CODE).
  add_library(${tgt}_obj OBJECT ${B_SOURCES})
  # The last entry also sees include folders added later to ferry_backend_<name> itself
  # (target_include_directories(ferry_backend_<name> PUBLIC ...), the older form of INCLUDE).
  target_include_directories(${tgt}_obj PRIVATE
    ${PROJECT_SOURCE_DIR}/sdk/include ${PROJECT_SOURCE_DIR}/hal/include ${B_INCLUDE}
    $<TARGET_PROPERTY:${tgt},INTERFACE_INCLUDE_DIRECTORIES>)
  target_compile_definitions(${tgt}_obj PRIVATE FERRY_BACKEND_BUILD)
  target_link_libraries(${tgt}_obj PRIVATE ${B_LIBS})
  add_library(${tgt} STATIC $<TARGET_OBJECTS:${tgt}_obj>)
  target_include_directories(${tgt} PUBLIC ${B_INCLUDE})
  target_link_libraries(${tgt} PUBLIC ferry_static ${B_LIBS})
  set_property(GLOBAL APPEND PROPERTY FERRY_BACKENDS ${B_NAME})
  if(B_INSTALL)
    _ferry_install_backend(${B_NAME} "${B_INCLUDE}" "${B_LIBS}")
  endif()
endfunction()

# _ferry_install_backend(<name> <include dir> <libs>): the INSTALL part of ferry_add_backend().
function(_ferry_install_backend name incdir libs)
  set(tgt ferry_backend_${name})
  set(keep "LINKER:--undefined=ferry_hal_backend_${name}")
  set(incs $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  if(incdir)
    list(APPEND incs $<BUILD_INTERFACE:${incdir}>)
  endif()

  # One relocatable object with the hidden symbols made local (see libferry.a in
  # sdk/CMakeLists.txt): the application's own names never collide with the backend's
  # statics, and -u pulls in the whole backend at once.
  set(pre ${CMAKE_CURRENT_BINARY_DIR}/${tgt}_prelinked.o)
  add_custom_command(OUTPUT ${pre}
    COMMAND ${CMAKE_LINKER} -r -o ${pre} $<TARGET_OBJECTS:${tgt}_obj>
    COMMAND ${FERRY_OBJCOPY} --localize-hidden ${pre}
    DEPENDS ${tgt}_obj $<TARGET_OBJECTS:${tgt}_obj>
    COMMAND_EXPAND_LISTS
    COMMENT "Prelinking libferry_${name}.a with hidden symbols made local")
  add_library(${tgt}_dist STATIC ${pre})
  add_dependencies(${tgt}_dist ${tgt}_obj)
  set_target_properties(${tgt}_dist PROPERTIES OUTPUT_NAME ferry_${name}
                        EXPORT_NAME ${name}_static LINKER_LANGUAGE C)
  target_include_directories(${tgt}_dist INTERFACE ${incs})
  target_link_libraries(${tgt}_dist INTERFACE ferry_static_dist ${libs})
  target_link_options(${tgt}_dist INTERFACE ${keep})

  # Ferry::<name>: the same archive, with the shared libferry after it on the link line.
  add_library(${tgt}_iface INTERFACE)
  set_target_properties(${tgt}_iface PROPERTIES EXPORT_NAME ${name})
  add_dependencies(${tgt}_iface ${tgt}_dist)
  target_include_directories(${tgt}_iface INTERFACE ${incs})
  target_link_libraries(${tgt}_iface INTERFACE
    $<INSTALL_INTERFACE:$<INSTALL_PREFIX>/${CMAKE_INSTALL_LIBDIR}/libferry_${name}.a>
    ferry ${libs})
  target_link_options(${tgt}_iface INTERFACE ${keep})

  install(TARGETS ${tgt}_dist ${tgt}_iface EXPORT FerryTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT sdk)
  if(incdir)
    install(DIRECTORY ${incdir}/ferry DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT sdk
            FILES_MATCHING PATTERN "*.h")
  endif()
  # ferry-<name>.pc, written at install time like ferry.pc (cmake/FerryPkgConfig.cmake). The
  # backend's own libraries (LIBS: plain names or -l flags) follow its archive on Libs.
  set(pc_libs "")
  foreach(l ${libs})
    if(l MATCHES "^-")
      string(APPEND pc_libs " ${l}")
    elseif(NOT l MATCHES "::" AND NOT l MATCHES "/")
      string(APPEND pc_libs " -l${l}")
    endif()
  endforeach()
  install(CODE "
    set(FERRY_PC_LIBS \"${pc_libs}\")
    set(FERRY_PC_NAME \"${name}\")
    set(FERRY_PC_VERSION \"${PROJECT_VERSION}\")
    set(FERRY_PC_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
    set(FERRY_PC_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
    include(\"${PROJECT_SOURCE_DIR}/cmake/FerryPkgConfig.cmake\")
    ferry_write_pc(\"${PROJECT_SOURCE_DIR}/cmake/ferry-backend.pc.in\"
                   \"${PROJECT_BINARY_DIR}/ferry-${name}.pc\")
  " COMPONENT sdk)
  install(FILES ${PROJECT_BINARY_DIR}/ferry-${name}.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT sdk)
endfunction()

# ferry_link_backends(<target> [SHARED] <name>...)
#   Links the named backends into <target> and generates a small C file that references each
#   backend's registration symbol ferry_hal_backend_<name>, so a static link keeps the object
#   that registers it, without --whole-archive.
function(ferry_link_backends target)
  # SHARED as the first argument: for a program linked against the shared libferry (one that
  # loads plugins: ferry-conformance), link each backend's objects and own libraries instead
  # of ferry_backend_<name>, whose PUBLIC ferry_static would bring a second libferry (and a
  # second registry).
  set(shared FALSE)
  set(backends ${ARGN})
  if(backends AND "${ARGV1}" STREQUAL "SHARED")
    set(shared TRUE)
    list(REMOVE_AT backends 0)
  endif()
  string(MAKE_C_IDENTIFIER "${target}" id)
  set(body "/* Generated by ferry_link_backends(${target}): keeps the backends' registration. */\n")
  string(APPEND body "#include <stddef.h>\n#include <ferry/hal/backend.h>\n\n")
  foreach(b ${backends})
    string(APPEND body "extern const struct ferry_hal_backend *const ferry_hal_backend_${b};\n")
  endforeach()
  string(APPEND body "\n__attribute__((used)) const struct ferry_hal_backend *const *const ")
  string(APPEND body "ferry_linked_backends_${id}[] = {\n")
  foreach(b ${backends})
    string(APPEND body "\t&ferry_hal_backend_${b},\n")
  endforeach()
  string(APPEND body "\tNULL,\n};\n")
  set(gen ${CMAKE_CURRENT_BINARY_DIR}/${target}_backends.c)
  file(GENERATE OUTPUT ${gen} CONTENT "${body}")
  target_sources(${target} PRIVATE ${gen})
  foreach(b ${backends})
    if(NOT TARGET ferry_backend_${b})
      message(FATAL_ERROR "ferry_link_backends(${target}): no backend '${b}' "
                          "(add it with ferry_add_backend first)")
    endif()
    if(shared)
      target_sources(${target} PRIVATE $<TARGET_OBJECTS:ferry_backend_${b}_obj>)
      get_target_property(libs ferry_backend_${b} LINK_LIBRARIES)
      list(REMOVE_ITEM libs ferry_static)
      if(libs)
        target_link_libraries(${target} PRIVATE ${libs})
      endif()
    else()
      target_link_libraries(${target} PRIVATE ferry_backend_${b})
    endif()
  endforeach()
endfunction()

# ferry_add_sample(<name> SOURCES <src>... [BACKENDS <name>...] [LIBS <lib>...])
#   A sample program (build/bin/<name>) linked with libferry (static) and the given backends.
function(ferry_add_sample name)
  cmake_parse_arguments(S "" "" "SOURCES;BACKENDS;LIBS" ${ARGN})
  add_executable(${name} ${S_SOURCES})
  target_link_libraries(${name} PRIVATE ferry_static ${S_LIBS})
  if(S_BACKENDS)
    ferry_link_backends(${name} ${S_BACKENDS})
  endif()
endfunction()

# ferry_add_test(<name> SOURCES <src>... [LIBS <lib>...] [BACKENDS <name>...] [TIMEOUT s]
#                [LABELS <label>...])
#   A Criterion test executable (build/bin/<name>) registered with ctest. Tests may see
#   everything (sdk/src internals, backend internals) because they check behaviour from any
#   layer. Default timeout 300 s; keep a whole executable well under 30 s.
function(ferry_add_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;BACKENDS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_include_directories(${name} PRIVATE
    ${PROJECT_SOURCE_DIR}/sdk/include ${PROJECT_SOURCE_DIR}/hal/include
    ${FERRY_INTERNAL_INCLUDES}
    ${PROJECT_SOURCE_DIR}/backends ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE ferry_static PkgConfig::CRITERION ${T_LIBS})
  if(T_BACKENDS)
    ferry_link_backends(${name} ${T_BACKENDS})
  endif()
  add_test(NAME ${name} COMMAND ${name} --jobs 1 --ascii)
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT})
  if(FERRY_SANITIZE)
    # Criterion runs each test in a worker process and does not fail a test whose worker
    # reported a leak or a sanitizer error after the test body passed: catch the reports.
    set_tests_properties(${name} PROPERTIES FAIL_REGULAR_EXPRESSION
      "ERROR: LeakSanitizer;ERROR: AddressSanitizer;runtime error:")
  endif()
  if(T_LABELS)
    set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}")
  endif()
endfunction()

# ferry_add_fuzz(<name> SOURCES <src>... [BACKENDS <name>...] [LIBS <lib>...]
#                [CORPUS <dir>] [SECONDS <n>])
#   A libFuzzer target (the sources define LLVMFuzzerTestOneInput), built only in the fuzz
#   build (clang, -DFERRY_BUILD_FUZZ=ON, `cmake --preset fuzz`), registered with ctest as
#   fuzz.<name> (label "fuzz") running for SECONDS (default 60). CORPUS (in the source tree) is
#   read, never written: new inputs go to a working corpus in the build tree.
function(ferry_add_fuzz name)
  if(NOT FERRY_BUILD_FUZZ)
    return()
  endif()
  cmake_parse_arguments(F "" "CORPUS;SECONDS" "SOURCES;LIBS;BACKENDS" ${ARGN})
  add_executable(${name} ${F_SOURCES})
  target_include_directories(${name} PRIVATE
    ${PROJECT_SOURCE_DIR}/sdk/include ${PROJECT_SOURCE_DIR}/hal/include
    ${FERRY_INTERNAL_INCLUDES}
    ${PROJECT_SOURCE_DIR}/backends ${PROJECT_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE ferry_static ${F_LIBS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  if(F_BACKENDS)
    ferry_link_backends(${name} ${F_BACKENDS})
  endif()
  add_dependencies(ferry_fuzz_all ${name})
  if(NOT F_SECONDS)
    set(F_SECONDS 60)
  endif()
  set(work ${CMAKE_CURRENT_BINARY_DIR}/${name}.corpus)
  file(MAKE_DIRECTORY ${work})
  set(dirs ${work})
  if(F_CORPUS)
    list(APPEND dirs ${F_CORPUS})
  endif()
  add_test(NAME fuzz.${name}
           COMMAND ${name} -max_total_time=${F_SECONDS} -rss_limit_mb=2048 -print_final_stats=1
                   ${dirs})
  math(EXPR timeout "${F_SECONDS} + 120")
  set_tests_properties(fuzz.${name} PROPERTIES LABELS fuzz TIMEOUT ${timeout})
endfunction()
