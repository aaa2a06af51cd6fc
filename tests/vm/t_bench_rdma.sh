#!/bin/bash
# Guest test: `ferry-bench rdma` on soft-RoCE (rxe0 on a dummy interface, 10.9.0.1), with the
# kernel's NVMe-oF/RDMA as the reference of its NVMe-oF part, all in this one guest run:
# - ferry-bench rdma --nic rxe --json: RDMA WRITE / READ bandwidth through Ferry's NIC class
#   next to ib_write_bw / ib_read_bw on the same device (the bench runs them), then Ferry's
#   target + Ferry's initiator (4 KiB QD32 IOPS, 128 KiB MB/s, SoC bytes per RDMA-direct I/O);
#   every line is printed, and the verbs lines must carry both figures.
# - the kernel nvme-rdma host against (a) the kernel's nvmet-rdma on a null_blk device and
#   (b) ferry-nvmf-tgt -t rdma (malloc namespace): fio 4 KiB randread QD32 IOPS and 128 KiB
#   sequential read MB/s when fio was shipped, else dd (128 KiB O_DIRECT reads, QD1) only;
#   printed side by side with the ratio Ferry / kernel (the issue's goal: >= 1.0).
# Figures under TCG vary up to 1.7x between runs: compare only within one run (VM-PEERS.md).
# Skips while ferry-bench was not built. FERRY_BENCH_SECS (default 1) is the bench's --time
# (its phases last 5 x that), FERRY_FIO_SECS (default 8) each fio run.
. /vm/lib.sh
command -v ferry-bench >/dev/null || skip "ferry-bench was not built"
bsecs=${FERRY_BENCH_SECS:-1}
fsecs=${FERRY_FIO_SECS:-8}
nqn_k=nqn.2024-01.io.ferry:vm-kernel-rdma
nqn_f=nqn.2024-01.io.ferry:vm-ferry-rdma

step "soft-RoCE rxe0 on d0 (10.9.0.1)"
rxe_up # lib.sh: rxe0 on a dummy interface d0 (rdma_cm refuses loopback)

step "ferry-bench rdma --nic rxe --time $bsecs --json"
set +e
ferry-bench rdma --nic rxe --addr 10.9.0.1 --time "$bsecs" --json >/tmp/bench.json 2>/tmp/bench.err
brc=$?
set -e
cat /tmp/bench.json
[ $brc -eq 0 ] || {
	cat /tmp/bench.err
	fail "ferry-bench rdma exited $brc"
}
for c in write-bw read-bw; do
	l=$(grep "\"case\":\"$c\"" /tmp/bench.json) || fail "no $c line"
	echo "$l" | grep -q '"ferry_mibs":[1-9]' || fail "$c: no Ferry figure"
	echo "$l" | grep -q '"ref_mibs":' || echo "note: $c without the perftest figure: $l"
done

# ---- the kernel host against the kernel's target and against Ferry's ------------------------

# fio_or_dd DEV TAG: 4 KiB randread QD32 IOPS and 128 KiB read MB/s of DEV into /tmp/TAG.*
fio_or_dd() {
	local dev=$1 tag=$2
	if command -v fio >/dev/null; then
		fio --name=r4k --filename="$dev" --direct=1 --ioengine=libaio --iodepth=32 \
			--rw=randread --bs=4k --size=48M --runtime="$fsecs" --ramp_time=1 \
			--time_based --eta=never --output-format=terse --terse-version=3 \
			>"/tmp/$tag.r4k" || fail "$tag: fio 4k failed"
		fio --name=r128k --filename="$dev" --direct=1 --ioengine=libaio --iodepth=32 \
			--rw=read --bs=128k --size=48M --runtime="$fsecs" --ramp_time=1 \
			--time_based --eta=never --output-format=terse --terse-version=3 \
			>"/tmp/$tag.r128k" || fail "$tag: fio 128k failed"
		# terse v3: field 8 read IOPS, 7 read bandwidth KiB/s
		awk -F';' '{ print $8 }' "/tmp/$tag.r4k" >"/tmp/$tag.iops"
		awk -F';' '{ printf "%.1f\n", $7 / 1024 }' "/tmp/$tag.r128k" >"/tmp/$tag.mibs"
	else
		local t0 t1
		echo "-" >"/tmp/$tag.iops"
		t0=$(date +%s%N)
		dd if="$dev" of=/dev/null bs=128k count=384 iflag=direct status=none
		t1=$(date +%s%N)
		awk -v ns=$((t1 - t0)) 'BEGIN { printf "%.1f\n", 48 / (ns / 1e9) }' \
			>"/tmp/$tag.mibs"
	fi
	echo "$tag: 4k QD32 randread $(cat "/tmp/$tag.iops") IOPS," \
		"128k read $(cat "/tmp/$tag.mibs") MiB/s"
}

