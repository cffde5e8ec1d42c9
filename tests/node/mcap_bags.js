// rosbag2-style MCAP files for doppel's import and export tests, written with @mcap/core, plus a
// record walker that checks a file the way `mcap doctor` does, and damaged copies of a bag.
//
// What rosbag2 (storage plugin mcap, Jazzy) writes and this module copies:
// - Header: profile "ros2"; chunked, indexed, Statistics and summary offsets.
// - Schema: name "pkg/msg/Type", encoding "ros2msg", data = the type's .msg text, then for each
//   dependency (found by rosbag2's field-type regex, sorted, depth first, each type once) "\n", a
//   line of 80 '=', a line "MSG: pkg/Type" and that type's .msg text.
// - Channel: message_encoding "cdr"; metadata offered_qos_profiles (YAML, rosbag2's version-9
//   form: policy names as strings, durations as sec/nsec) and topic_type_hash.
// - Message: log_time = receive time, publish_time = send time; CDR (XCDR1, little-endian).
// - A Metadata record "rosbag2" holding the bag's metadata YAML.
// The .msg texts below carry the real field lines of ROS 2's interfaces; the comments are ours.
"use strict";
const crypto = require("node:crypto");
const fs = require("node:fs");
const path = require("node:path");
const { spawnSync } = require("node:child_process");
const { McapWriter, McapIndexedReader } = require("@mcap/core");
const { loadDecompressHandlers } = require("@mcap/support");
const { parse: parseMsg } = require("@foxglove/rosmsg");
const { MessageWriter, MessageReader } = require("@foxglove/rosmsg2-serialization");
const { crc32 } = require("@foxglove/crc");
const lz4js = require("lz4js");
const zstd = require("@foxglove/wasm-zstd");

// .msg texts keyed the way dependencies name them ("pkg/Type"). Each ends with a newline, as
// the installed files do.
const MSG = {
  "builtin_interfaces/Time": `# A point in time: whole seconds and the nanoseconds past them.

# Seconds since the epoch.
int32 sec

# Nanoseconds, in [0, 1e9).
uint32 nanosec
`,
  "std_msgs/Header": `# Stamp and frame of stamped data.

# When the data was taken.
builtin_interfaces/Time stamp

# The frame the data is expressed in.
string frame_id
`,
  "sensor_msgs/JointState": `# One sample of a set of joints: parallel arrays, one entry per name.
#
# Position in rad or m, velocity in rad/s or m/s, effort in Nm or N.
# An array may be empty when the robot does not report that quantity.

std_msgs/Header header

string[] name
float64[] position
float64[] velocity
float64[] effort
`,
  "nav_msgs/Odometry": `# Estimated pose and velocity of a robot base.
# The pose is in header.frame_id, the twist in child_frame_id.

std_msgs/Header header

# The frame the twist is expressed in.
string child_frame_id

# Pose in the parent frame, with its uncertainty.
geometry_msgs/PoseWithCovariance pose

# Velocity in the child frame, with its uncertainty.
geometry_msgs/TwistWithCovariance twist
`,
  "geometry_msgs/PoseWithCovariance": `# A pose with a row-major 6x6 covariance (x, y, z, rot x, rot y, rot z).

Pose pose

float64[36] covariance
`,
  "geometry_msgs/TwistWithCovariance": `# A twist with a row-major 6x6 covariance.

Twist twist

float64[36] covariance
`,
  "geometry_msgs/Pose": `# Position and orientation in free space.

Point position
Quaternion orientation
`,
  "geometry_msgs/Point": `# A position in free space.

float64 x
float64 y
float64 z
`,
  "geometry_msgs/Quaternion": `# An orientation as a quaternion; defaults to the identity.

float64 x 0
float64 y 0
float64 z 0
float64 w 1
`,
  "geometry_msgs/Twist": `# Velocity split into its linear and angular parts.

Vector3  linear
Vector3  angular
`,
  "geometry_msgs/Vector3": `# A free vector (not a point).

float64 x
float64 y
float64 z
`,
  "diagnostic_msgs/DiagnosticArray": `# Status of several components at once.
std_msgs/Header header # when the statuses were taken
DiagnosticStatus[] status # one per component
`,
  "diagnostic_msgs/DiagnosticStatus": `# Status of one component.

# Levels
byte OK=0
byte WARN=1
byte ERROR=2
byte STALE=3

# One of the levels above.
byte level
# Which component.
string name
# What is the matter, human readable.
string message
# Hardware the component runs on.
string hardware_id
# Further values.
KeyValue[] values
`,
  "diagnostic_msgs/KeyValue": `# A key and its value.
string key
string value
`,
  "tf2_msgs/TFMessage": `geometry_msgs/TransformStamped[] transforms
`,
  "geometry_msgs/TransformStamped": `# The transform from header.frame_id to child_frame_id at header.stamp.

std_msgs/Header header

# The frame this transform leads to.
string child_frame_id

# Translation and rotation of the child in the parent.
Transform transform
`,
  "geometry_msgs/Transform": `# A rigid transform.

Vector3 translation
Quaternion rotation
`,
  "sensor_msgs/Imu": `# One IMU sample. A covariance of all zeros means unknown; a first element of -1 means the
# quantity is not reported.

std_msgs/Header header

geometry_msgs/Quaternion orientation
float64[9] orientation_covariance # row major about x, y, z

geometry_msgs/Vector3 angular_velocity
float64[9] angular_velocity_covariance # row major about x, y, z

geometry_msgs/Vector3 linear_acceleration
float64[9] linear_acceleration_covariance # row major x, y, z
`,
};

