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

step "ferry-nvmf-tgt -t rdma on $addr:4420"
tgt_start -t rdma -a $addr:4420 -p 2 -n "$nqn" --ns malloc:64M:512

step "discovery"
nvme discover -t rdma -a $addr -s 4420 | tee /tmp/disc
grep -q "subnqn: *$nqn\$" /tmp/disc || fail "discovery log does not list $nqn"
grep -q "trtype: *rdma" /tmp/disc || fail "discovery log entry is not trtype rdma"

step "connect"
kernel_connect_tr rdma "$nqn" $addr 4420
ctrl=$(ctrl_of "$nqn")
grep -qx rdma "/sys/class/nvme/$ctrl/transport" || fail "$ctrl is not an rdma controller"
id_ctrl_check "$nqn" 131072 512
direct_io_check "$DEV" rdma
fio_verify "$DEV"
step "disconnect"
kernel_disconnect "$nqn"
tgt_alive || fail "ferry-nvmf-tgt died at disconnect"

ext4_roundtrip "$nqn" kernel_connect_tr rdma "$nqn" $addr 4420
kernel_host_no_errors
tgt_stop
step "done"
