# ctest "install.backend_template" (cmake -P): what a vendor does with an installed Ferry.
# Installs this build into a fresh prefix inside the build tree, then, with nothing of Ferry's
# source tree (the template is copied from the install, <datadir>/ferry/backend_template):
#   1. find_package(Ferry): configures and builds the template project (ferry_add_backend():
#      plugin + static library), runs its ctest (the installed ferry-conformance --load on the
#      plugin) and installs it into a second, vendor prefix;
#   2. pkg-config: compiles the same source into a plugin with the cflags and libs of ferry.pc
#      only;
# and requires that the installed ferry-conformance passes each plugin (exit 0, the accel
# chain and DMA checks run, not skipped), loaded by path, by name through FERRY_BACKEND_PATH
# from the vendor prefix, and by name alone once installed into Ferry's own prefix.
# Inputs (-D): BUILD_DIR, WORK, SRC, CC, GENERATOR, PKG_CONFIG, LIBDIR, BINDIR, DATADIR, FLAGS.
cmake_minimum_required(VERSION 3.25)
separate_arguments(FLAGS UNIX_COMMAND "${FLAGS}")
set(prefix ${WORK}/prefix)
set(vendor ${WORK}/vendor)
include(${CMAKE_CURRENT_LIST_DIR}/install_util.cmake)

# The verdict of a conformance run: passed, no failure, the template's contracts executed.
function(check_verdict name)
  if(NOT run_ok)
    return()
  endif()
  set(bad "")
  if(NOT run_out MATCHES "[1-9][0-9]* passed, 0 failed, [0-9]+ skipped")
    set(bad "no 'N passed, 0 failed' verdict")
  endif()
  foreach(chk accel.chains accel.single_ops dma.fence_rule dma.copy_sizes_random_sg)
    string(REPLACE "." "\\." re "${chk}")
    if(NOT run_out MATCHES "\nok [0-9]+ - ${re}\n")
      set(bad "${bad} ${chk} did not pass (skipped or missing)")
    endif()
  endforeach()
  if(bad)
    message("FAIL: ${name}: ${bad}\n${run_out}")
    math(EXPR n "${nfail} + 1")
    set(nfail ${n} PARENT_SCOPE)
  else()
    string(REGEX MATCH "[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped" v "${run_out}")
    message(STATUS "ok: ${name}: ${v}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
unset(ENV{DESTDIR})
run("cmake --install" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
if(NOT run_ok)
  message(FATAL_ERROR "install failed; nothing else to check")
endif()
set(conformance ${prefix}/${BINDIR}/ferry-conformance)
foreach(f ${conformance} ${prefix}/${LIBDIR}/cmake/Ferry/FerryBackend.cmake)
  if(NOT EXISTS ${f})
    message(FATAL_ERROR "not installed: ${f}")
  endif()
endforeach()

# The template as a vendor gets it: copied out of the install (<datadir>/ferry).
set(shipped ${prefix}/${DATADIR}/ferry/backend_template)
foreach(f CMakeLists.txt README.md template_backend.c)
  if(NOT EXISTS ${shipped}/${f})
    message(FATAL_ERROR "not installed: ${shipped}/${f}")
  endif()
endforeach()
file(COPY ${shipped} DESTINATION ${WORK})
set(tpl ${WORK}/backend_template)
string(JOIN " " cflags ${FLAGS})

# --- 1. find_package(Ferry) + ferry_add_backend() -------------------------------------------
run("configure the template (find_package)" ${CMAKE_COMMAND} -S ${tpl} -B ${WORK}/build
    -G ${GENERATOR} -DCMAKE_C_COMPILER=${CC} -DCMAKE_PREFIX_PATH=${prefix}
    "-DCMAKE_C_FLAGS=${cflags}" "-DCMAKE_MODULE_LINKER_FLAGS=${cflags}"
    "-DCMAKE_EXE_LINKER_FLAGS=${cflags}")
if(run_ok)
  run("build the template" ${CMAKE_COMMAND} --build ${WORK}/build)
endif()
if(run_ok)
  run("the template's own ctest (installed ferry-conformance --load)" ${CMAKE_CTEST_COMMAND}
      --test-dir ${WORK}/build --output-on-failure)
  run("installed ferry-conformance --load <path>" ${conformance}
      --load ${WORK}/build/libferry-template.so --backend template)
  check_verdict("template plugin (find_package build)")
  run("install the template" ${CMAKE_COMMAND} --install ${WORK}/build --prefix ${vendor})
  set(pdir ${vendor}/${LIBDIR}/ferry/backends)
  if(NOT EXISTS ${pdir}/libferry-template.so)
    fail("the template's plugin is not at ${pdir}/libferry-template.so")
  endif()
  if(NOT EXISTS ${vendor}/${LIBDIR}/libferry_template.a)
    fail("the template's static library is not at ${vendor}/${LIBDIR}")
  endif()
  set(ENV{FERRY_BACKEND_PATH} ${pdir})
  run("ferry-conformance --load template (by name, FERRY_BACKEND_PATH)" ${conformance}
      --load template --backend template)
  check_verdict("template plugin loaded by name")
  unset(ENV{FERRY_BACKEND_PATH})
  # Installed into Ferry's own prefix, it is found by name with no variable at all: beside
  # the libferry that loads it (<prefix>/<libdir>/ferry/backends), although this prefix is
  # not the one Ferry was configured for.
  run("install the template into Ferry's prefix" ${CMAKE_COMMAND} --install ${WORK}/build
      --prefix ${prefix})
  run("ferry-conformance --load template (by name, Ferry's own plugin directory)" ${conformance}
      --load template --backend template)
  check_verdict("template plugin found beside libferry")
endif()

# --- 2. pkg-config only ----------------------------------------------------------------------
set(ENV{PKG_CONFIG_PATH} ${prefix}/${LIBDIR}/pkgconfig)
execute_process(COMMAND ${PKG_CONFIG} --cflags ferry OUTPUT_VARIABLE pc_cflags
                OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc1)
execute_process(COMMAND ${PKG_CONFIG} --libs ferry OUTPUT_VARIABLE pc_libs
                OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE rc2)
if(NOT rc1 EQUAL 0 OR NOT rc2 EQUAL 0 OR NOT pc_cflags MATCHES "-I${prefix}/")
  fail("pkg-config --cflags/--libs ferry: '${pc_cflags}' '${pc_libs}' (exit ${rc1} ${rc2})")
else()
  separate_arguments(pc_cflags UNIX_COMMAND "${pc_cflags}")
  separate_arguments(pc_libs UNIX_COMMAND "${pc_libs}")
  file(MAKE_DIRECTORY ${WORK}/pc)
  run("cc -shared -fPIC $(pkg-config --cflags ferry) template_backend.c $(pkg-config --libs ferry)"
      ${CC} -std=c11 -Wall -Wextra -Werror -shared -fPIC -fvisibility=hidden
      -DFERRY_BACKEND_PLUGIN ${FLAGS} ${pc_cflags} ${tpl}/template_backend.c
      -o ${WORK}/pc/libferry-template.so ${pc_libs})
  if(run_ok)
    run("installed ferry-conformance on the pkg-config plugin" ${conformance}
        --load ${WORK}/pc/libferry-template.so --backend template)
    check_verdict("template plugin (pkg-config build)")
  endif()
endif()

if(nfail GREATER 0)
  message(FATAL_ERROR "${nfail} check(s) failed")
endif()
message(STATUS "the backend template builds against the installed SDK both ways and passes "
               "the installed ferry-conformance")