// rosbag2's field-type pattern (local_message_definition_source): the first word of a line.
const FIELD_TYPE = /(?:^|\n)\s*([a-zA-Z0-9_/]+)(?:\[[^\]]*\])?\s+/g;
const PRIMITIVES = new Set(["bool", "byte", "char", "float32", "float64", "int8", "uint8", "int16",
                            "uint16", "int32", "uint32", "int64", "uint64", "string"]);

function dependenciesOf(text, pkg) {
  const deps = new Set();
  for (const m of text.matchAll(FIELD_TYPE)) {
    const type = m[1];
    if (PRIMITIVES.has(type)) continue;
    deps.add(type.includes("/") ? type : `${pkg}/${type}`);
  }
  return [...deps].sort();
}

// The ros2msg schema text rosbag2 stores for `rootType` ("pkg/msg/Type").
function ros2msgText(rootType) {
  const [pkg, , name] = rootType.split("/");
  const seen = new Set();
  const walk = (key) => {
    const text = MSG[key];
    if (text === undefined) throw new Error(`no .msg text for ${key}`);
    let out = text;
    for (const dep of dependenciesOf(text, key.split("/")[0])) {
      if (seen.has(dep)) continue;
      seen.add(dep);
      out += "\n" + "=".repeat(80) + "\n" + `MSG: ${dep}\n` + walk(dep);
    }
    return out;
  };
  return walk(`${pkg}/${name}`);
}

// rosbag2's offered_qos_profiles for one publisher: keep_last, reliable or best_effort.
function qosYaml({ reliability = "reliable", durability = "volatile", depth = 10 } = {}) {
  const infinite = ["    sec: 9223372036", "    nsec: 854775807"];
  return ["- history: keep_last", `  depth: ${depth}`, `  reliability: ${reliability}`,
          `  durability: ${durability}`, "  deadline:", ...infinite, "  lifespan:", ...infinite,
          "  liveliness: automatic", "  liveliness_lease_duration:", ...infinite,
          "  avoid_ros_namespace_conventions: false"].join("\n");
}

// Same shape as ROS 2's type hash (RIHS01_ + 64 hex), not the real one: nothing checks it, and
// a reader must not choke on it.
const typeHash = (type) => "RIHS01_" + crypto.createHash("sha256").update(type).digest("hex");

// Compressors for chunks. lz4: frame format (lz4js); zstd: the same wasm build @mcap/support
// decompresses with.
async function compressorFor(compression) {
  if (compression === "none") return undefined;
  if (compression === "lz4") {
    return (data) => ({ compression: "lz4", compressedData: Uint8Array.from(lz4js.compress(data)) });
  }
  if (compression === "zstd") {
    await zstd.isLoaded;
    return (data) => ({ compression: "zstd", compressedData: new Uint8Array(zstd.compress(data, 3)) });
  }
  throw new Error(`unknown compression ${compression}`);
}

// IWritable over a file descriptor.
class FileWritable {
  constructor(file) { this.fd = fs.openSync(file, "w"); this.offset = 0n; }
  async write(buffer) { fs.writeSync(this.fd, buffer); this.offset += BigInt(buffer.byteLength); }
  position() { return this.offset; }
  close() { fs.closeSync(this.fd); }
}

// A deterministic sequence in [-1, 1) with at most 6 decimals, so that `doppel read` (which prints
// doubles with 12 decimals) shows each value exactly.
function values(seed) {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.round((s / 2 ** 32 * 2 - 1) * 1e6) / 1e6 || 0; // never -0
  };
}

const stampOf = (ns) => ({ sec: Number(ns / 1000000000n), nanosec: Number(ns % 1000000000n) });
const nsOf = (stamp) => BigInt(stamp.sec) * 1000000000n + BigInt(stamp.nanosec);
const MS = 1000000n;

const JOINTS = ["shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint",
                "wrist_2_joint", "wrist_3_joint"];

