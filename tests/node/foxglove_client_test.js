// The gateway as Foxglove sees it: the real @foxglove/ws-protocol client against `doppel up`.
"use strict";
const { FoxgloveClient } = require("@foxglove/ws-protocol");
const WebSocket = require("ws");
const { spawn } = require("node:child_process");
const { args, sleep, waitFor, startUp, readStream, check, run } = require("./lib");

const ROBOTS = 6;

function connect(url) {
  const client = new FoxgloveClient({
    ws: new WebSocket(url, [FoxgloveClient.SUPPORTED_SUBPROTOCOL]),
  });
  const state = { client, serverInfo: null, channels: new Map(), statuses: [], messages: new Map(),
                  times: 0, advertisedAfterStart: [] };
  client.on("serverInfo", (info) => (state.serverInfo = info));
  client.on("advertise", (channels) => {
    for (const c of channels) {
      state.channels.set(c.topic, c);
      if (state.serverInfo && state.ready) state.advertisedAfterStart.push(c.topic);
    }
  });
  client.on("status", (s) => state.statuses.push(s));
  client.on("time", () => state.times++);
  const decoder = new TextDecoder();
  client.on("message", ({ subscriptionId, timestamp, data }) => {
    const list = state.messages.get(subscriptionId) || [];
    list.push({ timestamp, json: JSON.parse(decoder.decode(data)) });
    state.messages.set(subscriptionId, list);
  });
  return state;
}

// What the server says when it refuses a WebSocket: the HTTP status and body.
function refusal(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, [FoxgloveClient.SUPPORTED_SUBPROTOCOL]);
    ws.on("open", () => reject(new Error(`${url} was accepted`)));
    ws.on("unexpected-response", (req, res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    ws.on("error", () => {});
  });
}

const robotsOf = (state) =>
  [...state.channels.keys()].filter((t) => t.endsWith("/twin")).map((t) => t.split("/")[1]);

