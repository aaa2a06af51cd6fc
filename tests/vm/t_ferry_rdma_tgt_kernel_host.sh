#!/bin/bash
# Guest test: Ferry's NVMe-oF/RDMA target (ferry-nvmf-tgt -t rdma, a 64 MiB malloc namespace of
# 512-byte blocks on soft-RoCE rxe0, 10.9.0.1:4420) driven by the Linux kernel's nvme-rdma host:
# discovery lists the subsystem (trtype rdma); Identify Controller names it; direct-I/O patterns
# read back equal (9 MiB + 4 KiB, an odd offset); fio randrw with crc32c verify (when fio was
# shipped); ext4: mkfs, files written and checksummed, unmount, remount, checksums equal;
# disconnect, reconnect, e2fsck clean, checksums still equal; the kernel logged no I/O error;
# the target exits 0 on SIGTERM. Skips while ferry-nvmf-tgt was not built.
. /vm/lib.sh
nqn=nqn.2024-01.io.ferry:vm-rdma-tgt
addr=10.9.0.1
command -v ferry-nvmf-tgt >/dev/null || skip "ferry-nvmf-tgt was not built"
ferry-nvmf-tgt --help 2>&1 | grep -q -- '-t ' || skip "ferry-nvmf-tgt has no -t (transport) option"

step "soft-RoCE rxe0 on d0 ($addr)"
rxe_up # lib.sh: rxe0 on a dummy interface d0 (rdma_cm refuses loopback)
modprobe nvme-rdma
modprobe ext4

# rdma_connect NQN: connects the kernel nvme-rdma host to the target; sets DEV.
rdma_connect() {
	nvme connect -t rdma -a $addr -s 4420 -n "$1"
	wait_for 20 ns_of "$1" || fail "no namespace block device 20 s after nvme connect"
	DEV=$(ns_of "$1")
	echo "connected: $DEV ($(cat /sys/block/"${DEV#/dev/}"/size) sectors)"
}

step "ferry-nvmf-tgt -t rdma on $addr:4420"
ferry-nvmf-tgt -t rdma -a $addr:4420 -p 2 -n "$nqn" --ns malloc:64M:512 \
	--ready-file /tmp/tgt.ready --quiet >/tmp/tgt.log 2>&1 &
tgt=$!
tgt_alive() { kill -0 $tgt 2>/dev/null; }
tgt_ready() { [ -e /tmp/tgt.ready ] || ! tgt_alive; }
on_exit() {
	if tgt_alive; then
		kill -KILL $tgt 2>/dev/null || true
	fi
	echo "---- ferry-nvmf-tgt output (last 40 lines) ----"
	tail -n 40 /tmp/tgt.log || true
}
trap on_exit EXIT
wait_for 20 tgt_ready || fail "no ready file 20 s after start"
tgt_alive || fail "ferry-nvmf-tgt exited before it was ready"

step "discovery"
nvme discover -t rdma -a $addr -s 4420 | tee /tmp/disc
grep -q "subnqn: *$nqn\$" /tmp/disc || fail "discovery log does not list $nqn"
grep -q "trtype: *rdma" /tmp/disc || fail "discovery log entry is not trtype rdma"

step "connect"
rdma_connect "$nqn"
ctrl=$(ctrl_of "$nqn")
grep -qx rdma "/sys/class/nvme/$ctrl/transport" || fail "$ctrl is not an rdma controller"
nvme id-ctrl "/dev/$ctrl" >/tmp/idc
grep -E "^(vid|sn|mn|fr|mdts|cntlid|ver|subnqn|ioccsz|iorcsz|sgls) " /tmp/idc
grep -q "^subnqn *: *$nqn\$" /tmp/idc || fail "Identify Controller SUBNQN is not $nqn"
[ "$(cat /sys/block/"${DEV#/dev/}"/size)" -eq 131072 ] || fail "namespace is not 64 MiB"
[ "$(cat /sys/block/"${DEV#/dev/}"/queue/logical_block_size)" -eq 512 ] ||
	fail "logical block size is not 512"
direct_io_check "$DEV" rdma
if command -v fio >/dev/null; then
	step "fio randrw, crc32c verify"
	fio --name=verify --filename="$DEV" --direct=1 --ioengine=libaio --iodepth=16 \
		--rw=randrw --bs=4k --offset=16M --size=8M --verify=crc32c \
		--verify_fatal=1 --do_verify=1 --eta=never --output=/tmp/fio.out || {
		cat /tmp/fio.out
		fail "fio failed"
	}
	grep -E "read:|write:|err=" /tmp/fio.out
else
	echo "note: fio is not installed on the build machine: fio verify skipped"
fi
step "disconnect"
kernel_disconnect "$nqn"
tgt_alive || fail "ferry-nvmf-tgt died at disconnect"

step "ext4: mkfs, files, remount"
rdma_connect "$nqn"
mkfs.ext4 -q -F -b 4096 "$DEV"
mkdir -p /mnt/f
mount -t ext4 "$DEV" /mnt/f
dd if=/dev/urandom of=/mnt/f/a bs=1M count=5 status=none
dd if=/dev/urandom of=/mnt/f/b bs=4k count=3 status=none
mkdir /mnt/f/d
for i in $(seq 1 50); do echo "file $i $RANDOM" >/mnt/f/d/$i; done
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
rdma_connect "$nqn"
e2fsck -f -n "$DEV" >/tmp/fsck.out 2>&1 || {
	cat /tmp/fsck.out
	fail "e2fsck found errors after reconnect"
}
mount -t ext4 -o ro "$DEV" /mnt/f
(cd /mnt/f && sha256sum -c /tmp/sums >/dev/null) || fail "checksums differ after reconnect"
echo "ext4: $(wc -l </tmp/sums) files equal after reconnect"
umount /mnt/f
kernel_disconnect "$nqn"

step "the kernel host logged no I/O error"
if dmesg | grep -E "nvme|blk_update_request|I/O error|EXT4-fs" |
	grep -iwE "error|errors|failed|invalid"; then
	fail "the kernel logged errors talking to ferry-nvmf-tgt"
fi

step "SIGTERM"
kill -TERM $tgt
wait_for 10 bash -c "! kill -0 $tgt" || fail "ferry-nvmf-tgt still running 10 s after SIGTERM"
set +e
wait $tgt
rc=$?
set -e
[ $rc -eq 0 ] || fail "ferry-nvmf-tgt exited $rc after SIGTERM"
step "done"
