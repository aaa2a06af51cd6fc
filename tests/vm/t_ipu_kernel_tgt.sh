#!/bin/bash
# Guest test: the IPU sample (ipu_forward: ferry-nvme-host <-> mock PCIe <-> "pcie" transport <->
# AES-XTS crypto bdev <-> nvmf bdev) forwards its host's verified random workload to the Linux
# kernel's nvmet-tcp target (a loop file, 512-byte blocks, no metadata: crypto alone), digests
# off then on. Afterwards the loop file must hold the AES-XTS ciphertext of the namespace image
# the host sees, checked by xts_check (OpenSSL EVP alone, no Ferry code):
#   ipu_forward --target ADDR:PORT --subnqn NQN --crypto-key HEX --dump-written FILE [--digests]
# HEX = key1 || key2 (AES-128-XTS), FILE = the plaintext image of the whole namespace read back
# through the stack, data unit = the 512-byte block, tweak = LBA.
. /vm/lib.sh
nqn=nqn.2024-01.io.ferry:vm-ipu
key=000102030405060708090a0b0c0d0e0f''f0e0d0c0b0a090807060504030201000
command -v ipu_forward >/dev/null || skip "ipu_forward was not built"
usage=$(ipu_forward --help 2>&1 || true)
grep -q -- --target <<<"$usage" || skip "ipu_forward has no --target option yet"

# 4 MiB: the host formats the namespace and reads all of it back, through the mock PCIe endpoint
# whose three polling parties (host, ipu_forward, the kernel) share two TCG vCPUs.
mb=4
step "kernel nvmet-tcp target on /dev/loop0 ($mb MiB)"
nvmet_loop_target "$nqn" $mb

for mode in plain digests; do
	opts=()
	[ $mode = digests ] && opts=(--digests)
	step "ipu_forward -> 127.0.0.1:4420, AES-XTS ($mode)"
	rm -f /tmp/written
	timeout 240 ipu_forward --target 127.0.0.1:4420 --subnqn "$nqn" --crypto-key "$key" \
		"${opts[@]}" --dump-written /tmp/written --timeout 200 -- --rw randrw --mix 50 \
		--qd 16 --bs 4K --ios 600 --verify --format >/tmp/ipu.log 2>&1 || {
		rc=$?
		tail -n 40 /tmp/ipu.log
		fail "ipu_forward ($mode) exited $rc"
	}
	grep -E "^firmware: |host exited|errors|mismatch" /tmp/ipu.log | head -n 12
	[ "$(stat -c %s /tmp/written)" -eq $((mb << 20)) ] ||
		fail "the plaintext image is $(stat -c %s /tmp/written) bytes, not $mb MiB"
	step "the store holds the ciphertext ($mode)"
	# The loop device's backing file, not /dev/loop0: nvmet submits bios below the block
	# device's page cache, which a buffered read of /dev/loop0 in the previous pass filled.
	sync
	xts_check -k "$key" -u 512 /tmp/nvmet.img /tmp/written
	# The key matters: the same check with another key must fail.
	if xts_check -k "${key:32}${key:0:32}" -u 512 -l 65536 /tmp/nvmet.img /tmp/written \
		>/dev/null 2>&1; then
		fail "the store also decrypts with key2 || key1"
	fi
done
nvmet_teardown "$nqn"
step "done"
