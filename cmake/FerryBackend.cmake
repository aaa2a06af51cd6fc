# The vendor's helper, installed with the CMake package (<libdir>/cmake/Ferry/FerryBackend.cmake,
# included by FerryConfig.cmake): build a backend out of Ferry's tree, against the installed SDK.
#
#   find_package(Ferry 0.1 REQUIRED)
#   ferry_add_backend(NAME acme SOURCES acme.c [LIBS <libraries>...] [INCLUDE <dir>]
#                     [STATIC] [INSTALL])
#   ferry_add_conformance_test(acme [ARGS "k=v,..."] [CLASS dma|accel|pcie|nic])
#
# ferry_add_backend() makes:
#   ferry-<name>          the plugin libferry-<name>.so (a MODULE library): compiled with
#                         FERRY_BACKEND_PLUGIN defined, so the source's
#                         `#ifdef FERRY_BACKEND_PLUGIN FERRY_HAL_PLUGIN(desc) #else
#                         FERRY_HAL_BACKEND(name, desc) #endif` picks the plugin entry; symbols
#                         hidden but the entry; linked against the shared libferry
#                         (Ferry::ferry) as every plugin must be (one registry per process).
#                         Load it with ferry_hal_load("<name>") / ferry-conformance --load.
#   ferry_backend_<name>  with STATIC: the same sources as a static library registering through
#                         FERRY_HAL_BACKEND(); linking it is enough (it carries the linker option
#                         --undefined=ferry_hal_backend_<name> that keeps the registration).
#   INSTALL               installs the plugin into <prefix>/<libdir>/ferry/backends, where
#                         ferry_hal_load() looks by name when <prefix> is Ferry's own
#                         (Ferry_PLUGIN_DIR); for another prefix, list that directory in
#                         FERRY_BACKEND_PATH. The static library goes to <libdir>.
# ferry_add_conformance_test() registers a ctest "conformance.<name>" that runs the installed
# ferry-conformance (Ferry_CONFORMANCE) on the plugin, and a target "conformance-<name>" that
# does the same from the build (cmake --build <dir> --target conformance-<name>).
include_guard(GLOBAL)
include(GNUInstallDirs)

function(ferry_add_backend)
  cmake_parse_arguments(B "STATIC;INSTALL" "NAME;INCLUDE" "SOURCES;LIBS" ${ARGN})
  if(NOT B_NAME OR NOT B_SOURCES)
    message(FATAL_ERROR "ferry_add_backend: NAME and SOURCES are required")
  endif()
  if(NOT B_NAME MATCHES "^[a-z][a-z0-9_]*$")
    message(FATAL_ERROR "ferry_add_backend: NAME '${B_NAME}' must be a C identifier in lower case")
  endif()
  set(plugin ferry-${B_NAME})
  add_library(${plugin} MODULE ${B_SOURCES})
  target_compile_definitions(${plugin} PRIVATE FERRY_BACKEND_PLUGIN=1)
  target_link_libraries(${plugin} PRIVATE Ferry::ferry ${B_LIBS})
  if(B_INCLUDE)
    target_include_directories(${plugin} PRIVATE ${B_INCLUDE})
  endif()
  set_target_properties(${plugin} PROPERTIES PREFIX "lib" C_VISIBILITY_PRESET hidden
    POSITION_INDEPENDENT_CODE ON)
  if(B_STATIC)
    set(lib ferry_backend_${B_NAME})
    add_library(${lib} STATIC ${B_SOURCES})
    set_target_properties(${lib} PROPERTIES POSITION_INDEPENDENT_CODE ON
      OUTPUT_NAME ferry_${B_NAME})
    target_link_libraries(${lib} PUBLIC Ferry::ferry ${B_LIBS})
    target_link_options(${lib} INTERFACE "LINKER:--undefined=ferry_hal_backend_${B_NAME}")
    if(B_INCLUDE)
      target_include_directories(${lib} PUBLIC ${B_INCLUDE})
    endif()
  endif()
  if(B_INSTALL)
    install(TARGETS ${plugin} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/ferry/backends)
    if(B_STATIC)
      install(TARGETS ${lib} ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
    endif()
  endif()
endfunction()

function(ferry_add_conformance_test name)
  cmake_parse_arguments(C "" "ARGS;CLASS" "" ${ARGN})
  if(NOT TARGET ferry-${name})
    message(FATAL_ERROR "ferry_add_conformance_test: no plugin target ferry-${name} "
                        "(ferry_add_backend(NAME ${name} ...) first)")
  endif()
  set(cmd ${Ferry_CONFORMANCE} --load $<TARGET_FILE:ferry-${name}> --backend ${name})
  if(C_ARGS)
    list(APPEND cmd --args "${C_ARGS}")
  endif()
  if(C_CLASS)
    list(APPEND cmd --class ${C_CLASS})
  endif()
  add_test(NAME conformance.${name} COMMAND ${cmd}
           --junit ${CMAKE_CURRENT_BINARY_DIR}/conformance.${name}.xml)
  set_tests_properties(conformance.${name} PROPERTIES TIMEOUT 600)
  add_custom_target(conformance-${name} COMMAND ${cmd} DEPENDS ferry-${name} VERBATIM
                    USES_TERMINAL)
endfunction()
