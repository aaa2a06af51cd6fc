#!/usr/bin/env bash
# QEMU-guest harness: runs each tests/vm/t_*.sh as the payload of a throw-away guest booted from
# Debian's stock kernel under QEMU TCG, where the Linux kernel's NVMe/TCP host and target are the
# peers of Ferry's binaries (docs/vmtest.md).
#
#   tests/vm/run-vm.sh [-B BUILD_DIR] [-C CACHE_DIR] [-m MEM_MB] [-t TIMEOUT_S] [-v] [-i] [TEST...]
#
# TEST is a t_*.sh path or name (t_kernel_tcp_selftest, t_kernel_tcp_selftest.sh); none: all of
# tests/vm/t_*.sh. Prints PASS/FAIL/SKIP per test and a summary; exits 1 if any failed. -v shows
# the console live; -i also leaves a shell in the guest after the test (exit it to power off).
#
# What is cached (in CACHE_DIR, default BUILD_DIR/vm-cache), reused between runs:
#   debs/               the kernel package linux-image-amd64 depends on (apt-get download)
#   kernel-<kver>/      its unpacked modules (depmod run), the uncompressed vmlinux
#   base-<key>.cpio     the initramfs without the test: busybox, bash, kmod, nvme-cli, iproute2,
#                       e2fsprogs, coreutils dd, cmp, losetup, blkdiscard, fio when the host has
#                       it, the modules and the ldd closure of every binary; <key> hashes this
#                       script, the kernel version and the host binaries: any change rebuilds it
#                       The base has soft-RoCE too: the rdma_rxe, rdma_ucm, nvme-rdma and
#                       nvmet-rdma modules, iproute2's rdma, the rxe verbs provider
#                       (libibverbs/librxe-rdmav*.so, /etc/libibverbs.d/rxe.driver), and rping /
#                       ibv_devinfo / perftest when the host has them.
# Per test a second cpio is appended: /init (guest-init.sh), /vm/test.sh, /vm/lib.sh, the Ferry
# binaries found in BUILD_DIR/bin under /ferry/bin (ipu_forward runs ferry-nvme-host from beside
# it; the rxe backend's unit tests test_rxe_* and ferry-conformance), xts_check, and their ldd
# closure.
# The guest prints "FERRY-VM-RESULT rc=N" (0 pass, 77 skip, other fail) and powers off; the
# console goes to BUILD_DIR/vm-logs/<test>.log, whose tail is printed on failure.
#
# Environment: FERRY_VM_REQUIRE="t_a t_b" counts a SKIP of those tests as a failure (CI sets it);
# FERRY_VM_QEMU overrides qemu-system-x86_64.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)

build_dir=$src/build
cache_dir=
mem=1024 # the initramfs lives in guest RAM (about 130 MiB) beside the test; ferry-bench rdma peaks near 300 MiB
tmo=300
verbose=0
shell=0
usage() {
	sed -n '6,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	exit 2
}
while getopts "B:C:m:t:vih" o; do
	case $o in
	B) build_dir=$(cd "$OPTARG" && pwd) ;;
	C) cache_dir=$OPTARG ;;
	m) mem=$OPTARG ;;
	t) tmo=$OPTARG ;;
	v) verbose=1 ;;
	i)
		verbose=1
		shell=1
		;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
cache_dir=${cache_dir:-$build_dir/vm-cache}
mkdir -p "$cache_dir"
cache_dir=$(cd "$cache_dir" && pwd)
log_dir=$build_dir/vm-logs
mkdir -p "$log_dir"
qemu=${FERRY_VM_QEMU:-qemu-system-x86_64}
# nvme, mke2fs, losetup, depmod live in /usr/sbin, not in a user's PATH on Debian.
export PATH=$PATH:/usr/sbin:/sbin

say() { echo "vm: $*" >&2; }
die() {
	say "$*"
	exit 1
}

for c in "$qemu" busybox kmod nvme ip cpio xz dpkg apt-get ldd mke2fs timeout; do
	command -v "$c" >/dev/null 2>&1 ||
		die "'$c' not found: run cmake/install-deps.sh --vm (or FERRY_VM_DEPS=1)"
done
# (captured first: under pipefail, grep -q exiting at its first match kills busybox with
# SIGPIPE and the pipeline would fail although the applet is there)
applets=$(busybox --list 2>/dev/null || true)
grep -qx sh <<<"$applets" ||
	die "busybox has no applets (busybox-static needed: cmake/install-deps.sh --vm)"

