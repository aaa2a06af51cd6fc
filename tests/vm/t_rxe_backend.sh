#!/bin/bash
# Guest test: the rxe backend's unit tests (tests/unit/rxe, Criterion) on soft-RoCE: rxe0 on
# the dummy interface d0 (10.9.0.1, lib.sh's rxe_up), FERRY_RXE_ADDR pointing at it, so every
# test runs instead of skipping: CM connect/accept/reject with private data, SEND/RECV,
# inline, RDMA WRITE/READ integrity, remote access errors, flushes, disconnects, cq_wait.
# Then the conformance suite (ferry-conformance, hal/conformance) against the rxe backend only
# (--backend rxe --class nic, FERRY_CONF_RDMA_ADDR at rxe0): its backend-neutral RDMA checks
# (conf_rdma.c, the ferry/hal/rdma.h contract) must all pass here.
# A test that skips inside the guest counts as a failure. Skips while no test_rxe_* was built.
. /vm/lib.sh
ls /ferry/bin/test_rxe_* >/dev/null 2>&1 || skip "no test_rxe_* binary was built"
[ -x /ferry/bin/ferry-conformance ] || fail "test_rxe_* was built but not ferry-conformance"

step "soft-RoCE rxe0 on d0 (10.9.0.1)"
rxe_up
command -v ibv_devinfo >/dev/null && ibv_devinfo -d rxe0 | head -n 12
export FERRY_RXE_ADDR=$RXE_ADDR
dmesg -c >/dev/null

for t in /ferry/bin/test_rxe_*; do
	step "${t##*/}"
	rc=0
	timeout 280 "$t" --jobs 1 --ascii --verbose >/tmp/t.log 2>&1 || rc=$?
	grep -E '^\[(PASS|FAIL|SKIP|----|====)' /tmp/t.log | tail -n 60 || true
	if [ $rc -ne 0 ]; then
		tail -n 80 /tmp/t.log
		fail "${t##*/} exited $rc"
	fi
	echo "-- the backend's messages (what the failure paths logged), by count:"
	grep -E '^ferry (error|warn)' /tmp/t.log | sort | uniq -c | sort -rn | head -n 40 || true
	# A sanitizer build (FERRY_SANITIZE): Criterion passes a test whose worker reported a
	# leak or an error after the body passed; catch the reports here.
	if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' /tmp/t.log; then
		grep -E -A 25 'ERROR: (Address|Leak)Sanitizer|runtime error:' /tmp/t.log | head -n 120
		fail "${t##*/}: sanitizer reports"
	fi
	if grep -q '^\[SKIP' /tmp/t.log; then
		fail "${t##*/}: a test skipped although rxe0 is up"
	fi
done

step "ferry-conformance --backend rxe --class nic (FERRY_CONF_RDMA_ADDR=$RXE_ADDR)"
rc=0
FERRY_CONF_RDMA_ADDR=$RXE_ADDR timeout 280 /ferry/bin/ferry-conformance --backend rxe \
	--class nic --junit /tmp/conf.xml >/tmp/t.log 2>&1 || rc=$?
grep -E '^(ok|not ok) |passed, ' /tmp/t.log | tail -n 80 || true
if [ $rc -ne 0 ]; then
	tail -n 80 /tmp/t.log
	fail "ferry-conformance exited $rc"
fi
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' /tmp/t.log; then
	grep -E -A 25 'ERROR: (Address|Leak)Sanitizer|runtime error:' /tmp/t.log | head -n 120
	fail "ferry-conformance: sanitizer reports"
fi
if grep -E '^ok [0-9]+ - rdma\.[a-z_0-9]+ # SKIP' /tmp/t.log; then
	fail "ferry-conformance: an RDMA check skipped although rxe0 is up"
fi
want=$(grep -cE '^(ok|not ok) [0-9]+ - rdma\.' /tmp/t.log || true)
got=$(grep -E '^ok [0-9]+ - rdma\.' /tmp/t.log | grep -vc '# SKIP' || true)
[ -n "$want" ] && [ "$want" -gt 0 ] || fail "ferry-conformance: no rdma checks found"
[ "$got" -eq "$want" ] || fail "ferry-conformance: $got of $want rdma checks passed on rxe"
echo "ferry-conformance: $got of $want rdma checks passed on rxe"

if dmesg | grep -iE "rdma_rxe|infiniband" | grep -iwE "error|failed|bad|invalid"; then
	fail "the rxe driver logged errors"
fi
step "done"
