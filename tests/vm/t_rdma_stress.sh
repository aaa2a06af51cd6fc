#!/bin/bash
# Guest test: the RDMA stress runs of issue 10, Ferry's target (ferry-nvmf-tgt -t rdma) and
# Ferry's initiator (ferry-nvmf-io -t rdma: the nvmf bdev, trtype "rdma") on soft-RoCE rxe0
# (10.9.0.1:4420), 4 KiB random read/write at QD32 over a 16 MiB region, every read checked
# against the unit's last written pattern and everything read back at the end:
#   plain       100 000 I/Os on a namespace of 4096-byte blocks: RDMA-direct (registered
#               local memory named in keyed SGLs, 0 staged I/Os)
#   crypto+dif  100 000 I/Os through AES-XTS-256 on PI type 1 stacked on the initiator over a
#               4096+8 namespace (the fused staged path: rdma_fused_ios), after a format
#   loss        the target killed with SIGKILL twice in the middle of a 20 s run and started
#               again on the same address: the initiator (--volatile-target, --retries 8) reconnects
#               each time and finishes with 0 failed I/Os and 0 mismatches, the I/Os in flight
#               resubmitted (retries > 0). The restarted target's store is a new, zeroed malloc
#               namespace: the documented outcome is that the writes completed before a kill
#               are gone, so units not written since the last restart must read back as zeroes
#               and units written since must hold their pattern (ferry-nvmf-io checks both).
# Work-completion errors injected on rxe (a wrong rkey) reported on the right request are
# tests/unit/rxe/test_rxe_backend.c, run in t_rxe_backend. FERRY_RDMA_STRESS_IOS overrides the
# 100 000. Skips while the binaries were not built.
. /vm/lib.sh
nqn=nqn.2026-12.io.ferry:vm-rdma-stress
addr=10.9.0.1
ios=${FERRY_RDMA_STRESS_IOS:-100000}
key=$(printf '%064x' 1)$(printf '%064x' 2)
command -v ferry-nvmf-tgt >/dev/null || skip "ferry-nvmf-tgt was not built"
command -v ferry-nvmf-io >/dev/null || skip "ferry-nvmf-io was not built"
ferry-nvmf-io --help 2>&1 | grep -q -- '--volatile-target' ||
	skip "ferry-nvmf-io has no --volatile-target option"

step "soft-RoCE rxe0 on d0 ($addr)"
rxe_up # lib.sh: rxe0 on a dummy interface d0 (rdma_cm refuses loopback)
dmesg -c >/dev/null

tgt_pid=
# tgt_start LOG NS_SPEC...: ferry-nvmf-tgt -t rdma on $addr:4420, waits until it listens.
tgt_start() {
	local log=$1 a=()
	shift
	for s in "$@"; do a+=(--ns "$s"); done
	rm -f /tmp/tgt.ready
	ferry-nvmf-tgt -t rdma -a $addr:4420 -n "$nqn" "${a[@]}" --ready-file /tmp/tgt.ready \
		>>"$log" 2>&1 &
	tgt_pid=$!
	wait_for 30 test -e /tmp/tgt.ready || {
		tail -n 20 "$log"
		fail "ferry-nvmf-tgt did not listen within 30 s"
	}
}
# tgt_stop LOG: SIGTERM, the target must exit 0.
tgt_stop() {
	kill -TERM "$tgt_pid"
	local rc=0
	wait "$tgt_pid" || rc=$?
	[ $rc -eq 0 ] || {
		tail -n 20 "$1"
		fail "ferry-nvmf-tgt exited $rc on SIGTERM"
	}
}
# field LOG REGEX: the first number after REGEX in LOG.
field() { sed -n "s/.*$2 \([0-9][0-9]*\).*/\1/p" "$1" | head -n1; }
# check_io LOG WHAT [loss]: ferry-nvmf-io's verdict and counters (a loss run has work
# completion errors: the QP's work flushed when the peer went away).
check_io() {
	local log=$1 what=$2
	grep -q '^PASS$' "$log" || fail "$what: ferry-nvmf-io did not PASS"
	grep -q '^errors 0, mismatches 0$' "$log" || fail "$what: errors or mismatches"
	[ "${3:-}" = loss ] || [ "$(field "$log" 'wc errors')" = 0 ] ||
		fail "$what: work completion errors"
	[ "$(field "$log" 'protocol errors')" = 0 ] || fail "$what: protocol errors"
	[ "$(field "$log" 'io errors')" = 0 ] || fail "$what: I/O errors"
}
# run_io LOG WHAT ARGS...: a verified ferry-nvmf-io run against the target (4 KiB, QD32, 16 MiB).
run_io() {
	local log=$1 what=$2 t0 rc=0
	shift 2
	step "ferry-nvmf-io -t rdma: $what"
	t0=$(date +%s)
	timeout 200 ferry-nvmf-io -t rdma -a $addr:4420 -n "$nqn" --bs 4096 -d 32 --rw randrw \
		--region $((16 << 20)) "$@" >"$log" 2>&1 || rc=$?
	cat "$log"
	echo "$what: $(($(date +%s) - t0)) s wall"
	[ $rc -eq 0 ] || fail "$what: ferry-nvmf-io exited $rc"
	check_io "$log" "$what"
}