# ---- kernel: the package linux-image-amd64 depends on, unpacked once ----------------------------

kernel_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

prepare_kernel() {
	local pkg deb kdir tmp off
	mkdir -p "$cache_dir/debs"
	# A cached package is used as is, without asking apt (no network needed once cached).
	deb=$(ls -t "$cache_dir"/debs/linux-image-[0-9]*-amd64_*.deb 2>/dev/null | head -n1 || true)
	if [ -z "$deb" ]; then
		pkg=$(kernel_pkg)
		[ -n "$pkg" ] || die "apt knows no linux-image-amd64 (apt-get update needed?)"
		say "downloading $pkg"
		(cd "$cache_dir/debs" &&
			apt-get -q -o APT::Sandbox::User=root download "$pkg" >&2) ||
			die "apt-get download $pkg failed"
		deb=$(ls -t "$cache_dir"/debs/"$pkg"_*.deb | head -n1)
	fi
	kver=$(basename "$deb" | sed 's/^linux-image-\([^_]*\)_.*/\1/')
	kdir=$cache_dir/kernel-$kver
	if [ ! -f "$kdir/.done" ]; then
		say "unpacking kernel $kver"
		rm -rf "$kdir"
		tmp=$kdir.tmp
		rm -rf "$tmp"
		mkdir -p "$tmp"
		dpkg -x "$deb" "$tmp"
		depmod -b "$tmp" "$kver"
		# The uncompressed ELF vmlinux is the xz stream inside the bzImage (PVH entry: QEMU
		# boots it straight, ~3 s to /init instead of ~6 s through the firmware).
		off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$tmp/boot/vmlinuz-$kver" |
			head -n1 | cut -d: -f1 || true)
		[ -n "$off" ] || die "no xz payload in vmlinuz-$kver"
		# xz stops with an error at the bytes after the stream: expected.
		tail -c +$((off + 1)) "$tmp/boot/vmlinuz-$kver" |
			xz -dcq >"$tmp/vmlinux" 2>/dev/null || true
		[ "$(head -c4 "$tmp/vmlinux" | od -An -tx1 | tr -d ' ')" = 7f454c46 ] ||
			die "vmlinux extracted from vmlinuz-$kver is not an ELF file"
		mv "$tmp" "$kdir"
		touch "$kdir/.done"
	fi
	kernel_dir=$kdir
}

# ---- initramfs staging helpers ------------------------------------------------------------------

# The guest's layout is merged /usr: /bin /sbin /usr/sbin -> usr/bin, /lib -> usr/lib,
# /lib64 -> usr/lib64.
guest_path() {
	case $1 in
	/lib64/*) echo "/usr/lib64/${1#/lib64/}" ;;
	/lib/*) echo "/usr/lib/${1#/lib/}" ;;
	/bin/* | /sbin/* | /usr/sbin/*) echo "/usr/bin/${1##*/}" ;;
	*) echo "$1" ;;
	esac
}

# copy_file ROOT HOST_PATH [GUEST_PATH]: the file (symlinks resolved) at its guest path.
copy_file() {
	local root=$1 f=$2 g=${3:-}
	[ -n "$g" ] || g=$(guest_path "$f")
	mkdir -p "$root$(dirname "$g")"
	[ -e "$root$g" ] || cp -L --preserve=mode "$f" "$root$g"
}

# copy_libs ROOT BINARY...: the ldd closure of each binary.
copy_libs() {
	local root=$1 b l
	shift
	for b in "$@"; do
		while read -r l; do
			[ -n "$l" ] && copy_file "$root" "$l"
		done < <(ldd "$b" 2>/dev/null |
			awk '/=> \// { print $3 } /^[ \t]*\/[^ ]+ \(0x/ { print $1 }')
	done
}

