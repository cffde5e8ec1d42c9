// Replay over Foxglove WebSocket with playback control (capability playbackControl), as a raw
// `ws` client that encodes PlaybackControlRequest and decodes PlaybackState, Time and Message
// Data by hand, and as @foxglove/ws-protocol's FoxgloveClient (which has no playback).
// A simulated fleet makes ten seconds of history; then `doppel up` is started again on the same
// data with two new robots on a new domain (live data meanwhile), and /replay sessions over the
// first run's history are checked: serverInfo and channels, the paused start with the state at
// `from`, seeks (state at T = `doppel state --at T`, clamping, time frames going back), speed
// refusals and clamps, malformed requests, Ended and play-after-Ended, no skipped events at 10x
// (= `doppel read --since --until`), each /twin while playing being the state at its stamp,
// independent sessions, a live client unaffected, two sessions at 100x delivering the same
// (topic, timestamp, payload) sequence, and the robots=/types=/relative window parameters.
"use strict";
const { FoxgloveClient } = require("@foxglove/ws-protocol");
const WebSocket = require("ws");
const { spawn, spawnSync, execFile } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const {
  args, domainFor, sleep, waitFor, check, run, tempDir, track, playbackControlFrame: controlFrame,
} = require("./lib");

const ROBOTS = 4;
const NS_PER_MS = 1000000n;
const NS_PER_S = 1000000000n;
const SDK = "foxglove.sdk.v1";
const OLD = "foxglove.websocket.v1";
const OBSERVATIONS = new Set(["JointStateObserved", "PoseObserved"]);
const LEAVES = ["twin", "twin_fb", "joint_states", "pose", "prediction", "events", "prediction_vs_actual"];

let checks = 0;
function ok(condition, message) {
  check(condition, message);
  checks++;
  console.log(`  ok ${message}`);
}

// As the dashboard spells a moment (ISO 8601 with nanoseconds).
function isoOf(ns) {
  const iso = new Date(Number(ns / NS_PER_MS)).toISOString();
  return `${iso.slice(0, -1)}${String(ns % NS_PER_MS).padStart(6, "0")}Z`;
}
const secNsec = (ns) => ({ sec: Number(ns / NS_PER_S), nsec: Number(ns % NS_PER_S) });
const nsOf = (t) => BigInt(t.sec) * NS_PER_S + BigInt(t.nsec);
const rel = (ns, base) => `${Number(ns - base) / 1e9}s`;

// ---- Frames by hand -------------------------------------------------------------------------

const STATUS = ["playing", "paused", "buffering", "ended"];

// A replay (or live) session seen through `ws`: every frame kept in arrival order.
class RawClient {
  constructor(url, protocols = [SDK, OLD]) {
    this.url = url;
    this.ws = new WebSocket(url, protocols);
    this.frames = [];
    this.serverInfo = null;
    this.channels = new Map();  // topic -> channel
    this.topicOf = new Map();   // channel id -> topic
    this.subs = new Map();      // subscription id -> topic
    this.nextSub = 1;
    this.advertiseOps = 0;
    this.clashes = [];
    this.closed = false;
    this.opened = new Promise((resolve, reject) => {
      this.ws.on("open", resolve);
      this.ws.on("error", reject);
      this.ws.on("unexpected-response", (req, res) => reject(new Error(`${url}: HTTP ${res.statusCode}`)));
    });
    this.ws.on("close", () => (this.closed = true));
    this.ws.on("message", (data, isBinary) => this.onFrame(data, isBinary));
  }
  onFrame(data, isBinary) {
    const at = Date.now();
    if (!isBinary) {
      const j = JSON.parse(data.toString());
      if (j.op === "serverInfo") this.serverInfo = j;
      if (j.op === "advertise") {
        this.advertiseOps++;
        for (const c of j.channels) {
          // A channel id names one topic for the session's life: a clash is kept aside, not obeyed.
          const known = this.channels.get(c.topic);
          if ((this.topicOf.has(c.id) && this.topicOf.get(c.id) !== c.topic) || (known && known.id !== c.id)) {
            this.clashes.push(`${c.id} ${c.topic} (was ${this.topicOf.get(c.id) || `id ${known.id}`})`);
            continue;
          }
          this.channels.set(c.topic, c);
          this.topicOf.set(c.id, c.topic);
        }
      }
      this.frames.push({ k: j.op, j, at });
      return;
    }
    const b = Buffer.from(data);
    const op = b.readUInt8(0);
    if (op === 0x01) {
      const sub = b.readUInt32LE(1);
      this.frames.push({ k: "msg", sub, topic: this.subs.get(sub), ts: b.readBigUInt64LE(5),
                         text: b.subarray(13).toString("utf8"), at });
    } else if (op === 0x02) {
      this.frames.push({ k: "time", ts: b.readBigUInt64LE(1), at });
    } else if (op === 0x05) {
      const idLen = b.readUInt32LE(15);
      this.frames.push({ k: "state", status: b.readUInt8(1), time: b.readBigUInt64LE(2),
                         speed: b.readFloatLE(10), didSeek: b.readUInt8(14),
                         idLen, id: b.subarray(19, 19 + idLen).toString("utf8"),
                         size: b.length, at });
    } else {
      this.frames.push({ k: `binary 0x${op.toString(16)}`, at });
    }
  }
  since(mark, kind) {
    return this.frames.slice(mark).filter((f) => !kind || f.k === kind);
  }
  subscribe(topics) {
    const subscriptions = [];
    for (const topic of topics) {
      const c = this.channels.get(topic);
      check(c, `${this.url}: channel ${topic} advertised`);
      const id = this.nextSub++;
      this.subs.set(id, topic);
      subscriptions.push({ id, channelId: c.id });
    }
    this.ws.send(JSON.stringify({ op: "subscribe", subscriptions }));
  }
  send(buffer) {
    this.ws.send(buffer);
  }
  // Sends a request and resolves with the PlaybackState that answers it (and the mark before).
  async request(req, what) {
    const mark = this.frames.length;
    this.send(controlFrame(req));
    const state = await waitFor(`PlaybackState answering '${req.id}' (${what})`, () =>
      this.since(mark, "state").find((s) => s.id === req.id), 10000);
    return { mark, state };
  }
  messages(topic, mark = 0) {
    return this.since(mark, "msg").filter((m) => m.topic === topic);
  }
  close() {
    if (!this.closed) this.ws.close();
  }
}

