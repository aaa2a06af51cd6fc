#!/bin/bash
# Guest test: the rxe backend's unit tests (tests/unit/rxe, Criterion) on soft-RoCE: rxe0 on
# the dummy interface d0 (10.9.0.1, lib.sh's rxe_up), FERRY_RXE_ADDR pointing at it, so every
# test runs instead of skipping: CM connect/accept/reject with private data, SEND/RECV,
# inline, RDMA WRITE/READ integrity, remote access errors, flushes, disconnects, cq_wait.
# Then the conformance suite (conformance_dma, tests/conformance) against the rxe backend only
# (FERRY_CONF_BACKENDS=rxe, FERRY_CONF_RDMA_ADDR at rxe0): its backend-neutral RDMA checks
# (conf_rdma.c, the ferry/hal/rdma.h contract) must all pass here.
# A test that skips inside the guest counts as a failure. Skips while no test_rxe_* was built.
. /vm/lib.sh
ls /ferry/bin/test_rxe_* >/dev/null 2>&1 || skip "no test_rxe_* binary was built"
[ -x /ferry/bin/conformance_dma ] || fail "test_rxe_* was built but not conformance_dma"

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

step "conformance_dma on rxe (FERRY_CONF_RDMA_ADDR=$RXE_ADDR)"
rc=0
FERRY_CONF_BACKENDS=rxe FERRY_CONF_RDMA_ADDR=$RXE_ADDR timeout 280 /ferry/bin/conformance_dma \
	--jobs 1 --ascii --verbose >/tmp/t.log 2>&1 || rc=$?
grep -E '^\[(PASS|FAIL|SKIP|----|====)' /tmp/t.log | grep -v 'Test is disabled' | tail -n 80 ||
	true
if [ $rc -ne 0 ]; then
	tail -n 80 /tmp/t.log
	fail "conformance_dma exited $rc"
fi
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' /tmp/t.log; then
	grep -E -A 25 'ERROR: (Address|Leak)Sanitizer|runtime error:' /tmp/t.log | head -n 120
	fail "conformance_dma: sanitizer reports"
fi
if grep -E '^\[SKIP\] rdma::' /tmp/t.log; then
	fail "conformance_dma: an RDMA check skipped although rxe0 is up"
fi
want=$(sed -n 's/^\[====\] Running \([0-9]*\) tests\? from rdma:.*/\1/p' /tmp/t.log)
got=$(grep -c '^\[PASS\] rdma::' /tmp/t.log || true)
[ -n "$want" ] && [ "$want" -gt 0 ] || fail "conformance_dma: no rdma checks found"
[ "$got" -eq "$want" ] || fail "conformance_dma: $got of $want rdma checks passed on rxe"
echo "conformance_dma: $got of $want rdma checks passed on rxe"

if dmesg | grep -iE "rdma_rxe|infiniband" | grep -iwE "error|failed|bad|invalid"; then
	fail "the rxe driver logged errors"
fi
step "done"
