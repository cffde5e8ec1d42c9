#!/usr/bin/env bash
# After the suite: nothing that doppel's tests, benchmarks or fuzz runs made is left in the
# temporary folders. Lists every doppel-* entry of $TMPDIR, /tmp and /dev/shm and fails if any
# was left by a process that has ended.
#
# Test and benchmark directories are named after the process that made them
# (doppel-test-<program>-<pid>-XXXXXX, doppel-node-<script>-<pid>-XXXXXX,
# doppel-bench-<name>-<pid>-XXXXXX, and doppel-fuzz-<name>-<pid>-XXXXXX should the fuzz
# scripts adopt it): one whose process still runs belongs to another run in
# progress on this machine and is reported, not counted. Anything else named doppel-* (an
# older name without a pid, a killed fuzz-smoke scratch folder) cannot be told apart from a
# leftover, so it counts. The shared build lock /tmp/doppel-build.lock is meant to stay.
#
# Usage: tests/check_no_leftovers.sh [--remove]
#   --remove  also delete what it reports as left over (after listing it)
# Exit status: 0 nothing left, 1 leftovers found (and not removed).
set -u

remove=0
case "${1:-}" in
  --remove) remove=1 ;;
  "") ;;
  *) echo "usage: $0 [--remove]" >&2; exit 2 ;;
esac

roots=()
for root in "${TMPDIR:-/tmp}" /tmp /dev/shm; do
  [ -d "$root" ] || continue
  root="$(cd "$root" && pwd -P)"
  seen=0
  for r in "${roots[@]+"${roots[@]}"}"; do [ "$r" = "$root" ] && seen=1; done
  [ $seen -eq 0 ] && roots+=("$root")
done

left=()
for root in "${roots[@]}"; do
  for entry in "$root"/doppel-*; do
    [ -e "$entry" ] || [ -L "$entry" ] || continue  # the glob matched nothing
    name="$(basename "$entry")"
    [ "$name" = doppel-build.lock ] && continue
    pid=""
    if [[ "$name" =~ ^doppel-(test|node|bench|fuzz)-.+-([0-9]+)-[^-]+$ ]]; then
      pid="${BASH_REMATCH[2]}"
    fi
    size="$(du -sh "$entry" 2>/dev/null | cut -f1)"
    # A zombie (state Z) has a /proc entry but has ended.
    state=""
    [ -n "$pid" ] && state="$(sed 's/.*) \(.\).*/\1/' "/proc/$pid/stat" 2>/dev/null)"
    if [ -n "$state" ] && [ "$state" != Z ]; then
      echo "in use:   $entry (${size:-?}; process $pid still runs)"
      continue
    fi
    if [ -n "$pid" ]; then
      why="process $pid has ended"
    else
      why="no pid in its name: an older name, or a run killed before it could clean up"
    fi
    echo "leftover: $entry (${size:-?}; $why)"
    left+=("$entry")
  done
done

# Fast DDS's shared-memory segments (data sharing, the SHM transport): the interop peer turns
# both off, so any here were left by a run that did not.
for entry in /dev/shm/fast_datasharing_* /dev/shm/fastrtps_*; do
  [ -e "$entry" ] || continue
  echo "leftover: $entry (a Fast DDS shared-memory segment)"
  left+=("$entry")
done

if [ ${#left[@]} -eq 0 ]; then
  echo "no leftovers: no doppel-* files of ended processes in ${roots[*]}"
  exit 0
fi
if [ $remove -eq 1 ]; then
  rm -rf -- "${left[@]}"
  echo "removed ${#left[@]} leftover(s)"
  exit 0
fi
echo "${#left[@]} leftover(s) in ${roots[*]}: a test or benchmark did not remove what it made." >&2
echo "Remove them with: $0 --remove" >&2
exit 1
