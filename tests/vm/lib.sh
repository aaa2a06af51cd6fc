#!/bin/bash
# Guest-side helpers sourced by every tests/vm/t_*.sh (run-vm.sh ships this file as /vm/lib.sh):
# result conventions, bounded waits, a kernel nvmet-tcp target on a loop file, the kernel
# nvme-tcp host's connect/disconnect, pattern writes verified with direct I/O.
set -eEuo pipefail
trap 'echo "FAIL: line $LINENO: $BASH_COMMAND (exit $?)"' ERR

# Exit statuses the harness understands: 0 pass, 77 skip, anything else fail.
skip() {
	echo "SKIP: $*"
	exit 77
}
fail() {
	echo "FAIL: $*"
	exit 1
}
step() { echo "== [$(cut -d' ' -f1 /proc/uptime) s] $*"; }

# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds; 1 on timeout.
wait_for() {
	local n=$(($1 * 10))
	shift
	while ! "$@" >/dev/null 2>&1; do
		n=$((n - 1))
		[ $n -gt 0 ] || return 1
		sleep 0.1
	done
}

NVMET=/sys/kernel/config/nvmet

# nvmet_loop_target NQN SIZE_MB [PORT]: a kernel nvmet-tcp subsystem NQN (any host allowed) with
# one namespace on /dev/loop0 over a zeroed tmpfs file /tmp/nvmet.img, listening on
# 127.0.0.1:PORT (4420). The file is where the bytes land: tests read it back directly.
nvmet_loop_target() {
	local nqn=$1 mb=$2 port=${3:-4420}
	modprobe nvmet-tcp
	modprobe loop
	dd if=/dev/zero of=/tmp/nvmet.img bs=1M count="$mb" status=none
	losetup /dev/loop0 /tmp/nvmet.img
	mkdir "$NVMET/subsystems/$nqn"
	echo 1 >"$NVMET/subsystems/$nqn/attr_allow_any_host"
	mkdir "$NVMET/subsystems/$nqn/namespaces/1"
	echo -n /dev/loop0 >"$NVMET/subsystems/$nqn/namespaces/1/device_path"
	echo 1 >"$NVMET/subsystems/$nqn/namespaces/1/enable"
	mkdir "$NVMET/ports/1"
	echo tcp >"$NVMET/ports/1/addr_trtype"
	echo ipv4 >"$NVMET/ports/1/addr_adrfam"
	echo 127.0.0.1 >"$NVMET/ports/1/addr_traddr"
	echo "$port" >"$NVMET/ports/1/addr_trsvcid"
	# A port with no subsystem linked refuses connections: link last.
	ln -s "$NVMET/subsystems/$nqn" "$NVMET/ports/1/subsystems/$nqn"
}

# nvmet_teardown NQN: undoes nvmet_loop_target.
nvmet_teardown() {
	local nqn=$1
	rm -f "$NVMET/ports/1/subsystems/$nqn"
	rmdir "$NVMET/ports/1"
	echo 0 >"$NVMET/subsystems/$nqn/namespaces/1/enable"
	rmdir "$NVMET/subsystems/$nqn/namespaces/1"
	rmdir "$NVMET/subsystems/$nqn"
	losetup -d /dev/loop0
}

