#!/bin/bash
# Guest test: samples/rdma_direct end to end on soft-RoCE (rxe0 on a dummy interface,
# 10.9.0.1:4420): the host process's verified random workload through the mock PCIe endpoint
# and the nvmf bdev over NVMe-oF/RDMA to ferry-nvmf-tgt -t rdma on rxe, a plain pass (every
# I/O RDMA-direct: the target's RDMA READ/WRITE move the data between host memory, registered
# through the SoC's mapping of it, and its buffers) and a crypto+dif pass (fused-staged).
# Checked here on top of the sample's own exit status: the plain pass printed 0 SoC bytes and
# no staged I/O, rdma_direct_ios and rdma_direct_bytes are not 0, the crypto+dif pass took
# the fused path; the target's connection counters show RDMA READs and WRITEs. Skips while rdma_direct was not built.
. /vm/lib.sh
command -v rdma_direct >/dev/null || skip "rdma_direct was not built"
command -v ferry-nvmf-tgt >/dev/null || skip "ferry-nvmf-tgt was not built"
command -v ferry-nvme-host >/dev/null || skip "ferry-nvme-host was not built"

step "soft-RoCE rxe0 on d0 (10.9.0.1)"
rxe_up # lib.sh: rxe0 on a dummy interface d0 (rdma_cm refuses loopback)

step "rdma_direct --nic rxe --addr 10.9.0.1:4420"
set +e
# A small namespace (2 MiB): the host formats it (Write Zeroes: through the dif bdev, data) and
# reads all of it back in each pass, each command within its 5 s timeout under TCG.
timeout 240 rdma_direct --nic rxe --addr 10.9.0.1:4420 --blocks 512 \
	--ios "${FERRY_RDMA_DIRECT_IOS:-1000}" --timeout 200 >/tmp/rd.log 2>&1
rc=$?
set -e
cat /tmp/rd.log
[ $rc -eq 0 ] || fail "rdma_direct exited $rc"
grep -q '^pass plain: ok$' /tmp/rd.log || fail "the plain pass did not report ok"
grep -q '^pass crypto+dif: ok$' /tmp/rd.log || fail "the crypto+dif pass did not report ok"
grep -qE '^SoC bytes \(plain\): 0 \(0\.000 per I/O' /tmp/rd.log ||
	fail "the plain pass moved bytes through the SoC"
plain=$(sed -n '/^==== pass plain/,/^pass plain/p' /tmp/rd.log)
grep -qE '^  rdma_direct_ios +[1-9]' <<<"$plain" || fail "plain: no RDMA-direct I/O"
grep -qE '^  rdma_staged_ios +0 ' <<<"$plain" || fail "plain: staged I/Os"
grep -qE '^  rdma_direct_bytes +[1-9]' <<<"$plain" || fail "plain: no byte moved RDMA-direct"
crypto=$(sed -n '/^==== pass crypto+dif/,/^pass crypto+dif/p' /tmp/rd.log)
grep -qE '^  rdma_fused_ios +[1-9]' <<<"$crypto" || fail "crypto+dif: no fused-staged I/O"
grep -qE 'reads [1-9][0-9]* \([1-9][0-9]* bytes\) writes [1-9]' /tmp/rd.log ||
	fail "the target's connections show no RDMA READ / WRITE"
if dmesg | grep -iE "rdma_rxe|infiniband" | grep -iwE "error|failed|bad|invalid"; then
	fail "the rxe driver logged errors"
fi
step "done"
