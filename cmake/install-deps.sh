#!/usr/bin/env bash
# Installs the Debian 12 packages Ferry needs to build and test, only those that are missing.
# Idempotent: when everything is there it installs nothing, touches nothing and needs no root.
# Used by `make demo`, `make test`, `make asan` and .ci/run.
#
#   --vm or FERRY_VM_DEPS=1  also the packages of the QEMU-guest tests (`make vmtest`,
#                            docs/vmtest.md): QEMU, the guest's tools, fio
#   FERRY_APT_UPDATED=1  the caller already ran `apt-get update` (.ci/run does)
set -euo pipefail

PKGS=(
  # toolchain and build
  build-essential cmake pkg-config
  # libferry: AES-XTS (OpenSSL), CRC32C/CRC16-T10DIF (ISA-L), PCI discovery (libpci)
  libssl-dev openssl libisal-dev libpci-dev pciutils
  # libferry, optional: libgcrypt's AES-XTS, used where it measures faster than OpenSSL's
  libgcrypt20-dev
  # rxe backend: libibverbs + librdmacm, with the rxe provider
  libibverbs-dev librdmacm-dev ibverbs-providers
  # tests: Criterion; clang + compiler-rt for the libFuzzer targets and sanitizers
  libcriterion-dev clang libclang-rt-dev
  # `make docs`: the API reference (no graphs, so no graphviz)
  doxygen
)
for a in "$@"; do
  case $a in
  --vm) FERRY_VM_DEPS=1 ;;
  *) echo "usage: $0 [--vm]" >&2; exit 2 ;;
  esac
done
if [ "${FERRY_VM_DEPS:-0}" = 1 ]; then
  PKGS+=(qemu-system-x86 busybox-static rdma-core ibverbs-utils rdmacm-utils perftest
         nvme-cli iproute2 kmod cpio xz-utils e2fsprogs coreutils diffutils gzip fio)
fi

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "ferry: not a Debian-like system (no dpkg/apt-get); install the equivalents of:" >&2
  echo "  ${PKGS[*]}" >&2
  exit 0 # let CMake report precisely what is missing
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "ferry: installing missing Debian packages: ${missing[*]}"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "ferry: not root and no sudo; as root, run:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi
  SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
if [ "${FERRY_APT_UPDATED:-0}" != 1 ]; then
  "${SUDO[@]}" apt-get update -q
fi
"${SUDO[@]}" apt-get install -y -q --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}"
