// Interop with an independent DDS implementation: a Fast DDS program (ROS 2's default
// middleware, types from fastddsgen -typeros2) publishes a robot's joint states and cmd_vel;
// the values go through doppel (DDS ingest, store, twin, DDS egress, all CycloneDDS) and come
// back to it on rt/twin/<robot>/joint_states and rt/tf. Everything stays on loopback.
"use strict";
const { spawn } = require("node:child_process");
const readline = require("node:readline");
const { args, sleep, waitFor, startUp, readStream, check, run } = require("./lib");

const ROBOT = "fd_arm_0";  // matches doppel up's `*_arm_*` glob: registers as doppel_arm6
const NAMES = ["shoulder_pan_joint", "shoulder_lift_joint", "elbow_joint", "wrist_1_joint",
               "wrist_2_joint", "wrist_3_joint"];
const same = (a, b) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) < 1e-12);

run(async () => {
  const { doppel, peer } = args();
  const up = await startUp(doppel, { robots: 0, salt: 3 });
  const proc = spawn(peer, ["--robot", ROBOT, "--domain", String(up.domain), "--seconds", "60"],
                     { stdio: ["ignore", "pipe", "inherit"] });
  const sent = [];
  const back = [];
  const frames = new Set();
  readline.createInterface({ input: proc.stdout }).on("line", (line) => {
    const m = JSON.parse(line);
    if (m.topic === "sent") sent.push(m.position);
    else if (m.topic === "twin_joint_states") back.push(m);
    else if (m.topic === "tf") m.frames.forEach((f) => frames.add(f));
  });
  try {
    // Joint values come back exactly as sent (same doubles), with the same names.
    const match = await waitFor("twin joint states back at the Fast DDS peer", () =>
      back.find((b) => b.name.join() === NAMES.join() && sent.some((s) => same(s, b.position))), 45000);
    check(match, "a round-tripped joint state");
    await waitFor("tf frames of the robot", () => [...frames].some((f) => f.startsWith(`${ROBOT}/`)), 20000);
    check(frames.has(`${ROBOT}/base_link`) || [...frames].filter((f) => f.startsWith(`${ROBOT}/`)).length >= 6,
          `tf frames: ${[...frames].slice(0, 10)}`);
    // Ten distinct sent vectors made the whole trip, bit for bit.
    const roundTrips = () => new Set(back.filter((b) => sent.some((s) => same(s, b.position)))
                                         .map((b) => b.position.join())).size;
    await waitFor("ten round trips", () => roundTrips() >= 10, 20000);
    await sleep(3000);  // cmd_vel goes out every 0.5 s: let a few reach the store
  } catch (e) {
    console.error(`domain ${up.domain}: sent ${sent.length}, back ${back.length}, ` +
                  `tf frames ${frames.size}; doppel up said:\n${up.stderr().slice(-3000)}`);
    throw e;
  } finally {
    proc.kill("SIGINT");
  }
  await up.stop();
  // And the store holds what the peer sent: registration, observations, commands.
  const events = readStream(doppel, up.data, `robot-${ROBOT}`);
  const registered = events.find((e) => e.type === "RobotRegistered");
  check(registered && registered.payload.model === "doppel_arm6", "registered with the arm model");
  const observed = events.filter((e) => e.type === "JointStateObserved");
  check(observed.length >= 10, `observations stored: ${observed.length}`);
  // (doppel read prints 12 significant digits)
  const near = (a, b) => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]) < 1e-9);
  check(observed.every((e) => sent.some((s) => near(s, e.payload.position))),
        "stored joint values are the sent ones");
  const commands = events.filter((e) => e.type === "CommandIssued");
  check(commands.length >= 1, "cmd_vel became CommandIssued");
  check(Math.abs(commands[0].payload.twist.linear.x - 0.25) < 1e-12 &&
        Math.abs(commands[0].payload.twist.angular.z + 0.5) < 1e-12,
        `command values: ${JSON.stringify(commands[0].payload.twist)}`);
  console.log(`sent ${sent.length}, back ${back.length}, stored ${observed.length} observations, ` +
              `${commands.length} commands, ${frames.size} tf frames`);
});
