# ctest "checks.layers" (cmake -P): the layer rule of docs/architecture.md, read from the
# #include lines of the sources.
#
#   public headers  (sdk/include/ferry, hal/include/ferry/hal): only <...> includes; a <ferry/...>
#                   include names a public header; the SDK API never includes the backend SDK
#                   (<ferry/hal/...>); no inline functions (they would become ABI); a header
#                   that declares FERRY_API functions has FERRY_BEGIN_DECLS/FERRY_END_DECLS.
#   sdk/, hal/      never include anything under backends/ nor use "../" paths; a component
#                   (sdk/src/<c>/, hal/src/) quotes only its own folder and sdk/src/core.
#                   Exception: hal/conformance/conf_hooks_<b>.c (ferry-conformance's hooks for a
#                   backend built into it) may include <b>'s installed header from its include/.
#   backends/<b>/   only public headers (<ferry/...> from sdk/include, hal/include or the
#                   backend's own include/) and its own files; never sdk/src or hal/src
#                   internals, never another backend, no "../" paths.
#   samples/        only the app API: no <ferry/module/...>, no <ferry/hal/...>, no internals
#                   (samples/backend_template/ is a backend and follows the backend rule).
#   every .c/.h/.cpp under sdk hal backends samples tests starts with a comment (what it owns).
#
# Input (-D): SRC (source root).
cmake_minimum_required(VERSION 3.25)
include(${CMAKE_CURRENT_LIST_DIR}/FerryApi.cmake)

set(nfail 0)
macro(fail msg)
  message("FAIL: ${msg}")
  math(EXPR nfail "${nfail} + 1")
endmacro()

# ferry_includes(<file> <out>): "<x>" or "\"x\"" entries (quotes kept to tell the kinds apart).
function(ferry_includes file out)
  file(READ "${file}" text)
  ferry_strip_comments("${text}" text)
  string(REGEX MATCHALL "\n[ \t]*#[ \t]*include[ \t]*[<\"][^>\"\n]+[>\"]" incs "\n${text}")
  set(res "")
  foreach(i ${incs})
    string(REGEX REPLACE "^\n[ \t]*#[ \t]*include[ \t]*" "" i "${i}")
    list(APPEND res "${i}")
  endforeach()
  set(${out} ${res} PARENT_SCOPE)
endfunction()

function(ferry_rel file out)
  file(RELATIVE_PATH r ${SRC} ${file})
  set(${out} ${r} PARENT_SCOPE)
endfunction()

set(sdk_inc ${SRC}/sdk/include)
set(hal_inc ${SRC}/hal/include)

# --- public headers ---------------------------------------------------------------------
ferry_public_headers(${SRC} headers)
foreach(h ${headers})
  ferry_rel(${h} rel)
  ferry_includes(${h} incs)
  foreach(i ${incs})
    if(i MATCHES "^\"")
      fail("${rel}: quoted include ${i} in a public header (use <ferry/...> or a system header)")
      continue()
    endif()
    string(REGEX REPLACE "^<(.*)>$" "\\1" name "${i}")
    if(name MATCHES "^ferry/")
      if(rel MATCHES "^sdk/" AND name MATCHES "^ferry/hal/")
        fail("${rel}: the SDK API includes the backend SDK <${name}>")
      elseif(NOT EXISTS ${sdk_inc}/${name} AND NOT EXISTS ${hal_inc}/${name})
        fail("${rel}: <${name}> is not a public header")
      endif()
    endif()
  endforeach()
  ferry_code_of(${h} code)
  if(code MATCHES "(^|[^A-Za-z0-9_])(__)?inline(__)?([^A-Za-z0-9_]|$)")
    fail("${rel}: inline function in a public header (it would become ABI)")
  endif()
  if(code MATCHES "FERRY_API" AND NOT (code MATCHES "FERRY_BEGIN_DECLS" AND code MATCHES "FERRY_END_DECLS"))
    fail("${rel}: declares FERRY_API functions without FERRY_BEGIN_DECLS/FERRY_END_DECLS")
  endif()
endforeach()

