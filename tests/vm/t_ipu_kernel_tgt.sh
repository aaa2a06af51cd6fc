#!/bin/bash
# Guest test (placeholder until ipu_forward exists): the IPU sample forwards its simulated host's
# writes through Ferry's AES-XTS crypto bdev to the Linux kernel's nvmet-tcp target; afterwards
# the target's loop file must hold the AES-XTS ciphertext of what the host wrote, checked by
# xts_check (OpenSSL EVP alone, no Ferry code). Assumed interface of ipu_forward:
#   ipu_forward --target ADDR:PORT --subnqn NQN --crypto-key HEX --dump-written FILE
# with HEX = key1 || key2 (AES-128-XTS), FILE receiving the plaintext image of the blocks written
# from LBA 0, data unit = the namespace block size (512 bytes here, tweak = LBA).
. /vm/lib.sh
nqn=nqn.2024-01.io.ferry:vm-ipu
key=000102030405060708090a0b0c0d0e0f''f0e0d0c0b0a090807060504030201000
command -v ipu_forward >/dev/null || skip "ipu_forward was not built"
ipu_forward --help 2>&1 | grep -q -- --target || skip "ipu_forward has no --target option yet"

step "kernel nvmet-tcp target on /dev/loop0 (64 MiB)"
nvmet_loop_target "$nqn" 64

step "ipu_forward -> 127.0.0.1:4420, AES-XTS"
timeout 120 ipu_forward --target 127.0.0.1:4420 --subnqn "$nqn" --crypto-key "$key" \
	--dump-written /tmp/written >/tmp/ipu.log 2>&1 || {
	rc=$?
	tail -n 40 /tmp/ipu.log
	fail "ipu_forward exited $rc"
}
tail -n 5 /tmp/ipu.log
[ -s /tmp/written ] || fail "ipu_forward wrote no plaintext image"
nvmet_teardown "$nqn"

step "the store holds the ciphertext"
xts_check -k "$key" -u 512 /tmp/nvmet.img /tmp/written
step "done"
