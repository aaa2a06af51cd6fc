# Thin wrapper around the CMake presets (CMakePresets.json). On a fresh Debian 12 machine
# `make demo` and `make test` are enough: each installs what is missing (cmake/install-deps.sh),
# configures, builds, and runs the demo / every ctest test. Build trees: build/ and build-asan/.
.PHONY: all deps configure build demo test bench asan vmtest docs clean

JOBS ?= $(shell nproc 2>/dev/null || echo 2)
MAKEFLAGS += --no-print-directory

# -Werror: on in CI (.ci/run exports CI=true), off otherwise, so that `make demo` with a newer
# compiler than the one CI uses never fails on a warning it did not know. The presets used
# directly (cmake --preset ...) are the developers' and keep it on. `make test FERRY_WERROR=ON`
# forces it.
ifneq ($(filter true 1 yes,$(CI)),)
FERRY_WERROR ?= ON
else
FERRY_WERROR ?= OFF
endif

all: build

deps:
	@bash cmake/install-deps.sh

configure: deps
	@cmake --preset default --log-level=WARNING -DFERRY_WERROR=$(FERRY_WERROR)

build: configure
	@cmake --build --preset default -j $(JOBS)

demo: build
	./build/bin/ipu_forward

test: build
	ctest --preset default -j $(JOBS)

bench: build
	@test -x build/bin/ferry-bench || { echo "make bench: build/bin/ferry-bench was not built"; exit 1; }
	./build/bin/ferry-bench all --json

asan: deps
	@cmake --preset asan --log-level=WARNING -DFERRY_WERROR=$(FERRY_WERROR)
	@cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS)

# API reference of the SDK and backend SDK headers (Doxygen, warnings are errors) into
# build/docs/html/ (cmake/FerryDocs.cmake, docs/Doxyfile.in).
docs: configure
	@cmake --build --preset default --target docs

# QEMU-guest tests (tests/vm/, docs/vmtest.md): the Linux kernel's NVMe/TCP host and target as
# the peers of Ferry's binaries, in a Debian-kernel guest under QEMU TCG. Not part of `make test`
# (they need QEMU and ~1 min a test); installs the guest packages (cmake/install-deps.sh --vm).
# One test: make vmtest VMTEST=t_kernel_tcp_selftest. Console logs: build/vm-logs/.
VMTEST ?=
# Seconds one guest test may take (t_rdma_stress: ~3.5 min of TCG guest time).
VMTEST_TIMEOUT ?= 600
vmtest: build
	@bash cmake/install-deps.sh --vm
	bash tests/vm/run-vm.sh -B build -t $(VMTEST_TIMEOUT) $(VMTEST)

clean:
	rm -rf build build-asan build-fuzz build-release-gcc build-release-clang