# ns_of NQN: the block device (/dev/nvmeXnY) of the connected subsystem NQN, if any.
ns_of() {
	local nqn=$1 d n
	# Native multipath (Debian's default): the disk hangs off the subsystem.
	for d in /sys/class/nvme-subsystem/nvme-subsys* /sys/class/nvme/nvme*; do
		[ -r "$d/subsysnqn" ] || continue
		[ "$(cat "$d/subsysnqn")" = "$nqn" ] || continue
		for n in "$d"/nvme*n*; do
			n=${n##*/}
			[[ $n == *c* ]] && continue
			[ -b "/dev/$n" ] && echo "/dev/$n" && return 0
		done
	done
	return 1
}

# ctrl_of NQN: the controller name (nvmeX) connected to NQN, if any.
ctrl_of() {
	local nqn=$1 d
	for d in /sys/class/nvme/nvme*; do
		if [ -r "$d/subsysnqn" ] && [ "$(cat "$d/subsysnqn")" = "$nqn" ]; then
			echo "${d##*/}"
			return 0
		fi
	done
	return 1
}

# kernel_connect NQN ADDR PORT [nvme connect options...]: connects the kernel host; sets DEV.
kernel_connect() {
	local nqn=$1 addr=$2 port=$3
	shift 3
	nvme connect -t tcp -a "$addr" -s "$port" -n "$nqn" "$@"
	wait_for 20 ns_of "$nqn" || fail "no namespace block device 20 s after nvme connect"
	DEV=$(ns_of "$nqn")
	echo "connected: $DEV ($(cat /sys/block/"${DEV#/dev/}"/size) sectors)"
}

# kernel_disconnect NQN: disconnects and waits until the controller is gone.
kernel_disconnect() {
	local nqn=$1
	nvme disconnect -n "$nqn"
	wait_for 20 bash -c "! ls /sys/class/nvme/ 2>/dev/null | grep -q . || \
		! grep -qx '$nqn' /sys/class/nvme/*/subsysnqn" ||
		fail "controller of $nqn still present 20 s after nvme disconnect"
}

# crc32c_users: the number of users of the crc32c implementations (digests take one per queue).
crc32c_users() {
	local m s=0
	for m in crc32c_intel crc32c_generic; do
		[ -r "/sys/module/$m/refcnt" ] && s=$((s + $(cat "/sys/module/$m/refcnt")))
	done
	echo $s
}

# direct_io_check DEV TAG: writes two random patterns with O_DIRECT (8 MiB at 0, 1 MiB + 4 KiB at
# an odd 4 KiB offset past 37 MiB), reads them back with O_DIRECT and compares. Leaves the
# patterns in /tmp/TAG.a and /tmp/TAG.b for a check of the backing store.
direct_io_check() {
	local dev=$1 tag=$2
	dd if=/dev/urandom of="/tmp/$tag.a" bs=1M count=8 status=none
	dd if=/dev/urandom of="/tmp/$tag.b" bs=4k count=257 status=none
	dd if="/tmp/$tag.a" of="$dev" bs=1M oflag=direct conv=fsync status=none
	dd if="/tmp/$tag.b" of="$dev" bs=4k seek=9475 oflag=direct conv=fsync status=none
	dd if="$dev" of="/tmp/$tag.ra" bs=1M count=8 iflag=direct status=none
	dd if="$dev" of="/tmp/$tag.rb" bs=4k skip=9475 count=257 iflag=direct status=none
	cmp "/tmp/$tag.a" "/tmp/$tag.ra" || fail "$tag: 8 MiB at 0 read back differs"
	cmp "/tmp/$tag.b" "/tmp/$tag.rb" ||
		fail "$tag: 1028 KiB at 4 KiB block 9475 read back differs"
	rm -f "/tmp/$tag.ra" "/tmp/$tag.rb"
	echo "$tag: direct I/O write + read-back verified (9 MiB + 4 KiB)"
}

# store_check FILE TAG: the patterns of direct_io_check TAG are in FILE (a target's store).
store_check() {
	local f=$1 tag=$2
	cmp -n $((8 << 20)) "/tmp/$tag.a" "$f" || fail "$tag: store $f differs at 0"
	dd if="$f" of="/tmp/$tag.sb" bs=4k skip=9475 count=257 status=none
	cmp "/tmp/$tag.b" "/tmp/$tag.sb" || fail "$tag: store $f differs at block 9475"
	rm -f "/tmp/$tag.sb"
	echo "$tag: bytes found in the target's store $f"
}

# rxe_up [IF] [ADDR/LEN]: soft-RoCE for rdma_cm users: a dummy interface IF (d0) with ADDR/LEN
# (10.9.0.1/24) and the rxe device rxe0 on it (rdma_cm refuses loopback; both ends of a test
# run on this one device). Sets RXE_ADDR to the address (without the length).
rxe_up() {
	local ifc=${1:-d0} cidr=${2:-10.9.0.1/24}
	modprobe rdma_rxe || fail "modprobe rdma_rxe failed"
	modprobe rdma_ucm || fail "modprobe rdma_ucm failed"
	modprobe ib_uverbs || fail "modprobe ib_uverbs failed"
	modprobe dummy || fail "modprobe dummy failed"
	if ! ip link show "$ifc" >/dev/null 2>&1; then
		ip link add "$ifc" type dummy
		ip addr add "$cidr" dev "$ifc"
	fi
	ip link set "$ifc" up
	if [ ! -e /sys/class/infiniband/rxe0 ]; then
		rdma link add rxe0 type rxe netdev "$ifc" || fail "rdma link add rxe0 on $ifc failed"
	fi
	wait_for 10 test -e /sys/class/infiniband/rxe0 || fail "rxe0 did not appear"
	wait_for 10 test -e /dev/infiniband/rdma_cm || fail "/dev/infiniband/rdma_cm missing"
	RXE_ADDR=${cidr%/*}
	export RXE_ADDR
}
