// `doppel import` of rosbag2-style MCAP files written by @mcap/core (mcap_bags.js) in each
// compression: the events `doppel read` shows afterwards, the JSON report, idempotence, the robot
// mapping options, damaged files (exit 1, the offset named, nothing of the bad chunk in the
// store), and a round trip import -> export whose joint states decode to the bag's values.
"use strict";
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { args, check, run, tempDir } = require("./lib");
const { writeBag, runDoppel, readEvents, openIndexed, decoderFor, truncatedCopy, flippedByteCopy,
        wrongLengthCopy, nsOf } = require("./mcap_bags");

const ns = (v) => BigInt(v);
const MS = 1000000n;
const LEAF_TYPE = { joint_states: "JointStateObserved", odom: "PoseObserved", cmd_vel: "CommandIssued" };
const SKIPPED = ["sensor_msgs/msg/Imu", "tf2_msgs/msg/TFMessage"];

// Events of a store; none when the directory holds no store (an import that failed early).
function eventsOf(doppel, data) {
  if (!fs.existsSync(data) || fs.readdirSync(data).length === 0) return [];
  return readEvents(doppel, data);
}

function importBag(doppel, file, data, extra = []) {
  return runDoppel(doppel, ["import", file, "--data", data, ...extra]);
}

function reportOf(r) {
  check(r.status === 0, `doppel ${r.argv}: exit ${r.status}: ${r.stderr.slice(-2000)}`);
  const lines = r.stdout.trim().split("\n").filter((l) => l.trim());
  check(lines.length === 1, `import prints one JSON object on stdout, got: ${r.stdout.slice(0, 500)}`);
  return JSON.parse(lines[0]);
}

// The events a bag should become, per robot (robot -> [{ type, occurred, payload check }]),
// with `robotOf(message)` naming the robot the importer should file the message under.
function expectedFrom(bag, robotOf = (m) => m.robot, keep = () => true) {
  const byRobot = new Map();
  const add = (robot, e) => {
    if (!byRobot.has(robot)) byRobot.set(robot, []);
    byRobot.get(robot).push(e);
  };
  for (const m of bag.messages) {
    if (!LEAF_TYPE[m.leaf] || !keep(robotOf(m))) continue;
    add(robotOf(m), { type: LEAF_TYPE[m.leaf], occurred: m.stampNs, publishTime: m.publishTime,
                      logTime: m.logTime, value: m.value, leaf: m.leaf });
  }
  for (const f of bag.faults) {
    const robot = robotOf({ robot: f.robot, leaf: "diagnostics" });
    if (keep(robot)) add(robot, { ...f, occurred: f.stampNs });
  }
  return byRobot;
}