# copy_bin ROOT HOST_BINARY [NAME]: the binary in /usr/bin plus its libraries.
copy_bin() {
	local root=$1 b=$2 n=${3:-${2##*/}}
	copy_file "$root" "$b" "/usr/bin/$n"
	copy_libs "$root" "$b"
}

# mkcpio DIR: an uncompressed newc archive of DIR on stdout, every file owned by root.
mkcpio() {
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet)
}

# ---- base initramfs: everything but the test, cached --------------------------------------------

guest_modules="configfs nvme-tcp nvmet-tcp nvme-fabrics nvmet null_blk loop ext4 crc32c_generic
	crc32c_intel crc32_generic crc32_pclmul crc64_rocksoft_generic crct10dif_pclmul
	crct10dif_generic crc16 rdma_rxe ib_uverbs rdma_ucm nvme-rdma nvmet-rdma dummy"

host_bins() {
	local b
	# rdma (iproute2) sets up soft-RoCE; the rdma-core / perftest tools are optional.
	for b in bash kmod nvme ip mke2fs e2fsck dd cmp losetup blkdiscard fio rdma ibv_devinfo \
		rping ib_write_bw ib_read_bw ib_send_lat; do
		command -v "$b" 2>/dev/null || true
	done
}

prepare_base() {
	local key root m f b kmods
	key=$({
		cat "${BASH_SOURCE[0]}"
		echo "$kver"
		for b in $(host_bins) "$(command -v busybox)"; do
			ls -lL "$b"
		done
	} | sha256sum | cut -c1-16)
	base=$cache_dir/base-$key.cpio
	[ -f "$base" ] && return 0
	say "building the base initramfs ($kver)"
	rm -f "$cache_dir"/base-*.cpio
	root=$cache_dir/base-root
	rm -rf "$root"
	mkdir -p "$root"/{usr/bin,usr/lib,usr/lib64,proc,sys,dev,tmp,run,mnt,etc/nvme,vm,ferry/bin}
	mkdir -p "$root/root"
	ln -s usr/bin "$root/bin"
	ln -s usr/bin "$root/sbin"
	ln -s bin "$root/usr/sbin"
	ln -s usr/lib "$root/lib"
	ln -s usr/lib64 "$root/lib64"
	# The real tools first; busybox fills in every other applet (busybox sh runs its own
	# ip/modprobe applets even with the real ones in PATH: the tests run under bash).
	for b in $(host_bins); do
		copy_bin "$root" "$b"
	done
	for m in modprobe insmod rmmod lsmod depmod modinfo; do
		ln -sf kmod "$root/usr/bin/$m"
	done
	ln -sf mke2fs "$root/usr/bin/mkfs.ext4"
	ln -sf e2fsck "$root/usr/bin/fsck.ext4"
	cp "$(command -v busybox)" "$root/usr/bin/busybox"
	for m in $(busybox --list); do
		[ -e "$root/usr/bin/$m" ] || [ -L "$root/usr/bin/$m" ] ||
			ln -s busybox "$root/usr/bin/$m"
	done
	# glibc dlopens libgcc_s for pthread_exit/cancellation.
	for f in /lib/x86_64-linux-gnu/libgcc_s.so.1 /usr/lib/x86_64-linux-gnu/libgcc_s.so.1; do
		[ -f "$f" ] && copy_file "$root" "$f" && break
	done
	# The soft-RoCE verbs provider libibverbs loads (dlopen) for rxe devices.
	for f in /usr/lib/x86_64-linux-gnu/libibverbs/librxe-rdmav*.so; do
		[ -f "$f" ] && copy_file "$root" "$f" && copy_libs "$root" "$f"
	done
	if [ -f /etc/libibverbs.d/rxe.driver ]; then
		mkdir -p "$root/etc/libibverbs.d"
		cp /etc/libibverbs.d/rxe.driver "$root/etc/libibverbs.d/"
	fi
	[ -f /etc/mke2fs.conf ] && cp /etc/mke2fs.conf "$root/etc/"
	echo "root:x:0:0:root:/root:/bin/bash" >"$root/etc/passwd"
	echo "root:x:0:" >"$root/etc/group"
	# Modules and their dependencies, at their path, then depmod over the subset.
	kmods=()
	for m in $guest_modules; do
		while read -r f; do
			kmods+=("$f")
		done < <(modprobe -d "$kernel_dir" -S "$kver" --show-depends "$m" 2>/dev/null |
			awk '$1 == "insmod" { print $2 }')
	done
	[ ${#kmods[@]} -gt 0 ] || die "no module found in $kernel_dir"
	for f in "${kmods[@]}"; do
		m=${f#"$kernel_dir"}
		mkdir -p "$root/usr$(dirname "$m")"
		cp -n "$f" "$root/usr$m"
	done
	cp "$kernel_dir/lib/modules/$kver"/modules.{builtin,builtin.modinfo,order} \
		"$root/usr/lib/modules/$kver/"
	depmod -b "$root" "$kver"
	if [ "$(id -u)" -eq 0 ]; then
		mknod -m 600 "$root/dev/console" c 5 1
		mknod -m 666 "$root/dev/null" c 1 3
	fi
	# Uncompressed: inflating ~100 MB under TCG costs 3 s of every boot; disk space is cheap.
	# (A compressed base would need padding to 4 bytes before the appended cpio.)
	mkcpio "$root" >"$base.tmp"
	mv "$base.tmp" "$base"
	rm -rf "$root"
	say "base initramfs $(($(stat -c %s "$base") >> 20)) MiB"
}

# ---- per-test part ------------------------------------------------------------------------------

ferry_bins="ferry-nvmf-tgt ferry-nvmf-io ipu_forward ferry-nvme-host rdma_direct ferry-bench"

# xts_check: the independent AES-XTS decryptor (OpenSSL EVP), built on the host.
prepare_xts_check() {
	xts_check=$build_dir/vm/xts_check
	mkdir -p "$build_dir/vm"
	if [ ! -x "$xts_check" ] || [ "$here/xts_check.c" -nt "$xts_check" ]; then
		cc -std=c11 -O2 -Wall -Wextra -Werror -o "$xts_check" "$here/xts_check.c" \
			-lcrypto || die "building xts_check failed (libssl-dev?)"
	fi
	# Self-check on IEEE 1619-2007 XTS-AES-128 vector 2 (key1 11.., key2 22.., data unit
	# sequence number 0x3333333333, 32 bytes of 0x44), and that a wrong tweak is caught.
	local d=$build_dir/vm k
	k=$(printf '11%.0s' $(seq 16))$(printf '22%.0s' $(seq 16))
	printf '\x44%.0s' $(seq 32) >"$d/xts-p.bin"
	{
		printf '\xc4\x54\x18\x5e\x6a\x16\x93\x6e\x39\x33\x40\x38\xac\xef\x83\x8b'
		printf '\xfb\x18\x6f\xff\x74\x80\xad\xc4\x28\x93\x82\xec\xd6\xd3\x94\xf0'
	} >"$d/xts-c.bin"
	"$xts_check" -k "$k" -u 32 -t 0x3333333333 "$d/xts-c.bin" "$d/xts-p.bin" >/dev/null ||
		die "xts_check fails the IEEE 1619 vector"
	if "$xts_check" -k "$k" -u 32 -t 0x3333333334 "$d/xts-c.bin" "$d/xts-p.bin" \
		>/dev/null 2>&1; then
		die "xts_check accepts a wrong tweak"
	fi
	rm -f "$d/xts-p.bin" "$d/xts-c.bin"
}

# run_one TEST: prints PASS/FAIL/SKIP, returns 0 pass, 77 skip, 1 fail.
run_one() {
	local t=$1 name stage initrd log rc b t0 dt
	name=$(basename "$t" .sh)
	stage=$build_dir/vm/stage-$name
	rm -rf "$stage"
	mkdir -p "$stage"/{vm,ferry/bin}
	cp "$here/guest-init.sh" "$stage/init"
	chmod 755 "$stage/init"
	cp "$t" "$stage/vm/test.sh"
	cp "$here/lib.sh" "$stage/vm/lib.sh"
	echo "$name" >"$stage/vm/name"
	for b in $ferry_bins; do
		if [ -x "$build_dir/bin/$b" ]; then
			cp "$build_dir/bin/$b" "$stage/ferry/bin/"
			copy_libs "$stage" "$build_dir/bin/$b"
		fi
	done
	# The unit tests of the rxe backend (they need a verbs device: t_rxe_backend runs them)
	# and the conformance suite (t_rxe_backend runs its RDMA checks on rxe).
	for b in "$build_dir"/bin/test_rxe_* "$build_dir/bin/ferry-conformance"; do
		if [ -x "$b" ]; then
			cp "$b" "$stage/ferry/bin/"
			copy_libs "$stage" "$b"
		fi
	done
	# ferry-conformance links the shared libferry of the build tree, found through its
	# RUNPATH; the guest mounts a tmpfs on /tmp, which hides a build tree under /tmp: the
	# build tree's libraries also go to /usr/lib, where the loader finds them anyway.
	if [ -x "$build_dir/bin/ferry-conformance" ]; then
		local bl
		bl=$(cd "$build_dir" && pwd -P)
		while read -r l; do
			case $(readlink -f "$l") in
			"$bl"/*) copy_file "$stage" "$l" "/usr/lib/${l##*/}" ;;
			esac
		done < <(ldd "$build_dir/bin/ferry-conformance" 2>/dev/null | awk '/=> \// { print $3 }')
	fi
	cp "$xts_check" "$stage/ferry/bin/"
	copy_libs "$stage" "$xts_check"
	initrd=$build_dir/vm/initrd-$name
	{
		cat "$base"
		mkcpio "$stage"
	} >"$initrd"
	log=$log_dir/$name.log
	t0=$(date +%s)
	local qcmd=("$qemu" -accel tcg -cpu max -m "$mem" -smp 2 -M pc -nodefaults
		-no-user-config -display none -serial stdio -nic none -no-reboot
		-kernel "$kernel_dir/vmlinux" -initrd "$initrd")
	local append="console=ttyS0 panic=-1 quiet loglevel=4 rdinit=/init"
	if [ $shell -eq 1 ]; then
		# The terminal is the guest's console, no timeout; QEMU's escape: Ctrl-A X.
		"${qcmd[@]}" -append "$append ferry.shell=1" 2>&1 | tee "$log" || true
	elif [ $verbose -eq 1 ]; then
		timeout -k 5 "$tmo" "${qcmd[@]}" -append "$append" </dev/null 2>&1 |
			tee "$log" >&2 || true
	else
		timeout -k 5 "$tmo" "${qcmd[@]}" -append "$append" </dev/null >"$log" 2>&1 || true
	fi
	dt=$(($(date +%s) - t0))
	rm -f "$initrd"
	rm -rf "$stage"
	rc=$(tr -d '\r' <"$log" | sed -n 's/^FERRY-VM-RESULT rc=\([0-9]*\)$/\1/p' | tail -n1)
	case ${rc:-none} in
	0)
		echo "PASS  $name (${dt} s)"
		return 0
		;;
	77)
		echo "SKIP  $name (${dt} s): $(tr -d '\r' <"$log" | sed -n 's/^SKIP: //p' |
			tail -n1)"
		return 77
		;;
	none)
		echo "FAIL  $name (${dt} s): no result line (timeout ${tmo} s or guest crash);" \
			"console: $log"
		;;
	*)
		echo "FAIL  $name (${dt} s): exit $rc; console: $log"
		;;
	esac
	echo "---- last 40 console lines of $name ----"
	tr -d '\r' <"$log" | tail -n 40
	echo "----"
	return 1
}

