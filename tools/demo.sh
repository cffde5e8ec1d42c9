#!/usr/bin/env bash
# `make up` until the whole platform runs in one process (the gateway issue): a short tour
# of what exists. An embedded event log (append, idempotent retry, conflict, reads, verify),
# then a store server and a twin: a base told to drive at a wall gets a predicted collision.
set -euo pipefail
BIN=${DOPPEL_BIN:-build/release/tools/doppel}
DATA=${DATA:-./doppel-data}
export DOPPEL_LOG=${DOPPEL_LOG:-warn}

echo "== 1. the event log, embedded; data in $DATA/log"
LOG="$DATA/log"
for robot in 1 2 3; do
  if ! "$BIN" read --data "$LOG" --stream "robot-arm$robot" --limit 1 2>/dev/null | grep -q .; then
    "$BIN" append --data "$LOG" --stream "robot-arm$robot" --type RobotRegistered --expect none \
      --json "{\"robot_id\":\"arm$robot\",\"model\":\"doppel_arm6\"}"
  fi
done
since=$(date +%s%N)
for step in $(seq 1 3); do
  for robot in 1 2 3; do
    angle=$(awk -v s="$step" -v r="$robot" 'BEGIN { printf "%.3f", sin(s * 0.3 + r) }')
    "$BIN" append --data "$LOG" --stream "robot-arm$robot" --type JointStateObserved \
      --json "{\"names\":[\"shoulder_pan_joint\",\"elbow_joint\"],\"position\":[$angle,0.5]}" >/dev/null
  done
done
id=$(cat /proc/sys/kernel/random/uuid)
echo "-- append with id $id, then retry it: same position, duplicate=true"
"$BIN" append --data "$LOG" --stream robot-arm1 --type ModeChanged --id "$id" --json '{"mode":"Autonomous"}'
"$BIN" append --data "$LOG" --stream robot-arm1 --type ModeChanged --id "$id" --json '{"mode":"Autonomous"}'
echo "-- a stale expected version is refused (exit 3)"
"$BIN" append --data "$LOG" --stream robot-arm1 --type ModeChanged --expect 0 --json '{"mode":"Idle"}' || echo "exit $?"
echo "-- everything recorded since this run started, in global order"
"$BIN" read --data "$LOG" --since "$since" --format table | head -12
"$BIN" verify --data "$LOG"

echo
echo "== 2. a store server, a twin, and a base heading for a wall"
LIVE="$DATA/live"
mkdir -p "$LIVE"
cat > "$LIVE/scene.json" <<'JSON'
{"obstacles":[{"name":"east-wall","type":"wall","from":[2.05,-3],"to":[2.05,3],"height":2,"thickness":0.1}]}
JSON
"$BIN" store --data "$LIVE/log" --listen tcp://127.0.0.1:0 --publish tcp://127.0.0.1:0 > "$LIVE/store.json" &
STORE_PID=$!
trap 'kill $TWIN_PID 2>/dev/null || true; wait $TWIN_PID 2>/dev/null || true; kill $STORE_PID 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do [ -s "$LIVE/store.json" ] && break; sleep 0.05; done
LISTEN=$(sed -E 's/.*"listen":"([^"]+)".*/\1/' "$LIVE/store.json")
PUBLISH=$(sed -E 's/.*"publish":"([^"]+)".*/\1/' "$LIVE/store.json")
echo "store: requests on $LISTEN, committed events on $PUBLISH"
"$BIN" twin --store "$LISTEN" --publish "$PUBLISH" --twin-publish tcp://127.0.0.1:0 \
  --scene "$LIVE/scene.json" > "$LIVE/twin.json" &
TWIN_PID=$!
for _ in $(seq 1 100); do [ -s "$LIVE/twin.json" ] && break; sleep 0.05; done
robot="base-$(date +%s)"
"$BIN" append --store "$LISTEN" --stream "robot-$robot" --type RobotRegistered \
  --json "{\"robot_id\":\"$robot\",\"model\":\"doppel_base\"}" >/dev/null
"$BIN" append --store "$LISTEN" --stream "robot-$robot" --type PoseObserved \
  --json '{"frame_id":"map","pose":{"position":{"x":0,"y":0,"z":0},"orientation":{"x":0,"y":0,"z":0,"w":1}}}' >/dev/null
"$BIN" append --store "$LISTEN" --stream "robot-$robot" --type CommandIssued \
  --json '{"kind":"Velocity","twist":{"linear":{"x":1,"y":0,"z":0},"angular":{"x":0,"y":0,"z":0}},"issued_by":"demo"}' >/dev/null
sleep 1
echo "-- robot-$robot as the log holds it: the twin's prediction and alert follow the command"
"$BIN" read --store "$LISTEN" --stream "robot-$robot" --format table
echo "-- doppel state --robot $robot (the prediction part)"
"$BIN" state --store "$LISTEN" --robot "$robot" | sed -n '/"prediction"/,/}/p'

echo
echo "== 3. a simulated fleet over DDS (loopback), through the bridge, into the twin"
"$BIN" sim-fleet --robots 4 --rate 20 --prefix demo > /dev/null &
FLEET_PID=$!
"$BIN" bridge-dds --store "$LISTEN" --robots 'demo_*' --max-rate 20 \
  --twin-publish "$(sed -E 's/.*"twin_publish":"([^"]+)".*/\1/' "$LIVE/twin.json")" \
  --publish "$PUBLISH" --model '*_arm_*=doppel_arm6' --model '*_base_*=doppel_base' > /dev/null &
BRIDGE_PID=$!
# Stop clients first, the store last (a twin saves its checkpoint on the way out).
trap 'kill $BRIDGE_PID $FLEET_PID $TWIN_PID 2>/dev/null || true; wait $BRIDGE_PID $FLEET_PID $TWIN_PID 2>/dev/null || true; kill $STORE_PID 2>/dev/null || true; wait 2>/dev/null || true' EXIT
sleep 4
for robot in demo_arm_0 demo_base_0 demo_arm_1 demo_base_1; do
  n=$("$BIN" read --store "$LISTEN" --stream "robot-$robot" | wc -l)
  echo "robot-$robot: $n events so far"
done
echo "-- doppel state --robot demo_base_0 (pose, command and prediction)"
"$BIN" state --store "$LISTEN" --robot demo_base_0 |
  grep -E '"(model|mode|based_on_version|collision|horizon_s|start|silent|version)"' | head -12
