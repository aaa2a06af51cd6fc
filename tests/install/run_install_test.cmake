# ctest "install.consumer" (cmake -P): installs the current build into a fresh prefix inside
# the build tree, checks the installed file set, then builds and runs an out-of-tree consumer
# (consumer/) against the *installed* tree, four ways:
#   pkg-config, shared   cc $(pkg-config --cflags ferry) consumer.c $(pkg-config --libs ferry)
#   pkg-config, static   the same with --static and libferry.a
#   find_package(Ferry)  Ferry::ferry and Ferry::ferry_static, through CMAKE_PREFIX_PATH
# and the same four ways mock_consumer.c against the installed mock backend (ferry-mock.pc,
# Ferry::mock, Ferry::mock_static): it opens "mock" without registering it itself and runs a
# fused encrypt + DIF insert sequence on the mock engine, checked against the software path.
# No network: everything comes from the build tree and the system's packages.
#
# Inputs (-D): BUILD_DIR, WORK, CONSUMER_DIR, SRC, CC, GENERATOR, PKG_CONFIG, VERSION,
#              SOVERSION, LIBDIR, INCLUDEDIR, FLAGS (space-separated extra compile+link
#              flags: the sanitizer flags of an ASan build, which a consumer needs too).
cmake_minimum_required(VERSION 3.25)
include(${SRC}/tests/checks/FerryApi.cmake)
separate_arguments(FLAGS UNIX_COMMAND "${FLAGS}")

set(prefix ${WORK}/prefix)
include(${CMAKE_CURRENT_LIST_DIR}/install_util.cmake)

# --- install -------------------------------------------------------------------------------
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
unset(ENV{DESTDIR})
run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
if(NOT run_ok)
  message(FATAL_ERROR "install failed; nothing else to check")
endif()