# --- sdk/ and hal/ sources ----------------------------------------------------------------
file(GLOB_RECURSE core_files ${SRC}/sdk/*.c ${SRC}/sdk/*.h ${SRC}/hal/*.c ${SRC}/hal/*.h)
foreach(f ${core_files})
  ferry_rel(${f} rel)
  get_filename_component(dir ${f} DIRECTORY)
  ferry_includes(${f} incs)
  foreach(i ${incs})
    string(REGEX REPLACE "^[<\"](.*)[>\"]$" "\\1" name "${i}")
    if(name MATCHES "backends" OR name MATCHES "\\.\\./")
      fail("${rel}: includes ${i}: sdk/ and hal/ never reach into backends/ or use ../")
    elseif(i MATCHES "^\"")
      # A component sees its own folder and the core's, nothing else: no reaching into
      # another component's internals (the compiler enforces it too, see sdk/CMakeLists.txt).
      if(NOT EXISTS ${dir}/${name} AND NOT EXISTS ${SRC}/sdk/src/core/${name})
        fail("${rel}: quoted include ${i} is neither in its own component folder nor in sdk/src/core")
      endif()
    elseif(name MATCHES "^ferry/" AND NOT EXISTS ${sdk_inc}/${name} AND NOT EXISTS ${hal_inc}/${name})
      # The one exception: ferry-conformance's hook table for a backend built into it,
      # hal/conformance/conf_hooks_<b>.c, may use that backend's installed control header
      # (backends/<b>/include/ferry/...), the way any application of that backend does. The
      # generic checks stay backend-neutral.
      if(rel MATCHES "^hal/conformance/conf_hooks_([a-z0-9_]+)\\.c$")
        if(EXISTS ${SRC}/backends/${CMAKE_MATCH_1}/include/${name})
          continue()
        endif()
      endif()
      fail("${rel}: <${name}> is not a public header of sdk/include or hal/include")
    endif()
  endforeach()
endforeach()

# --- backends -----------------------------------------------------------------------------
file(GLOB backend_dirs LIST_DIRECTORIES true ${SRC}/backends/*)
foreach(bd ${backend_dirs})
  if(NOT IS_DIRECTORY ${bd})
    continue()
  endif()
  get_filename_component(bname ${bd} NAME)
  file(GLOB_RECURSE bfiles ${bd}/*.c ${bd}/*.h)
  foreach(f ${bfiles})
    ferry_rel(${f} rel)
    get_filename_component(dir ${f} DIRECTORY)
    ferry_includes(${f} incs)
    foreach(i ${incs})
      string(REGEX REPLACE "^[<\"](.*)[>\"]$" "\\1" name "${i}")
      if(name MATCHES "\\.\\./" OR name MATCHES "(^|/)(sdk|hal)/src/" OR name MATCHES "backends/")
        fail("${rel}: includes ${i}: a backend sees only public headers and its own files")
      elseif(i MATCHES "^\"")
        if(NOT EXISTS ${dir}/${name} AND NOT EXISTS ${bd}/${name} AND NOT EXISTS ${bd}/include/${name})
          fail("${rel}: quoted include ${i} is not a file of backends/${bname}")
        endif()
      elseif(name MATCHES "^ferry/")
        if(NOT EXISTS ${sdk_inc}/${name} AND NOT EXISTS ${hal_inc}/${name}
           AND NOT EXISTS ${bd}/include/${name})
          fail("${rel}: <${name}> is neither a public header nor in backends/${bname}/include")
        endif()
      elseif(EXISTS ${SRC}/sdk/src/${name} OR EXISTS ${SRC}/hal/src/${name})
        fail("${rel}: <${name}> is an internal header of libferry (sdk/src, hal/src)")
      endif()
    endforeach()
  endforeach()
endforeach()

# --- samples: the integrator's API only --------------------------------------------------
# A sample shows what an integrator writes: no module-tier header (<ferry/module/...>, what a
# bdev module or transport plugin implements), no backend SDK (<ferry/hal/...>), no internals.
file(GLOB_RECURSE sample_files ${SRC}/samples/*.c ${SRC}/samples/*.h)
foreach(f ${sample_files})
  ferry_rel(${f} rel)
  if(rel MATCHES "^samples/backend_template/")
    continue() # the template is a backend: the backend rules apply to it
  endif()
  ferry_includes(${f} incs)
  foreach(i ${incs})
    string(REGEX REPLACE "^[<\"](.*)[>\"]$" "\\1" name "${i}")
    if(name MATCHES "^ferry/module/")
      fail("${rel}: includes the module-tier header <${name}> (samples use the app API)")
    elseif(name MATCHES "^ferry/hal/")
      fail("${rel}: includes the backend SDK <${name}> (samples choose backends by name)")
    elseif(name MATCHES "_internal\\.h$" OR name MATCHES "\\.\\./" OR name MATCHES "(sdk|hal)/src/")
      fail("${rel}: includes ${i}: samples see only installed headers and their own files")
    endif()
  endforeach()
endforeach()

# --- every source file says what it owns ------------------------------------------------
set(globs "")
foreach(top sdk hal backends samples tests)
  list(APPEND globs ${SRC}/${top}/*.c ${SRC}/${top}/*.h ${SRC}/${top}/*.cpp)
endforeach()
file(GLOB_RECURSE all_sources ${globs})
foreach(f ${all_sources})
  file(READ ${f} head LIMIT 256)
  string(STRIP "${head}" head)
  if(NOT head MATCHES "^(/\\*|//)")
    ferry_rel(${f} rel)
    fail("${rel}: does not start with a comment saying what the file owns")
  endif()
endforeach()

list(LENGTH headers nh)
list(LENGTH core_files nc)
list(LENGTH all_sources na)
message(STATUS "layers: ${nh} public headers, ${nc} sdk/hal files, ${na} source files checked")
if(nfail GREATER 0)
  message(FATAL_ERROR "layer check: ${nfail} problem(s), see FAIL lines above")
endif()
message(STATUS "layer check passed")