// The diagnostics each robot publishes: per tick, the level of "motor_temp" and "bumper".
// OK then WARN (motor_temp), OK, ERROR (bumper), OK: two faults raised and cleared.
const DIAG_SCRIPT = [[0, 0], [0, 0], [1, 0], [1, 0], [1, 0], [0, 0], [0, 0], [0, 2], [0, 2], [0, 0]];

// Writes a rosbag2-style bag. Options: compression none|lz4|zstd, chunkSize, seconds, start (ns,
// BigInt: the first header stamp), robots, topic(robot, leaf) -> topic name. Returns what it
// wrote: every message with its topic, type, times and decoded value, and the expected fault
// transitions.
async function writeBag(file, {
  compression = "zstd", chunkSize = 16 * 1024, seconds = 4, start,
  robots = ["bagbot1", "bagbot2"], topic = (robot, leaf) => `/${robot}/${leaf}`, library = "rosbag2",
} = {}) {
  start = start ?? (BigInt(Date.now() - 10 * 60 * 1000) * MS);
  const writable = new FileWritable(file);
  const writer = new McapWriter({ writable, chunkSize, compressChunk: await compressorFor(compression) });
  await writer.start({ profile: "ros2", library });

  const types = new Map(); // type -> { schemaId, writer }
  const channels = new Map(); // topic -> { id, type }
  const channelFor = async (name, type, qos) => {
    if (channels.has(name)) return channels.get(name);
    if (!types.has(type)) {
      const text = ros2msgText(type);
      const schemaId = await writer.registerSchema({ name: type, encoding: "ros2msg",
                                                     data: new TextEncoder().encode(text) });
      types.set(type, { schemaId, text, writer: new MessageWriter(parseMsg(text, { ros2: true })) });
    }
    const id = await writer.registerChannel({
      schemaId: types.get(type).schemaId, topic: name, messageEncoding: "cdr",
      metadata: new Map([["offered_qos_profiles", qosYaml(qos)], ["topic_type_hash", typeHash(type)]]),
    });
    const channel = { id, type, topic: name, sequence: 0 };
    channels.set(name, channel);
    return channel;
  };

  // Every message first, then written in receive (log time) order as rosbag2 does.
  const planned = [];
  const plan = (robot, leaf, type, stampNs, value, qos) =>
    planned.push({ robot, leaf, type, stampNs, value, qos, topic: leaf === "tf" ? "/tf" : topic(robot, leaf) });
  const faults = []; // expected fault events per robot, in order
  const end = start + BigInt(seconds) * 1000n * MS;
  robots.forEach((robot, r) => {
    const next = values(1000 + r * 7919);
    const jointStep = 20n * MS;
    for (let t = start + BigInt(r) * MS; t < end; t += jointStep) {
      plan(robot, "joint_states", "sensor_msgs/msg/JointState", t, {
        header: { stamp: stampOf(t), frame_id: "" },
        name: JOINTS, position: JOINTS.map(next), velocity: JOINTS.map(next),
        effort: r === 0 ? JOINTS.map(next) : [],
      }, { reliability: "best_effort" });
    }
    for (let t = start + 3n * MS + BigInt(r) * MS, i = 0; t < end; t += 50n * MS, i++) {
      const x = Math.round(i * 25) / 1000, yaw = next() * 0.5;
      const round6 = (v) => Math.round(v * 1e6) / 1e6 || 0;
      plan(robot, "odom", "nav_msgs/msg/Odometry", t, {
        header: { stamp: stampOf(t), frame_id: "odom" }, child_frame_id: "base_link",
        pose: { pose: { position: { x, y: next(), z: 0 },
                        orientation: { x: 0, y: 0, z: round6(Math.sin(yaw / 2)), w: round6(Math.cos(yaw / 2)) } },
                covariance: Array.from({ length: 36 }, (_, k) => (k % 7 === 0 ? 0.01 : 0)) },
        twist: { twist: { linear: { x: 0.5, y: 0, z: 0 }, angular: { x: 0, y: 0, z: next() } },
                 covariance: new Array(36).fill(0) },
      });
    }
    for (let t = start + 7n * MS + BigInt(r) * MS; t < end; t += 100n * MS) {
      plan(robot, "cmd_vel", "geometry_msgs/msg/Twist", t, {
        linear: { x: next(), y: 0, z: 0 }, angular: { x: 0, y: 0, z: next() },
      });
    }
    const state = new Map([["motor_temp", 0], ["bumper", 0]]);
    const diagStep = (end - start) / BigInt(DIAG_SCRIPT.length);
    DIAG_SCRIPT.forEach(([motor, bumper], i) => {
      const t = start + 11n * MS + BigInt(r) * MS + BigInt(i) * diagStep;
      const status = [["motor_temp", motor, "motor temperature 81 C"], ["bumper", bumper, "bumper pressed"]]
        .map(([name, level, message]) => ({
          level, name, message: level === 0 ? "OK" : message, hardware_id: robot,
          values: [{ key: "sample", value: String(i) }],
        }));
      for (const s of status) {
        const before = state.get(s.name);
        if (before === 0 && s.level !== 0) {
          faults.push({ robot, type: "FaultRaised", code: s.name, level: s.level, message: s.message, stampNs: t });
        } else if (before !== 0 && s.level === 0) {
          faults.push({ robot, type: "FaultCleared", code: s.name, stampNs: t });
        }
        state.set(s.name, s.level);
      }
      plan(robot, "diagnostics", "diagnostic_msgs/msg/DiagnosticArray", t,
           { header: { stamp: stampOf(t), frame_id: "" }, status });
    });
    for (let t = start + 5n * MS + BigInt(r) * MS; t < end; t += 10n * MS) {
      plan(robot, "imu", "sensor_msgs/msg/Imu", t, {
        header: { stamp: stampOf(t), frame_id: `${robot}/imu_link` },
        orientation: { x: 0, y: 0, z: 0, w: 1 }, orientation_covariance: new Array(9).fill(0),
        angular_velocity: { x: next(), y: next(), z: next() }, angular_velocity_covariance: new Array(9).fill(0),
        linear_acceleration: { x: next(), y: next(), z: 9.81 }, linear_acceleration_covariance: new Array(9).fill(0),
      }, { reliability: "best_effort" });
    }
  });
  for (let t = start + 13n * MS; t < end; t += 50n * MS) {
    plan(null, "tf", "tf2_msgs/msg/TFMessage", t, {
      transforms: robots.map((robot, r) => ({
        header: { stamp: stampOf(t), frame_id: "odom" }, child_frame_id: `${robot}/base_link`,
        transform: { translation: { x: r, y: 0, z: 0 }, rotation: { x: 0, y: 0, z: 0, w: 1 } },
      })),
    });
  }
  // Receive time: 2 ms after the stamp, publish time 1 ms after it (the value is taken, then sent).
  for (const p of planned) {
    p.publishTime = p.stampNs + 1n * MS;
    p.logTime = p.stampNs + 2n * MS;
  }
  planned.sort((a, b) => (a.logTime < b.logTime ? -1 : a.logTime > b.logTime ? 1 : 0));

  for (const p of planned) {
    const channel = await channelFor(p.topic, p.type, p.qos);
    p.channelId = channel.id;
    p.sequence = channel.sequence++;
    p.data = types.get(p.type).writer.writeMessage(p.value);
    await writer.addMessage({ channelId: channel.id, sequence: p.sequence, logTime: p.logTime,
                              publishTime: p.publishTime, data: p.data });
  }
  const first = planned[0].logTime, last = planned[planned.length - 1].logTime;
  await writer.addMetadata({ name: "rosbag2", metadata: new Map([["serialized_metadata", [
    "rosbag2_bagfile_information:", "  version: 9", "  storage_identifier: mcap",
    `  duration:\n    nanoseconds: ${last - first}`,
    `  starting_time:\n    nanoseconds_since_epoch: ${first}`,
    `  message_count: ${planned.length}`,
    "  compression_format: \"\"", "  compression_mode: \"\"",
    `  relative_file_paths:\n    - ${path.basename(file)}`,
  ].join("\n")], ["ROS_DISTRO", "jazzy"]]) });
  await writer.end();
  writable.close();

  const bySchema = {};
  for (const p of planned) bySchema[p.type] = (bySchema[p.type] || 0) + 1;
  const walked = walkMcap(fs.readFileSync(file), await loadDecompressHandlers());
  if (walked.problems.length) throw new Error(`bag ${file} is not clean: ${walked.problems.join("; ")}`);
  return { file, compression, robots, start, end, messages: planned, bySchema, faults,
           chunks: walked.chunks, size: fs.statSync(file).size };
}

