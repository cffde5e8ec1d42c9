// The gateway as roslibjs sees it: the real `roslib` package against `doppel up`, at
// ws://.../rosbridge with the same tokens as Foxglove clients.
"use strict";
const WebSocket = require("ws");
const { args, sleep, waitFor, startUp, readStream, check, run } = require("./lib");

// roslib connects and resolves with the Ros handle and every status it got; rejects when the
// server refuses it.
function connect(ROSLIB, url) {
  return new Promise((resolve, reject) => {
    const ros = new ROSLIB.Ros({ url });
    const statuses = [];
    const handle = ros.handleMessage.bind(ros);
    ros.handleMessage = (m) => {
      if (m.op === "status") statuses.push(m);
      handle(m);
    };
    ros.on("connection", () => resolve({ ros, statuses }));
    ros.on("error", (e) => reject(new Error(`error event: ${e && (e.message || e.type)}`)));
    ros.on("close", () => reject(new Error("close event")));
  });
}

// What the server says when it refuses the upgrade: the HTTP status and body.
function refusal(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on("open", () => reject(new Error(`${url} was accepted`)));
    ws.on("unexpected-response", (req, res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    ws.on("error", () => {});
  });
}

function call(ROSLIB, ros, name, request) {
  return new Promise((resolve, reject) => {
    new ROSLIB.Service({ ros, name, serviceType: "doppel/Any" })
      .callService(request, resolve, (e) => reject(new Error(`${name}: ${e}`)));
  });
}

