# Thin wrapper around CMake presets. `make demo` and `make test` work on a fresh Debian 12
# machine: they install what is missing (cmake/install-deps.sh), configure, build and run.
.PHONY: all deps build demo test bench asan clean

JOBS ?= $(shell nproc)

all: build

deps:
	@bash cmake/install-deps.sh

build: deps
	@cmake --preset default >/dev/null
	@cmake --build --preset default -j $(JOBS)

demo: build
	./build/bin/hello_domains

test: build
	ctest --preset default -j $(JOBS)

bench: build
	./build/bin/ferry-bench all --json

asan: deps
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan -j $(JOBS)
	ctest --preset asan -j $(JOBS)

clean:
	rm -rf build build-asan
