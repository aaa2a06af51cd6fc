# ctest "checks.abi.selftest" (cmake -P): the ABI guard itself is tested. Each case copies the
# committed baseline twice under WORK/<case>/ (base = what the baseline says, cur = what a
# build would say), doctors one of them the way a real change would, runs check_abi.cmake in
# compare mode (and, where the rule says so, in update mode) and asserts the verdict and the
# message: a removed symbol, a changed symbol, a new symbol, a struct size/offset change, a
# removed member or struct, growth of a size-versioned struct, an enumerator's or a constant's
# value changed, removed or added, an ABI number changed or removed, each with and without the
# bump that allows it, and the SONAME and libferry.map consistency.
#
# Inputs (-D): CHECK (check_abi.cmake), BASELINE (tests/checks/abi), MAP (sdk/libferry.map),
#              WORK (scratch directory), CMAKE (the cmake program).
cmake_minimum_required(VERSION 3.25)

set(nbad 0)
set(ncases 0)
macro(bad msg)
  message("SELFTEST FAIL: ${msg}")
  math(EXPR nbad "${nbad} + 1")
endmacro()

file(REMOVE_RECURSE ${WORK})

# st_case(<name>): fresh base/, cur/ and libferry.map for a case; sets D to its directory.
macro(st_case name)
  set(D ${WORK}/${name})
  set(CASE ${name})
  file(MAKE_DIRECTORY ${D}/base ${D}/cur)
  foreach(f symbols.txt layouts.txt numbers.txt)
    file(COPY_FILE ${BASELINE}/${f} ${D}/base/${f})
    file(COPY_FILE ${BASELINE}/${f} ${D}/cur/${f})
  endforeach()
  file(COPY_FILE ${MAP} ${D}/libferry.map)
  set(CASE_ARGS "")
  math(EXPR ncases "${ncases} + 1")
endmacro()

# st_edit(<file> <regex> <replacement>): the doctoring; the regex must match (else the baseline
# no longer has what the case relies on, and the case must be adapted, not silently pass).
function(st_edit file re repl)
  file(READ ${file} text)
  string(REGEX REPLACE "${re}" "${repl}" new "${text}")
  if(new STREQUAL text)
    message(FATAL_ERROR "selftest: '${re}' matches nothing in ${file}: adapt tests/checks/abi/selftest.cmake to the baseline")
  endif()
  file(WRITE ${file} "${new}")
endfunction()

function(st_append file line)
  file(APPEND ${file} "${line}\n")
endfunction()

# st_value(<file> <regex with one group> <out>): a value read from a baseline file.
function(st_value file re out)
  file(READ ${file} text)
  if(NOT text MATCHES "${re}")
    message(FATAL_ERROR "selftest: '${re}' matches nothing in ${file}")
  endif()
  set(${out} "${CMAKE_MATCH_1}" PARENT_SCOPE)
endfunction()

# st_bump(<numbers file> <name> <delta>): add <delta> to an ABI number.
function(st_bump file name delta)
  st_value(${file} "\n${name} ([0-9]+)\n" v)
  math(EXPR nv "${v} + (${delta})")
  st_edit(${file} "\n${name} ${v}\n" "\n${name} ${nv}\n")
endfunction()