// ---- Reading a file record by record -------------------------------------------------------
const OP = { Header: 1, Footer: 2, Schema: 3, Channel: 4, Message: 5, Chunk: 6, MessageIndex: 7,
             ChunkIndex: 8, Attachment: 9, AttachmentIndex: 10, Statistics: 11, Metadata: 12,
             MetadataIndex: 13, SummaryOffset: 14, DataEnd: 15 };
const OP_NAME = Object.fromEntries(Object.entries(OP).map(([k, v]) => [v, k]));
const MAGIC = Buffer.from([0x89, 0x4d, 0x43, 0x41, 0x50, 0x30, 0x0d, 0x0a]);

class Cursor {
  constructor(buf, offset = 0, end = buf.length) { this.buf = buf; this.off = offset; this.end = end; }
  need(n) { if (this.off + n > this.end) throw new Error(`record body ends early (need ${n} at ${this.off})`); }
  u8() { this.need(1); return this.buf.readUInt8(this.off++); }
  u16() { this.need(2); const v = this.buf.readUInt16LE(this.off); this.off += 2; return v; }
  u32() { this.need(4); const v = this.buf.readUInt32LE(this.off); this.off += 4; return v; }
  u64() { this.need(8); const v = this.buf.readBigUInt64LE(this.off); this.off += 8; return v; }
  bytes(n) { this.need(n); const v = this.buf.subarray(this.off, this.off + n); this.off += n; return v; }
  str() { return this.bytes(this.u32()).toString("utf8"); }
  map(read) {
    const len = this.u32(), stop = this.off + len, out = new Map();
    while (this.off < stop) { const k = this.str(); out.set(k, read()); }
    return out;
  }
}

