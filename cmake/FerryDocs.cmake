# The `docs` target: Doxygen HTML of the API reference, both installed header tiers (the SDK,
# sdk/include/ferry/, and the backend SDK, hal/include/ferry/hal/), into <build>/docs/html.
# Warnings are errors (docs/Doxyfile.in): an undocumented declaration, parameter or return
# value fails the target with the file and line of each. Not part of `all`: `make docs` (or
# `cmake --build <dir> --target docs`) runs it, and .ci/run does.

find_program(FERRY_DOXYGEN doxygen)
set(FERRY_DOCS_OUTPUT ${PROJECT_BINARY_DIR}/docs)
configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${PROJECT_BINARY_DIR}/Doxyfile @ONLY)

if(FERRY_DOXYGEN)
  execute_process(COMMAND ${FERRY_DOXYGEN} --version OUTPUT_VARIABLE _ferry_doxygen_version
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  string(REGEX MATCH "^[0-9]+\\.[0-9]+\\.[0-9]+" _ferry_doxygen_version "${_ferry_doxygen_version}")
endif()

# WARN_AS_ERROR = FAIL_ON_WARNINGS appeared in Doxygen 1.9.1; an older one would not fail.
if(NOT FERRY_DOXYGEN OR _ferry_doxygen_version VERSION_LESS 1.9.1)
  add_custom_target(docs
    COMMAND ${CMAKE_COMMAND} -E echo
            "docs: needs Doxygen >= 1.9.1 (found: '${_ferry_doxygen_version}'); run cmake/install-deps.sh"
    COMMAND ${CMAKE_COMMAND} -E false
    VERBATIM)
  return()
endif()

# The output is removed first, so that a page of a removed declaration does not linger.
file(GLOB_RECURSE FERRY_DOCS_HEADERS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/sdk/include/ferry/*.h
     ${PROJECT_SOURCE_DIR}/hal/include/ferry/hal/*.h)
add_custom_target(docs
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${FERRY_DOCS_OUTPUT}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${FERRY_DOCS_OUTPUT}
  COMMAND ${FERRY_DOXYGEN} ${PROJECT_BINARY_DIR}/Doxyfile
  COMMAND ${CMAKE_COMMAND} -E echo "docs: ${FERRY_DOCS_OUTPUT}/html/index.html"
  WORKING_DIRECTORY ${PROJECT_BINARY_DIR}
  SOURCES ${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${FERRY_DOCS_HEADERS}
  COMMENT "Doxygen API reference (warnings are errors)"
  VERBATIM)
