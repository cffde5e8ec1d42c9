#!/usr/bin/env bash
# `make up` until the whole platform runs in one process: a short tour of the event log.
# Registers a small fleet, appends observations, reads them back by stream, position and
# time, retries an append to show idempotency, and verifies every invariant.
set -euo pipefail
BIN=${DOPPEL_BIN:-build/release/tools/doppel}
DATA=${DATA:-./doppel-data}
export DOPPEL_LOG=${DOPPEL_LOG:-warn}

echo "== doppel event log demo; data in $DATA"
for robot in 1 2 3; do
  if ! "$BIN" read --data "$DATA" --stream "robot-$robot" --limit 1 2>/dev/null | grep -q .; then
    "$BIN" append --data "$DATA" --stream "robot-$robot" --type RobotRegistered --expect none \
      --json "{\"robot_id\":\"$robot\",\"model\":\"doppel_arm6\",\"joint_names\":[\"j1\",\"j2\",\"j3\",\"j4\",\"j5\",\"j6\"]}"
  fi
done
since=$(date +%s%N)
for step in $(seq 1 5); do
  for robot in 1 2 3; do
    angle=$(awk -v s="$step" -v r="$robot" 'BEGIN { printf "%.3f", sin(s * 0.3 + r) }')
    "$BIN" append --data "$DATA" --stream "robot-$robot" --type JointStateObserved \
      --json "{\"names\":[\"j1\",\"j2\"],\"position\":[$angle,0.5]}" >/dev/null
  done
done
id=$(cat /proc/sys/kernel/random/uuid)
echo "== append with id $id, then retry it (same position, duplicate=true)"
"$BIN" append --data "$DATA" --stream robot-1 --type ModeChanged --id "$id" --json '{"mode":"Autonomous"}'
"$BIN" append --data "$DATA" --stream robot-1 --type ModeChanged --id "$id" --json '{"mode":"Autonomous"}'
echo "== a stale expected version is refused (exit 3)"
"$BIN" append --data "$DATA" --stream robot-1 --type ModeChanged --expect 0 --json '{"mode":"Idle"}' || echo "exit $?"
echo "== robot-1, newest first"
"$BIN" read --data "$DATA" --stream robot-1 --backward --limit 5 --format table
echo "== everything recorded since this run started, in global order"
"$BIN" read --data "$DATA" --since "$since" --format table | head -20
echo "== verify"
"$BIN" verify --data "$DATA"