// The store's events against what the bag should have become.
function checkStore(events, expected, what) {
  const robots = [...expected.keys()].sort();
  const streams = [...new Set(events.map((e) => e.stream))].sort();
  assert.deepEqual(streams, robots.map((r) => `robot-${r}`), `${what}: streams`);
  for (const robot of robots) {
    const stream = events.filter((e) => e.stream === `robot-${robot}`);
    const want = expected.get(robot);
    check(stream[0].type === "RobotRegistered" && stream[0].version === 0 && stream[0].payload.robot_id === robot,
          `${what}: robot-${robot} starts with RobotRegistered: ${JSON.stringify(stream[0])}`);
    check(stream.filter((e) => e.type === "RobotRegistered").length === 1, `${what}: ${robot} registered once`);
    stream.forEach((e, i) => check(e.version === i, `${what}: robot-${robot} versions 0..n`));
    const byOccurred = (a, b) => (ns(a.occurred_ns ?? a.occurred) < ns(b.occurred_ns ?? b.occurred) ? -1 : 1);
    for (const [leaf, type] of Object.entries(LEAF_TYPE)) {
      const got = stream.filter((e) => e.type === type).sort(byOccurred);
      const exp = want.filter((e) => e.leaf === leaf).sort(byOccurred);
      check(got.length === exp.length, `${what}: ${robot} ${type}: ${got.length} events, bag has ${exp.length}`);
      got.forEach((e, i) => {
        const x = exp[i], p = e.payload, v = x.value;
        const where = `${what}: ${robot} ${type} #${i}`;
        if (leaf === "cmd_vel") {
          // A Twist has no header: the occurred time is the message's publish or log time.
          check(ns(e.occurred_ns) === x.publishTime || ns(e.occurred_ns) === x.logTime, `${where}: occurred ${e.occurred_ns}`);
          check(p.kind === undefined || p.kind === "Velocity", `${where}: kind ${p.kind}`);
          assert.deepEqual(p.twist, { linear: v.linear, angular: v.angular }, `${where}: twist`);
          return;
        }
        check(ns(e.occurred_ns) === x.occurred, `${where}: occurred ${e.occurred_ns} = header stamp ${x.occurred}`);
        if (leaf === "joint_states") {
          assert.deepEqual(p.names, v.name, `${where}: names`);
          assert.deepEqual(p.position, v.position, `${where}: position`);
          assert.deepEqual(p.velocity, v.velocity, `${where}: velocity`);
          assert.deepEqual(p.effort || [], v.effort, `${where}: effort`);
        } else {
          check(p.frame_id === v.header.frame_id && p.child_frame_id === v.child_frame_id, `${where}: frames`);
          assert.deepEqual(p.pose, v.pose.pose, `${where}: pose`);
          assert.deepEqual(p.twist, v.twist.twist, `${where}: twist`);
        }
      });
    }
    // Faults in the order the diagnostics went: raised on WARN/ERROR, cleared on OK, once each.
    const faults = stream.filter((e) => e.type === "FaultRaised" || e.type === "FaultCleared");
    const wantFaults = want.filter((e) => e.type === "FaultRaised" || e.type === "FaultCleared");
    assert.deepEqual(faults.map((e) => `${e.type}:${e.payload.code}`), wantFaults.map((e) => `${e.type}:${e.code}`),
                     `${what}: ${robot} fault sequence`);
    faults.forEach((e, i) => {
      const x = wantFaults[i];
      check(ns(e.occurred_ns) === x.stampNs, `${what}: ${robot} fault #${i} occurred = stamp`);
      if (e.type === "FaultRaised") {
        check(e.payload.message === x.message, `${what}: ${robot} fault #${i} message ${e.payload.message}`);
        const severity = x.level === 1 ? "Warning" : "Error";
        check(e.payload.severity === severity, `${what}: ${robot} fault #${i} severity ${e.payload.severity}, want ${severity}`);
      }
    });
    const known = new Set(["RobotRegistered", "FaultRaised", "FaultCleared", ...Object.values(LEAF_TYPE)]);
    for (const e of stream) check(known.has(e.type), `${what}: unexpected ${e.type}`);
  }
}

const countOf = (expected) => [...expected.values()].reduce((n, list) => n + list.length, 0) + expected.size;

