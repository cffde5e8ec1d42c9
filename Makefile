# doppel's two front doors: `make up` and `make test`. Each installs missing Debian
# packages (deploy/install-deps.sh, a no-op when all are present), builds, then runs.
PRESET ?= release
BUILD_DIR := build/$(PRESET)
DATA ?= ./doppel-data

.PHONY: up tour test bench soak deps build format format-check clean fuzz fuzz-smoke fuzz-build

# The whole platform in one process: store, twin, DDS bridge, gateway + dashboard, and a
# simulated fleet. Prints the dashboard and Foxglove URLs. ARGS passes more flags (--for 30s).
up: build
	$(BUILD_DIR)/tools/doppel up --data $(DATA) $(ARGS)

# The guided tour of the pieces one by one (log, store server, twin, DDS bridge).
tour: build
	DOPPEL_BIN=$(BUILD_DIR)/tools/doppel DATA=$(DATA) bash tools/demo.sh

# Ends by checking that nothing the suite made is left in the temporary folders.
test: build
	ctest --preset $(PRESET) -j2
	$(MAKE) fuzz-smoke
	bash tests/check_no_leftovers.sh

# libFuzzer targets (fuzz/): clang, ASan + UBSan, in build/fuzz. `make fuzz-smoke`, part of
# `make test`, gives the same answer for the same commit: it replays fuzz/regressions/ and the
# committed corpus, then runs a fixed number of executions from a fixed seed (FUZZ_SEED).
# `make fuzz` explores: each target FUZZ_SECONDS (default 600) with a random seed, on a corpus
# kept in build/fuzz/corpus/; crashes go to build/fuzz/crashes/<target>/.
FUZZ_SECONDS ?= 600
FUZZ_SEED ?= 1
fuzz: fuzz-build
	FUZZ_MODE=explore FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh

fuzz-smoke: fuzz-build
	FUZZ_MODE=smoke FUZZ_SEED=$(FUZZ_SEED) bash fuzz/run.sh

# The lock serializes builds with other build trees on a shared machine.
fuzz-build: deps
	cmake --preset fuzz >/dev/null
	flock /tmp/doppel-build.lock cmake --build --preset fuzz

# The chaos soak for 30 minutes (make test runs it for 2): store, two twins, the DDS bridge,
# the gateway, a simulated fleet, subscribers and dashboard clients as processes, killed and
# paused at random, then checked (tests/node/chaos_soak.js). SOAK_SECONDS changes the length.
SOAK_SECONDS ?= 1800
soak: build
	node tests/node/chaos_soak.js --doppel $(BUILD_DIR)/tools/doppel --seconds $(SOAK_SECONDS) \
	  --interval-ms 4000 --out $(BUILD_DIR)/test-artifacts

bench: build
	$(BUILD_DIR)/benchmarks/eventlog_bench --seconds 3
	$(BUILD_DIR)/benchmarks/store_bench --seconds 5
	$(BUILD_DIR)/benchmarks/twin_bench --robots 1000 --events 1000 --seconds 3
	$(BUILD_DIR)/benchmarks/dds_bench --seconds 10
	$(BUILD_DIR)/benchmarks/gateway_bench --clients 1000 10000 --seconds 5
	$(BUILD_DIR)/benchmarks/archive_bench --events 1000000
	$(BUILD_DIR)/benchmarks/replay_bench --robots 1000 --events 10000 --seeks 20
	$(BUILD_DIR)/benchmarks/pgstore_bench --seconds 5 --clients 8
	$(BUILD_DIR)/benchmarks/pgstore_bench --seconds 5 --clients 8 --batch 20
	$(BUILD_DIR)/benchmarks/copy_bench --events 200000

deps:
	bash deploy/install-deps.sh

build: deps
	cmake --preset $(PRESET) >/dev/null
	cmake --build --preset $(PRESET)

# Formatting is checked in CI; `make format` fixes it.
SOURCES = $(shell git ls-files --cached --others --exclude-standard '*.h' '*.cc')
format:
	clang-format -i $(SOURCES)
format-check:
	clang-format --dry-run --Werror $(SOURCES)

clean:
	rm -rf build