# ---- 100 000 I/Os plain, 100 000 through crypto+dif ----------------------------------------
step "ferry-nvmf-tgt: ns 1 malloc 64 MiB of 4096-byte blocks, ns 2 of 4096+8 (raw PI)"
tgt_start /tmp/tgt1.log malloc:64M:4096 malloc:$((4104 * 16384)):4096+8

run_io /tmp/plain.log "plain, $ios I/Os" --nsid 1 --ios "$ios" --seed 11
nio=$(sed -n 's/^workload: \([0-9]*\) I\/Os.*/\1/p' /tmp/plain.log)
[ "$nio" = "$ios" ] || fail "plain: $nio I/Os done, $ios asked"
[ "$(field /tmp/plain.log 'direct ios')" -ge "$ios" ] || fail "plain: not every I/O RDMA-direct"
[ "$(field /tmp/plain.log 'staged ios')" = 0 ] || fail "plain: staged I/Os"

run_io /tmp/cd.log "crypto+dif, $ios I/Os" --nsid 2 --dif 1 --crypto "$key" --ios "$ios" --seed 12
nio=$(sed -n 's/^workload: \([0-9]*\) I\/Os.*/\1/p' /tmp/cd.log)
[ "$nio" = "$ios" ] || fail "crypto+dif: $nio I/Os done, $ios asked"
grep -q '^stack: crypto (AES-XTS-256) on dif on the namespace' /tmp/cd.log ||
	fail "crypto+dif: the stack was not set up"
[ "$(field /tmp/cd.log 'fused ios')" -ge "$ios" ] || fail "crypto+dif: not every I/O fused-staged"
[ "$(field /tmp/cd.log 'zero reads')" -gt 0 ] ||
	fail "crypto+dif: no formatted (never written) unit was read"
tgt_stop /tmp/tgt1.log
tail -n 3 /tmp/tgt1.log

# ---- connection loss: the target killed twice mid-run, started again on the same address -----
step "connection loss: 20 s of I/O, the target SIGKILLed and restarted at 4 s and 11 s"
tgt_start /tmp/tgt2.log malloc:64M:4096
t0=$(date +%s)
ferry-nvmf-io -t rdma -a $addr:4420 -n "$nqn" --bs 4096 -d 32 --rw randrw \
	--region $((16 << 20)) --ios "$ios" --time 20 --seed 13 --retries 8 --volatile-target \
	>/tmp/loss.log 2>&1 &
io_pid=$!
for k in 1 2; do
	sleep $((k == 1 ? 4 : 6))
	kill -0 $io_pid 2>/dev/null || {
		cat /tmp/loss.log
		fail "ferry-nvmf-io ended before kill $k (raise the I/O count)"
	}
	echo "kill $k: SIGKILL of ferry-nvmf-tgt (pid $tgt_pid) at $(($(date +%s) - t0)) s"
	kill -KILL "$tgt_pid"
	wait "$tgt_pid" 2>/dev/null || true
	sleep 1
	tgt_start /tmp/tgt2.log malloc:64M:4096
	echo "kill $k: target listening again at $(($(date +%s) - t0)) s"
done
rc=0
wait_for 180 bash -c "! kill -0 $io_pid 2>/dev/null" || {
	kill -KILL $io_pid
	fail "ferry-nvmf-io did not finish within 180 s after the restarts"
}
wait $io_pid || rc=$?
cat /tmp/loss.log
echo "loss: $(($(date +%s) - t0)) s wall"
[ $rc -eq 0 ] || fail "loss: ferry-nvmf-io exited $rc"
check_io /tmp/loss.log loss loss
nio=$(sed -n 's/^workload: \([0-9]*\) I\/Os.*/\1/p' /tmp/loss.log)
[ "${nio:-0}" -gt 0 ] || fail "loss: no I/O done"
[ "$(field /tmp/loss.log 'losses')" -ge 2 ] || fail "loss: fewer than 2 connection losses"
[ "$(field /tmp/loss.log 'reconnects')" -ge 2 ] || fail "loss: fewer than 2 reconnections"
[ "$(field /tmp/loss.log 'retries')" -gt 0 ] || fail "loss: no I/O was in flight at a kill"
grep -q '^epochs [2-9]' /tmp/loss.log || fail "loss: the restarts were not seen as epochs"
[ "$(field /tmp/loss.log 'zero reads')" -gt 0 ] ||
	fail "loss: no unit written before a restart was read back (as zeroes)"
tgt_stop /tmp/tgt2.log
if dmesg | grep -iE "rdma_rxe|infiniband" | grep -iwE "error|failed|bad|invalid"; then
	fail "the rxe driver logged errors"
fi
step "done"
