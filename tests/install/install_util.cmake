# What the install tests share (included by run_install_test.cmake and run_template_test.cmake):
# a failure counter, fail(<msg>) and run(<name> <cmd>...).
set(nfail 0)
macro(fail msg)
  message("FAIL: ${msg}")
  math(EXPR nfail "${nfail} + 1")
endmacro()

# run(<name> <cmd>...): runs a command, prints its output on failure, counts the failure.
# Sets run_ok and run_out.
function(run name)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(run_out "${out}" PARENT_SCOPE)
  if(rc EQUAL 0)
    set(run_ok TRUE PARENT_SCOPE)
    message(STATUS "ok: ${name}")
  else()
    set(run_ok FALSE PARENT_SCOPE)
    string(REPLACE ";" " " cmdline "${ARGN}")
    message("FAIL: ${name} (exit ${rc}):\n  ${cmdline}\n${out}${err}")
    math(EXPR n "${nfail} + 1")
    set(nfail ${n} PARENT_SCOPE)
  endif()
endfunction()