run(async () => {
  const { doppel } = args();
  const ROSLIB = await import("roslib");
  const up = await startUp(doppel, { robots: 4, salt: 3 });
  const url = (token) => `ws://${up.base}/rosbridge?token=${token}`;
  try {
    // Wrong and missing tokens: HTTP 401 with the reason, and roslib reports it.
    const bad = await refusal(url("not-a-token"));
    check(bad.status === 401 && bad.body.includes("invalid token"), `bad token: ${JSON.stringify(bad)}`);
    const none = await refusal(`ws://${up.base}/rosbridge`);
    check(none.status === 401 && none.body.includes("token is required"), `no token: ${JSON.stringify(none)}`);
    let refused = false;
    await connect(ROSLIB, url("not-a-token")).catch(() => (refused = true));
    check(refused, "roslib's connection with a bad token fails");

    const { ros, statuses } = await connect(ROSLIB, url(up.tokens.operator));
    const robots = await waitFor("a base in /doppel/list_robots", async () => {
      const v = await call(ROSLIB, ros, "/doppel/list_robots", {});
      return v.robots.some((r) => r.includes("_base_")) && v.robots;
    });
    const base = robots.find((r) => r.includes("_base_"));
    check(base, `a base: ${robots}`);

    const topic = (name, messageType, extra = {}) =>
      new ROSLIB.Topic({ ros, name, messageType, ...extra });
    const got = { odom: [], joints: [], tf: [], throttled: [] };
    topic(`/${base}/odom`, "nav_msgs/msg/Odometry").subscribe((m) => got.odom.push(m));
    topic(`/${base}/joint_states`, "sensor_msgs/msg/JointState").subscribe((m) => got.joints.push(m));
    topic("/tf", "tf2_msgs/msg/TFMessage").subscribe((m) => got.tf.push(m));
    await waitFor("odom, joint_states and tf", () => got.odom.length > 5 && got.joints.length > 0 && got.tf.length > 0);

    const odom = got.odom[got.odom.length - 1];
    check(odom.header.frame_id === "map" && Number.isInteger(odom.header.stamp.sec) &&
          Number.isInteger(odom.header.stamp.nanosec), `odom header: ${JSON.stringify(odom.header)}`);
    check(odom.child_frame_id === `${base}/base_link`, `odom child frame: ${odom.child_frame_id}`);
    check(typeof odom.pose.pose.position.x === "number" && typeof odom.pose.pose.orientation.w === "number",
          "odom pose.pose");
    check(typeof odom.twist.twist.linear.x === "number", "odom twist.twist");
    check(odom.pose.covariance.length === 36 && odom.twist.covariance.every((c) => c === 0), "covariances");
    const xs = got.odom.map((m) => m.pose.pose.position.x);
    check(new Set(xs).size > 1, `the base moves: ${xs.slice(0, 5)}`);
    const js = got.joints[got.joints.length - 1];
    check(js.name.length > 0 && js.position.length === js.name.length &&
          js.velocity.length === js.name.length && js.effort.length === js.name.length &&
          js.header && js.header.stamp, `joint_states: ${JSON.stringify(js).slice(0, 300)}`);
    const frames = new Set(got.tf.flatMap((m) => m.transforms.map((t) => t.child_frame_id)));
    const tf0 = got.tf[0].transforms[0];
    check(tf0.header.frame_id === "map" && tf0.transform.translation && tf0.transform.rotation.w !== undefined,
          `tf transform: ${JSON.stringify(tf0)}`);
    await waitFor("the bases' links on /tf", () => {
      for (const m of got.tf) for (const t of m.transforms) frames.add(t.child_frame_id);
      return robots.filter((r) => r.includes("_base_"))
        .every((r) => frames.has(`${r}/base_link`) && frames.has(`${r}/left_wheel`));
    });

    // throttle_rate 1000 (on a connection of its own: subscriptions of one topic merge): about
    // one per second, where the twin publishes ~20.
    const slow = await connect(ROSLIB, url(up.tokens.viewer));
    new ROSLIB.Topic({ ros: slow.ros, name: `/${base}/odom`, messageType: "nav_msgs/Odometry", throttle_rate: 1000 })
      .subscribe(() => got.throttled.push(Date.now()));
    await sleep(4500);
    slow.ros.close();
    // At most one a second (a robot may fall silent for a while: fewer is not a failure of
    // throttling, but at least one must come).
    check(got.throttled.length >= 1 && got.throttled.length <= 6, `throttled to 1 Hz: ${got.throttled.length} in 4.5 s`);
    for (let i = 1; i < got.throttled.length; i++) {
      check(got.throttled[i] - got.throttled[i - 1] >= 800,
            `throttled messages ${got.throttled[i] - got.throttled[i - 1]} ms apart`);
    }
    for (let i = 1; i < got.throttled.length; ++i) {
      check(got.throttled[i] - got.throttled[i - 1] > 900, `throttled gaps: ${got.throttled}`);
    }

    // An operator's cmd_vel becomes a CommandIssued; the gateway acks it with a status.
    const cmd = topic(`/${base}/cmd_vel`, "geometry_msgs/Twist");
    cmd.publish({ linear: { x: 0.25, y: 0, z: 0 }, angular: { x: 0, y: 0, z: 0.1 } });
    const ack = await waitFor("command ack", () => statuses.find((s) => s.level === "info" && /recorded at position/.test(s.msg)));
    // Beyond doppel's limits: refused with an error status.
    cmd.publish({ linear: { x: 500, y: 0, z: 0 }, angular: { x: 0, y: 0, z: 0 } });
    await waitFor("limit refusal", () => statuses.find((s) => s.level === "error" && /refused/.test(s.msg)));
    // Unknown topics: an error status, and the connection keeps serving.
    topic(`/${base}/camera`, "sensor_msgs/Image").subscribe(() => {});
    await waitFor("unknown topic status", () => statuses.find((s) => s.level === "error" && /Unknown topic/.test(s.msg)));

    // Services: doppel state's answer, now and at a past moment.
    const state = await call(ROSLIB, ros, "/doppel/robot_state", { robot: base });
    check(state.robot_id === base && state.version > 0 && state.base && state.at === "now",
          `robot_state: ${JSON.stringify(state).slice(0, 300)}`);
    const past = await call(ROSLIB, ros, "/doppel/robot_state", { robot: base, at: new Date(Date.now() - 3000).toISOString() });
    check(past.version < state.version, `robot_state at a past moment: ${past.version} < ${state.version}`);
    let unknown = null;
    await call(ROSLIB, ros, "/doppel/teleport", {}).catch((e) => (unknown = e.message));
    check(unknown && unknown.includes("Unknown service"), `unknown service: ${unknown}`);

    // A viewer may subscribe but not publish.
    const viewer = await connect(ROSLIB, url(up.tokens.viewer));
    new ROSLIB.Topic({ ros: viewer.ros, name: `/${base}/cmd_vel`, messageType: "geometry_msgs/Twist" })
      .publish({ linear: { x: 0.5, y: 0, z: 0 }, angular: { x: 0, y: 0, z: 0 } });
    await waitFor("viewer's publish refused", () => viewer.statuses.find((s) => s.level === "error" && /viewer/.test(s.msg)));
    const viewerOdom = [];
    new ROSLIB.Topic({ ros: viewer.ros, name: `/${base}/odom`, messageType: "nav_msgs/Odometry" })
      .subscribe((m) => viewerOdom.push(m));
    await waitFor("viewer's odom", () => viewerOdom.length > 0);

    ros.close();
    viewer.ros.close();
    await up.stop();
    const commands = readStream(doppel, up.data, `robot-${base}`)
      .filter((e) => e.type === "CommandIssued" && e.payload.issued_by === "rosbridge:operator");
    check(commands.length === 1, `rosbridge commands in the store: ${commands.length}`);
    check(Math.abs(commands[0].payload.twist.linear.x - 0.25) < 1e-9 &&
          Math.abs(commands[0].payload.twist.angular.z - 0.1) < 1e-9, "command values");
    check(ack.msg.includes(String(commands[0].position)), `ack names the position: ${ack.msg}`);
  } finally {
    if (up.proc.exitCode === null) up.proc.kill("SIGKILL");
  }
});
