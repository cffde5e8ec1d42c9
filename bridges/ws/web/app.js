// doppel's built-in dashboard. It speaks the same foxglove.websocket.v1 protocol as Foxglove
// and Lichtblick to the gateway it was served from: /fleet/summary and /fleet/alerts for the
// overview, /<robot>/twin and /<robot>/prediction for the scene, /<robot>/events for the
// selected robot, and (operators) /<robot>/cmd_vel and /<robot>/stop as client channels.
// With ?from= in its URL it replays history instead (replay.js: /replay and its timeline).
import * as THREE from "three";
import uPlot from "uplot";
import { Replay } from "./replay.js";
import { NS_PER_MS, NS_PER_S, clockOf, isoOf, nsOfStamp } from "./time.js";

const params = new URLSearchParams(location.search);
const token = params.get("token") || "";
const $ = (id) => document.getElementById(id);
const replay = params.has("from")
  ? new Replay(params, token, { send: (frame) => ws && ws.readyState === 1 && ws.send(frame), onSeek })
  : null;
if (replay) $("summary-stamp").parentElement.hidden = true;

// ---- protocol -------------------------------------------------------------------------------
const channels = new Map();       // topic -> channel
const subscriptions = new Map();  // subscription id -> {topic, handler}
const byTopic = new Map();        // topic -> subscription id
let nextSubscription = 1;
let nextClientChannel = 1;
const clientChannels = new Map(); // topic -> client channel id
let ws = null;
let canPublish = false;
const decoder = new TextDecoder();

function send(obj) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(obj)); }

function subscribe(topic, handler) {
  const c = channels.get(topic);
  if (!c || byTopic.has(topic)) return;
  const id = nextSubscription++;
  subscriptions.set(id, { topic, handler });
  byTopic.set(topic, id);
  send({ op: "subscribe", subscriptions: [{ id, channelId: c.id }] });
}

function unsubscribe(topic) {
  const id = byTopic.get(topic);
  if (id === undefined) return;
  byTopic.delete(topic);
  subscriptions.delete(id);
  send({ op: "unsubscribe", subscriptionIds: [id] });
}

function publish(topic, message) {
  let id = clientChannels.get(topic);
  if (id === undefined) {
    id = nextClientChannel++;
    clientChannels.set(topic, id);
    send({ op: "advertise", channels: [{ id, topic, encoding: "json", schemaName: "geometry_msgs/Twist" }] });
  }
  const body = new TextEncoder().encode(JSON.stringify(message));
  const frame = new Uint8Array(5 + body.length);
  frame[0] = 1;
  new DataView(frame.buffer).setUint32(1, id, true);
  frame.set(body, 5);
  ws.send(frame);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(replay ? replay.url(scheme, location.host)
                            : `${scheme}://${location.host}/?token=${encodeURIComponent(token)}`,
                     ["foxglove.websocket.v1"]);
  ws.binaryType = "arraybuffer";
  ws.onopen = () => {
    $("connection").textContent = replay ? "replay" : "live";
    $("connection").className = "pill on";
  };
  ws.onclose = () => {
    $("connection").textContent = token ? "disconnected: retrying" : "no token in the URL";
    $("connection").className = "pill off";
    channels.clear(); subscriptions.clear(); byTopic.clear(); clientChannels.clear();
    if (replay) onSeek(null);  // the next session starts over (at the URL's &t=)
    setTimeout(connect, 2000);
  };
  ws.onmessage = (event) => {
    if (typeof event.data === "string") { onControl(JSON.parse(event.data)); return; }
    const view = new DataView(event.data);
    const op = view.getUint8(0);
    if (op === 1) {
      const sub = subscriptions.get(view.getUint32(1, true));
      if (!sub) return;
      const stampNs = view.getBigUint64(5, true);
      sub.handler(JSON.parse(decoder.decode(new Uint8Array(event.data, 13))), Number(stampNs),
                  sub.topic, stampNs);
    } else if (op === 2) {
      const ns = view.getBigUint64(1, true);
      $("clock").textContent = clockOf(ns);
      if (replay) replay.onTimeFrame(ns);
    } else if (op === 5 && replay) {
      replay.onPlaybackState(view);
    }
  };
}

