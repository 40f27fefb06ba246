# Weft: the two set-up commands are `make run` and `make test` (see README.md).
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
# CI builds with -Werror.
WERROR     ?= $(if $(CI),ON,OFF)
CMAKE_ARGS ?=

.PHONY: all deps build install run relay example test test-sync test-asan bench clean

all: build

deps:
	@bash scripts/install-deps.sh

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

# Installs the tools, libraries, headers, CMake package, pkg-config file and the systemd unit
# (see docs/operations.md): `make install PREFIX=/usr/local`, or staged for packaging with
# `make install PREFIX=/usr DESTDIR=/tmp/stage`.
PREFIX  ?= /usr/local
DESTDIR ?=
install: build
	DESTDIR=$(DESTDIR) cmake --install $(BUILD) --prefix $(PREFIX)

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
# into a new device, as JSON lines. First with wire devices (protocol clients keeping the document
# in memory, all on one thread: the relay's own figures), then with SDK devices (a Replica on
# SQLite and a SyncClient each, all 100 sharing this machine's cores with the relay). Pass flags
# with e.g. `make bench-sync SYNC_BENCH_FLAGS="--devices 20"`.
SYNC_BENCH_FLAGS ?= --wire-devices --saturation
SYNC_BENCH_REPLICA_FLAGS ?= --no-bootstrap
.PHONY: bench-sync
bench-sync: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target weft-sync-bench
	./$(BUILD)/bench/sync/weft-sync-bench $(SYNC_BENCH_FLAGS)
	./$(BUILD)/bench/sync/weft-sync-bench $(SYNC_BENCH_REPLICA_FLAGS)

# The scale-out benchmark (bench/scale): one PostgreSQL server, then 1, 2 and 3 weft-relay
# processes sharing one database of it (and one relay on SQLite as a baseline), 1000 wire devices
# on 100 owned documents spread over the relays: a saturation search, then delivered changes/s
# and p50/p99 propagation within and across relays at half saturation, relay CPU per change, and
# a failover (one of 3 relays SIGKILLed under load: acknowledged changes stored exactly once,
# every device converges), as JSON lines and a table. Needs PostgreSQL's server binaries
# (scripts/install-deps.sh). Pass flags with e.g. `make bench-scale SCALE_BENCH_FLAGS="--rate 1"`.
SCALE_BENCH_FLAGS ?=
.PHONY: bench-scale
bench-scale: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target weft-relay weft-scale-bench
	./$(BUILD)/bench/scale/weft-scale-bench --relay-bin ./$(BUILD)/sync-server/weft-relay $(SCALE_BENCH_FLAGS)

# The end-to-end encryption core (bench/e2e): a key rotation for 100 reader devices on the admin's
# side, a reader opening its key, 1 KiB payloads; min/median/max. Pass flags with e.g.
# `make bench-e2e E2E_BENCH_FLAGS="--readers 1000 --runs 10"`.
E2E_BENCH_FLAGS ?=
.PHONY: bench-e2e
bench-e2e: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target weft-e2e-bench
	./$(BUILD)/bench/e2e/weft-e2e-bench $(E2E_BENCH_FLAGS)

# The crash-safety soak: 200 SIGKILLs of a committing child process (the [slow] test case, which
# `make test` leaves out). WEFT_SEED=N replays the kill moments of a reported seed.
.PHONY: soak-crash
soak-crash: build
	./$(BUILD)/tests/sdk/crash_test "[slow]"

# weft-bench beside Yjs, Loro and Automerge (Node.js) on the same traces, with a table of ratios.
bench-compare: build
	cmake --build $(BUILD) --target bench-compare

# Weft's core in WebAssembly (bindings/web, under Node.js) beside Yjs and Loro on the same traces.
.PHONY: bench-web
bench-web: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target weft-web
	WEFT_WEB_PKG=$(CURDIR)/$(BUILD)/bindings/web/pkg sh bindings/web/bench.sh

