#!/bin/bash
# The guest's /init (run-vm.sh installs this file there): mounts the pseudo file systems, gives
# nvme-cli a random host NQN, runs /vm/test.sh under bash, prints the result line the host
# harness reads ("FERRY-VM-RESULT rc=N": 0 pass, 77 skip, other fail) and powers off.
export PATH=/usr/bin:/ferry/bin
export HOME=/root TERM=dumb
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
exec </dev/console >/dev/console 2>&1
mkdir -p /dev/pts /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs tmpfs /run
modprobe configfs && mount -t configfs configfs /sys/kernel/config
ip link set lo up
# Without a host NQN file nvme-cli derives one from DMI, which QEMU's pc machine leaves at zeros.
uuid=$(cat /proc/sys/kernel/random/uuid)
echo "nqn.2014-08.org.nvmexpress:uuid:$uuid" >/etc/nvme/hostnqn
echo "$uuid" >/etc/nvme/hostid
mem_mb=$(awk '/MemTotal/ { print int($2 / 1024) }' /proc/meminfo)
echo "vm: $(cat /vm/name) on $(uname -r), $(nproc) cpus, $mem_mb MiB"
cd /tmp
boot_lines=$(dmesg | wc -l)
bash /vm/test.sh
rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
	echo "---- guest dmesg since the test started (last 60 lines) ----"
	dmesg | tail -n +$((boot_lines + 1)) | tail -n 60
	echo "----"
fi
echo "FERRY-VM-RESULT rc=$rc"
if grep -qw ferry.shell=1 /proc/cmdline; then
	echo "vm: shell (run-vm.sh -i); exit it to power off"
	setsid cttyhack bash -i || bash -i
fi
sync
poweroff -f
echo o >/proc/sysrq-trigger
sleep 10