rdma_connect() {
	local nqn=$1
	nvme connect -t rdma -a 10.9.0.1 -s 4420 -n "$nqn"
	wait_for 20 ns_of "$nqn" || fail "no namespace block device 20 s after nvme connect"
	DEV=$(ns_of "$nqn")
}

modprobe nvme-rdma
step "kernel nvmet-rdma (null_blk 1 GiB) <- kernel nvme-rdma"
modprobe null_blk nr_devices=1 gb=1
modprobe nvmet-rdma
mkdir "$NVMET/subsystems/$nqn_k"
echo 1 >"$NVMET/subsystems/$nqn_k/attr_allow_any_host"
mkdir "$NVMET/subsystems/$nqn_k/namespaces/1"
echo -n /dev/nullb0 >"$NVMET/subsystems/$nqn_k/namespaces/1/device_path"
echo 1 >"$NVMET/subsystems/$nqn_k/namespaces/1/enable"
mkdir "$NVMET/ports/2"
echo rdma >"$NVMET/ports/2/addr_trtype"
echo ipv4 >"$NVMET/ports/2/addr_adrfam"
echo 10.9.0.1 >"$NVMET/ports/2/addr_traddr"
echo 4420 >"$NVMET/ports/2/addr_trsvcid"
ln -s "$NVMET/subsystems/$nqn_k" "$NVMET/ports/2/subsystems/$nqn_k"
rdma_connect "$nqn_k"
fio_or_dd "$DEV" kernel
kernel_disconnect "$nqn_k"
rm -f "$NVMET/ports/2/subsystems/$nqn_k"
rmdir "$NVMET/ports/2"
echo 0 >"$NVMET/subsystems/$nqn_k/namespaces/1/enable"
rmdir "$NVMET/subsystems/$nqn_k/namespaces/1"
rmdir "$NVMET/subsystems/$nqn_k"

step "ferry-nvmf-tgt -t rdma (malloc 64 MiB) <- kernel nvme-rdma"
command -v ferry-nvmf-tgt >/dev/null || fail "ferry-nvmf-tgt is missing"
ferry-nvmf-tgt -t rdma -a 10.9.0.1:4420 -n "$nqn_f" --ns malloc:64M:4096 \
	--ready-file /tmp/tgt.ready --quiet >/tmp/tgt.log 2>&1 &
tgt=$!
tgt_alive() { kill -0 $tgt 2>/dev/null; }
on_exit() {
	if tgt_alive; then
		kill -KILL $tgt 2>/dev/null || true
	fi
	echo "---- ferry-nvmf-tgt output (last 20 lines) ----"
	tail -n 20 /tmp/tgt.log || true
}
trap on_exit EXIT
wait_for 20 bash -c "[ -e /tmp/tgt.ready ] || ! kill -0 $tgt" || fail "target not ready in 20 s"
tgt_alive || fail "ferry-nvmf-tgt exited before it was ready"
rdma_connect "$nqn_f"
fio_or_dd "$DEV" ferry
kernel_disconnect "$nqn_f"
kill -TERM $tgt
wait_for 10 bash -c "! kill -0 $tgt" || fail "ferry-nvmf-tgt still running 10 s after SIGTERM"

step "figures (this run)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-";
	else printf "%.3f\n", a / b }'; }
printf '%-34s %12s %12s %8s\n' "kernel nvme-rdma host against" "kernel tgt" "ferry tgt" ratio
printf '%-34s %12s %12s %8s\n' "4 KiB randread QD32 IOPS" "$(cat /tmp/kernel.iops)" \
	"$(cat /tmp/ferry.iops)" "$(ratio "$(cat /tmp/ferry.iops)" "$(cat /tmp/kernel.iops)")"
printf '%-34s %12s %12s %8s\n' "128 KiB read MiB/s" "$(cat /tmp/kernel.mibs)" \
	"$(cat /tmp/ferry.mibs)" "$(ratio "$(cat /tmp/ferry.mibs)" "$(cat /tmp/kernel.mibs)")"
echo "ferry-bench rdma (Ferry's NIC class vs perftest, Ferry target + initiator):"
grep -E '"case":"(write-bw|read-bw|nvmf-)' /tmp/bench.json
step "done"