function onControl(msg) {
  if (msg.op === "serverInfo") {
    canPublish = msg.capabilities.includes("clientPublish");
    $("role").textContent = (msg.metadata && msg.metadata.role) || "viewer";
    $("role").hidden = !!replay;
    $("operator").hidden = !canPublish || !selected;
    if (replay) replay.onServerInfo(msg);
  } else if (msg.op === "advertise") {
    for (const c of msg.channels) {
      // A replay has no /fleet/summary, and its channels keep the ids its session gave them
      // (a live channel list reaching a replay session would not name the replay's channels).
      if (replay && (c.topic === "/fleet/summary" || channels.has(c.topic))) continue;
      channels.set(c.topic, c);
      onChannel(c.topic);
    }
  } else if (msg.op === "unadvertise") {
    for (const [topic, c] of channels) {
      if (msg.channelIds.includes(c.id)) { channels.delete(topic); byTopic.delete(topic); }
    }
  } else if (msg.op === "status") {
    if (msg.id === "command" || msg.id === "publish-denied") $("command-status").textContent = msg.message;
    if (msg.level >= 1) console.warn("gateway:", msg.message);
  }
}

function onChannel(topic) {
  if (topic === "/fleet/summary") subscribe(topic, onSummary);
  else if (topic === "/fleet/alerts") subscribe(topic, onAlert);
  else if (topic.endsWith("/twin")) subscribe(topic, onTwin);
  else if (topic.endsWith("/prediction")) subscribe(topic, onPrediction);
  else if (replay && topic.endsWith("/pose")) subscribe(topic, onPose);
  else if (selected && topic === `/${selected}/events`) subscribe(topic, onEvent);
}

// ---- fleet overview -------------------------------------------------------------------------
const rows = new Map();
let selected = null;

function fmtStale(ms) {
  if (ms < 0) return ["-", ""];
  if (ms < 1000) return [`${Math.round(ms)} ms`, "ok"];
  return [`${(ms / 1000).toFixed(1)} s`, ms < 3000 ? "warn" : "bad"];
}

function onSummary(summary) {
  if (!Array.isArray(summary.robots)) return;
  $("summary-stamp").textContent = new Date(summary.timestamp.sec * 1000 + summary.timestamp.nsec / 1e6)
    .toISOString().substring(11, 19);
  let alerting = 0;
  for (const r of summary.robots) if (showRow(r)) alerting++;
  $("fleet-counts").textContent = `${summary.robots.length} robots, ${alerting} with predicted trouble`;
}

// A replay has no /fleet/summary: the rows come from each robot's twin, as the gateway makes
// its summary rows (fleet_feed.cc SummaryRow).
const replayTrouble = new Map();
function showTwinRow(t) {
  const p = t.prediction, a = t.accuracy;
  replayTrouble.set(t.robot_id, showRow({
    robot_id: t.robot_id, model: t.model, mode: t.mode, silent: t.silent, staleness_ms: t.staleness_ms,
    faults: t.faults.map((f) => f.code), collision_predicted: !!(p && p.collision_predicted),
    collision_in_s: p ? p.collision_in_s : null, limit_violations: p ? p.limit_violations : 0,
    accuracy_1s_m: a && a.scored && a.scored[1] > 0 ? a.mean_base_error_m[1] : null }));
  const alerting = [...replayTrouble.values()].filter((x) => x).length;
  $("fleet-counts").textContent = `${replayTrouble.size} robots, ${alerting} with predicted trouble`;
}

