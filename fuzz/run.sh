#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS (default 600) on its corpus, after replaying the
# fixed crashes in fuzz/regressions/<target>/. Used by `make fuzz` and `make fuzz-smoke`.
#
# New corpus entries go to build/fuzz/corpus/<target>/ (kept between runs); the committed
# seeds in fuzz/corpus/ are only read. Crashes go to build/fuzz/crashes/<target>/, logs to
# build/fuzz/logs/<target>.log. Exits non-zero if any target crashed or a regression failed.
set -uo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$ROOT/build/fuzz"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-600}"
TARGETS=(${FUZZ_TARGETS:-store_request payload envelope scene urdf twin_apply ws_framing})

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:suppressions=$ROOT/fuzz/ubsan.supp}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$ROOT/fuzz/lsan.supp:print_suppressions=0}"

failed=()
summary=()
for t in "${TARGETS[@]}"; do
  bin="$BUILD/fuzz/fuzz_$t"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $bin missing (make fuzz builds it)" >&2
    failed+=("$t(missing)")
    continue
  fi
  mkdir -p "$BUILD/corpus/$t" "$BUILD/crashes/$t" "$BUILD/logs"
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

  # -timeout: an input that takes 25 s is a hang worth reporting, not a slow machine.
  "$bin" -max_total_time="$SECONDS_PER_TARGET" -timeout=25 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$BUILD/crashes/$t/" \
    "$BUILD/corpus/$t" "$ROOT/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -1 | grep -o '[0-9]*$')
  corpus=$(ls "$BUILD/corpus/$t" | wc -l)
  if [ $rc -ne 0 ]; then
    failed+=("$t")
    summary+=("$(printf '%-14s CRASH (rc %d) after %s runs; see %s and %s' "$t" "$rc" \
      "${runs:-?}" "$log" "$BUILD/crashes/$t/")")
  else
    summary+=("$(printf '%-14s ok  %10s runs in %ss, %s new corpus files' "$t" "${runs:-?}" \
      "$SECONDS_PER_TARGET" "$corpus")")
  fi
done

printf 'fuzz: %s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
