#!/bin/bash
# Guest test: Ferry's NVMe-oF/TCP target (ferry-nvmf-tgt, a 64 MiB malloc namespace of 512-byte
# blocks on 127.0.0.1:4420) driven by the Linux kernel's nvme-tcp host: discovery lists the
# subsystem; Identify Controller names it; with digests off and on (-g -G) direct-I/O patterns
# read back equal; blkdiscard (when discard is advertised); fio randrw with crc32c verify (when
# fio was shipped); ext4: mkfs, files written and checksummed, unmount, remount, checksums equal;
# disconnect, reconnect, e2fsck clean, checksums still equal; the kernel logged no I/O error; the
# target exits 0 on SIGTERM. Skips while the binary does not exist.
. /vm/lib.sh
nqn=nqn.2024-01.io.ferry:vm-tgt
command -v ferry-nvmf-tgt >/dev/null || skip "ferry-nvmf-tgt was not built"
modprobe nvme-tcp
modprobe ext4

step "ferry-nvmf-tgt on 127.0.0.1:4420"
ferry-nvmf-tgt -a 127.0.0.1:4420 -p 2 -n "$nqn" --ns malloc:64M:512 --ready-file /tmp/tgt.ready \
	--quiet >/tmp/tgt.log 2>&1 &
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
nvme discover -t tcp -a 127.0.0.1 -s 4420 | tee /tmp/disc
grep -q "subnqn: *$nqn\$" /tmp/disc || fail "discovery log does not list $nqn"

for mode in plain digests; do
	opts=()
	[ $mode = digests ] && opts=(-g -G)
	step "connect ($mode)"
	users0=$(crc32c_users)
	kernel_connect "$nqn" 127.0.0.1 4420 "${opts[@]}"
	users1=$(crc32c_users)
	if [ $mode = digests ] && [ "$users1" -le "$users0" ]; then
		fail "-g -G connected but no queue took a crc32c transform"
	fi
	ctrl=$(ctrl_of "$nqn")
	nvme id-ctrl "/dev/$ctrl" >/tmp/idc
	grep -E "^(vid|sn|mn|fr|mdts|cntlid|ver|subnqn|ioccsz|iorcsz|sgls) " /tmp/idc
	grep -q "^subnqn *: *$nqn\$" /tmp/idc || fail "Identify Controller SUBNQN is not $nqn"
	[ "$(cat /sys/block/"${DEV#/dev/}"/size)" -eq 131072 ] || fail "namespace is not 64 MiB"
	[ "$(cat /sys/block/"${DEV#/dev/}"/queue/logical_block_size)" -eq 512 ] ||
		fail "logical block size is not 512"
	direct_io_check "$DEV" "$mode"
	# Discard (Dataset Management) when the namespace advertises it: Linux always sends a
	# 4096-byte range buffer (NVME_DSM_MAX_RANGES entries) whatever the number of ranges.
	dmax=$(cat /sys/block/"${DEV#/dev/}"/queue/discard_max_bytes)
	if [ $mode = plain ] && [ "$dmax" -gt 0 ]; then
		blkdiscard -o $((40 << 20)) -l $((1 << 20)) "$DEV" ||
			fail "blkdiscard of 1 MiB failed"
		echo "plain: blkdiscard of 1 MiB at 40 MiB completed"
	fi
	if [ $mode = digests ] && command -v fio >/dev/null; then
		step "fio randrw, crc32c verify (digests on)"
		fio --name=verify --filename="$DEV" --direct=1 --ioengine=libaio --iodepth=16 \
			--rw=randrw --bs=4k --offset=16M --size=8M --verify=crc32c \
			--verify_fatal=1 --do_verify=1 --eta=never --output=/tmp/fio.out || {
			cat /tmp/fio.out
			fail "fio failed"
		}
		grep -E "read:|write:|err=" /tmp/fio.out
	elif [ $mode = digests ]; then
		echo "note: fio is not installed on the build machine: fio verify skipped"
	fi
	step "disconnect ($mode)"
	kernel_disconnect "$nqn"
	tgt_alive || fail "ferry-nvmf-tgt died at disconnect"
done

step "ext4: mkfs, files, remount"
kernel_connect "$nqn" 127.0.0.1 4420
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
kernel_connect "$nqn" 127.0.0.1 4420
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