// One robot's row of the fleet table; true when it has predicted trouble.
function showRow(r) {
  let tr = rows.get(r.robot_id);
  if (!tr) {
    tr = document.createElement("tr");
    tr.dataset.robot = r.robot_id;
    tr.onclick = () => select(r.robot_id);
    tr.innerHTML = "<td></td>".repeat(7);
    rows.set(r.robot_id, tr);
    const body = $("robots");
    const after = [...body.children].find((x) => x.dataset.robot > r.robot_id);
    body.insertBefore(tr, after || null);
  }
  const [stale, staleClass] = fmtStale(r.staleness_ms);
  const prediction = r.collision_predicted
    ? [`collision in ${Number(r.collision_in_s).toFixed(1)} s`, "bad"]
    : r.limit_violations > 0 ? [`${r.limit_violations} limit`, "warn"] : ["clear", "ok"];
  const cells = [
    [r.robot_id, ""], [r.model.replace("doppel_", ""), ""],
    [r.silent ? "silent" : r.mode, r.silent ? "bad" : ""], [stale, staleClass],
    [r.faults.length ? r.faults.join(", ") : "-", r.faults.length ? "bad" : ""], prediction,
    [r.accuracy_1s_m === null ? "-" : `${(r.accuracy_1s_m * 100).toFixed(1)} cm`, ""]];
  cells.forEach(([text, cls], i) => {
    const td = tr.children[i];
    if (td.textContent !== text) td.textContent = text;
    td.className = cls;
  });
  return r.collision_predicted || r.limit_violations > 0;
}

// One line per robot and kind of trouble, moved to the top with a count when it repeats (a
// robot heading for a wall raises the same alert on every prediction).
const alertLines = new Map();

function onAlert(a) {
  const p = a.payload || {};
  // Enum fields at their default value are left out of the JSON: kind 0 is PredictedCollision.
  const collision = a.type === "PredictionAlert" && p.kind !== "PredictedJointLimit";
  const kind = a.type === "PredictionAlert" ? (collision ? "collision" : `limit:${p.link}`) :
               a.type === "FaultRaised" || a.type === "FaultCleared" ? `fault:${p.code}` : "silence";
  const what = a.type === "PredictionAlert"
    ? (collision ? `collision with ${p.obstacle || "?"} in ${((p.t_offset_ns || 0) / 1e9).toFixed(2)} s (${p.link || "?"})`
                 : `joint ${p.link} heading to ${Number(p.value || 0).toFixed(2)}, limit ${Number(p.limit || 0).toFixed(2)}`)
    : a.type === "FaultRaised" ? `fault ${p.code}: ${p.message || ""}`
    : a.type === "FaultCleared" ? `fault ${p.code} cleared`
    : a.type === "RobotWentSilent" ? "went silent" : "resumed";
  const good = a.type === "RobotResumed" || a.type === "FaultCleared";
  const key = `${a.robot_id}|${kind}`;
  let line = alertLines.get(key);
  if (!line) {
    const li = document.createElement("li");
    li.innerHTML = "<span></span> <b></b> <span></span> <span class=\"count\"></span>" +
      (replay ? "" : "<a class=\"replay-link\">replay this</a>");
    li.dataset.robot = a.robot_id;
    line = { li, count: 0 };
    alertLines.set(key, line);
  }
  line.count++;
  const [time, robot, text, count] = line.li.children;
  time.textContent = new Date(a.timestamp.sec * 1000).toISOString().substring(11, 19);
  time.className = good ? "ok" : "bad";
  robot.textContent = a.robot_id;
  text.textContent = what;
  count.textContent = line.count > 1 ? `\u00d7${line.count}` : "";
  if (!replay) line.li.children[4].href = replayLink(nsOfStamp(a.timestamp));
  const list = $("alerts");
  list.prepend(line.li);
  while (list.children.length > 30) {
    const last = list.lastChild;
    for (const [k, v] of alertLines) if (v.li === last) alertLines.delete(k);
    last.remove();
  }
}

// The dashboard replaying 15 s either side of an alert, starting 3 s before it.
function replayLink(t) {
  const ms = (ns) => isoOf(ns / NS_PER_MS * NS_PER_MS);
  const q = new URLSearchParams({ token, from: ms(t - 15n * NS_PER_S), to: ms(t + 15n * NS_PER_S),
                                  t: ms(t - 3n * NS_PER_S) });
  return `/?${q}`;
}

// ---- selected robot -------------------------------------------------------------------------
let plot = null;
let plotData = null;
const latestTwins = new Map();  // robot -> its latest twin
const PLOT_POINTS = 300;

function select(robot) {
  if (selected) unsubscribe(`/${selected}/events`);
  selected = robot;
  for (const [id, tr] of rows) tr.classList.toggle("selected", id === robot);
  $("robot-title").textContent = robot;
  $("events").innerHTML = "";
  $("operator").hidden = !canPublish;
  $("command-status").textContent = "";
  if (plot) { plot.destroy(); plot = null; }
  subscribe(`/${robot}/events`, onEvent);
  // At once from its latest twin (a paused replay sends no more).
  if (latestTwins.has(robot)) updatePanel(latestTwins.get(robot));
}

