// Type matching with every ROS 2-shaped CycloneDDS peer: two plain CycloneDDS programs with
// their own IDL run at once against `doppel up`, one with rosidl_generator_dds_idl's member
// names (header_, name_...) and XTypes type information, one with plain member names and no
// type information. Each publishes joint states and exits 0 only when its values came back
// on rt/twin/<robot>/joint_states and its robot's frames on rt/tf. The store must then hold
// what each sent. Everything stays on loopback: the peers get deploy/dds/loopback.xml through
// CYCLONEDDS_URI, doppel uses the same file built in.
"use strict";
const { spawn } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const readline = require("node:readline");
const { args, startUp, readStream, check, run } = require("./lib");

const LOOPBACK_XML = path.resolve(__dirname, "../../deploy/dds/loopback.xml");

const PEERS = [
  { flag: "rosidl", robot: "cyr_arm_0", typeinfo: true },
  { flag: "plain", robot: "cyp_arm_0", typeinfo: false },
];

// Runs one peer to its end; resolves with its exit code, sent vectors and final report.
function runPeer(binary, robot, domain) {
  const proc = spawn(binary, ["--robot", robot, "--domain", String(domain), "--seconds", "60"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, CYCLONEDDS_URI: `file://${LOOPBACK_XML}` },
  });
  const result = { sent: [], done: null, stderr: "" };
  proc.stderr.on("data", (d) => (result.stderr += d));
  readline.createInterface({ input: proc.stdout }).on("line", (line) => {
    const m = JSON.parse(line);
    if (m.topic === "sent") result.sent.push(m.position);
    else if (m.topic === "done") result.done = m;
  });
  return new Promise((resolve) => proc.on("close", (code) => resolve({ ...result, code })));
}

run(async () => {
  const opts = args();
  // Never let a DDS participant leave loopback: no configuration, no run.
  check(fs.existsSync(LOOPBACK_XML), `loopback configuration at ${LOOPBACK_XML}`);
  const up = await startUp(opts.doppel, { robots: 0, salt: 4 });
  let results;
  try {
    results = await Promise.all(PEERS.map((p) => runPeer(opts[p.flag], p.robot, up.domain)));
    PEERS.forEach((p, i) => {
      const r = results[i];
      const report = `${p.flag} peer (exit ${r.code}): ${JSON.stringify(r.done)} ${r.stderr}`;
      check(r.done && r.done.typeinfo === p.typeinfo, `type information as intended: ${report}`);
      check(r.code === 0, `data both ways: ${report}`);
    });
  } catch (e) {
    console.error(`domain ${up.domain}; doppel up said:\n${up.stderr().slice(-3000)}`);
    up.proc.kill("SIGINT");
    throw e;
  }
  await up.stop();
  // The store holds each peer's robot with the arm model and exactly the values it sent.
  const near = (a, b) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) < 1e-9);
  PEERS.forEach((p, i) => {
    const events = readStream(opts.doppel, up.data, `robot-${p.robot}`);
    const registered = events.find((e) => e.type === "RobotRegistered");
    check(registered && registered.payload.model === "doppel_arm6", `${p.robot} registered as an arm`);
    const observed = events.filter((e) => e.type === "JointStateObserved");
    check(observed.length >= 10, `${p.robot} observations stored: ${observed.length}`);
    // (doppel read prints 12 significant digits)
    check(observed.every((e) => results[i].sent.some((s) => near(s, e.payload.position))),
          `${p.robot}: stored joint values are the sent ones`);
    console.log(`${p.flag}: ${JSON.stringify(results[i].done)}, stored ${observed.length}`);
  });
});
