#!/usr/bin/env bash
# Runs doppel's fuzz targets in one of two modes.
#
#   FUZZ_MODE=smoke (make fuzz-smoke, part of make test): the same answer for the same commit.
#     For each target: the fixed crashes in fuzz/regressions/<target>/, then every committed
#     seed in fuzz/corpus/<target>/, then a fixed-seed run of a fixed number of executions
#     (FUZZ_SEED, default 1; FUZZ_RUNS per target, below) starting from the committed seeds
#     only. What it finds goes to a temporary folder that is removed afterwards.
#   FUZZ_MODE=explore (make fuzz): open-ended. For each target, the regressions, then
#     FUZZ_SECONDS (default 600) of exploration with a random seed on the kept corpus
#     build/fuzz/corpus/<target>/ plus the committed seeds. Crashes go to
#     build/fuzz/crashes/<target>/: minimize each, fix it, and commit it to
#     fuzz/regressions/<target>/ with the fix.
#
# Logs: build/fuzz/logs/<target>.log. Exits non-zero if any target crashed or a regression
# failed, naming the seed and how to replay.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$ROOT/build/fuzz"
MODE="${FUZZ_MODE:-smoke}"
SEED="${FUZZ_SEED:-1}"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-600}"
TARGETS=(${FUZZ_TARGETS:-store_request payload envelope scene urdf twin_apply ws_framing rosbridge mcap_reader})

# Executions of the fixed-seed run, per target: 10-40 s each on one core (store_request opens a
# log per input, so it runs fewer).
declare -A RUNS=(
  [store_request]=500 [payload]=300000 [envelope]=300000 [scene]=150000 [urdf]=80000
  [twin_apply]=60000 [ws_framing]=500000 [rosbridge]=6000 [mcap_reader]=40000
)

# Extra flags of the fixed-seed run. store_request runs a RocksDB log, whose background threads
# (flushes, the committer) change how often a loop turns and which values a comparison sees
# from run to run; coverage_ignore.txt leaves their own code out, and these flags make
# libFuzzer steer by which edges an input reaches only, not by hit counts or compared values,
# so two runs of one commit make the same inputs. (Exploration, make fuzz, keeps both.)
declare -A SMOKE_FLAGS=(
  [store_request]="-use_counters=0 -use_cmp=0"
)

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:suppressions=$ROOT/fuzz/ubsan.supp}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$ROOT/fuzz/lsan.supp:print_suppressions=0}"

# The fixed-seed run is the same from run to run only at the same addresses: some targets'
# code paths depend on where buffers land (alignment checks, pointer-keyed containers), and
# address-space randomization moves them every run. Without it (setarch -R), two runs of one
# binary agree exactly; where the personality call is refused, the run goes on randomized.
NO_ASLR=()
if setarch "$(uname -m)" -R true 2>/dev/null; then
  NO_ASLR=(setarch "$(uname -m)" -R)
elif [ "$MODE" = smoke ]; then
  echo "fuzz: cannot turn off address randomization here; fixed-seed runs may differ" >&2
fi

# The smoke run's findings and new corpus live here, and nowhere else.
SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/doppel-fuzz-smoke-$$-XXXXXX")"
trap 'rm -rf "$SCRATCH"' EXIT INT TERM

failed=()
summary=()
for t in "${TARGETS[@]}"; do
  bin="$BUILD/fuzz/fuzz_$t"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin missing (make fuzz-build builds it)" >&2
    failed+=("$t(missing)")
    continue
  fi
  mkdir -p "$BUILD/logs"
  log="$BUILD/logs/$t.log"

  # Fixed crashes first: each file is run once and must pass.
  regressions=("$ROOT/fuzz/regressions/$t"/*)
  if [ -e "${regressions[0]}" ]; then
    if ! "$bin" "${regressions[@]}" >"$log.regressions" 2>&1; then
      echo "fuzz: $t: a regression input fails again (log: $log.regressions)" >&2
      failed+=("$t(regression)")
      continue
    fi
  fi

  if [ "$MODE" = smoke ]; then
    # Every committed seed once, then the fixed-seed run. -reload=0: the corpus is read once,
    # so nothing but the seed and the inputs decides what runs.
    runs="${RUNS[$t]:-20000}"
    mkdir -p "$SCRATCH/corpus/$t" "$SCRATCH/crashes/$t"
    # The committed seeds, copied one by one in name order: libFuzzer orders seeds of equal
    # size as the folder lists them, and a small folder lists files in the order they were
    # made, which a git checkout does not fix.
    while IFS= read -r seed; do
      cp "$ROOT/fuzz/corpus/$t/$seed" "$SCRATCH/corpus/$t/"
    done < <(ls -1 "$ROOT/fuzz/corpus/$t" | LC_ALL=C sort)
    # shellcheck disable=SC2086  # the extra flags are words
    "${NO_ASLR[@]}" "$bin" -seed="$SEED" -runs="$runs" ${SMOKE_FLAGS[$t]:-} -reload=0 -timeout=25 \
      -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$SCRATCH/crashes/$t/" \
      "$SCRATCH/corpus/$t" >"$log" 2>&1
    rc=$?
    what="$runs runs with -seed=$SEED${SMOKE_FLAGS[$t]:+ ${SMOKE_FLAGS[$t]}}"
  else
    mkdir -p "$BUILD/corpus/$t" "$BUILD/crashes/$t"
    # -timeout: an input that takes 25 s is a hang worth reporting, not a slow machine.
    "$bin" -max_total_time="$SECONDS_PER_TARGET" -timeout=25 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$BUILD/crashes/$t/" \
      "$BUILD/corpus/$t" "$ROOT/fuzz/corpus/$t" >"$log" 2>&1
    rc=$?
    what="${SECONDS_PER_TARGET}s with $(grep -o 'Seed: [0-9]*' "$log" | head -1)"
  fi
  executed=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
  if [ $rc -ne 0 ]; then
    failed+=("$t")
    crash=$(grep -o "Test unit written to .*" "$log" | tail -1 | sed 's/Test unit written to //')
    if [ "$MODE" = smoke ] && [ -n "$crash" ] && [ -f "$crash" ]; then
      # Keep the input past the scratch folder's removal.
      mkdir -p "$BUILD/crashes/$t"
      cp "$crash" "$BUILD/crashes/$t/"
      crash="$BUILD/crashes/$t/$(basename "$crash")"
    fi
    summary+=("$(printf '%-14s CRASH (rc %d) after %s of %s; log %s; input %s; replay: %s %s' \
      "$t" "$rc" "${executed:-?}" "$what" "$log" "${crash:-?}" "$bin" "${crash:-<input>}")")
  else
    # The coverage reached: two smoke runs of one commit print the same figures.
    reached=$(grep -o 'DONE *cov: [0-9]* ft: [0-9]*' "$log" | tail -1 | sed 's/DONE *//')
    summary+=("$(printf '%-14s ok  %10s runs (%s)%s' "$t" "${executed:-?}" "$what" \
      "${reached:+, $reached}")")
  fi
done

printf 'fuzz: %s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