function onEvent(e) {
  const li = document.createElement("li");
  li.textContent = `${new Date(e.timestamp.sec * 1000 + e.timestamp.nsec / 1e6).toISOString().substring(11, 23)} ` +
    `v${e.version} ${e.type}` + (e.payload && e.payload.issued_by ? ` by ${e.payload.issued_by}` : "");
  const list = $("events");
  list.prepend(li);
  while (list.children.length > 40) list.lastChild.remove();
}

function updatePanel(t) {
  const facts = [
    ["model", t.model], ["mode", t.silent ? "silent" : t.mode], ["version", t.version],
    ["staleness", fmtStale(t.staleness_ms)[0]],
    ["base", `${t.base_pose.position.x.toFixed(2)}, ${t.base_pose.position.y.toFixed(2)}`],
    ["faults", t.faults.map((f) => f.code).join(", ") || "none"],
    ["prediction", t.prediction ? (t.prediction.collision_predicted
      ? `collision in ${t.prediction.collision_in_s.toFixed(2)} s with ${t.prediction.collision_obstacle}`
      : `clear, ${t.prediction.limit_violations} limit crossings`) : "none yet"],
    ["alerts", t.alerts]];
  $("robot-facts").innerHTML = "";
  for (const [k, v] of facts) {
    const div = document.createElement("div");
    div.innerHTML = "<span></span><span></span>";
    div.children[0].textContent = k;
    div.children[1].textContent = v;
    $("robot-facts").append(div);
  }
  if (!t.joint_names.length) return;
  // Wheels turn without bound: what an operator reads is how fast they turn. Arms: angles.
  const wheels = t.joint_names.every((n) => /wheel/.test(n));
  const values = wheels ? t.joint_velocity : t.joint_position;
  if (!plot) {
    plotData = [[], ...t.joint_names.map(() => [])];
    const colors = ["#58a6ff", "#3fb950", "#d29922", "#f85149", "#bc8cff", "#39c5cf", "#e3b341", "#ff7b72"];
    plot = new uPlot({
      width: 350, height: 220, title: wheels ? "wheel velocities (rad/s)" : "joint positions (rad)",
      scales: { x: { time: true } },
      axes: [{ stroke: "#8593a3", grid: { stroke: "#222b35" } }, { stroke: "#8593a3", grid: { stroke: "#222b35" } }],
      series: [{}, ...t.joint_names.map((n, i) => ({ label: n.replace("_joint", ""), stroke: colors[i % colors.length] }))],
    }, plotData, $("joint-plot"));
  }
  plotData[0].push(t.timestamp.sec + t.timestamp.nsec / 1e9);
  values.forEach((p, i) => plotData[i + 1] && plotData[i + 1].push(p));
  if (plotData[0].length > PLOT_POINTS) plotData.forEach((s) => s.shift());
  plot.setData(plotData);
}

$("cmd-v").oninput = () => ($("cmd-v-out").textContent = $("cmd-v").value);
$("cmd-w").oninput = () => ($("cmd-w-out").textContent = $("cmd-w").value);
$("send-velocity").onclick = () => selected && publish(`/${selected}/cmd_vel`, {
  linear: { x: Number($("cmd-v").value), y: 0, z: 0 }, angular: { x: 0, y: 0, z: Number($("cmd-w").value) } });
$("stop").onclick = () => selected && publish(`/${selected}/stop`, {});

// ---- scene ----------------------------------------------------------------------------------
const view = { robots: new Map(), armCells: new Map() };
const sceneEl = $("scene");
let renderer = null;
const scene = new THREE.Scene();
scene.background = new THREE.Color(0x0f1419);
const camera = new THREE.PerspectiveCamera(45, 1, 0.1, 500);
camera.up.set(0, 0, 1);
camera.position.set(0, -22, 20);
camera.lookAt(0, 0, 0);
scene.add(new THREE.HemisphereLight(0xffffff, 0x334455, 2.0));
const sun = new THREE.DirectionalLight(0xffffff, 1.2);
sun.position.set(5, -5, 10);
scene.add(sun);
const grid = new THREE.GridHelper(30, 30, 0x2a3440, 0x1d252e);
grid.rotation.x = Math.PI / 2;
scene.add(grid);

