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
tgt_start -a 127.0.0.1:4420 -p 2 -n "$nqn" --ns malloc:64M:512

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
	id_ctrl_check "$nqn" 131072 512
	direct_io_check "$DEV" "$mode"
	# Discard (Dataset Management) when the namespace advertises it: Linux always sends a
	# 4096-byte range buffer (NVME_DSM_MAX_RANGES entries) whatever the number of ranges.
	dmax=$(cat /sys/block/"${DEV#/dev/}"/queue/discard_max_bytes)
	if [ $mode = plain ] && [ "$dmax" -gt 0 ]; then
		blkdiscard -o $((40 << 20)) -l $((1 << 20)) "$DEV" ||
			fail "blkdiscard of 1 MiB failed"
		echo "plain: blkdiscard of 1 MiB at 40 MiB completed"
	fi
	if [ $mode = digests ]; then
		fio_verify "$DEV" "digests on"
	fi
	step "disconnect ($mode)"
	kernel_disconnect "$nqn"
	tgt_alive || fail "ferry-nvmf-tgt died at disconnect"
done

ext4_roundtrip "$nqn" kernel_connect "$nqn" 127.0.0.1 4420
kernel_host_no_errors
tgt_stop
step "done"