// The HTTP status and body of a refused upgrade.
function refusal(url, protocols = [SDK]) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    ws.on("open", () => { ws.close(); reject(new Error(`${url} was accepted`)); });
    ws.on("unexpected-response", (req, res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    ws.on("error", () => {});
  });
}

function foxgloveClient(url) {
  const ws = new WebSocket(url, [FoxgloveClient.SUPPORTED_SUBPROTOCOL]);
  const client = new FoxgloveClient({ ws });
  const s = { ws, client, serverInfo: null, channels: new Map(), messages: new Map(), times: [],
              errors: [], statuses: [], clashes: [] };
  client.on("serverInfo", (i) => (s.serverInfo = i));
  client.on("advertise", (cs) => cs.forEach((c) => {
    const clash = [...s.channels.values()].find((k) => (k.id === c.id) !== (k.topic === c.topic));
    if (clash) s.clashes.push(`${c.id} ${c.topic} (was ${clash.id} ${clash.topic})`);
    else s.channels.set(c.topic, c);
  }));
  client.on("status", (st) => s.statuses.push(st));
  client.on("time", (t) => s.times.push(t.timestamp));
  client.on("error", (e) => s.errors.push(String(e && e.message)));
  const decoder = new TextDecoder();
  client.on("message", ({ subscriptionId, timestamp, data }) => {
    const list = s.messages.get(subscriptionId) || [];
    list.push({ timestamp, json: JSON.parse(decoder.decode(data)), at: Date.now() });
    s.messages.set(subscriptionId, list);
  });
  s.sub = (topic) => client.subscribe(s.channels.get(topic).id);
  return s;
}

// ---- The store's answers ----------------------------------------------------------------------

function readEvents(doppel, data, extra = []) {
  const r = spawnSync(doppel, ["read", "--data", path.join(data, "log"), "--format", "jsonl", ...extra],
                      { maxBuffer: 1 << 30 });
  check(r.status === 0, `doppel read ${extra.join(" ")}: ${r.stderr}`);
  return r.stdout.toString().split("\n").filter((l) => l).map((l) => {
    const e = JSON.parse(l);
    e.recorded = BigInt(/"recorded_ns":(\d+)/.exec(l)[1]);  // exactly: JSON numbers are doubles
    return e;
  });
}

function stateAt(doppel, data, robot, atNs) {
  return new Promise((resolve, reject) => {
    execFile(doppel, ["state", "--data", data, "--robot", robot, "--at", String(atNs)],
             (err, stdout, stderr) => (err ? reject(new Error(`doppel state: ${stderr}`))
                                           : resolve(JSON.parse(stdout))));
  });
}

// /<robot>/twin as the replay sent it against `doppel state --robot R --at T`.
function sameTwin(twin, state, what) {
  check(twin.robot_id === state.robot_id, `${what}: robot ${twin.robot_id} vs ${state.robot_id}`);
  check(twin.version === state.version, `${what}: version ${twin.version} vs doppel state's ${state.version}`);
  check(twin.position === state.position, `${what}: position ${twin.position} vs doppel state's ${state.position}`);
  check(twin.mode === state.mode, `${what}: mode ${twin.mode} vs doppel state's ${state.mode}`);
  const names = Object.keys(state.joints).sort();
  check(JSON.stringify([...twin.joint_names].sort()) === JSON.stringify(names),
        `${what}: joints ${twin.joint_names} vs ${names}`);
  twin.joint_names.forEach((n, i) => {
    const want = state.joints[n].position;
    check(Math.abs(twin.joint_position[i] - want) <= 1e-9,
          `${what}: joint ${n} at ${twin.joint_position[i]} vs doppel state's ${want}`);
  });
  const p = twin.base_pose.position;
  const got = [p.x, p.y, p.z];
  got.forEach((v, i) => check(Math.abs(v - state.base.position[i]) <= 1e-9,
                              `${what}: base position ${got} vs doppel state's ${state.base.position}`));
}