try {
  renderer = new THREE.WebGLRenderer({ antialias: true, preserveDrawingBuffer: true });
  sceneEl.append(renderer.domElement);
} catch (e) {
  sceneEl.textContent = `3D view unavailable here (${e.message}); the rest of the dashboard works.`;
}

function resize() {
  if (!renderer) return;
  const w = sceneEl.clientWidth, h = sceneEl.clientHeight;
  renderer.setSize(w, h);
  camera.aspect = w / Math.max(h, 1);
  camera.updateProjectionMatrix();
}
window.addEventListener("resize", resize);

async function loadScene() {
  const s = await (await fetch("/api/scene")).json();
  const material = new THREE.MeshStandardMaterial({ color: 0x56606b });
  for (const o of s.obstacles || []) {
    let mesh;
    if (o.type === "wall") {
      const [x0, y0] = o.from, [x1, y1] = o.to;
      const len = Math.hypot(x1 - x0, y1 - y0);
      mesh = new THREE.Mesh(new THREE.BoxGeometry(len, o.thickness || 0.1, o.height || 2), material);
      mesh.position.set((x0 + x1) / 2, (y0 + y1) / 2, (o.height || 2) / 2);
      mesh.rotation.z = Math.atan2(y1 - y0, x1 - x0);
    } else if (o.type === "cylinder") {
      mesh = new THREE.Mesh(new THREE.CylinderGeometry(o.radius, o.radius, o.height, 24), material);
      mesh.rotation.x = Math.PI / 2;
      mesh.position.set(...o.position);
    } else {
      mesh = new THREE.Mesh(new THREE.BoxGeometry(...o.size), material);
      mesh.position.set(...o.position);
      mesh.rotation.z = o.yaw || 0;
    }
    scene.add(mesh);
  }
}

// Arms all stand at the site origin in their twins; the scene draws each in a cell of its own
// along y = 10 so they can be told apart.
function armOffset(robot) {
  if (!view.armCells.has(robot)) view.armCells.set(robot, view.armCells.size);
  const i = view.armCells.get(robot);
  return new THREE.Vector3(-9 + 2.5 * (i % 8), 10 + 2.5 * Math.floor(i / 8), 0);
}

const TRAIL_POINTS = 4000;

function addTrailPoint(r, x, y) {
  const attr = r.trail.geometry.getAttribute("position");
  const a = attr.array;
  const n = r.trailLength;
  if (n > 0 && a[3 * n - 3] === x && a[3 * n - 2] === y) return;
  if (n === TRAIL_POINTS) {  // full: the oldest quarter goes
    a.copyWithin(0, 3 * (TRAIL_POINTS / 4));
    r.trailLength = n - TRAIL_POINTS / 4;
  }
  a.set([x, y, 0.03], 3 * r.trailLength);
  r.trailLength++;
  attr.needsUpdate = true;
  r.trail.geometry.setDrawRange(0, r.trailLength);
}

function clearTrail(r) {
  r.trailLength = 0;
  r.trail.geometry.setDrawRange(0, 0);
}