function parseBody(op, c) {
  switch (op) {
    case OP.Header: return { profile: c.str(), library: c.str() };
    case OP.Footer: return { summaryStart: c.u64(), summaryOffsetStart: c.u64(), summaryCrc: c.u32() };
    case OP.Schema: return { id: c.u16(), name: c.str(), encoding: c.str(), data: c.bytes(c.u32()) };
    case OP.Channel: return { id: c.u16(), schemaId: c.u16(), topic: c.str(), messageEncoding: c.str(),
                              metadata: c.map(() => c.str()) };
    case OP.Message: return { channelId: c.u16(), sequence: c.u32(), logTime: c.u64(), publishTime: c.u64(),
                              data: c.bytes(c.end - c.off) };
    case OP.Chunk: {
      const r = { messageStartTime: c.u64(), messageEndTime: c.u64(), uncompressedSize: c.u64(),
                  uncompressedCrc: c.u32(), compression: c.str() };
      const len = c.u64();
      r.recordsOffset = c.off;
      r.records = c.bytes(Number(len));
      return r;
    }
    case OP.MessageIndex: {
      const r = { channelId: c.u16(), records: [] };
      const stop = c.off + 4 + c.u32();
      while (c.off < stop) r.records.push([c.u64(), c.u64()]);
      return r;
    }
    case OP.ChunkIndex: return { messageStartTime: c.u64(), messageEndTime: c.u64(), chunkStartOffset: c.u64(),
                                 chunkLength: c.u64(), messageIndexOffsets: (() => {
                                   const len = c.u32(), stop = c.off + len, m = new Map();
                                   while (c.off < stop) m.set(c.u16(), c.u64());
                                   return m;
                                 })(),
                                 messageIndexLength: c.u64(), compression: c.str(), compressedSize: c.u64(),
                                 uncompressedSize: c.u64() };
    case OP.Statistics: return { messageCount: c.u64(), schemaCount: c.u16(), channelCount: c.u32(),
                                 attachmentCount: c.u32(), metadataCount: c.u32(), chunkCount: c.u32(),
                                 messageStartTime: c.u64(), messageEndTime: c.u64(),
                                 channelMessageCounts: (() => {
                                   const len = c.u32(), stop = c.off + len, m = new Map();
                                   while (c.off < stop) m.set(c.u16(), c.u64());
                                   return m;
                                 })() };
    case OP.Metadata: return { name: c.str(), metadata: c.map(() => c.str()) };
    case OP.MetadataIndex: return { offset: c.u64(), length: c.u64(), name: c.str() };
    case OP.SummaryOffset: return { groupOpcode: c.u8(), groupStart: c.u64(), groupLength: c.u64() };
    case OP.DataEnd: return { dataSectionCrc: c.u32() };
    default: return {};
  }
}

