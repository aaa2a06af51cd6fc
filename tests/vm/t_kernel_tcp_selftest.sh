#!/bin/bash
# Guest test: the kernel's nvmet-tcp target (a loop file on tmpfs, 127.0.0.1:4420) and the
# kernel's nvme-tcp host, digests off then on (-g -G): discovery lists the subsystem, direct-I/O
# patterns read back equal and are found in the target's backing file after disconnect. Needs no
# Ferry code: it proves the harness, the kernel and nvme-cli.
. /vm/lib.sh
nqn=nqn.2024-01.io.ferry:vm-selftest

step "kernel nvmet-tcp target on /dev/loop0 (64 MiB)"
nvmet_loop_target "$nqn" 64
modprobe nvme-tcp

step "discovery"
nvme discover -t tcp -a 127.0.0.1 -s 4420 | tee /tmp/disc
grep -q "subnqn: *$nqn\$" /tmp/disc || fail "discovery log does not list $nqn"

for mode in plain digests; do
	opts=()
	[ $mode = digests ] && opts=(-g -G)
	step "connect ($mode)"
	users0=$(crc32c_users)
	kernel_connect "$nqn" 127.0.0.1 4420 "${opts[@]}"
	users1=$(crc32c_users)
	echo "crc32c users: $users0 before connect, $users1 connected"
	if [ $mode = digests ] && [ "$users1" -le "$users0" ]; then
		fail "-g -G connected but no queue took a crc32c transform"
	fi
	direct_io_check "$DEV" "$mode"
	step "disconnect ($mode)"
	kernel_disconnect "$nqn"
	store_check /tmp/nvmet.img "$mode"
done

nvmet_teardown "$nqn"
step "done"
