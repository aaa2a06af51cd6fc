# ctest conformance.broken.<x> (cmake -P): runs ferry-conformance --load PLUGIN --backend BACKEND
# ARGS... and checks the verdict. EXPECT empty: the run must pass (exit 0, nothing failed).
# Otherwise it must fail (exit 1: a check failed, not a crash of the runner or a usage error)
# and the TAP output must match EXPECT (the check of the broken contract, failing).
# Inputs (-D): RUNNER, PLUGIN, BACKEND, ARGS (a ;-list), EXPECT (a regex).
cmake_minimum_required(VERSION 3.25)
execute_process(COMMAND ${RUNNER} --load ${PLUGIN} --backend ${BACKEND} ${ARGS}
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(REGEX MATCH "[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped" verdict "${out}")
if(EXPECT STREQUAL "")
  if(NOT rc EQUAL 0)
    message("${out}\n${err}")
    message(FATAL_ERROR "${BACKEND}: the control run must pass; exit ${rc} (${verdict})")
  endif()
  message("${BACKEND}: passes, as it must (${verdict})")
  return()
endif()
if(NOT rc EQUAL 1)
  message("${out}\n${err}")
  message(FATAL_ERROR "${BACKEND}: ferry-conformance exited ${rc}, want 1 (checks failed)")
endif()
if(NOT out MATCHES "${EXPECT}")
  message("${out}\n${err}")
  message(FATAL_ERROR "${BACKEND}: the suite failed it, but not with the violated contract "
                      "(no match for '${EXPECT}'); verdict: ${verdict}")
endif()
string(REGEX MATCHALL "not ok [0-9]+ - [a-z_]+\\.[a-z_]+" failed "${out}")
string(REPLACE "not ok " "" failed "${failed}")
message("${BACKEND}: failed as it must (${verdict}); failing checks: ${failed}")
