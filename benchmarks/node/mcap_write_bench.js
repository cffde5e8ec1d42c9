// The anchor of `doppel bench export`: Foxglove's @mcap/core McapWriter writing messages shaped
// like doppel's export (60% sensor_msgs/JointState of 6 joints, 40% nav_msgs/Odometry, six
// robots, CDR), chunked (4 MiB) and indexed like doppel's file. Each message is built and
// CDR-encoded inside the timed loop with @foxglove/rosmsg2-serialization, as a real writer
// encodes what it writes; the file's summary (end()) is inside the time too.
//
//   node mcap_write_bench.js --messages 1000000 --compression zstd|lz4|none --out FILE
//                            [--chunk-size BYTES]
// prints one JSON line: {"messages","seconds","messages_per_s","mb_per_s","bytes"} (MB = 10^6
// bytes of file written).
//
// Packages come from tests/node/node_modules (deploy/install-deps.sh installs them there).
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const TESTS_NODE = path.join(__dirname, "..", "..", "tests", "node");
const need = (name) => require(require.resolve(name, { paths: [TESTS_NODE] }));
const { McapWriter } = need("@mcap/core");
const { parse } = need("@foxglove/rosmsg");
const { MessageWriter } = need("@foxglove/rosmsg2-serialization");
const { ros2msgText, qosYaml, compressorFor, FileWritable } = require(path.join(TESTS_NODE, "mcap_bags"));

function options() {
  const out = { messages: "1000000", compression: "zstd", "chunk-size": String(4 * 1024 * 1024) };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  if (!out.out) throw new Error("usage: --messages N --compression zstd|lz4|none --out FILE [--chunk-size BYTES]");
  return { messages: Number(out.messages), compression: out.compression, out: out.out,
           chunkSize: Number(out["chunk-size"]) };
}

const ROBOTS = ["sim_arm_0", "sim_arm_1", "sim_arm_2", "sim_base_0", "sim_base_1", "sim_base_2"];
const JOINTS = ["shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint",
                "wrist_2_joint", "wrist_3_joint"];
const COVARIANCE = new Array(36).fill(0);

async function main() {
  const { messages, compression, out, chunkSize } = options();
  const compressChunk = await compressorFor(compression); // wasm loads outside the time
  const types = {};
  for (const type of ["sensor_msgs/msg/JointState", "nav_msgs/msg/Odometry"]) {
    const text = ros2msgText(type);
    types[type] = { text, writer: new MessageWriter(parse(text, { ros2: true })) };
  }
  const jointWriter = types["sensor_msgs/msg/JointState"].writer;
  const odomWriter = types["nav_msgs/msg/Odometry"].writer;

  const writable = new FileWritable(out);
  const t0 = process.hrtime.bigint();
  const writer = new McapWriter({ writable, chunkSize, compressChunk });
  await writer.start({ profile: "ros2", library: "@mcap/core (doppel bench anchor)" });
  const schemaIds = {};
  for (const [type, { text }] of Object.entries(types)) {
    schemaIds[type] = await writer.registerSchema({ name: type, encoding: "ros2msg", data: new TextEncoder().encode(text) });
  }
  const channel = async (topic, type) => writer.registerChannel({
    schemaId: schemaIds[type], topic, messageEncoding: "cdr",
    metadata: new Map([["offered_qos_profiles", qosYaml()]]),
  });
  const jointChannels = [], odomChannels = [];
  for (const robot of ROBOTS) {
    jointChannels.push(await channel(`/${robot}/joint_states`, "sensor_msgs/msg/JointState"));
    odomChannels.push(await channel(`/${robot}/odom`, "nav_msgs/msg/Odometry"));
  }
  const sequences = new Map();

  const start = 1795000000000000000n;
  for (let i = 0; i < messages; i++) {
    const r = i % ROBOTS.length;
    const occurred = start + BigInt(i) * 100000n; // 10 kHz across the fleet
    const stamp = { sec: Number(occurred / 1000000000n), nanosec: Number(occurred % 1000000000n) };
    const phase = i * 1e-4;
    let channelId, data;
    if (i % 5 < 3) {
      channelId = jointChannels[r];
      data = jointWriter.writeMessage({
        header: { stamp, frame_id: "" }, name: JOINTS,
        position: JOINTS.map((_, j) => Math.sin(phase + j)), velocity: JOINTS.map((_, j) => Math.cos(phase + j)),
        effort: [],
      });
    } else {
      channelId = odomChannels[r];
      data = odomWriter.writeMessage({
        header: { stamp, frame_id: "map" }, child_frame_id: "base_footprint",
        pose: { pose: { position: { x: Math.cos(phase), y: Math.sin(phase), z: 0 },
                        orientation: { x: 0, y: 0, z: Math.sin(phase / 2), w: Math.cos(phase / 2) } },
                covariance: COVARIANCE },
        twist: { twist: { linear: { x: 0.5, y: 0, z: 0 }, angular: { x: 0, y: 0, z: 0.1 } }, covariance: COVARIANCE },
      });
    }
    const sequence = sequences.get(channelId) || 0;
    sequences.set(channelId, sequence + 1);
    await writer.addMessage({ channelId, sequence, logTime: occurred + 2000000n, publishTime: occurred, data });
  }
  await writer.end();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  writable.close();
  const bytes = fs.statSync(out).size;
  console.log(JSON.stringify({ messages, seconds: Number(seconds.toFixed(3)),
                               messages_per_s: Math.round(messages / seconds),
                               mb_per_s: Number((bytes / 1e6 / seconds).toFixed(2)), bytes }));
}

main().catch((e) => { console.error(e.stack || e); process.exit(1); });
