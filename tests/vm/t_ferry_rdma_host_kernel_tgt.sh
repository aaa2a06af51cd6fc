#!/bin/bash
# Guest test: Ferry's NVMe-oF initiator over RDMA (ferry-nvmf-io -t rdma: the nvmf bdev with
# trtype "rdma" on the rxe backend; it exits 0 only if every byte it wrote read back equal)
# against the Linux kernel's nvmet-rdma target on a loop file, on soft-RoCE rxe0 (10.9.0.1):
# verified random I/O (randrw, then 4 KiB and 128 KiB blocks, several queues), the bytes found
# in the target's backing file, the kernel target logged no error. Skips while ferry-nvmf-io
# was not built or has no -t (transport) option.
. /vm/lib.sh
nqn=nqn.2024-01.io.ferry:vm-kernel-rdma-tgt
addr=10.9.0.1
command -v ferry-nvmf-io >/dev/null || skip "ferry-nvmf-io was not built"
ferry-nvmf-io --help 2>&1 | grep -q -- '-t ' || skip "ferry-nvmf-io has no -t (transport) option"

step "soft-RoCE rxe0 on d0 ($addr)"
rxe_up # lib.sh: rxe0 on a dummy interface d0 (rdma_cm refuses loopback)

step "kernel nvmet-rdma target on /dev/loop0 (64 MiB) at $addr:4420"
modprobe nvmet-rdma
modprobe loop
dd if=/dev/zero of=/tmp/nvmet.img bs=1M count=64 status=none
losetup /dev/loop0 /tmp/nvmet.img
mkdir "$NVMET/subsystems/$nqn"
echo 1 >"$NVMET/subsystems/$nqn/attr_allow_any_host"
mkdir "$NVMET/subsystems/$nqn/namespaces/1"
echo -n /dev/loop0 >"$NVMET/subsystems/$nqn/namespaces/1/device_path"
echo 1 >"$NVMET/subsystems/$nqn/namespaces/1/enable"
mkdir "$NVMET/ports/1"
echo rdma >"$NVMET/ports/1/addr_trtype"
echo ipv4 >"$NVMET/ports/1/addr_adrfam"
echo $addr >"$NVMET/ports/1/addr_traddr"
echo 4420 >"$NVMET/ports/1/addr_trsvcid"
ln -s "$NVMET/subsystems/$nqn" "$NVMET/ports/1/subsystems/$nqn"
dmesg -c >/dev/null

run_io() {
	local what=$1
	shift
	step "ferry-nvmf-io -t rdma $what"
	timeout 180 ferry-nvmf-io -t rdma -a $addr:4420 -n "$nqn" "$@" >/tmp/io.log 2>&1 || {
		rc=$?
		tail -n 40 /tmp/io.log
		dmesg | tail -n 20
		fail "ferry-nvmf-io -t rdma $what exited $rc"
	}
	tail -n 5 /tmp/io.log
	if dmesg | grep -iE "nvmet|nvme" |
		grep -iwE "error|errors|failed|fail|bad|invalid|unexpected|mismatch"; then
		fail "the kernel target logged errors ($what)"
	fi
	[ -e "$NVMET/subsystems/$nqn" ] || fail "subsystem gone"
}
run_io "randrw 4 KiB" --ios 4000 --bs 4096 --rw randrw --seed 1
run_io "randrw 128 KiB, 2 queues" --ios 400 --bs 131072 --rw randrw -q 2 -d 32 --seed 2
run_io "randwrite then verify, 1 MiB region" --ios 2000 --bs 4096 --rw randwrite \
	--region $((1 << 20)) --seed 3
# The target's store is not all zeros any more: the I/O reached the loop file.
if cmp -s /tmp/nvmet.img <(head -c $((64 << 20)) /dev/zero); then
	fail "no byte of the namespace changed: ferry-nvmf-io wrote nothing"
fi
rm -f "$NVMET/ports/1/subsystems/$nqn"
rmdir "$NVMET/ports/1"
echo 0 >"$NVMET/subsystems/$nqn/namespaces/1/enable"
rmdir "$NVMET/subsystems/$nqn/namespaces/1"
rmdir "$NVMET/subsystems/$nqn"
losetup -d /dev/loop0
step "done"