# --- the installed file set ----------------------------------------------------------------
set(libdir ${prefix}/${LIBDIR})
set(incdir ${prefix}/${INCLUDEDIR})
ferry_public_headers(${SRC} headers)
# ... plus the installed mock backend's control headers.
file(GLOB mock_headers ${SRC}/backends/mock/include/ferry/*.h)
list(APPEND headers ${mock_headers})
set(want_headers "")
foreach(h ${headers})
  ferry_include_name(${h} name)
  list(APPEND want_headers ${name})
endforeach()
file(GLOB_RECURSE got_headers RELATIVE ${incdir} ${incdir}/ferry/*)
list(SORT want_headers)
list(SORT got_headers)
if(NOT want_headers STREQUAL got_headers)
  fail("installed headers differ from the public headers:\n  want ${want_headers}\n  got  ${got_headers}")
endif()
foreach(f libferry.so libferry.so.${SOVERSION} libferry.so.${VERSION} libferry.a
          libferry_mock.a pkgconfig/ferry.pc pkgconfig/ferry-mock.pc cmake/Ferry/FerryConfig.cmake cmake/Ferry/FerryConfigVersion.cmake
          cmake/Ferry/FerryTargets.cmake)
  if(NOT EXISTS ${libdir}/${f})
    fail("not installed: ${LIBDIR}/${f}")
  endif()
endforeach()
if(NOT IS_SYMLINK ${libdir}/libferry.so OR NOT IS_SYMLINK ${libdir}/libferry.so.${SOVERSION})
  fail("libferry.so and libferry.so.${SOVERSION} should be symlinks to libferry.so.${VERSION}")
endif()

# --- pkg-config ----------------------------------------------------------------------------
set(ENV{PKG_CONFIG_PATH} ${libdir}/pkgconfig)
execute_process(COMMAND ${PKG_CONFIG} --modversion ferry OUTPUT_VARIABLE pcver
                OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
execute_process(COMMAND ${PKG_CONFIG} --variable=prefix ferry OUTPUT_VARIABLE pcprefix
                OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT rc EQUAL 0 OR NOT pcver STREQUAL VERSION)
  fail("pkg-config --modversion ferry gave '${pcver}' (exit ${rc}), want ${VERSION}")
endif()
if(NOT pcprefix STREQUAL prefix)
  fail("ferry.pc prefix is '${pcprefix}', want the install prefix ${prefix}")
endif()
# pc_flags(<module> <prefix>): <prefix>_cflags, <prefix>_libs, <prefix>_static (lists) of a module.
# A static link names the archives (-l:libferry.a ...) so a shared library cannot be picked.
function(pc_flags module out)
  foreach(kind cflags libs static)
    set(args --${kind})
    if(kind STREQUAL "static")
      set(args --static --libs)
    endif()
    execute_process(COMMAND ${PKG_CONFIG} ${args} ${module} OUTPUT_VARIABLE v
                    OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message("FAIL: pkg-config ${args} ${module} (exit ${rc})")
      math(EXPR n "${nfail} + 1")
      set(nfail ${n} PARENT_SCOPE)
    endif()
    separate_arguments(v UNIX_COMMAND "${v}")
    if(kind STREQUAL "static")
      list(TRANSFORM v REPLACE "^-l(ferry|ferry_mock)$" "-l:lib\\1.a")
    endif()
    set(${out}_${kind} ${v} PARENT_SCOPE)
  endforeach()
endfunction()
pc_flags(ferry pc)
pc_flags(ferry-mock pcm)
message(STATUS "pkg-config --libs ferry-mock: ${pcm_libs}")

set(cflags -std=c11 -Wall -Wextra -Wpedantic -Werror ${FLAGS})
# pc_consumer(<name> <source> <flags prefix> [<extra cflags>...]): build and run it shared
# (with an rpath, as README says for a prefix outside the loader's path) and static.
macro(pc_consumer name src pfx)
  run("pkg-config shared ${name}: build" ${CC} ${cflags} ${ARGN} ${${pfx}_cflags} ${src}
      -o ${WORK}/${name}_pc_shared ${${pfx}_libs} -Wl,-rpath,${libdir})
  if(run_ok)
    run("pkg-config shared ${name}: run" ${WORK}/${name}_pc_shared)
    message(STATUS "${run_out}")
  endif()
  run("pkg-config static ${name}: build" ${CC} ${cflags} ${ARGN} ${${pfx}_cflags} ${src}
      -o ${WORK}/${name}_pc_static ${${pfx}_static})
  if(run_ok)
    run("pkg-config static ${name}: run" ${WORK}/${name}_pc_static)
    message(STATUS "${run_out}")
  endif()
endmacro()
pc_consumer(consumer ${CONSUMER_DIR}/consumer.c pc)
pc_consumer(mock_consumer ${CONSUMER_DIR}/mock_consumer.c pcm)
# consumer.c references nothing of the mock: only the .pc's -u keeps the backend registered.
pc_consumer(consumer_mock ${CONSUMER_DIR}/consumer.c pcm -DCONSUMER_EXPECT_MOCK)

# README's one-liner for a prefix outside /usr, and the loader path given at run time
# (LD_LIBRARY_PATH) instead of an rpath.
execute_process(COMMAND ${PKG_CONFIG} --cflags --libs ferry-mock OUTPUT_VARIABLE v
                OUTPUT_STRIP_TRAILING_WHITESPACE)
separate_arguments(v UNIX_COMMAND "${v}")
run("pkg-config --cflags --libs ferry-mock, no rpath: build" ${CC} ${cflags}
    ${CONSUMER_DIR}/mock_consumer.c -o ${WORK}/mock_consumer_norpath ${v})
if(run_ok)
  run("LD_LIBRARY_PATH=<prefix>/${LIBDIR}: run" ${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${libdir}
      ${WORK}/mock_consumer_norpath)
endif()

# --- find_package(Ferry) -----------------------------------------------------------------
string(JOIN " " flagstr ${FLAGS})
set(cm_build ${WORK}/consumer-cmake)
run("find_package consumer: configure" ${CMAKE_COMMAND} -S ${CONSUMER_DIR} -B ${cm_build}
    -G ${GENERATOR} -DCMAKE_C_COMPILER=${CC} -DCMAKE_BUILD_TYPE=RelWithDebInfo
    "-DCMAKE_C_FLAGS=-Wall -Wextra -Werror ${flagstr}" "-DCMAKE_EXE_LINKER_FLAGS=${flagstr}"
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF
    -DFERRY_EXPECT_PREFIX=${prefix} -DFERRY_EXPECT_VERSION=${VERSION})
if(run_ok)
  run("find_package consumer: build" ${CMAKE_COMMAND} --build ${cm_build})
  if(run_ok)
    foreach(prog consumer mock_consumer consumer_mock)
      foreach(kind shared static)
        run("find_package ${kind} ${prog}: run" ${cm_build}/${prog}_cmake_${kind})
        message(STATUS "${run_out}")
      endforeach()
    endforeach()
  endif()
endif()

if(nfail GREATER 0)
  message(FATAL_ERROR "install test: ${nfail} problem(s), see FAIL lines above")
endif()
message(STATUS "install test passed: ${prefix}")