// `doppel up` again on the first run's data directory, with live robots on a new domain.
async function upAgain(doppel, data, robots, salt) {
  const proc = track(spawn(doppel, ["up", "--data", data, "--port", "0", "--robots", String(robots),
                                    "--rate", "20", "--domain", String(domainFor(salt)), "--for", "300s"],
                           { stdio: ["ignore", "pipe", "pipe"] }));
  let stdout = "", stderr = "";
  proc.stdout.on("data", (d) => (stdout += d));
  proc.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
  await waitFor("doppel up (again) to print its URLs", () => /dashboard:\s+http/.test(stdout) || proc.exitCode !== null);
  if (proc.exitCode !== null) throw new Error(`doppel up exited: ${stderr}`);
  const port = Number(new URL(stdout.match(/dashboard:\s+(http:\/\/\S+)/)[1]).port);
  return {
    proc,
    base: `127.0.0.1:${port}`,
    stderr: () => stderr,
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGINT");
      const r = await exited;
      if (r.code !== 0) throw new Error(`doppel up exited with ${r.code} ${r.signal}: ${stderr.slice(-2000)}`);
    },
  };
}

// Plays a fresh session over the window at 100x and returns its (topic, stamp, payload) sequence
// of /events and /twin messages.
async function playToEnd(url, robots, speed, id) {
  const c = new RawClient(url);
  await c.opened;
  await waitFor("serverInfo and channels", () => c.serverInfo && c.channels.size > 0);
  c.subscribe(robots.flatMap((r) => [`/${r}/events`, `/${r}/twin`]));
  await waitFor("the state at from", () => c.since(0, "msg").length >= robots.length);
  const { mark, state } = await c.request({ command: 0, speed, seek: null, id }, "play");
  check(state.status === 0, `${id}: playing, got ${STATUS[state.status]}`);
  const ended = await waitFor(`${id}: Ended`, () => c.since(mark, "state").find((s) => s.status === 3), 30000);
  await sleep(300);  // what the last tick sent after its state
  const seq = c.frames.filter((f) => f.k === "msg").map((m) => `${m.topic} ${m.ts} ${m.text}`);
  c.close();
  return { seq, ended, client: c };
}

