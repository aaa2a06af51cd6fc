#!/bin/bash
# Guest-side helpers sourced by every tests/vm/t_*.sh (run-vm.sh ships this file as /vm/lib.sh):
# result conventions, bounded waits, a kernel nvmet-tcp/-rdma target on a loop file, the kernel
# host's connect/disconnect, pattern writes verified with direct I/O, ferry-nvmf-tgt started and
# stopped, ferry-nvmf-io runs against the kernel target, fio and ext4 checks of a connected
# namespace, soft-RoCE.
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

# nvmet_loop_target NQN SIZE_MB [PORT] [TRTYPE] [ADDR]: a kernel nvmet-TRTYPE (tcp; or rdma)
# subsystem NQN (any host allowed) with one namespace on /dev/loop0 over a zeroed tmpfs file
# /tmp/nvmet.img, listening on ADDR:PORT (127.0.0.1:4420). The file is where the bytes land:
# tests read it back directly.
nvmet_loop_target() {
	local nqn=$1 mb=$2 port=${3:-4420} trtype=${4:-tcp} addr=${5:-127.0.0.1}
	modprobe "nvmet-$trtype"
	modprobe loop
	dd if=/dev/zero of=/tmp/nvmet.img bs=1M count="$mb" status=none
	losetup /dev/loop0 /tmp/nvmet.img
	mkdir "$NVMET/subsystems/$nqn"
	echo 1 >"$NVMET/subsystems/$nqn/attr_allow_any_host"
	mkdir "$NVMET/subsystems/$nqn/namespaces/1"
	echo -n /dev/loop0 >"$NVMET/subsystems/$nqn/namespaces/1/device_path"
	echo 1 >"$NVMET/subsystems/$nqn/namespaces/1/enable"
	mkdir "$NVMET/ports/1"
	echo "$trtype" >"$NVMET/ports/1/addr_trtype"
	echo ipv4 >"$NVMET/ports/1/addr_adrfam"
	echo "$addr" >"$NVMET/ports/1/addr_traddr"
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

# kernel_connect NQN ADDR PORT [nvme connect options...]: connects the kernel host (nvme-tcp);
# sets DEV.
kernel_connect() {
	kernel_connect_tr tcp "$@"
}

# kernel_connect_tr TRTYPE NQN ADDR PORT [nvme connect options...]: kernel_connect over the
# kernel host of TRTYPE (tcp, rdma).
kernel_connect_tr() {
	local trtype=$1 nqn=$2 addr=$3 port=$4
	shift 4
	nvme connect -t "$trtype" -a "$addr" -s "$port" -n "$nqn" "$@"
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

# nvmf_io_run LABEL SECONDS NQN [ferry-nvmf-io options...]: runs ferry-nvmf-io -n NQN (exit 0
# only if every byte it wrote read back equal) against the kernel target of nvmet_loop_target
# within SECONDS; then the kernel must have logged no nvmet/nvme error and the subsystem must
# still exist. Clear the kernel log (dmesg -c) before the first run.
nvmf_io_run() {
	local what=$1 secs=$2 nqn=$3 rc
	shift 3
	step "ferry-nvmf-io $what"
	timeout "$secs" ferry-nvmf-io -n "$nqn" "$@" >/tmp/io.log 2>&1 || {
		rc=$?
		tail -n 40 /tmp/io.log
		dmesg | tail -n 20
		fail "ferry-nvmf-io $what exited $rc"
	}
	tail -n 5 /tmp/io.log
	if dmesg | grep -iE "nvmet|nvme" |
		grep -iwE "error|errors|failed|fail|bad|invalid|unexpected|mismatch"; then
		fail "the kernel target logged errors ($what)"
	fi
	[ -e "$NVMET/subsystems/$nqn" ] || fail "subsystem gone"
}

# nvmet_store_written SIZE_MB: the store of nvmet_loop_target is not all zeros any more (the
# I/O reached the loop file).
nvmet_store_written() {
	if cmp -s /tmp/nvmet.img <(head -c $(($1 << 20)) /dev/zero); then
		fail "no byte of the namespace changed: ferry-nvmf-io wrote nothing"
	fi
}

# tgt_start [ferry-nvmf-tgt options...]: starts ferry-nvmf-tgt in the background (output in
# /tmp/tgt.log, its last lines printed at exit; killed at exit if still running) and waits up
# to 20 s until it is ready. Sets TGT (its pid).
tgt_start() {
	rm -f /tmp/tgt.ready
	ferry-nvmf-tgt "$@" --ready-file /tmp/tgt.ready --quiet >/tmp/tgt.log 2>&1 &
	TGT=$!
	trap tgt_on_exit EXIT
	wait_for 20 tgt_ready || fail "no ready file 20 s after start"
	tgt_alive || fail "ferry-nvmf-tgt exited before it was ready"
}
tgt_alive() { kill -0 "$TGT" 2>/dev/null; }
tgt_ready() { [ -e /tmp/tgt.ready ] || ! tgt_alive; }
tgt_on_exit() {
	if tgt_alive; then
		kill -KILL "$TGT" 2>/dev/null || true
	fi
	echo "---- ferry-nvmf-tgt output (last 40 lines) ----"
	tail -n 40 /tmp/tgt.log || true
}

# tgt_stop: SIGTERM to the target of tgt_start; it must end within 10 s with status 0.
tgt_stop() {
	local rc
	step "SIGTERM"
	kill -TERM "$TGT"
	wait_for 10 bash -c "! kill -0 $TGT" || fail "ferry-nvmf-tgt still running 10 s after SIGTERM"
	set +e
	wait "$TGT"
	rc=$?
	set -e
	[ $rc -eq 0 ] || fail "ferry-nvmf-tgt exited $rc after SIGTERM"
}

# fio_verify DEV [LABEL]: fio randrw of 8 MiB at 16 MiB of DEV with crc32c verify (a note when
# fio was not shipped to the guest).
fio_verify() {
	local dev=$1 what=${2:-}
	if ! command -v fio >/dev/null; then
		echo "note: fio is not installed on the build machine: fio verify skipped"
		return 0
	fi
	step "fio randrw, crc32c verify${what:+ ($what)}"
	fio --name=verify --filename="$dev" --direct=1 --ioengine=libaio --iodepth=16 \
		--rw=randrw --bs=4k --offset=16M --size=8M --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --eta=never --output=/tmp/fio.out || {
		cat /tmp/fio.out
		fail "fio failed"
	}
	grep -E "read:|write:|err=" /tmp/fio.out
}

# ext4_roundtrip NQN CONNECT...: CONNECT (a command that connects the kernel host to NQN and
# sets DEV, e.g. kernel_connect NQN ADDR PORT); mkfs.ext4, files written and checksummed,
# unmount, caches dropped, remount, checksums equal; disconnect, CONNECT again, e2fsck clean,
# checksums still equal; disconnect.
ext4_roundtrip() {
	local nqn=$1 i
	shift
	step "ext4: mkfs, files, remount"
	"$@"
	mkfs.ext4 -q -F -b 4096 "$DEV"
	mkdir -p /mnt/f
	mount -t ext4 "$DEV" /mnt/f
	dd if=/dev/urandom of=/mnt/f/a bs=1M count=5 status=none
	dd if=/dev/urandom of=/mnt/f/b bs=4k count=3 status=none
	mkdir /mnt/f/d
	for i in $(seq 1 50); do echo "file $i $RANDOM" >"/mnt/f/d/$i"; done
	(cd /mnt/f && sha256sum a b d/*) >/tmp/sums
	sync
	umount /mnt/f
	echo 3 >/proc/sys/vm/drop_caches
	mount -t ext4 "$DEV" /mnt/f
	(cd /mnt/f && sha256sum -c /tmp/sums >/dev/null) || fail "checksums differ after remount"
	echo "ext4: $(wc -l </tmp/sums) files equal after remount"
	umount /mnt/f
	kernel_disconnect "$nqn"

	step "reconnect, fsck, mount, checksums"
	"$@"
	e2fsck -f -n "$DEV" >/tmp/fsck.out 2>&1 || {
		cat /tmp/fsck.out
		fail "e2fsck found errors after reconnect"
	}
	mount -t ext4 -o ro "$DEV" /mnt/f
	(cd /mnt/f && sha256sum -c /tmp/sums >/dev/null) || fail "checksums differ after reconnect"
	echo "ext4: $(wc -l </tmp/sums) files equal after reconnect"
	umount /mnt/f
	kernel_disconnect "$nqn"
}

# kernel_host_no_errors: the kernel host logged no I/O error (nvme, block layer, ext4).
kernel_host_no_errors() {
	step "the kernel host logged no I/O error"
	if dmesg | grep -E "nvme|blk_update_request|I/O error|EXT4-fs" |
		grep -iwE "error|errors|failed|invalid"; then
		fail "the kernel logged errors talking to ferry-nvmf-tgt"
	fi
}

# id_ctrl_check NQN SECTORS LBS: Identify Controller of the controller connected to NQN names
# NQN (its main fields printed); DEV has SECTORS 512-byte sectors of LBS-byte logical blocks.
id_ctrl_check() {
	local nqn=$1 sectors=$2 lbs=$3 ctrl
	ctrl=$(ctrl_of "$nqn")
	nvme id-ctrl "/dev/$ctrl" >/tmp/idc
	grep -E "^(vid|sn|mn|fr|mdts|cntlid|ver|subnqn|ioccsz|iorcsz|sgls) " /tmp/idc
	grep -q "^subnqn *: *$nqn\$" /tmp/idc || fail "Identify Controller SUBNQN is not $nqn"
	[ "$(cat /sys/block/"${DEV#/dev/}"/size)" -eq "$sectors" ] ||
		fail "namespace is not $sectors sectors"
	[ "$(cat /sys/block/"${DEV#/dev/}"/queue/logical_block_size)" -eq "$lbs" ] ||
		fail "logical block size is not $lbs"
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
