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
	step "ferry-nvmf-io ${opts:-(no digests)}"
	# shellcheck disable=SC2086 # the options are words
	timeout 120 ferry-nvmf-io -a 127.0.0.1:4420 -n "$nqn" $opts --ios 2000 \
		>/tmp/io.log 2>&1 || {
		rc=$?
		tail -n 40 /tmp/io.log
		dmesg | tail -n 20
		fail "ferry-nvmf-io ${opts:-(no digests)} exited $rc"
	}
	tail -n 5 /tmp/io.log
	if dmesg | grep -iE "nvmet|nvme" |
		grep -iwE "error|errors|failed|fail|bad|invalid|unexpected|mismatch"; then
		fail "the kernel target logged errors with ${opts:-no digests}"
	fi
	[ -e "$NVMET/subsystems/$nqn" ] || fail "subsystem gone"
done
# The target's store is not all zeros any more: the I/O reached the loop file.
if cmp -s /tmp/nvmet.img <(head -c $((64 << 20)) /dev/zero); then
	fail "no byte of the namespace changed: ferry-nvmf-io wrote nothing"
fi
nvmet_teardown "$nqn"
step "done"