run(async () => {
  const { doppel, out } = args();
  const dir = out ? path.join(out, "mcap_import") : tempDir();
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const freshStore = (name) => fs.mkdtempSync(path.join(dir, `${name}-`));
  const start = BigInt(Date.now() - 10 * 60 * 1000) * MS; // ten minutes ago, whole ms

  const bags = {};
  for (const compression of ["none", "lz4", "zstd"]) {
    bags[compression] = await writeBag(path.join(dir, `bag-${compression}.mcap`), { compression, start });
    const b = bags[compression];
    check(b.chunks.length >= 5, `${compression} bag: ${b.chunks.length} chunks`);
    console.log(`bag ${compression}: ${b.messages.length} messages, ${b.chunks.length} chunks, ${b.size} bytes`);
  }
  const expected = expectedFrom(bags.zstd);
  const converted = countOf(expected) - expected.size;

  // Each compression imports to the same events; the report counts them.
  const stores = {};
  for (const [compression, bag] of Object.entries(bags)) {
    const data = freshStore(`store-${compression}`);
    stores[compression] = data;
    const report = reportOf(importBag(doppel, bag.file, data));
    const events = readEvents(doppel, data);
    checkStore(events, expected, `import ${compression}`);
    check(report.appended === events.length && report.appended === countOf(expected),
          `${compression}: appended ${report.appended}, store has ${events.length}, expected ${countOf(expected)}`);
    check(report.duplicates === 0, `${compression}: duplicates ${report.duplicates}`);
    check(report.messages === bag.messages.length, `${compression}: messages ${report.messages}, bag has ${bag.messages.length}`);
    assert.deepEqual(report.skipped_types, Object.fromEntries(SKIPPED.map((t) => [t, bag.bySchema[t]])),
                     `${compression}: skipped_types`);
    assert.deepEqual([...report.robots].sort(), ["bagbot1", "bagbot2"], `${compression}: robots`);
    console.log(`import ${compression}: ${JSON.stringify(report)}`);
  }

  // A second import of the same file appends nothing.
  {
    const before = readEvents(doppel, stores.zstd).length;
    const again = reportOf(importBag(doppel, bags.zstd.file, stores.zstd));
    check(again.appended === 0, `second import appended ${again.appended}`);
    check(again.duplicates >= converted && again.duplicates <= before, `second import: ${again.duplicates} duplicates of ${converted}`);
    check(readEvents(doppel, stores.zstd).length === before, "the store is unchanged by a second import");
    console.log(`second import: ${JSON.stringify(again)}`);
  }

  // --robots GLOB: one robot of the two.
  {
    const data = freshStore("store-robots");
    const report = reportOf(importBag(doppel, bags.zstd.file, data, ["--robots", "bagbot1"]));
    checkStore(readEvents(doppel, data), expectedFrom(bags.zstd, (m) => m.robot, (r) => r === "bagbot1"), "--robots bagbot1");
    assert.deepEqual(report.robots, ["bagbot1"], "--robots: report");
  }
  // --robot NAME: a single-robot bag whose topics carry no robot name.
  {
    const bag = await writeBag(path.join(dir, "bag-single.mcap"), { start, robots: ["solo"], topic: (_, leaf) => `/${leaf}` });
    const data = freshStore("store-robot");
    const report = reportOf(importBag(doppel, bag.file, data, ["--robot", "arm7"]));
    checkStore(readEvents(doppel, data), expectedFrom(bag, () => "arm7"), "--robot arm7");
    assert.deepEqual(report.robots, ["arm7"], "--robot: report");
  }
  // --robot-from-topic REGEX: the first group names the robot.
  {
    const bag = await writeBag(path.join(dir, "bag-fleet.mcap"), { start, robots: ["r7", "r8"],
                                                                    topic: (robot, leaf) => `/fleet/${robot}/${leaf}` });
    const data = freshStore("store-regex");
    const report = reportOf(importBag(doppel, bag.file, data, ["--robot-from-topic", "^/fleet/([^/]+)/"]));
    checkStore(readEvents(doppel, data), expectedFrom(bag), "--robot-from-topic");
    assert.deepEqual([...report.robots].sort(), ["r7", "r8"], "--robot-from-topic: report");
  }
  // A topic from the file 200,000 characters long: the pattern runs in linear time (std::regex
  // recursed per character and crashed), the import ends with its usual report.
  {
    const long = `/fleet/${"a".repeat(200000)}`; // no '/' after the robot: no match
    const bag = await writeBag(path.join(dir, "bag-long-topic.mcap"), {
      start, robots: ["r7"], seconds: 1,
      topic: (robot, leaf) => (leaf === "joint_states" ? long : `/fleet/${robot}/${leaf}`) });
    const data = freshStore("store-long-topic");
    const t0 = Date.now();
    const r = importBag(doppel, bag.file, data, ["--robot-from-topic", "^/fleet/([^/]+)/"]);
    check(r.signal === null, `long topic: killed by ${r.signal}`);
    const report = reportOf(r);
    check(report.unmapped_topics[long] === bag.messages.filter((m) => m.topic === long).length,
          "long topic: unmapped, every message counted");
    assert.deepEqual(report.robots, ["r7"], "long topic: the other topics still map");
    console.log(`--robot-from-topic over a 200000-character topic: exit 0 in ${Date.now() - t0} ms`);
    // A pattern RE2 refuses: a usage error with RE2's reason.
    const bad = importBag(doppel, bag.file, data, ["--robot-from-topic", "^/fleet/(?=x)([^/]+)/"]);
    check(bad.status === 2 && /RE2/.test(bad.stderr), `lookahead pattern: exit ${bad.status}, want 2: ${bad.stderr}`);
  }
  console.log("--robots, --robot and --robot-from-topic map the robots");

  // Damaged files: exit 1, the offset named, nothing of a bad chunk in the store.
  for (const [compression, bag] of Object.entries(bags)) {
    for (const [name, damage] of [["truncated", truncatedCopy], ["flipped", flippedByteCopy], ["bad-length", wrongLengthCopy]]) {
      const copy = damage(bag, path.join(dir, `bag-${compression}-${name}.mcap`));
      const data = freshStore(`store-${compression}-${name}`);
      const before = eventsOf(doppel, data).length;
      const r = importBag(doppel, copy.file, data);
      check(r.status === 1, `${compression} ${copy.description}: exit ${r.status}, want 1; ${r.stderr}`);
      // The offset named: a number (decimal or 0x hex) from the bad chunk's start to the file's end.
      const size = fs.statSync(copy.file).size;
      const offsets = (r.stderr.match(/0x[0-9a-f]+|\d+/gi) || []).map(Number);
      check(offsets.some((o) => o >= copy.chunk.offset && o <= size),
            `${compression} ${copy.description}: stderr names an offset in [${copy.chunk.offset}, ${size}]: ${r.stderr}`);
      check(/chunk|record|footer|header|summary|magic/i.test(r.stderr), `${compression} ${copy.description}: stderr names the record: ${r.stderr}`);
      const after = eventsOf(doppel, data);
      const bad = new Set();
      for (const chunk of copy.badChunks) {
        for (const m of chunk.messages) {
          const planned = bag.messages.find((p) => p.channelId === m.channelId && p.sequence === m.sequence);
          if (LEAF_TYPE[planned.leaf] && planned.leaf !== "cmd_vel") bad.add(`robot-${planned.robot}/${LEAF_TYPE[planned.leaf]}/${planned.stampNs}`);
        }
      }
      const leaked = after.filter((e) => bad.has(`${e.stream}/${e.type}/${ns(e.occurred_ns)}`));
      check(leaked.length === 0, `${compression} ${copy.description}: ${leaked.length} events of the bad chunk appended`);
      const goodMessages = bag.messages.length - copy.badChunks.reduce((n, c) => n + c.messages.length, 0);
      check(after.length - before <= goodMessages + 2, `${compression} ${copy.description}: ${after.length - before} events appended`);
      console.log(`${compression} ${name}: exit 1, ${after.length - before} events from good chunks, ` +
                  `stderr: ${r.stderr.trim().split("\n").pop().slice(0, 160)}`);
    }
  }

  // Round trip: the imported store exported whole; its joint states decode to the bag's values.
  {
    const file = path.join(dir, "roundtrip.mcap");
    const r = runDoppel(doppel, ["export", "--data", stores.zstd, "--from", "0", "--to", "now", "--out", file]);
    check(r.status === 0, `export of the imported store: exit ${r.status}: ${r.stderr.slice(-2000)}`);
    const reader = await openIndexed(file);
    const decoders = new Map();
    const got = new Map();
    for await (const m of reader.readMessages()) {
      const ch = reader.channelsById.get(m.channelId);
      const leaf = ch.topic.match(/^\/(bagbot\d)\/(joint_states|odom)$/);
      if (!leaf) continue;
      if (!decoders.has(ch.schemaId)) decoders.set(ch.schemaId, decoderFor(reader.schemasById.get(ch.schemaId)));
      const key = `${leaf[1]}/${leaf[2]}`;
      if (!got.has(key)) got.set(key, []);
      got.get(key).push(decoders.get(ch.schemaId).readMessage(m.data));
    }
    let compared = 0;
    for (const robot of bags.zstd.robots) {
      for (const leaf of ["joint_states", "odom"]) {
        const mine = bags.zstd.messages.filter((m) => m.robot === robot && m.leaf === leaf);
        const theirs = (got.get(`${robot}/${leaf}`) || []).sort((a, b) => (nsOf(a.header.stamp) < nsOf(b.header.stamp) ? -1 : 1));
        check(theirs.length === mine.length, `round trip /${robot}/${leaf}: ${theirs.length} messages, bag had ${mine.length}`);
        theirs.forEach((v, i) => {
          const o = mine[i].value;
          assert.deepEqual(v.header.stamp, o.header.stamp, `round trip /${robot}/${leaf} #${i} stamp`);
          if (leaf === "joint_states") {
            assert.deepEqual(v.name, o.name);
            for (const f of ["position", "velocity", "effort"]) {
              assert.deepEqual(Array.from(v[f]), o[f], `round trip /${robot}/joint_states #${i} ${f}`);
            }
          } else {
            assert.deepEqual(v.pose.pose, o.pose.pose, `round trip /${robot}/odom #${i} pose`);
            assert.deepEqual(v.twist.twist, o.twist.twist, `round trip /${robot}/odom #${i} twist`);
            check(v.child_frame_id === o.child_frame_id && v.header.frame_id === o.header.frame_id, "round trip frames");
          }
          compared++;
        });
      }
    }
    console.log(`round trip: ${compared} joint state and odometry messages decode to the bag's values`);
  }

  // --out at a symbolic link: a usage error naming it; the link and its target untouched.
  {
    const target = path.join(dir, "link-target.txt");
    fs.writeFileSync(target, "keep me");
    const link = path.join(dir, "link.mcap");
    fs.symlinkSync(target, link);
    const r = runDoppel(doppel, ["export", "--data", stores.zstd, "--from", "0", "--to", "now", "--out", link]);
    check(r.status === 2 && /symbolic link/.test(r.stderr), `export --out <symlink>: exit ${r.status}, want 2: ${r.stderr}`);
    check(fs.lstatSync(link).isSymbolicLink() && fs.readFileSync(target, "utf8") === "keep me",
          "export --out <symlink>: the link and its target unchanged");
    console.log(`export --out <symlink>: exit 2, ${r.stderr.trim().split("\n").pop()}`);
  }
});
