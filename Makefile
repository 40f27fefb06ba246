# Weft: the two set-up commands are `make run` and `make test` (see README.md).
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
# CI builds with -Werror.
WERROR     ?= $(if $(CI),ON,OFF)
CMAKE_ARGS ?=

.PHONY: all deps build run relay example test test-sync test-asan bench clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# The main job: the sync relay on an embedded store (Ctrl-C stops it cleanly).
# Override with e.g. `make run LISTEN=0.0.0.0:9000 DATA=/var/lib/weft`.
LISTEN ?= 127.0.0.1:8787
DATA   ?= ./weft-data
run: build
	./$(BUILD)/sync-server/weft-relay --listen $(LISTEN) --data $(DATA)

# Builds only the relay and runs it (no tests, no benchmarks).
relay: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target weft-relay
	./$(BUILD)/sync-server/weft-relay --listen $(LISTEN) --data $(DATA)

# Two replicas make concurrent edits offline and converge (no network).
example: build
	./$(BUILD)/apps/example/weft-example

# Every test, through ctest (each Catch2 test case is its own ctest test), then ctest's summary.
test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The sync tests alone (loopback relays, devices, meshes, hostile peers).
test-sync: build
	cd $(BUILD) && ctest --output-on-failure -R '^sync_test' -j$(JOBS)

# The same tests built with AddressSanitizer and UndefinedBehaviorSanitizer.
test-asan: deps
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DWEFT_SANITIZE=ON -DWEFT_BUILD_BENCH=OFF -DWEFT_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j$(JOBS)

# Microbenchmarks of the CRDT core (ops/s); see bench/.
bench: build
	./$(BUILD)/bench/crdt/weft-crdt-bench

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# The sync benchmark (bench/sync): one relay and 100 devices on loopback, 10 edits a second each:
# propagation p50/p99/max, the relay's fan-out at saturation, and the bootstrap of automerge-paper
# into a new device, as JSON lines. Pass flags with e.g. `make bench-sync SYNC_BENCH_FLAGS="--devices 20"`.
SYNC_BENCH_FLAGS ?= --saturation
.PHONY: bench-sync
bench-sync: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target weft-sync-bench
	./$(BUILD)/bench/sync/weft-sync-bench $(SYNC_BENCH_FLAGS)

# The crash-safety soak: 200 SIGKILLs of a committing child process (the [slow] test case, which
# `make test` leaves out). WEFT_SEED=N replays the kill moments of a reported seed.
.PHONY: soak-crash
soak-crash: build
	./$(BUILD)/tests/sdk/crash_test "[slow]"

# weft-bench beside Yjs, Loro and Automerge (Node.js) on the same traces, with a table of ratios.
bench-compare: build
	cmake --build $(BUILD) --target bench-compare