tests=()
if [ $# -eq 0 ]; then
	# The kernel-only selftest first: when it fails, the harness or the kernel is at fault.
	tests+=("$here/t_kernel_tcp_selftest.sh")
	for t in "$here"/t_*.sh; do
		[ "$t" = "$here/t_kernel_tcp_selftest.sh" ] || tests+=("$t")
	done
else
	for t in "$@"; do
		if [ -f "$t" ]; then
			tests+=("$(cd "$(dirname "$t")" && pwd)/$(basename "$t")")
		elif [ -f "$here/${t%.sh}.sh" ]; then
			tests+=("$here/${t%.sh}.sh")
		else
			die "no such test: $t"
		fi
	done
fi

t_all=$(date +%s)
prepare_kernel
prepare_base
prepare_xts_check
say "kernel $kver, base initramfs $(($(stat -c %s "$base") >> 20)) MiB, ${#tests[@]} test(s)"

npass=0 nfail=0 nskip=0 failed=()
for t in "${tests[@]}"; do
	rc=0
	run_one "$t" || rc=$?
	name=$(basename "$t" .sh)
	if [ $rc -eq 77 ] && [[ " ${FERRY_VM_REQUIRE:-} " == *" $name "* ]]; then
		echo "FAIL  $name: skipped, but FERRY_VM_REQUIRE lists it"
		rc=1
	fi
	case $rc in
	0) npass=$((npass + 1)) ;;
	77) nskip=$((nskip + 1)) ;;
	*)
		nfail=$((nfail + 1))
		failed+=("$name")
		;;
	esac
done
echo "vmtest: $npass passed, $nfail failed, $nskip skipped ($(($(date +%s) - t_all)) s)"
[ $nfail -eq 0 ] || {
	echo "vmtest: failed: ${failed[*]}"
	exit 1
}