# libFuzzer targets (fuzz/targets/) built with clang-14 under ASan and UBSan, each run for
# FUZZ_SECONDS (default 600) on a working copy of its seed corpus; new crashes are written to
# $(FUZZ_BUILD)/artifacts/<target>/ (keep each as fuzz/regressions/<target>/<name>; `make test`
# replays corpora and regressions). FUZZ_TARGETS picks some; FUZZ_JOBS runs targets in parallel.
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 600
FUZZ_TARGETS ?= wire_decode change_apply snapshot_decode relay_handshake access_ops relay_session
FUZZ_JOBS    ?= 1
.PHONY: fuzz fuzz-build fuzz-seeds
fuzz-build:
	@bash scripts/install-deps.sh fuzz
	@CC=clang-14 CXX=clang++-14 cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DWEFT_FUZZ=ON -DWEFT_SANITIZE=ON -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS) $(foreach t,$(FUZZ_TARGETS),--target weft-fuzz-$(t))
fuzz: fuzz-build
	@printf '%s\n' $(FUZZ_TARGETS) | xargs -P $(FUZZ_JOBS) -I{} sh -c '\
	  mkdir -p $(FUZZ_BUILD)/corpus/{} $(FUZZ_BUILD)/artifacts/{} && \
	  ./$(FUZZ_BUILD)/fuzz/weft-fuzz-{} -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/artifacts/{}/ $(FUZZ_BUILD)/corpus/{} fuzz/corpus/{} \
	    > $(FUZZ_BUILD)/{}.log 2>&1; status=$$?; \
	  echo "{}: exit $$status, $$(grep -E "stat::number_of_executed_units" $(FUZZ_BUILD)/{}.log)"; \
	  exit $$status'

# Regenerates the committed seed corpora (fuzz/corpus/) from fuzz/make_seeds.cpp.
fuzz-seeds: build
	./$(BUILD)/fuzz/weft-fuzz-seeds fuzz/corpus

# The web demo (bindings/web/demo): a shared text with presence cursors and a to-do list in the
# browser, through a relay it starts (data in DEMO_DATA/web-relay); open the printed URL in two
# windows. Ctrl-C stops both servers.
WEB_DEMO_PORT ?= 8791
.PHONY: web-demo
web-demo: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target weft-relay weft-web
	node bindings/web/demo/serve.mjs ./$(BUILD)/sync-server/weft-relay ./$(BUILD)/bindings/web/pkg $(WEB_DEMO_PORT) $(DEMO_DATA)

# The Qt desktop demo (apps/desktop-demo): a relay on an embedded store and two windows, Alice and
# Bob, as two replicas side by side (data kept in DEMO_DATA; close both windows to stop).
DEMO_PORT ?= 8790
DEMO_DATA ?= ./weft-demo-data
.PHONY: demo demo-screenshot
demo: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target weft-relay weft-demo
	@bash apps/desktop-demo/run-demo.sh $(BUILD) $(DEMO_PORT) $(DEMO_DATA)

# A scripted session of the demo under Xvfb; PNG screenshots of both windows (and the screen) go
# to SCREENSHOTS.
SCREENSHOTS ?= docs/screenshots
demo-screenshot: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=$(WERROR) $(CMAKE_ARGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS) --target weft-demo-screenshot
	xvfb-run -a -s "-screen 0 1600x720x24" ./$(BUILD)/apps/desktop-demo/weft-demo-screenshot $(SCREENSHOTS)

# Soak: simulation seeds for SOAK_SECONDS (default 600), then the process-kill test with
# SOAK_ROUNDS rounds (default 60) and the 200-kill crash soak; prints seeds/s and failures.
SOAK_SECONDS ?= 600
SOAK_ROUNDS  ?= 60
.PHONY: soak
soak: build
	./$(BUILD)/tests/sim/weft-sim-soak --seconds $(SOAK_SECONDS)
	WEFT_KILL_ROUNDS=$(SOAK_ROUNDS) WEFT_BIN=./$(BUILD)/apps/cli/weft \
	  WEFT_RELAY_BIN=./$(BUILD)/sync-server/weft-relay /usr/bin/python3 tests/process/kill_test.py
	./$(BUILD)/tests/sdk/crash_test "[slow]"