// Reads `buf` record by record (chunks decompressed) and checks what `mcap doctor` checks.
// Returns { header, records, chunks, messages, schemas, channels, statistics, summary, problems }:
// chunks = [{ offset, length, index (its ChunkIndex or null), messages: [...] }], messages in file
// order with { channelId, sequence, logTime, publishTime, data, chunk }, problems = strings.
function walkMcap(buf, decompress) {
  const problems = [];
  const out = { header: null, records: [], chunks: [], messages: [], schemas: new Map(),
                channels: new Map(), statistics: null, chunkIndexes: [], metadata: [],
                summaryOffsets: [], problems, footer: null, dataEnd: null };
  if (buf.length < 16 || !buf.subarray(0, 8).equals(MAGIC)) { problems.push("bad leading magic"); return out; }
  const same = (a, b) => a.name === b.name && a.encoding === b.encoding && a.topic === b.topic &&
    a.schemaId === b.schemaId && a.messageEncoding === b.messageEncoding &&
    JSON.stringify([...(a.metadata || [])]) === JSON.stringify([...(b.metadata || [])]) &&
    Buffer.compare(Buffer.from(a.data || []), Buffer.from(b.data || [])) === 0;
  const seen = (map, rec, what) => {
    const prev = map.get(rec.id);
    if (prev && !same(prev, rec)) problems.push(`${what} ${rec.id} differs between its records`);
    map.set(rec.id, rec);
  };
  let off = 8, lastLogTime = -1n, chunkOfLastRecord = null;
  const handle = (op, rec, where, chunk) => {
    if (op === OP.Schema) {
      if (rec.id === 0) problems.push(`schema id 0 at ${where}`);
      seen(out.schemas, rec, "schema");
    } else if (op === OP.Channel) {
      if (rec.schemaId !== 0 && !out.schemas.has(rec.schemaId)) problems.push(`channel ${rec.id} (${rec.topic}) before its schema ${rec.schemaId}`);
      seen(out.channels, rec, "channel");
    } else if (op === OP.Message) {
      if (!out.channels.has(rec.channelId)) problems.push(`message on unknown channel ${rec.channelId} at ${where}`);
      if (rec.logTime < lastLogTime) problems.push(`log time goes back at ${where}: ${rec.logTime} < ${lastLogTime}`);
      lastLogTime = rec.logTime;
      rec.chunk = chunk;
      out.messages.push(rec);
      if (chunk) { chunk.messages.push(rec); chunk.byOffset.set(rec.chunkOffset, rec); }
    }
  };
  for (;;) {
    if (off + 9 > buf.length) { problems.push(`file ends inside a record at ${off}`); return out; }
    const op = buf.readUInt8(off), len = buf.readBigUInt64LE(off + 1);
    const bodyStart = off + 9, bodyEnd = bodyStart + Number(len);
    if (len > BigInt(buf.length) || bodyEnd > buf.length) {
      problems.push(`${OP_NAME[op] || `opcode 0x${op.toString(16)}`} at offset ${off}: length ${len} runs past the end`);
      return out;
    }
    let rec;
    try {
      rec = parseBody(op, new Cursor(buf, bodyStart, bodyEnd));
    } catch (e) {
      problems.push(`${OP_NAME[op]} at offset ${off}: ${e.message}`);
      return out;
    }
    out.records.push({ op, name: OP_NAME[op], offset: off, length: 9 + Number(len), rec });
    if (op === OP.Header) out.header = rec;
    else if (op === OP.Chunk) {
      const chunk = { offset: off, length: 9 + Number(len), rec, messages: [], byOffset: new Map(),
                      index: null, messageIndexes: [] };
      out.chunks.push(chunk);
      chunkOfLastRecord = chunk;
      let data = rec.records;
      if (rec.compression !== "") {
        const d = decompress[rec.compression];
        if (!d) { problems.push(`chunk at ${off}: unknown compression ${rec.compression}`); data = null; }
        else {
          try { data = Buffer.from(d(rec.records, rec.uncompressedSize)); }
          catch (e) { problems.push(`chunk at ${off}: ${rec.compression} decompression failed: ${e.message}`); data = null; }
        }
      }
      if (data) {
        if (BigInt(data.length) !== rec.uncompressedSize) problems.push(`chunk at ${off}: uncompressed size ${data.length} != ${rec.uncompressedSize}`);
        if (rec.uncompressedCrc !== 0 && crc32(data) !== rec.uncompressedCrc) problems.push(`chunk at ${off}: CRC mismatch`);
        chunk.data = data;
        let inner = 0;
        while (inner < data.length) {
          if (inner + 9 > data.length) { problems.push(`chunk at ${off}: record cut at ${inner}`); break; }
          const iop = data.readUInt8(inner), ilen = Number(data.readBigUInt64LE(inner + 1));
          if (inner + 9 + ilen > data.length) { problems.push(`chunk at ${off}: record at ${inner} runs past the chunk`); break; }
          const irec = parseBody(iop, new Cursor(data, inner + 9, inner + 9 + ilen));
          irec.chunkOffset = inner;
          handle(iop, irec, `chunk ${off} + ${inner}`, chunk);
          inner += 9 + ilen;
        }
        if (chunk.messages.length) {
          const times = chunk.messages.map((m) => m.logTime);
          const min = times.reduce((a, b) => (b < a ? b : a)), max = times.reduce((a, b) => (b > a ? b : a));
          if (min !== rec.messageStartTime || max !== rec.messageEndTime) {
            problems.push(`chunk at ${off}: start/end ${rec.messageStartTime}/${rec.messageEndTime} but messages span ${min}/${max}`);
          }
        }
      }
    } else if (op === OP.MessageIndex) {
      if (!chunkOfLastRecord) problems.push(`message index at ${off} follows no chunk`);
      else {
        chunkOfLastRecord.messageIndexes.push({ offset: off, rec });
        for (const [logTime, at] of rec.records) {
          const m = chunkOfLastRecord.byOffset.get(Number(at));
          if (!m || m.channelId !== rec.channelId || m.logTime !== logTime) {
            problems.push(`message index at ${off}: entry (${logTime}, ${at}) matches no message of channel ${rec.channelId}`);
          }
        }
      }
    } else if (op === OP.DataEnd) {
      out.dataEnd = rec;
      if (rec.dataSectionCrc !== 0 && crc32(buf.subarray(0, off)) !== rec.dataSectionCrc) problems.push("data section CRC mismatch");
    } else if (op === OP.Footer) {
      out.footer = rec;
      if (!buf.subarray(bodyEnd, bodyEnd + 8).equals(MAGIC) || bodyEnd + 8 !== buf.length) problems.push("bad trailing magic");
      if (rec.summaryStart !== 0n && rec.summaryCrc !== 0) {
        const crc = crc32(buf.subarray(Number(rec.summaryStart), bodyEnd - 4));
        if (crc !== rec.summaryCrc) problems.push("summary CRC mismatch");
      }
      break;
    } else if (op === OP.ChunkIndex) out.chunkIndexes.push({ offset: off, rec });
    else if (op === OP.Statistics) out.statistics = rec;
    else if (op === OP.Metadata) out.metadata.push(rec);
    else if (op === OP.SummaryOffset) out.summaryOffsets.push(rec);
    else if (op === OP.Message) problems.push(`message outside a chunk at ${off} (not indexed)`);
    if (op === OP.Schema || op === OP.Channel) handle(op, rec, `offset ${off}`, null);
    if (op !== OP.Chunk && op !== OP.MessageIndex) chunkOfLastRecord = null;
    off = bodyEnd;
  }
  if (!out.header) problems.push("no Header");
  else if (!out.header.library) problems.push("Header.library is empty");
  if (out.header && !["", "ros1", "ros2"].includes(out.header.profile)) problems.push(`unknown profile ${out.header.profile}`);
  if (!out.dataEnd) problems.push("no DataEnd");
  // Chunk indexes match the chunks.
  for (const { rec: ci } of out.chunkIndexes) {
    const chunk = out.chunks.find((c) => BigInt(c.offset) === ci.chunkStartOffset);
    if (!chunk) { problems.push(`chunk index points at ${ci.chunkStartOffset}, where no chunk starts`); continue; }
    chunk.index = ci;
    const c = chunk.rec;
    if (BigInt(chunk.length) !== ci.chunkLength || c.compression !== ci.compression ||
        c.messageStartTime !== ci.messageStartTime || c.messageEndTime !== ci.messageEndTime ||
        c.uncompressedSize !== ci.uncompressedSize || BigInt(c.records.length) !== ci.compressedSize) {
      problems.push(`chunk index for ${chunk.offset} disagrees with the chunk`);
    }
    const channelsInChunk = new Set(chunk.messages.map((m) => m.channelId));
    for (const [channelId, at] of ci.messageIndexOffsets) {
      if (!chunk.messageIndexes.some((mi) => BigInt(mi.offset) === at && mi.rec.channelId === channelId)) {
        problems.push(`chunk index for ${chunk.offset}: no message index for channel ${channelId} at ${at}`);
      }
    }
    for (const id of channelsInChunk) if (!ci.messageIndexOffsets.has(id)) problems.push(`chunk ${chunk.offset}: channel ${id} has no message index`);
  }
  if (out.chunkIndexes.length && out.chunkIndexes.length !== out.chunks.length) {
    problems.push(`${out.chunks.length} chunks but ${out.chunkIndexes.length} chunk indexes`);
  }
  // Statistics match the file.
  const s = out.statistics;
  if (s) {
    const perChannel = new Map();
    for (const m of out.messages) perChannel.set(m.channelId, (perChannel.get(m.channelId) || 0n) + 1n);
    const times = out.messages.map((m) => m.logTime);
    const min = times.length ? times.reduce((a, b) => (b < a ? b : a)) : 0n;
    const max = times.length ? times.reduce((a, b) => (b > a ? b : a)) : 0n;
    if (s.messageCount !== BigInt(out.messages.length)) problems.push(`statistics: ${s.messageCount} messages, file has ${out.messages.length}`);
    if (s.chunkCount !== out.chunks.length) problems.push(`statistics: ${s.chunkCount} chunks, file has ${out.chunks.length}`);
    if (s.schemaCount !== out.schemas.size) problems.push(`statistics: ${s.schemaCount} schemas, file has ${out.schemas.size}`);
    if (s.channelCount !== out.channels.size) problems.push(`statistics: ${s.channelCount} channels, file has ${out.channels.size}`);
    if (s.metadataCount !== out.metadata.length) problems.push(`statistics: ${s.metadataCount} metadata, file has ${out.metadata.length}`);
    if (times.length && (s.messageStartTime !== min || s.messageEndTime !== max)) problems.push("statistics: start/end times disagree with the messages");
    for (const [id, n] of perChannel) if (s.channelMessageCounts.get(id) !== n) problems.push(`statistics: channel ${id} count ${s.channelMessageCounts.get(id)} != ${n}`);
    for (const [id, n] of s.channelMessageCounts) if (!perChannel.has(id) && n !== 0n) problems.push(`statistics: channel ${id} counted ${n}, has none`);
  }
  return out;
}

