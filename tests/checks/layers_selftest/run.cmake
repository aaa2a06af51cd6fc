# ctest "checks.layers.selftest" (cmake -P): checks.layers must fail each rule it claims to
# enforce. Builds a small tree under WORK with one violation per rule, runs check_layers.cmake
# on it, and requires a FAIL line naming each offending file (and no FAIL for the clean ones).
#
# Input (-D): CHECK (check_layers.cmake), WORK (scratch directory), CMAKE (cmake binary).
cmake_minimum_required(VERSION 3.25)
file(REMOVE_RECURSE ${WORK})
macro(put path text)
  file(WRITE ${WORK}/${path} "/* layers self-test: ${path} */\n${text}\n")
endmacro()
put(sdk/include/ferry/export.h "#define FERRY_API")
put(sdk/include/ferry/bdev.h "#include <ferry/export.h>")
put(sdk/include/ferry/module/bdev.h "#include <ferry/bdev.h>")
put(hal/include/ferry/hal/dma.h "#include <ferry/bdev.h>")
put(sdk/src/core/core_internal.h "#include <ferry/bdev.h>")
put(sdk/src/bdev/bdev_internal.h "#include \"core_internal.h\"")
put(sdk/src/bdev/ok.c "#include \"bdev_internal.h\"\n#include <ferry/module/bdev.h>")
put(sdk/src/accel/reach_into_bdev.c "#include \"bdev_internal.h\"")
put(sdk/src/accel/backend_include.c "#include \"backends/mock/mock_internal.h\"")
put(hal/src/ok.c "#include \"core_internal.h\"")
put(samples/tiny/ok.c "#include <ferry/bdev.h>")
put(samples/tiny/module_tier.c "#include <ferry/module/bdev.h>")
put(samples/tiny/backend_sdk.c "#include <ferry/hal/dma.h>")
put(backends/good/good.c "#include <ferry/hal/dma.h>\n#include \"good_internal.h\"")
put(backends/good/good_internal.h "#include <ferry/bdev.h>")
put(backends/bad/bad.c "#include \"../good/good_internal.h\"")
file(WRITE ${WORK}/samples/tiny/no_comment.c "int x;\n")

execute_process(COMMAND ${CMAKE} -DSRC=${WORK} -P ${CHECK}
                OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
set(all "${out}${err}")
if(rc EQUAL 0)
  message(FATAL_ERROR "check_layers.cmake passed a tree full of violations:\n${all}")
endif()
set(nfail 0)
foreach(bad sdk/src/accel/reach_into_bdev.c sdk/src/accel/backend_include.c
            samples/tiny/module_tier.c samples/tiny/backend_sdk.c backends/bad/bad.c
            samples/tiny/no_comment.c)
  if(NOT all MATCHES "FAIL: ${bad}:")
    message("missing: no FAIL line for ${bad}")
    math(EXPR nfail "${nfail} + 1")
  endif()
endforeach()
foreach(good sdk/src/bdev/ok.c hal/src/ok.c samples/tiny/ok.c backends/good/good.c
             sdk/include/ferry/module/bdev.h)
  if(all MATCHES "FAIL: ${good}:")
    message("false positive: ${good} was failed")
    math(EXPR nfail "${nfail} + 1")
  endif()
endforeach()
if(nfail GREATER 0)
  message(FATAL_ERROR "layers self-test: ${nfail} problem(s); check output:\n${all}")
endif()
message(STATUS "layers self-test passed: every planted violation was named, no clean file was")