run(async () => {
  const { doppel } = args();
  const up = await startUp(doppel, { robots: ROBOTS, salt: 1 });
  let late;
  try {
    const viewerUrl = `ws://${up.base}/?token=${up.tokens.viewer}`;

    // Wrong or missing tokens are refused with a reason.
    const bad = await refusal(`ws://${up.base}/?token=not-a-token`);
    check(bad.status === 401 && /invalid token/.test(bad.body), `bad token: ${JSON.stringify(bad)}`);
    const none = await refusal(`ws://${up.base}/`);
    check(none.status === 401 && /token is required/.test(none.body), `no token: ${JSON.stringify(none)}`);

    const viewer = connect(viewerUrl);
    await waitFor("serverInfo", () => viewer.serverInfo);
    check(viewer.serverInfo.capabilities.includes("time"), "capability time");
    check(!viewer.serverInfo.capabilities.includes("clientPublish"), "viewers cannot publish");
    await waitFor(`channels of ${ROBOTS} robots`, () => robotsOf(viewer).length >= ROBOTS);
    viewer.ready = true;
    const robots = robotsOf(viewer);
    check(robots.length === ROBOTS, `robots advertised: ${robots}`);
    for (const r of robots) {
      for (const leaf of ["twin", "twin_fb", "joint_states", "pose", "prediction", "events"]) {
        check(viewer.channels.has(`/${r}/${leaf}`), `channel /${r}/${leaf}`);
      }
    }
    const twinFb = viewer.channels.get(`/${robots[0]}/twin_fb`);
    check(twinFb.encoding === "flatbuffer" && twinFb.schemaEncoding === "flatbuffer" &&
          Buffer.from(twinFb.schema, "base64").length > 1000, "TwinState flatbuffer channel with .bfbs");
    check(viewer.channels.get(`/${robots[0]}/pose`).schemaName === "foxglove.PoseInFrame", "pose schema");
    for (const c of viewer.channels.values()) {
      if (c.encoding === "json") check(JSON.parse(c.schema).type === "object", `${c.topic} object schema`);
    }

    // Subscribe and watch values change.
    const arm = robots.find((r) => r.includes("_arm_"));
    const base = robots.find((r) => r.includes("_base_"));
    const sub = (topic) => viewer.client.subscribe(viewer.channels.get(topic).id);
    const summarySub = sub("/fleet/summary");
    const armTwinSub = sub(`/${arm}/twin`);
    const jointsSub = sub(`/${arm}/joint_states`);
    const poseSub = sub(`/${base}/pose`);
    await waitFor("messages on every subscription", () =>
      [summarySub, armTwinSub, jointsSub, poseSub].every((s) => (viewer.messages.get(s) || []).length >= 3));
    await sleep(1500);
    const summaries = viewer.messages.get(summarySub);
    const lastSummary = summaries[summaries.length - 1].json;
    check(lastSummary.robots.length === ROBOTS, `summary lists ${lastSummary.robots.length} robots`);
    for (const row of lastSummary.robots) {
      check(typeof row.model === "string" && row.model.startsWith("doppel_"), `model of ${row.robot_id}`);
      check(row.staleness_ms >= 0 && row.staleness_ms < 5000, `staleness of ${row.robot_id}: ${row.staleness_ms}`);
    }
    const joints = viewer.messages.get(jointsSub).map((m) => m.json.position[0]);
    check(new Set(joints).size > 2, `joint positions change: ${joints.slice(0, 5)}`);
    const poses = viewer.messages.get(poseSub).map((m) => m.json.pose.position.x);
    check(new Set(poses).size > 2, `base pose changes: ${poses.slice(0, 5)}`);
    check(viewer.times > 5, `time frames: ${viewer.times}`);
    const stamps = viewer.messages.get(jointsSub).map((m) => Number(m.timestamp));
    check(stamps.every((t, i) => i === 0 || t >= stamps[i - 1]), "message stamps never go back");

    // A robot that appears later gets its channels advertised live.
    late = spawn(doppel, ["sim-fleet", "--robots", "1", "--prefix", "late", "--domain", String(up.domain)],
                 { stdio: "ignore" });
    await waitFor("late robot advertised", () => viewer.advertisedAfterStart.includes("/late_arm_0/twin"));

    // A viewer's publish is rejected; an operator's command becomes a CommandIssued event.
    viewer.client.advertise({ topic: `/${base}/cmd_vel`, encoding: "json", schemaName: "geometry_msgs/Twist" });
    await waitFor("publish refusal", () => viewer.statuses.find((s) => s.level === 2 && /not allowed/.test(s.message)));
    const operator = connect(`ws://${up.base}/?token=${up.tokens.operator}`);
    await waitFor("operator serverInfo", () => operator.serverInfo);
    check(operator.serverInfo.capabilities.includes("clientPublish"), "operators may publish");
    const cmd = operator.client.advertise({ topic: `/${base}/cmd_vel`, encoding: "json", schemaName: "geometry_msgs/Twist" });
    const sentX = 0.123456;
    operator.client.sendMessage(cmd, new TextEncoder().encode(JSON.stringify(
      { linear: { x: sentX, y: 0, z: 0 }, angular: { x: 0, y: 0, z: 0.25 } })));
    const ack = await waitFor("command recorded", () =>
      operator.statuses.find((s) => /recorded at position/.test(s.message)));
    const stop = operator.client.advertise({ topic: `/${base}/stop`, encoding: "json", schemaName: "doppel.Stop" });
    operator.client.sendMessage(stop, new TextEncoder().encode("{}"));
    await waitFor("stop recorded", () =>
      operator.statuses.filter((s) => /recorded at position/.test(s.message)).length >= 2);
    // Garbage from a client: a clear error, and the connection keeps serving.
    operator.client.sendMessage(cmd, new TextEncoder().encode("not json"));
    await waitFor("garbage refused", () => operator.statuses.find((s) => s.level === 2 && /Malformed/.test(s.message)));
    const before = (viewer.messages.get(summarySub) || []).length;
    await waitFor("still serving", () => viewer.messages.get(summarySub).length > before + 1);

    // What the viewer saw matches the store: the arm's last twin state is the fold of the
    // event at its version.
    const armTwins = viewer.messages.get(armTwinSub).map((m) => m.json);
    const lastTwin = armTwins[armTwins.length - 1];
    viewer.client.close();
    operator.client.close();
    late.kill("SIGINT");
    await up.stop();

    const armEvents = readStream(doppel, up.data, `robot-${arm}`);
    const atVersion = armEvents.find((e) => e.version === lastTwin.version);
    check(atVersion && atVersion.position === lastTwin.position, `event at version ${lastTwin.version}`);
    if (atVersion.type === "JointStateObserved") {
      atVersion.payload.position.forEach((p, i) =>
        check(Math.abs(p - lastTwin.joint_position[i]) < 1e-9, `joint ${i}: ${p} vs ${lastTwin.joint_position[i]}`));
    }
    const commands = readStream(doppel, up.data, `robot-${base}`).filter((e) => e.type === "CommandIssued" &&
                                                                          e.payload.issued_by === "gateway:operator");
    check(commands.length === 2, `operator commands in the store: ${commands.length}`);
    check(Math.abs(commands[0].payload.twist.linear.x - sentX) < 1e-9, "velocity command value");
    check(commands[1].payload.kind === "Stop", `stop command: ${JSON.stringify(commands[1].payload)}`);
    check(ack.message.includes(String(commands[0].position)), `ack names the position: ${ack.message}`);
    const latePresent = readStream(doppel, up.data, "robot-late_arm_0").length > 0;
    check(latePresent, "late robot's events are in the store");
  } finally {
    if (late && late.exitCode === null) late.kill("SIGKILL");
    if (up.proc.exitCode === null) up.proc.kill("SIGKILL");
  }
});