// Decoders built from the schema text in a file (not from our own tables).
function decoderFor(schema) {
  if (schema.encoding !== "ros2msg") throw new Error(`schema ${schema.name}: encoding ${schema.encoding}`);
  return new MessageReader(parseMsg(new TextDecoder().decode(schema.data), { ros2: true }));
}

// ---- Talking to doppel ------------------------------------------------------------------------
// JSON whose 64-bit integers (ns times, 16+ digits) stay exact: they come back as strings.
function parseJsonBig(text) {
  return JSON.parse(text.replace(/([:\[,]\s*)(-?\d{16,})(?=\s*[,\]}])/g, '$1"$2"'));
}

// Runs doppel; returns { status, stdout, stderr } (never throws on a non-zero exit).
function runDoppel(doppel, argv, { timeoutMs = 180000 } = {}) {
  const r = spawnSync(doppel, argv, { maxBuffer: 1 << 30, timeout: timeoutMs });
  if (r.error) throw r.error;
  return { status: r.status, signal: r.signal, stdout: r.stdout.toString(), stderr: r.stderr.toString(),
           argv: argv.join(" ") };
}

// Every event of a store in global order, as `doppel read` prints it (big integers as strings).
// `dir` is a store's data directory or doppel up's (whose log sits in log/).
function readEvents(doppel, dir) {
  const data = fs.existsSync(path.join(dir, "log", "CURRENT")) ? path.join(dir, "log") : dir;
  const r = runDoppel(doppel, ["read", "--data", data, "--format", "jsonl"]);
  if (r.status !== 0) throw new Error(`doppel read --data ${data}: exit ${r.status}: ${r.stderr}`);
  return r.stdout.split("\n").filter((l) => l.trim()).map(parseJsonBig);
}

