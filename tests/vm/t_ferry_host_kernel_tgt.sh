#!/bin/bash
# Guest test: Ferry's NVMe-oF/TCP initiator tool (ferry-nvmf-io, exit 0 only if every byte it
# wrote read back equal) against the Linux kernel's nvmet-tcp target on a loop file, digests off,
# header digest only, data digest only, both. The kernel must log no nvmet/nvmet_tcp error.
# Skips while the binary does not exist.
. /vm/lib.sh
nqn=nqn.2024-01.io.ferry:vm-kernel-tgt
command -v ferry-nvmf-io >/dev/null || skip "ferry-nvmf-io was not built"

step "kernel nvmet-tcp target on /dev/loop0 (64 MiB)"
nvmet_loop_target "$nqn" 64
dmesg -c >/dev/null

for opts in "" "-g" "-G" "-g -G"; do
	# shellcheck disable=SC2086 # the options are words
	nvmf_io_run "${opts:-(no digests)}" 120 "$nqn" -a 127.0.0.1:4420 $opts --ios 2000
done
nvmet_store_written 64
nvmet_teardown "$nqn"
step "done"
