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
nvmet_loop_target "$nqn" 64 4420 rdma $addr
dmesg -c >/dev/null

run_io() {
	local what=$1
	shift
	nvmf_io_run "-t rdma $what" 180 "$nqn" -t rdma -a $addr:4420 "$@"
}
run_io "randrw 4 KiB" --ios 4000 --bs 4096 --rw randrw --seed 1
run_io "randrw 128 KiB, 2 queues" --ios 400 --bs 131072 --rw randrw -q 2 -d 32 --seed 2
run_io "randwrite then verify, 1 MiB region" --ios 2000 --bs 4096 --rw randwrite \
	--region $((1 << 20)) --seed 3
nvmet_store_written 64
nvmet_teardown "$nqn"
step "done"