function robotView(t) {
  let r = view.robots.get(t.robot_id);
  if (r) return r;
  r = { arm: t.model === "doppel_arm6", group: new THREE.Group() };
  if (r.arm) {
    r.line = new THREE.Line(new THREE.BufferGeometry(), new THREE.LineBasicMaterial({ color: 0x58a6ff }));
    r.group.add(r.line);
    const pedestal = new THREE.Mesh(new THREE.CylinderGeometry(0.25, 0.3, 0.1, 16),
                                    new THREE.MeshStandardMaterial({ color: 0x35506f }));
    pedestal.rotation.x = Math.PI / 2;
    r.group.add(pedestal);
    r.group.position.copy(armOffset(t.robot_id));
  } else {
    r.body = new THREE.Mesh(new THREE.BoxGeometry(0.6, 0.45, 0.3), new THREE.MeshStandardMaterial({ color: 0x3fb950 }));
    r.body.position.z = 0.15;
    const nose = new THREE.Mesh(new THREE.BoxGeometry(0.2, 0.1, 0.1), new THREE.MeshStandardMaterial({ color: 0xffffff }));
    nose.position.set(0.35, 0, 0.2);
    r.group.add(r.body, nose);
  }
  r.path = new THREE.Line(new THREE.BufferGeometry(), new THREE.LineBasicMaterial({ color: 0xd29922 }));
  // The path driven (bases): the poses as they came, in a buffer drawn up to its fill.
  r.trail = new THREE.Line(new THREE.BufferGeometry(), new THREE.LineBasicMaterial({ color: 0x58a6ff }));
  r.trail.geometry.setAttribute("position", new THREE.BufferAttribute(new Float32Array(TRAIL_POINTS * 3), 3));
  r.trail.geometry.setDrawRange(0, 0);
  r.trail.frustumCulled = false;
  r.trailLength = 0;
  scene.add(r.group, r.path, r.trail);
  view.robots.set(t.robot_id, r);
  return r;
}

function onTwin(t, stamp, topic, stampNs) {
  const r = robotView(t);
  if (r.arm) {
    const points = t.links.map((l) => new THREE.Vector3(l.x, l.y, l.z));
    r.line.geometry.setFromPoints(points);
  } else {
    const p = t.base_pose.position, q = t.base_pose.orientation;
    r.group.position.set(p.x, p.y, 0);
    r.group.quaternion.set(q.x, q.y, q.z, q.w);
    const danger = t.prediction && t.prediction.collision_predicted;
    r.body.material.color.set(t.silent ? 0x6e7681 : danger ? 0xf85149 : 0x3fb950);
    if (!replay) addTrailPoint(r, p.x, p.y);
  }
  const p = t.base_pose.position, q = t.base_pose.orientation;
  debug.robots[t.robot_id] = { x: p.x, y: p.y, z: p.z, qx: q.x, qy: q.y, qz: q.z, qw: q.w,
                               stampNs: stampNs === undefined ? null : String(stampNs) };
  latestTwins.set(t.robot_id, t);
  if (replay) showTwinRow(t);
  if (t.robot_id === selected) updatePanel(t);
}

// Replay: the path driven, from /<robot>/pose as it is replayed.
function onPose(m, stamp, topic) {
  const r = view.robots.get(topic.split("/")[1]);
  if (!r || r.arm) return;
  addTrailPoint(r, m.pose.position.x, m.pose.position.y);
}

// A replay seek (or a new replay session: timeNs null): every subscribed channel comes again
// as it was at timeNs, so what was drawn or listed from before goes.
function onSeek(timeNs) {
  for (const r of view.robots.values()) {
    if (r.arm) continue;
    clearTrail(r);
    r.path.geometry.setFromPoints([]);
  }
  for (const line of alertLines.values()) line.li.remove();
  alertLines.clear();
  $("events").innerHTML = "";
  if (plot) { plot.destroy(); plot = null; }
}

function onPrediction(p, stamp, topic) {
  const r = view.robots.get(topic.split("/")[1]);
  if (!r || r.arm) return;
  r.path.geometry.setFromPoints(p.poses.map((x) => new THREE.Vector3(x.position.x, x.position.y, 0.05)));
  r.path.material.color.set(p.collision ? 0xf85149 : 0xd29922);
}

function animate() {
  requestAnimationFrame(animate);
  if (!renderer) return;
  if (renderer.domElement.width !== sceneEl.clientWidth * devicePixelRatio) resize();
  renderer.render(scene, camera);
}

// For tests and the console: what the page shows, by robot id; the replay's timeline.
const debug = {
  mode: replay ? "replay" : "live",
  robots: {},
  get replay() { return replay ? replay.debug() : null; },
  get trails() {
    const out = {};
    for (const [id, r] of view.robots) if (!r.arm) out[id] = r.trailLength;
    return out;
  },
  get paths() {
    const out = {};
    for (const [id, r] of view.robots) {
      if (!r.arm) out[id] = r.path.geometry.getAttribute("position")?.count || 0;
    }
    return out;
  },
};
window.__doppel = debug;

loadScene().catch((e) => console.warn("scene:", e));
resize();
animate();
connect();
