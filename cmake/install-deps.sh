#!/usr/bin/env bash
# Installs the Debian packages Ferry needs to build and test, only those missing.
# Idempotent: a second run installs nothing. Used by `make demo`, `make test` and .ci/run.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config git
  libssl-dev libisal-dev libpci-dev pciutils
  libibverbs-dev librdmacm-dev
  libcriterion-dev
  clang libclang-rt-dev
)
# Extra packages for the QEMU-guest interop tests (opt-in: FERRY_VM_DEPS=1).
if [ "${FERRY_VM_DEPS:-0}" = 1 ]; then
  PKGS+=(qemu-system-x86 busybox-static rdma-core ibverbs-utils ibverbs-providers
         rdmacm-utils nvme-cli iproute2 kmod cpio xz-utils)
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "ferry: installing missing packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