# st_run(<compare|update> <PASS|FAIL> [HAS <text>...] [NOT <text>...]): run the guard on the
# current case, check its verdict and that each HAS text is in its output and no NOT text is.
function(st_run mode verdict)
  set(extra "")
  if(mode STREQUAL "update")
    set(extra -DUPDATE=1)
  endif()
  execute_process(COMMAND ${CMAKE} -DMODE=compare -DCURRENT=${D}/cur -DBASELINE=${D}/base
                    -DMAP=${D}/libferry.map ${extra} ${CASE_ARGS} -P ${CHECK}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  set(out "${out}${err}")
  string(REPLACE "\n" " " flat "${out}")
  string(REGEX REPLACE "  +" " " flat "${flat}")
  set(ok TRUE)
  if(verdict STREQUAL "PASS" AND NOT rc EQUAL 0)
    set(ok FALSE)
    set(why "expected to pass, failed (${rc})")
  elseif(verdict STREQUAL "FAIL" AND rc EQUAL 0)
    set(ok FALSE)
    set(why "expected to fail, passed")
  endif()
  set(list HAS)
  foreach(a ${ARGN})
    if(a STREQUAL "HAS" OR a STREQUAL "NOT")
      set(list ${a})
      continue()
    endif()
    string(FIND "${flat}" "${a}" at)
    if(list STREQUAL "HAS" AND at EQUAL -1)
      set(ok FALSE)
      set(why "output lacks '${a}'")
    elseif(list STREQUAL "NOT" AND NOT at EQUAL -1)
      set(ok FALSE)
      set(why "output has '${a}'")
    endif()
  endforeach()
  if(ok)
    message(STATUS "ok: ${CASE} (${mode} ${verdict})")
  else()
    message("SELFTEST FAIL: ${CASE} (${mode}): ${why}\n--- output:\n${out}---")
    set(nbad_case 1 PARENT_SCOPE)
  endif()
endfunction()
macro(run)
  set(nbad_case 0)
  st_run(${ARGN})
  if(nbad_case)
    math(EXPR nbad "${nbad} + 1")
  endif()
endmacro()

# st_same(<file in base> <file in cur>): after an accepted update the baseline is the build's.
function(st_same f)
  file(READ ${D}/base/${f} a)
  file(READ ${D}/cur/${f} b)
  if(NOT a STREQUAL b)
    message("SELFTEST FAIL: ${CASE}: after the update base/${f} is not cur/${f}")
    set(nbad_case 1 PARENT_SCOPE)
  endif()
endfunction()
macro(same f)
  set(nbad_case 0)
  st_same(${f})
  if(nbad_case)
    math(EXPR nbad "${nbad} + 1")
  endif()
endmacro()

# An accepted change: compare fails (the baseline is stale, no "without a bump"), the update
# is accepted and rewrites the baseline, then compare passes.
macro(accepted)
  run(compare FAIL HAS ${ARGN} NOT "without an ABI version bump")
  run(update PASS HAS "ABI baseline written")
  foreach(f symbols.txt layouts.txt numbers.txt)
    same(${f})
  endforeach()
  run(compare PASS HAS "ABI check passed")
endmacro()
# A refused change: compare fails naming it, the update refuses and leaves the baseline alone.
macro(refused)
  run(compare FAIL HAS "incompatible change without an ABI version bump" ${ARGN})
  file(READ ${D}/base/symbols.txt _before_s)
  file(READ ${D}/base/layouts.txt _before_l)
  run(update FAIL HAS "abi-update refused" ${ARGN})
  file(READ ${D}/base/symbols.txt _after_s)
  file(READ ${D}/base/layouts.txt _after_l)
  if(NOT _before_s STREQUAL _after_s OR NOT _before_l STREQUAL _after_l)
    bad("${CASE}: a refused update changed the baseline")
  endif()
endmacro()

st_value(${BASELINE}/numbers.txt "\nversion_node ([^\n]+)\n" NODE)
st_value(${BASELINE}/numbers.txt "\nFERRY_SOVERSION ([0-9]+)\n" SOV)
st_value(${BASELINE}/symbols.txt "\n(ferry_[a-z0-9_]+)@@[^ ]+ FUNC " SYM1)
math(EXPR SOV1 "${SOV} + 1")

# --- the unchanged baseline passes, and an update of it rewrites the same bytes -------------
st_case(unchanged)
run(compare PASS HAS "ABI check passed" NOT "FAIL")
run(update PASS HAS "ABI baseline written" "0 difference(s) recorded")
foreach(f symbols.txt layouts.txt numbers.txt)
  same(${f})
endforeach()

# --- symbols -------------------------------------------------------------------------------
st_case(symbol_removed)
st_append(${D}/base/symbols.txt "ferry_selftest_gone@@${NODE} FUNC GLOBAL")
refused("removed symbol ferry_selftest_gone@@${NODE} (FUNC GLOBAL)"
        "bump FERRY_SOVERSION (top CMakeLists.txt) or the version node (sdk/libferry.map)")

st_case(symbol_removed_soversion_bump)
st_append(${D}/base/symbols.txt "ferry_selftest_gone@@${NODE} FUNC GLOBAL")
st_bump(${D}/cur/numbers.txt FERRY_SOVERSION 1)
st_edit(${D}/cur/numbers.txt "\nsoname libferry.so.${SOV}\n" "\nsoname libferry.so.${SOV1}\n")
accepted("removed symbol ferry_selftest_gone@@${NODE}"
         "allowed by the bump: FERRY_SOVERSION ${SOV} -> ${SOV1}"
         "ABI number FERRY_SOVERSION changed: ${SOV} -> ${SOV1}")

st_case(symbol_removed_node_bump)
st_append(${D}/base/symbols.txt "ferry_selftest_gone@@${NODE} FUNC GLOBAL")
st_edit(${D}/cur/numbers.txt "\nversion_node ${NODE}\n" "\nversion_node FERRY_SELFTEST_1\n")
st_edit(${D}/cur/symbols.txt "@@${NODE} " "@@FERRY_SELFTEST_1 ")
st_edit(${D}/libferry.map "\n${NODE} {" "\nFERRY_SELFTEST_1 {")
accepted("removed symbol ferry_selftest_gone@@${NODE}"
         "allowed by the bump: version node ${NODE} -> FERRY_SELFTEST_1"
         "version node: sdk/libferry.map defines 'FERRY_SELFTEST_1', the baseline records '${NODE}'"
         "new symbol ${SYM1}@@FERRY_SELFTEST_1 not in the baseline")

st_case(symbol_changed)
st_edit(${D}/cur/symbols.txt "\n${SYM1}@@${NODE} FUNC GLOBAL " "\n${SYM1}@@${NODE} OBJECT GLOBAL ")
refused("changed symbol ${SYM1}@@${NODE}: FUNC GLOBAL sig=" "-> OBJECT GLOBAL sig=")

# A prototype change (the C++-mangled type of the declaration) is a changed symbol; adding
# or dropping const alone is not.
st_value(${BASELINE}/symbols.txt "\nferry_hal_register@@[^ ]+ FUNC GLOBAL sig=([^\n]+)\n" REG_SIG)
st_case(signature_changed)
st_edit(${D}/cur/symbols.txt "\n(ferry_hal_register@@[^ ]+ FUNC GLOBAL) sig=F" "\n\\1 sig=FPv")
refused("changed symbol ferry_hal_register@@${NODE}: FUNC GLOBAL sig=${REG_SIG} -> FUNC GLOBAL sig=FPv")

st_case(signature_const_only)
string(REPLACE "K" "" REG_SIG_NOCONST "${REG_SIG}")
if(REG_SIG_NOCONST STREQUAL REG_SIG)
  message(FATAL_ERROR "selftest: ferry_hal_register's type ${REG_SIG} has no const: adapt the case")
endif()
st_edit(${D}/base/symbols.txt "\n(ferry_hal_register@@[^ ]+ FUNC GLOBAL) sig=[^\n]+\n" "\n\\1 sig=${REG_SIG_NOCONST}\n")
accepted("symbol ferry_hal_register@@${NODE}: const qualifiers changed")

st_case(symbol_new)
st_append(${D}/cur/symbols.txt "ferry_selftest_new@@${NODE} FUNC GLOBAL")
accepted("new symbol ferry_selftest_new@@${NODE} not in the baseline")

# --- struct layouts -------------------------------------------------------------------------
st_value(${BASELINE}/layouts.txt "\nstruct ferry_hal_dma_ops size=([0-9]+) " DMA_SIZE)
math(EXPR DMA_SIZE8 "${DMA_SIZE} + 8")
set(dma_re "\nstruct ferry_hal_dma_ops size=${DMA_SIZE} ")
set(dma_to "\nstruct ferry_hal_dma_ops size=${DMA_SIZE8} ")
set(dma_msg "struct ferry_hal_dma_ops: size ${DMA_SIZE8} -> ${DMA_SIZE}")

st_case(struct_size)
st_edit(${D}/base/layouts.txt "${dma_re}" "${dma_to}")
refused("${dma_msg}: bump FERRY_HAL_DMA_ABI_VERSION")

st_case(struct_size_abi_bump)
st_edit(${D}/base/layouts.txt "${dma_re}" "${dma_to}")
st_bump(${D}/cur/numbers.txt FERRY_HAL_DMA_ABI_VERSION 1)
accepted("${dma_msg} (incompatible, allowed by the bump: FERRY_HAL_DMA_ABI_VERSION bumped)"
         "ABI number FERRY_HAL_DMA_ABI_VERSION changed")

st_case(struct_size_other_abi_bump)
st_edit(${D}/base/layouts.txt "${dma_re}" "${dma_to}")
st_bump(${D}/cur/numbers.txt FERRY_HAL_NIC_ABI_VERSION 1)
refused("${dma_msg}: bump FERRY_HAL_DMA_ABI_VERSION")

st_case(struct_size_abi_lowered)
st_edit(${D}/base/layouts.txt "${dma_re}" "${dma_to}")
st_bump(${D}/cur/numbers.txt FERRY_HAL_DMA_ABI_VERSION -1)
refused("${dma_msg}: bump FERRY_HAL_DMA_ABI_VERSION")

st_case(struct_size_soversion_bump)
st_edit(${D}/base/layouts.txt "${dma_re}" "${dma_to}")
st_bump(${D}/cur/numbers.txt FERRY_SOVERSION 1)
st_edit(${D}/cur/numbers.txt "\nsoname libferry.so.${SOV}\n" "\nsoname libferry.so.${SOV1}\n")
accepted("${dma_msg} (incompatible, allowed by the bump: FERRY_SOVERSION ${SOV} -> ${SOV1})")

# A module-tier ops table is versioned by its own number (FERRY_BDEV_OPS_ABI).
st_value(${BASELINE}/layouts.txt "\nstruct ferry_bdev_ops size=([0-9]+) " BOPS_SIZE)
math(EXPR BOPS_SIZE8 "${BOPS_SIZE} + 8")
st_case(module_ops_size)
st_edit(${D}/base/layouts.txt "\nstruct ferry_bdev_ops size=${BOPS_SIZE} " "\nstruct ferry_bdev_ops size=${BOPS_SIZE8} ")
refused("struct ferry_bdev_ops: size ${BOPS_SIZE8} -> ${BOPS_SIZE}: bump FERRY_BDEV_OPS_ABI")
st_case(module_ops_size_abi_bump)
st_edit(${D}/base/layouts.txt "\nstruct ferry_bdev_ops size=${BOPS_SIZE} " "\nstruct ferry_bdev_ops size=${BOPS_SIZE8} ")
st_bump(${D}/cur/numbers.txt FERRY_BDEV_OPS_ABI 1)
accepted("allowed by the bump: FERRY_BDEV_OPS_ABI bumped")

# An SDK struct: only FERRY_SOVERSION (or the node) allows it; a HAL number does not.
st_value(${BASELINE}/layouts.txt "\nstruct ferry_dma_info.caps offset=([0-9]+) " CAPS_OFF)
math(EXPR CAPS_OFF8 "${CAPS_OFF} + 8")
set(caps_re "\nstruct ferry_dma_info.caps offset=${CAPS_OFF} ")
set(caps_to "\nstruct ferry_dma_info.caps offset=${CAPS_OFF8} ")
st_case(sdk_member_offset)
st_edit(${D}/base/layouts.txt "${caps_re}" "${caps_to}")
st_bump(${D}/cur/numbers.txt FERRY_HAL_ABI_VERSION 1)
refused("struct ferry_dma_info.caps: offset=${CAPS_OFF8}"
        "bump FERRY_SOVERSION (top CMakeLists.txt) or the version node")

st_case(sdk_member_offset_soversion_bump)
st_edit(${D}/base/layouts.txt "${caps_re}" "${caps_to}")
st_bump(${D}/cur/numbers.txt FERRY_SOVERSION 1)
st_edit(${D}/cur/numbers.txt "\nsoname libferry.so.${SOV}\n" "\nsoname libferry.so.${SOV1}\n")
accepted("struct ferry_dma_info.caps: offset=${CAPS_OFF8}"
         "allowed by the bump: FERRY_SOVERSION ${SOV} -> ${SOV1}")

st_case(member_removed)
st_append(${D}/base/layouts.txt "struct ferry_hal_backend.selftest_gone offset=0 size=8")
refused("struct ferry_hal_backend.selftest_gone: member removed"
        "bump FERRY_HAL_ABI_VERSION")

st_case(struct_removed)
st_append(${D}/base/layouts.txt "struct ferry_selftest_gone size=8 align=8 abi=none header=ferry/selftest.h")
refused("struct ferry_selftest_gone removed")

st_case(struct_new)
st_append(${D}/cur/layouts.txt "struct ferry_selftest_new size=8 align=8 abi=none header=ferry/selftest.h")
st_append(${D}/cur/layouts.txt "struct ferry_selftest_new.x offset=0 size=8")
accepted("new struct ferry_selftest_new size=8 align=8 abi=none header=ferry/selftest.h not in the baseline")

# Growth at the end of a size-versioned struct (size_t size first): named as such, and refused
# while the library accepts only size == sizeof; accepted with SIZE_GROWTH_OK (the switch for
# the day it accepts older sizes). A plain struct's growth is refused either way.
# The base lacks the struct's last member, as if the build had just added it.
function(st_drop_last struct file out_member)
  file(STRINGS ${file} lines REGEX "^struct ${struct}\\.")
  set(best -1)
  foreach(l ${lines})
    string(REGEX MATCH "^struct ${struct}\\.([a-z0-9_]+) offset=([0-9]+) " _m "${l}")
    if(CMAKE_MATCH_2 GREATER best)
      set(best ${CMAKE_MATCH_2})
      set(member ${CMAKE_MATCH_1})
    endif()
  endforeach()
  st_edit(${file} "\nstruct ${struct}\\.${member} [^\n]*\n" "\n")
  st_edit(${file} "\nstruct ${struct} size=[0-9]+ " "\nstruct ${struct} size=${best} ")
  set(${out_member} ${member} PARENT_SCOPE)
  set(${out_member}_offset ${best} PARENT_SCOPE)
endfunction()

st_value(${BASELINE}/layouts.txt "\n(struct ferry_dma_info.size offset=0 size=[0-9]+)\n" _)
st_case(growth_size_versioned)
st_drop_last(ferry_dma_info ${D}/base/layouts.txt member)
refused("new member struct ferry_dma_info.${member}"
        "at the end of the size-versioned struct ferry_dma_info (the library accepts only size == sizeof"
        "grown at the end of a size-versioned struct"
        "bump FERRY_SOVERSION")

st_case(growth_size_versioned_allowed)
set(CASE_ARGS -DSIZE_GROWTH_OK=1)
st_drop_last(ferry_dma_info ${D}/base/layouts.txt member)
accepted("new member struct ferry_dma_info.${member}"
         "at the end of the size-versioned struct ferry_dma_info not in the baseline"
         "grown at the end of a size-versioned struct")

st_case(growth_not_size_versioned_allowed)
set(CASE_ARGS -DSIZE_GROWTH_OK=1)
st_drop_last(ferry_hal_backend ${D}/base/layouts.txt member)
refused("new member struct ferry_hal_backend.${member}" "inside struct ferry_hal_backend")

st_case(growth_not_size_versioned)
st_value(${BASELINE}/layouts.txt "\nstruct ferry_hal_backend size=([0-9]+) " BACKEND_SIZE)
st_drop_last(ferry_hal_backend ${D}/base/layouts.txt member)
refused("new member struct ferry_hal_backend.${member}"
        "struct ferry_hal_backend: size ${member_offset} -> ${BACKEND_SIZE}: bump FERRY_HAL_ABI_VERSION"
        "inside struct ferry_hal_backend"
        "bump FERRY_HAL_ABI_VERSION")

# Enumerators: a value is compiled into every caller.
st_value(${BASELINE}/layouts.txt "\nenumerator FERRY_HAL_RDMA_OP_READ value=([0-9]+) " RD)
math(EXPR RD9 "${RD} + 90")
set(rd_re "\nenumerator FERRY_HAL_RDMA_OP_READ value=${RD} ")
set(rd_to "\nenumerator FERRY_HAL_RDMA_OP_READ value=${RD9} ")
st_case(enumerator_value)
st_edit(${D}/base/layouts.txt "${rd_re}" "${rd_to}")
refused("enumerator FERRY_HAL_RDMA_OP_READ: value ${RD9} -> ${RD}: bump FERRY_HAL_RDMA_ABI_VERSION")
st_case(enumerator_value_abi_bump)
st_edit(${D}/base/layouts.txt "${rd_re}" "${rd_to}")
st_bump(${D}/cur/numbers.txt FERRY_HAL_RDMA_ABI_VERSION 1)
accepted("enumerator FERRY_HAL_RDMA_OP_READ: value ${RD9} -> ${RD} (incompatible, allowed by the bump: FERRY_HAL_RDMA_ABI_VERSION bumped)")
st_case(enumerator_removed)
st_append(${D}/base/layouts.txt "enumerator FERRY_SELFTEST_GONE value=7 enum=ferry_selftest abi=none header=ferry/selftest.h")
refused("enumerator FERRY_SELFTEST_GONE removed")
st_case(enumerator_new)
st_append(${D}/cur/layouts.txt "enumerator FERRY_SELFTEST_NEW value=7 enum=ferry_selftest abi=none header=ferry/selftest.h")
accepted("new enumerator FERRY_SELFTEST_NEW value=7")

# Integer constants (flags, limits) as well.
st_value(${BASELINE}/layouts.txt "\nconstant FERRY_HAL_RDMA_WR_F_FENCE value=([0-9]+) " FENCE)
math(EXPR FENCE2 "${FENCE} * 2")
st_case(constant_value)
st_edit(${D}/cur/layouts.txt "\nconstant FERRY_HAL_RDMA_WR_F_FENCE value=${FENCE} " "\nconstant FERRY_HAL_RDMA_WR_F_FENCE value=${FENCE2} ")
refused("constant FERRY_HAL_RDMA_WR_F_FENCE: value ${FENCE} -> ${FENCE2}: bump FERRY_HAL_RDMA_ABI_VERSION")
st_case(constant_new)
st_append(${D}/cur/layouts.txt "constant FERRY_SELFTEST_F_NEW value=8 abi=none header=ferry/selftest.h")
accepted("new constant FERRY_SELFTEST_F_NEW value=8")

st_case(variable_size)
st_append(${D}/base/layouts.txt "data ferry_selftest_var size=8")
st_append(${D}/cur/layouts.txt "data ferry_selftest_var size=16")
refused("variable data ferry_selftest_var: size=8 -> size=16")

# --- ABI numbers and consistency ------------------------------------------------------------
st_case(number_changed)
st_value(${BASELINE}/numbers.txt "\nFERRY_HAL_NIC_ABI_VERSION ([0-9]+)\n" NIC)
math(EXPR NIC1 "${NIC} + 1")
st_bump(${D}/cur/numbers.txt FERRY_HAL_NIC_ABI_VERSION 1)
accepted("ABI number FERRY_HAL_NIC_ABI_VERSION changed: ${NIC} -> ${NIC1}")

st_case(number_removed)
st_edit(${D}/cur/numbers.txt "\nFERRY_HAL_RDMA_ABI_VERSION [0-9]+\n" "\n")
refused("ABI number FERRY_HAL_RDMA_ABI_VERSION removed")

st_case(number_new)
st_append(${D}/cur/numbers.txt "FERRY_HAL_SELFTEST_ABI_VERSION 1")
accepted("new ABI number FERRY_HAL_SELFTEST_ABI_VERSION 1 not in the baseline")

st_case(map_node_mismatch)
st_edit(${D}/libferry.map "\n${NODE} {" "\nFERRY_SELFTEST_1 {")
run(compare FAIL HAS "sdk/libferry.map defines the version node(s) 'FERRY_SELFTEST_1' but libferry.so defines '${NODE}'")

st_case(soname_mismatch)
st_edit(${D}/cur/numbers.txt "\nsoname libferry.so.${SOV}\n" "\nsoname libferry.so.${SOV1}\n")
run(compare FAIL HAS "SONAME is 'libferry.so.${SOV1}' but FERRY_SOVERSION is ${SOV}")

# Layouts are per target (the baseline is x86_64 LP64): another target compares symbols and
# numbers only, and says so.
st_case(other_target)
st_edit(${D}/cur/layouts.txt "\ntarget [^\n]*\n" "\ntarget selftest-arch ptr=32\n")
st_edit(${D}/cur/layouts.txt "${dma_re}" "${dma_to}")
run(compare PASS HAS "layouts not compared" "ABI check passed")
st_append(${D}/cur/symbols.txt "ferry_selftest_new@@${NODE} FUNC GLOBAL")
run(compare FAIL HAS "new symbol ferry_selftest_new@@${NODE} not in the baseline")

if(nbad GREATER 0)
  message(FATAL_ERROR "ABI guard self-test: ${nbad} failure(s) in ${ncases} cases")
endif()
message(STATUS "ABI guard self-test: ${ncases} cases, all verdicts and messages as expected")