// McapIndexedReader over a whole file in memory, with @mcap/support's decompressors.
async function openIndexed(file) {
  const buf = fs.readFileSync(file);
  const readable = { size: async () => BigInt(buf.length),
                     read: async (offset, size) => buf.subarray(Number(offset), Number(offset + size)) };
  return McapIndexedReader.Initialize({ readable, decompressHandlers: await loadDecompressHandlers() });
}

// ---- Damaged copies -------------------------------------------------------------------------
// Each returns { file, chunk: the damaged chunk (or the first one cut), description }.
function truncatedCopy(bag, file) {
  const buf = fs.readFileSync(bag.file);
  const chunk = bag.chunks[Math.floor(bag.chunks.length / 2)];
  const cut = chunk.offset + Math.floor(chunk.length / 2);
  fs.writeFileSync(file, buf.subarray(0, cut));
  return { file, chunk, badChunks: bag.chunks.filter((c) => c.offset >= chunk.offset), description: `cut at ${cut}, inside the chunk at ${chunk.offset}` };
}

function flippedByteCopy(bag, file) {
  const buf = Buffer.from(fs.readFileSync(bag.file));
  const chunk = bag.chunks[Math.floor(bag.chunks.length / 2)];
  const at = chunk.rec.recordsOffset + Math.floor(chunk.rec.records.length / 2);
  buf[at] ^= 0x5a;
  fs.writeFileSync(file, buf);
  return { file, chunk, badChunks: [chunk], description: `byte ${at} flipped inside the chunk at ${chunk.offset}` };
}

function wrongLengthCopy(bag, file) {
  const buf = Buffer.from(fs.readFileSync(bag.file));
  const chunk = bag.chunks[Math.floor(bag.chunks.length / 2)];
  const len = buf.readBigUInt64LE(chunk.offset + 1);
  buf.writeBigUInt64LE(len + 4096n, chunk.offset + 1);
  fs.writeFileSync(file, buf);
  return { file, chunk, badChunks: [chunk], description: `length of the chunk at ${chunk.offset} set to ${len + 4096n}` };
}

module.exports = { writeBag, walkMcap, decoderFor, ros2msgText, qosYaml, truncatedCopy, flippedByteCopy,
                   wrongLengthCopy, FileWritable, compressorFor, parseJsonBig, runDoppel, readEvents,
                   openIndexed, MSG, OP, nsOf, stampOf, JOINTS };