run(async () => {
  const { doppel } = args();
  const t00 = Date.now();

  // 1. History: ten seconds of a simulated fleet.
  const data = tempDir();
  const first = spawnSync(doppel, ["up", "--data", data, "--port", "0", "--robots", String(ROBOTS),
                                   "--rate", "20", "--domain", String(domainFor(11)), "--for", "10s"],
                          { timeout: 60000 });
  check(first.status === 0, `first doppel up --for 10s exited ${first.status}: ${first.stderr}`);
  const all = readEvents(doppel, data);
  const robots = [...new Set(all.filter((e) => e.stream.startsWith("robot-")).map((e) => e.stream.slice(6)))].sort();
  ok(robots.length === ROBOTS, `history of ${robots.length} robots (${robots}), ${all.length} events`);
  const times = new Set(all.map((e) => e.recorded));
  const free = (t, step) => { while (times.has(t) || times.has(t - 1n)) t += step; return t; };
  const t0 = all[0].recorded;
  const tLast = all[all.length - 1].recorded;
  const F = free(t0 + 1500n * NS_PER_MS, 1n);    // from: no event at F, so `at F` is unambiguous
  const T = free(tLast - 1000n * NS_PER_MS, -1n);  // to: before the end of the history
  const inWindow = readEvents(doppel, data, ["--since", String(F), "--until", String(T)]);
  const inWindowIso = readEvents(doppel, data, ["--since", isoOf(F), "--until", isoOf(T)]);
  ok(inWindow.length > 100 && inWindow.every((e) => e.recorded >= F && e.recorded <= T) &&
     inWindow.length === inWindowIso.length,
     `doppel read --since/--until (ns and ISO): ${inWindow.length} events in the window ${rel(F, t0)}..${rel(T, t0)}`);
  const expectedEvents = inWindow.filter((e) => e.stream.startsWith("robot-") && !OBSERVATIONS.has(e.type));
  const base = robots.find((r) => r.includes("_base_"));
  const arm = robots.find((r) => r.includes("_arm_"));
  // Seek targets: forwards, backwards, exactly at an observation of the base, the clamped ends.
  const poseAt = inWindow.find((e) => e.stream === `robot-${base}` && e.type === "PoseObserved" &&
                                      e.recorded > F + 3000n * NS_PER_MS).recorded;
  const S1 = F + 5300n * NS_PER_MS + 123n;
  const S2 = F + 1700n * NS_PER_MS + 7n;
  const targets = [F, S1, S2, poseAt, T];
  const states = new Map();
  await Promise.all(targets.flatMap((t) => robots.map(async (r) =>
    states.set(`${r}@${t}`, await stateAt(doppel, data, r, t)))));
  const want = (r, t) => states.get(`${r}@${t}`);
  ok(want(base, poseAt).version > want(base, F).version,
     `doppel state --at computed for ${robots.length} robots at ${targets.length} moments`);

  // 2. The same data served again, with two live robots on a new domain.
  const up = await upAgain(doppel, data, 2, 12);
  const clients = [];
  try {
    const tokens = {};
    for (const line of fs.readFileSync(path.join(data, "tokens"), "utf8").split("\n")) {
      const [token, role] = line.split(" ");
      if (token && !token.startsWith("#")) tokens[role] = token;
    }
    const token = tokens.viewer;
    const live = `ws://${up.base}/?token=${token}`;
    const replay = (q) => `ws://${up.base}/replay?${q}&token=${token}`;
    const windowNs = `from=${F}&to=${T}`;

    // Refusals: no from, a from that is no moment, no Foxglove subprotocol.
    const noFrom = await refusal(replay(`to=${T}`));
    ok(noFrom.status === 400 && /from/.test(noFrom.body), `/replay without from: HTTP ${noFrom.status} ${noFrom.body.trim()}`);
    const badFrom = await refusal(replay(`from=yesterday-ish&to=${T}`));
    ok(badFrom.status === 400, `/replay?from=yesterday-ish: HTTP ${badFrom.status} ${badFrom.body.trim()}`);
    const noProto = await refusal(replay(windowNs), []);
    ok(noProto.status === 400, `/replay with no subprotocol: HTTP ${noProto.status} ${noProto.body.trim()}`);

    // Subprotocols: either name, the first the client offered.
    for (const [url, where] of [[live, "/"], [replay(windowNs), "/replay"]]) {
      for (const offer of [[SDK], [SDK, OLD], [OLD, SDK], [OLD]]) {
        const c = new RawClient(url, offer);
        await c.opened;
        await waitFor(`serverInfo on ${where} offering ${offer}`, () => c.serverInfo);
        ok(c.ws.protocol === offer[0], `${where} offered [${offer}] answers ${c.ws.protocol}`);
        c.close();
      }
    }

    // The live client (the library's FoxgloveClient) keeps receiving live data throughout.
    const liveClient = foxgloveClient(live);
    clients.push(liveClient.client);
    await waitFor("live serverInfo", () => liveClient.serverInfo);
    ok(liveClient.ws.protocol === OLD && liveClient.serverInfo.capabilities.includes("time") &&
       !liveClient.serverInfo.capabilities.includes("playbackControl"),
       `FoxgloveClient on / (${liveClient.ws.protocol}): live serverInfo, capabilities ${liveClient.serverInfo.capabilities}`);
    const liveTwinTopic = await waitFor("a live robot's twin channel", () =>
      [...liveClient.channels.keys()].find((t) => t.endsWith("/twin") && t.includes("_arm_")));
    const liveSub = liveClient.sub(liveTwinTopic);
    await waitFor("live twin messages", () => (liveClient.messages.get(liveSub) || []).length >= 3);
    const liveFresh = liveClient.messages.get(liveSub).filter((m) => m.timestamp > tLast);
    ok(liveFresh.length >= 3, `FoxgloveClient on /: ${liveTwinTopic} live messages stamped after the history`);
    const liveBefore = liveClient.messages.get(liveSub).length;

    // The library's FoxgloveClient on /replay: serverInfo, channels, state at from, playing.
    const fox = foxgloveClient(replay(`from=${isoOf(F)}&to=${T}`));
    clients.push(fox.client);
    await waitFor("replay serverInfo (FoxgloveClient)", () => fox.serverInfo && fox.channels.size > 0);
    ok(fox.ws.protocol === OLD && fox.serverInfo.capabilities.includes("playbackControl") &&
       fox.serverInfo.capabilities.includes("time"),
       `FoxgloveClient on /replay (${fox.ws.protocol}): capabilities ${fox.serverInfo.capabilities}`);
    ok(nsOf(fox.serverInfo.dataStartTime) === F && nsOf(fox.serverInfo.dataEndTime) === T,
       `from as ISO ${isoOf(F)}: dataStartTime ${JSON.stringify(fox.serverInfo.dataStartTime)}, dataEndTime ${JSON.stringify(fox.serverInfo.dataEndTime)}`);
    const foxTwin = fox.sub(`/${base}/twin`);
    const foxEvents = fox.sub(`/${base}/events`);
    await waitFor("FoxgloveClient: the twin at from", () => (fox.messages.get(foxTwin) || []).length >= 1);
    const foxFirst = fox.messages.get(foxTwin)[0];
    ok(foxFirst.timestamp === F, `FoxgloveClient: /${base}/twin sent at once on subscribe, stamped from (${foxFirst.timestamp})`);
    sameTwin(foxFirst.json, want(base, F), `FoxgloveClient /${base}/twin at from`);
    ok(true, `FoxgloveClient: /${base}/twin at from is doppel state --at from (version ${foxFirst.json.version})`);
    fox.ws.send(controlFrame({ command: 0, speed: 20, id: "fox-play" }));
    await waitFor("FoxgloveClient: events and time while playing", () =>
      (fox.messages.get(foxEvents) || []).length >= 3 && fox.times.length >= 3);
    const foxTimes = fox.times.map(BigInt);
    ok(foxTimes.every((t, i) => t >= F && t <= T && (i === 0 || t >= foxTimes[i - 1])),
       `FoxgloveClient: ${fox.times.length} time frames within the window, never back; ${fox.messages.get(foxEvents).length} /${base}/events messages`);
    ok(fox.clashes.length === 0,
       `FoxgloveClient on /replay: every advertised channel id names one topic (re-advertised: ${fox.clashes.slice(0, 4).join("; ")}${fox.clashes.length > 4 ? ` and ${fox.clashes.length - 4} more` : ""})`);
    fox.client.close();

    // Session A (raw, foxglove.sdk.v1) and session B on the same window; B stays paused.
    const A = new RawClient(replay(windowNs), [SDK]);
    const B = new RawClient(replay(windowNs), [SDK]);
    clients.push(A, B);
    await Promise.all([A.opened, B.opened]);
    await waitFor("A's serverInfo and channels", () => A.serverInfo && A.channels.size > 0);
    await waitFor("B's serverInfo and channels", () => B.serverInfo && B.channels.size > 0);
    const info = A.serverInfo;
    ok(A.ws.protocol === SDK, `raw client offered ${SDK} and got it`);
    ok(info.capabilities.includes("time") && info.capabilities.includes("playbackControl"),
       `replay serverInfo capabilities ${JSON.stringify(info.capabilities)}`);
    const sameSecNsec = (a, b) => a.sec === b.sec && a.nsec === b.nsec;
    ok(sameSecNsec(info.dataStartTime, secNsec(F)) && sameSecNsec(info.dataEndTime, secNsec(T)),
       `dataStartTime ${JSON.stringify(info.dataStartTime)} = from, dataEndTime ${JSON.stringify(info.dataEndTime)} = to`);
    const firstOps = A.frames.map((f) => f.k);
    ok(firstOps[0] === "serverInfo" && firstOps[1] === "advertise", `serverInfo then advertise: ${firstOps.slice(0, 3)}`);
    const wantTopics = ["/fleet/alerts", ...robots.flatMap((r) => LEAVES.map((l) => `/${r}/${l}`))];
    const missing = wantTopics.filter((t) => !A.channels.has(t));
    ok(missing.length === 0, `advertised ${A.channels.size} channels: every robot's ${LEAVES.join(", ")} and /fleet/alerts (missing: ${missing})`);
    await sleep(300);
    ok(A.clashes.length === 0 && B.clashes.length === 0 && !A.channels.has("/fleet/summary"),
       `replay sessions are advertised their own channels only, ids never reused (re-advertised: ${A.clashes.slice(0, 4).join("; ")}${A.clashes.length > 4 ? ` and ${A.clashes.length - 4} more` : ""})`);

    // Paused at from with the fleet state at from: subscribing sends each channel's latest value.
    const aTopics = [...robots.flatMap((r) => [`/${r}/twin`, `/${r}/events`]), `/${arm}/joint_states`,
                     `/${base}/pose`, "/fleet/alerts"];
    A.subscribe(aTopics);
    B.subscribe(robots.map((r) => `/${r}/twin`));
    await waitFor("A: every robot's twin at from", () => robots.every((r) => A.messages(`/${r}/twin`).length >= 1));
    await waitFor("B: every robot's twin at from", () => robots.every((r) => B.messages(`/${r}/twin`).length >= 1));
    await waitFor("A: joint_states and pose at from", () =>
      A.messages(`/${arm}/joint_states`).length >= 1 && A.messages(`/${base}/pose`).length >= 1);
    for (const r of robots) {
      const m = A.messages(`/${r}/twin`)[0];
      check(m.ts === F, `/${r}/twin at from stamped ${m.ts}, not from ${F}`);
      sameTwin(JSON.parse(m.text), want(r, F), `/${r}/twin at from`);
    }
    ok(true, `on subscribe while paused: each robot's /twin at once, stamped from, = doppel state --at from`);
    const js = JSON.parse(A.messages(`/${arm}/joint_states`)[0].text);
    const armF = want(arm, F);
    ok(js.name.every((n, i) => Math.abs(js.position[i] - armF.joints[n].position) <= 1e-9),
       `/${arm}/joint_states at from = doppel state's joints`);
    const pose = JSON.parse(A.messages(`/${base}/pose`)[0].text).pose.position;
    ok(Math.abs(pose.x - want(base, F).base.position[0]) <= 1e-9, `/${base}/pose at from = doppel state's base pose`);
    const pausedMark = A.frames.length;
    await sleep(400);
    ok(A.since(pausedMark).length === 0, `paused: nothing more in 400 ms (got ${A.since(pausedMark).map((f) => f.k)})`);

    // A seek while paused: answered with did_seek, a time frame at T, the state at T re-sent.
    const seekTo = async (c, t, command, id, what) => {
      const { mark, state } = await c.request({ command, speed: 1, seek: t, id }, what);
      await waitFor(`${what}: every subscribed twin re-sent`, () =>
        robots.every((r) => c.messages(`/${r}/twin`, mark).length >= 1));
      return { mark, state };
    };
    let r1 = await seekTo(A, S1, 1, "seek-forward", "seek forward while paused");
    ok(r1.state.status === 1 && r1.state.didSeek === 1 && r1.state.time === S1 && r1.state.id === "seek-forward",
       `seek to ${rel(S1, F)} paused: PlaybackState ${STATUS[r1.state.status]}, did_seek ${r1.state.didSeek}, current_time ${rel(r1.state.time, F)}, id ${r1.state.id}`);
    ok(A.since(r1.mark, "time").some((f) => f.ts === S1), "a time frame at the seek target");
    for (const r of robots) {
      const m = A.messages(`/${r}/twin`, r1.mark)[0];
      check(m.ts <= S1 && m.ts >= F, `/${r}/twin after the seek stamped ${m.ts}, outside [from, ${S1}]`);
      sameTwin(JSON.parse(m.text), want(r, S1), `/${r}/twin after seek to S1`);
    }
    ok(true, `after the seek every robot's /twin = doppel state --at ${rel(S1, F)} (joints, base position, mode, version, position)`);
    ok(A.messages(`/${arm}/joint_states`, r1.mark).length >= 1 && A.messages(`/${base}/pose`, r1.mark).length >= 1,
       "joint_states and pose re-sent after the seek");

    // Independence: B seeks elsewhere; A hears nothing; B's time is its own.
    const quiet = A.frames.length;
    const rb = await seekTo(B, S2, 1, "b-seek", "B seeks");
    ok(rb.state.time === S2 && rb.state.didSeek === 1, `session B seeks to ${rel(S2, F)} by itself`);
    for (const r of robots) sameTwin(JSON.parse(B.messages(`/${r}/twin`, rb.mark)[0].text), want(r, S2), `B: /${r}/twin at S2`);
    await sleep(200);
    ok(A.since(quiet).length === 0, `session A got nothing from B's seek (${A.since(quiet).map((f) => f.k)})`);

    // A seek backwards: the time frame goes back, the state is the earlier one.
    let r2 = await seekTo(A, S2, 1, "seek-back", "seek backwards");
    const back = A.since(r2.mark, "time");
    ok(r2.state.time === S2 && r2.state.didSeek === 1 && back.length >= 1 && back[0].ts === S2 && back[0].ts < S1,
       `seek backwards to ${rel(S2, F)}: time frame goes back to ${rel(back[0].ts, F)}`);
    for (const r of robots) sameTwin(JSON.parse(A.messages(`/${r}/twin`, r2.mark)[0].text), want(r, S2), `/${r}/twin after seek back`);
    ok(true, `after seeking back every robot's /twin = doppel state --at ${rel(S2, F)}`);

    // A seek exactly onto an observation's time: the state includes that observation.
    let r3 = await seekTo(A, poseAt, 1, "seek-exact", "seek onto an event");
    sameTwin(JSON.parse(A.messages(`/${base}/twin`, r3.mark)[0].text), want(base, poseAt), `/${base}/twin at an observation's time`);
    ok(r3.state.time === poseAt, `seek onto an observation at ${rel(poseAt, F)}: /${base}/twin version ${want(base, poseAt).version} = doppel state --at`);

    // Clamping: before the window -> from; after it -> to.
    let r4 = await seekTo(A, F - 10n * NS_PER_S, 1, "seek-early", "seek before the window");
    ok(r4.state.time === F && r4.state.didSeek === 1, `seek 10 s before from clamps to from (${rel(r4.state.time, F)})`);
    for (const r of robots) sameTwin(JSON.parse(A.messages(`/${r}/twin`, r4.mark)[0].text), want(r, F), `/${r}/twin after a seek clamped to from`);
    let r5 = await seekTo(A, T + 10n * NS_PER_S, 1, "seek-late", "seek after the window");
    ok(r5.state.time === T && r5.state.didSeek === 1, `seek 10 s after to clamps to to (${rel(r5.state.time, F)})`);
    for (const r of robots) sameTwin(JSON.parse(A.messages(`/${r}/twin`, r5.mark)[0].text), want(r, T), `/${r}/twin after a seek clamped to to`);
    ok(true, "the state after a clamped seek = doppel state at from / at to");

    // Speed: refusals keep the speed and still answer; clamps at 0.01 and 100.
    const q = await A.request({ command: 1, speed: 2, id: "speed-2" }, "speed 2");
    ok(q.state.speed === 2 && q.state.status === 1 && q.state.didSeek === 0, `speed 2 paused: PlaybackState speed ${q.state.speed}, did_seek 0`);
    for (const [speed, name] of [[0, "0"], [-3, "-3"], [NaN, "NaN"]]) {
      const { mark, state } = await A.request({ command: 1, speed, id: `speed-${name}` }, `speed ${name}`);
      await waitFor(`status for speed ${name}`, () => A.since(mark, "status").length >= 1);
      const st = A.since(mark, "status")[0].j;
      ok(st.level === 2 && state.speed === 2 && state.id === `speed-${name}`,
         `speed ${name}: status level ${st.level} "${st.message}", answered with speed unchanged (${state.speed})`);
    }
    const fast = await A.request({ command: 1, speed: 1000, id: "speed-1000" }, "speed 1000");
    ok(fast.state.speed === 100, `speed 1000 clamped to ${fast.state.speed}`);
    const slow = await A.request({ command: 1, speed: 0.001, id: "speed-0.001" }, "speed 0.001");
    ok(slow.state.speed === Math.fround(0.01), `speed 0.001 clamped to ${slow.state.speed}`);

    // Malformed control frames: a status error each, the session goes on.
    const good = controlFrame({ command: 1, speed: 1, id: "abc" });
    const badLen = Buffer.from(good);
    badLen.writeUInt32LE(10, 15);
    const badCmd = Buffer.from(good);
    badCmd.writeUInt8(7, 1);
    for (const [frame, what] of [[good.subarray(0, 5), "5 bytes"], [badLen, "request_id_len 10 with 3 bytes"],
                                 [badCmd, "command 7"]]) {
      const mark = A.frames.length;
      A.send(frame);
      await waitFor(`status for a malformed request (${what})`, () => A.since(mark, "status").length >= 1);
      const st = A.since(mark, "status")[0].j;
      ok(st.level === 2 && A.since(mark, "state").length === 0, `malformed (${what}): status level ${st.level} "${st.message}"`);
    }
    const after = await A.request({ command: 1, speed: 1, id: "after-malformed" }, "a valid request after malformed ones");
    ok(after.state.status === 1 && !A.closed, "a valid request after malformed ones is answered; the session is open");

    // Every event of the window at 10x, in position order, none skipped.
    const tenMark = A.frames.length;
    const ten = await A.request({ command: 0, speed: 10, seek: F, id: "play-10x" }, "seek to from and play at 10x");
    const wallStart = Date.now();
    ok(ten.state.status === 0 && ten.state.didSeek === 1 && ten.state.time === F && ten.state.speed === 10,
       `seek to from + play at 10x: ${STATUS[ten.state.status]}, did_seek ${ten.state.didSeek}, speed ${ten.state.speed}`);
    const liveDuring = liveClient.messages.get(liveSub).length;
    const ended = await waitFor("Ended at the end of the window", () =>
      A.since(tenMark, "state").find((s) => s.status === 3), 20000);
    const wall = (ended.at - wallStart) / 1000;
    await sleep(300);
    ok(ended.id === "" && ended.idLen === 0 && ended.time === T,
       `unprompted PlaybackState ended after ${wall.toFixed(2)} s, empty request id, current_time = to`);
    const unprompted = A.since(tenMark, "state").filter((s) => s.id !== "play-10x");
    ok(unprompted.every((s) => s.id === "" && (s.status === 2 || s.status === 0 || s.status === 3)),
       `unprompted states carry no id: ${unprompted.map((s) => STATUS[s.status])}`);
    const answers = A.frames.filter((f) => f.k === "state" && f.id !== "");
    const perId = new Map();
    answers.forEach((s) => perId.set(s.id, (perId.get(s.id) || 0) + 1));
    ok([...perId.values()].every((n) => n === 1), `every request answered by exactly one PlaybackState (${perId.size} requests)`);
    const got = A.since(tenMark, "msg").filter((m) => m.topic.endsWith("/events")).map((m) => ({ ...JSON.parse(m.text), ts: m.ts, topic: m.topic }));
    const gotKeys = got.map((e) => `${e.position} ${e.type} ${e.robot_id}`);
    const wantKeys = expectedEvents.map((e) => `${e.position} ${e.type} ${e.stream.slice(6)}`);
    const firstDiff = wantKeys.findIndex((k, i) => gotKeys[i] !== k);
    ok(gotKeys.length === wantKeys.length && firstDiff === -1,
       `at 10x: ${got.length} /<robot>/events messages = doppel read's ${wantKeys.length} non-observation events` +
       (firstDiff === -1 ? "" : ` (first difference at ${firstDiff}: got ${gotKeys[firstDiff]}, want ${wantKeys[firstDiff]})`));
    ok(got.every((e, i) => e.ts === expectedEvents[i].recorded && e.topic === `/${e.robot_id}/events` &&
                           (i === 0 || e.position > got[i - 1].position)),
       "events in position order, each on its robot's channel, stamped with its recorded time");
    const wantAlerts = expectedEvents.filter((e) => ["PredictionAlert", "FaultRaised", "FaultCleared", "RobotWentSilent", "RobotResumed"].includes(e.type));
    const gotAlerts = A.since(tenMark, "msg").filter((m) => m.topic === "/fleet/alerts").map((m) => JSON.parse(m.text).position);
    ok(JSON.stringify(gotAlerts) === JSON.stringify(wantAlerts.map((e) => e.position)),
       `/fleet/alerts: ${gotAlerts.length} alerts, those of the window`);
    const tf = A.since(tenMark, "time").filter((f) => f.at >= wallStart);
    const tfs = tf.map((f) => f.ts);
    ok(tfs.length > 5 && tfs.every((t, i) => t >= F && t <= T && (i === 0 || t >= tfs[i - 1])),
       `${tfs.length} time frames while playing, within the window and never back`);
    const rate = tfs.length / Math.max(wall, 0.1);
    ok(tfs.length <= 60 * wall + 5, `time frames at most 60 Hz (${tfs.length} in ${wall.toFixed(2)} s, ${rate.toFixed(0)} Hz)`);
    const pace = Number(T - F) / 1e9 / wall;
    ok(pace > 2 && pace < 20, `the window of ${(Number(T - F) / 1e9).toFixed(1)} s played in ${wall.toFixed(2)} s (x${pace.toFixed(1)} at speed 10)`);
    const twinStamps = A.since(tenMark, "msg").filter((m) => m.topic === `/${base}/twin`).map((m) => m.ts);
    ok(twinStamps.length > 10 && twinStamps.every((t, i) => t >= F && t <= T && (i === 0 || t >= twinStamps[i - 1])),
       `/${base}/twin during play: ${twinStamps.length} messages, replay-time stamps in order`);
    // Each /twin sent while playing is the state right after the observation it is stamped with
    // (not a later one): its position is that of one of the robot's events recorded at the stamp,
    // and an arm's joints are that JointStateObserved's.
    const byStamp = new Map();
    for (const e of inWindow) {
      const key = `${e.stream.slice(6)} ${e.recorded}`;
      byStamp.set(key, [...(byStamp.get(key) || []), e]);
    }
    const played = A.since(tenMark, "msg").filter((m) => m.topic.endsWith("/twin") && m.ts > F);
    const wrong = [];
    for (const m of played) {
      const twin = JSON.parse(m.text);
      const at = byStamp.get(`${twin.robot_id} ${m.ts}`) || [];
      const e = at.find((x) => x.position === twin.position);
      const jointsOk = !e || e.type !== "JointStateObserved" ||
        e.payload.position.every((p, i) => Math.abs(p - twin.joint_position[i]) <= 1e-9);
      if (!e || !jointsOk) {
        wrong.push(`${twin.robot_id} stamped ${rel(m.ts, F)} (events there: ${at.map((x) => x.position)}) ` +
                   `has position ${twin.position} (${rel((inWindow.find((x) => x.position === twin.position) || { recorded: m.ts }).recorded, F)})`);
      }
    }
    ok(played.length > 20 && wrong.length === 0,
       `each of ${played.length} /<robot>/twin messages while playing is the state at its stamp` +
       (wrong.length ? `; ${wrong.length} are not, e.g. ${wrong.slice(0, 3).join("; ")}` : ""));

    // After Ended: play without a seek answers Ended again; a seek then play works.
    const again = await A.request({ command: 0, speed: 10, id: "play-after-end" }, "play after Ended");
    ok(again.state.status === 3 && again.state.id === "play-after-end", `play without a seek after Ended: ${STATUS[again.state.status]}`);
    const replayMark = A.frames.length;
    const loop = await A.request({ command: 0, speed: 100, seek: T - 2n * NS_PER_S, id: "loop" }, "seek then play after Ended");
    ok(loop.state.status === 0 && loop.state.didSeek === 1, `seek 2 s before the end then play after Ended: ${STATUS[loop.state.status]}`);
    await waitFor("Ended again", () => A.since(replayMark, "state").find((s) => s.status === 3 && s.id === ""), 10000);
    ok(A.since(replayMark, "msg").some((m) => m.topic.endsWith("/events") && m.ts > T - 2n * NS_PER_S),
       "events after the seek played, then Ended again");

    // B, still paused at S2 all along, answers with its own time.
    const bState = await B.request({ command: 1, speed: 1, id: "b-where" }, "B where are you");
    ok(bState.state.time === S2 && bState.state.status === 1 &&
       B.since(rb.mark, "time").length === 1, `session B unaffected by A's playback: paused at ${rel(bState.state.time, F)}, no time frames`);
    B.close();

    // A live client of the same server kept receiving live data meanwhile.
    const liveAfter = liveClient.messages.get(liveSub).length;
    ok(liveAfter > liveDuring && liveDuring >= liveBefore, `live ${liveTwinTopic}: ${liveAfter - liveBefore} messages during the replays`);

    // Determinism: two sessions at 100x, the same requests, the same sequence.
    const [d1, d2] = await Promise.all([playToEnd(replay(windowNs), robots, 100, "det"),
                                        playToEnd(replay(windowNs), robots, 100, "det")]);
    const diff = d1.seq.findIndex((s, i) => s !== d2.seq[i]);
    const twins = d1.seq.filter((s) => s.includes("/twin ")).length;
    ok(d1.seq.length === d2.seq.length && diff === -1 && twins > 20,
       `two sessions at 100x delivered the same ${d1.seq.length} (topic, timestamp, payload) /events and /twin messages (${twins} twin)` +
       (diff === -1 ? "" : `; first difference at ${diff}: ${d1.seq[diff] && d1.seq[diff].slice(0, 200)} vs ${d2.seq[diff] && d2.seq[diff].slice(0, 200)}`));
    const detEvents = d1.seq.filter((s) => s.split(" ")[0].endsWith("/events")).length;
    ok(detEvents === expectedEvents.length, `at 100x no event skipped either (${detEvents})`);

    // Filters and relative moments.
    const arms = new RawClient(replay(`${windowNs}&robots=sim_arm_*&types=ModeChanged,PredictionAlert`));
    await arms.opened;
    await waitFor("robots=sim_arm_* channels", () => arms.serverInfo && arms.channels.size > 0);
    const armTopics = [...arms.channels.keys()];
    ok(armTopics.every((t) => t === "/fleet/alerts" || t.startsWith("/sim_arm_")) && armTopics.some((t) => t === `/${arm}/twin`),
       `robots=sim_arm_*: only arms advertised (${armTopics.filter((t) => t.endsWith("/twin"))})`);
    arms.close();
    const types = new RawClient(replay(`${windowNs}&types=PredictionAlert`));
    await types.opened;
    await waitFor("types= channels", () => types.serverInfo && types.channels.size > 0);
    types.subscribe(robots.map((r) => `/${r}/events`));
    const tp = await types.request({ command: 0, speed: 100, id: "types" }, "types play");
    await waitFor("types: Ended", () => types.since(tp.mark, "state").find((s) => s.status === 3), 10000);
    await sleep(200);
    const typed = types.since(tp.mark, "msg").map((m) => JSON.parse(m.text).type);
    ok(typed.length === expectedEvents.filter((e) => e.type === "PredictionAlert").length && typed.every((t) => t === "PredictionAlert"),
       `types=PredictionAlert: ${typed.length} events, all PredictionAlert`);
    types.close();
    const relative = new RawClient(replay("from=-15m&to=now"));
    await relative.opened;
    await waitFor("relative serverInfo", () => relative.serverInfo);
    const nowNs = BigInt(Date.now()) * NS_PER_MS;
    const rs = nsOf(relative.serverInfo.dataStartTime), re = nsOf(relative.serverInfo.dataEndTime);
    const near = (a, b) => (a > b ? a - b : b - a) < 5n * NS_PER_S;
    ok(near(re, nowNs) && near(rs, nowNs - 900n * NS_PER_S), `from=-15m&to=now: dataStartTime ${isoOf(rs)}, dataEndTime ${isoOf(re)}`);
    relative.close();

    liveClient.client.close();
    await sleep(100);
    await up.stop();
    ok(true, `doppel up stopped cleanly after the replays (${checks} checks, ${((Date.now() - t00) / 1000).toFixed(1)} s)`);
  } finally {
    for (const c of clients) try { c.close(); } catch (e) { /* closing anyway */ }
    if (up.proc.exitCode === null) up.proc.kill("SIGKILL");
  }
});
