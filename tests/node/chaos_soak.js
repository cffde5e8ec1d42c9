// Chaos soak: the platform as separate processes (store, two twin partitions, the DDS bridge
// both ways, the gateway, a simulated fleet, dashboard clients, subscribers and an appender
// that logs what was acknowledged) while a nemesis kills processes with SIGKILL or pauses them
// with SIGSTOP/SIGCONT and restarts them every few seconds. Then a checker:
//   - no acknowledged event lost: every line of the appender's ack log is in the store with
//     the same stream, version and position; `doppel verify` passes;
//   - every subscriber saw every event exactly once and in order (a killed subscriber resumes
//     from the position after the last one it printed, as its checkpoint);
//   - twins converge: once the fleet stops, each robot's last TwinState (through the gateway)
//     has the store's last version and the same joint positions as `doppel state`;
//   - gateway clients reconnect and resume: each received messages after the gateway's last
//     restart;
//   - memory flat after warm-up: no incarnation of a process grew by more than MEM_GROWTH_MB
//     between 10 s after its start and its end (sampled from /proc every second).
// The nemesis draws its victims and delays from a seeded generator (--seed, else
// DOPPEL_TEST_SEED, else a fixed seed), printed at start and again on failure, so a failing
// schedule can be replayed; process timing still varies from run to run.
// Usage: node chaos_soak.js --doppel PATH [--seconds 120] [--out DIR] [--interval-ms 3000]
//                           [--seed N]
"use strict";
const { FoxgloveClient } = require("@foxglove/ws-protocol");
const WebSocket = require("ws");
const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const readline = require("node:readline");
const { args, domainFor, sleep, waitFor, check, run, tempDir, onCleanup, seededRandom } =
  require("./lib");

// Growth allowed to one process incarnation after its warm-up (--mem-growth-mb; under ASan,
// freed memory sits in its quarantine and RSS says little).
let MEM_GROWTH_MB = 96;
const ROBOTS = 6;

function log(...a) {
  console.log(new Date().toISOString(), ...a);
}

// Ports of our own: the store and the twins must come back on the same endpoints.
function basePort() {
  return 21000 + ((process.pid * 13) % 4000) * 8;
}

// The nemesis's randomness, seeded in run() before any process starts.
let random = null;

// Every process the soak started: none outlives it, whether it passes or fails (lib.js runs
// this before it removes the soak's directory, which the processes write into).
const everyProcess = [];
onCleanup(() => {
  for (const m of everyProcess) {
    if (m.alive()) {
      if (m.paused) m.proc.kill("SIGCONT");
      m.proc.kill("SIGKILL");
    }
  }
});

class Managed {
  constructor(name, argv, { out, onStart } = {}) {
    everyProcess.push(this);
    this.name = name;
    this.argv = argv;
    this.out = out;            // file that collects stdout across incarnations (append)
    this.onStart = onStart;    // () => extra argv at each start (e.g. a subscriber's --from)
    this.proc = null;
    this.stderr = "";
    this.incarnations = [];    // {start, rss: [[t, kb]], end}
    this.kills = 0;
    this.pauses = 0;
    this.paused = false;
    this.wanted = true;        // restart on exit
  }

  start(doppel) {
    const extra = this.onStart ? this.onStart() : [];
    const stdio = ["ignore", this.out ? fs.openSync(this.out, "a") : "ignore", "pipe"];
    this.proc = spawn(doppel, [...this.argv, ...extra], { stdio });
    if (typeof stdio[1] === "number") fs.closeSync(stdio[1]);
    this.proc.stderr.on("data", (d) => {
      this.stderr += d;
      if (this.stderr.length > 200000) this.stderr = this.stderr.slice(-100000);
    });
    const inc = { start: Date.now(), rss: [], end: null, pid: this.proc.pid };
    this.incarnations.push(inc);
    this.proc.on("exit", (code, signal) => {
      inc.end = Date.now();
      inc.exit = { code, signal };
    });
    this.paused = false;
  }

  alive() {
    return this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  sampleRss() {
    if (!this.alive()) return;
    try {
      const status = fs.readFileSync(`/proc/${this.proc.pid}/status`, "utf8");
      const kb = Number(status.match(/VmRSS:\s+(\d+)/)[1]);
      this.incarnations[this.incarnations.length - 1].rss.push([Date.now(), kb]);
    } catch (e) {
      // exited between the check and the read
    }
  }

  async kill(doppel) {
    if (!this.alive()) return;
    this.kills++;
    const exited = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGKILL");
    await exited;
    await sleep(300 + random() * 1200);
    this.start(doppel);
  }

  async pause() {
    if (!this.alive()) return;
    this.pauses++;
    this.paused = true;
    this.proc.kill("SIGSTOP");
    await sleep(1000 + random() * 2000);
    if (this.alive()) this.proc.kill("SIGCONT");
    this.paused = false;
  }

  async stop() {
    this.wanted = false;
    if (!this.alive()) return;
    if (this.paused) this.proc.kill("SIGCONT");
    const exited = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGINT");
    const timer = setTimeout(() => this.proc && this.proc.kill("SIGKILL"), 15000);
    await exited;
    clearTimeout(timer);
  }
}

// A dashboard client that reconnects whenever the gateway goes away, subscribing to every
// robot's twin channel; it keeps each robot's newest twin message.
class DashboardClient {
  constructor(url) {
    this.url = url;
    this.latest = new Map();  // robot -> twin json
    this.received = [];       // receipt times
    this.connects = 0;
    this.stopped = false;
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    this.connects++;
    const ws = new WebSocket(this.url, [FoxgloveClient.SUPPORTED_SUBPROTOCOL]);
    const client = new FoxgloveClient({ ws });
    this.client = client;
    const channels = new Map();
    let next = 1;
    const decoder = new TextDecoder();
    client.on("advertise", (list) => {
      for (const c of list) {
        if (!c.topic.endsWith("/twin")) continue;
        const id = client.subscribe(c.id);
        channels.set(id, c.topic.split("/")[1]);
        next++;
      }
    });
    client.on("message", ({ subscriptionId, data }) => {
      const robot = channels.get(subscriptionId);
      if (!robot) return;
      this.received.push(Date.now());
      if (this.received.length > 100000) this.received.splice(0, 50000);
      try {
        this.latest.set(robot, JSON.parse(decoder.decode(data)));
      } catch (e) {
        this.bad = (this.bad || 0) + 1;
      }
    });
    let retried = false;
    const retry = () => {
      if (retried) return;
      retried = true;
      setTimeout(() => this.connect(), 300);
    };
    client.on("close", retry);
    client.on("error", retry);
    ws.on("error", retry);
  }

  close() {
    this.stopped = true;
    try {
      this.client.close();
    } catch (e) {
      // already closed
    }
  }
}


// The last whole line of a file, read from its end (an output file of a long soak is far
// larger than a string can be), and the byte length up to the end of that line.
function lastLine(file) {
  if (!fs.existsSync(file)) return { line: null, whole: 0 };
  const size = fs.statSync(file).size;
  const fd = fs.openSync(file, "r");
  try {
    for (let span = 64 * 1024; ; span *= 4) {
      const start = Math.max(0, size - span);
      const buf = Buffer.alloc(size - start);
      fs.readSync(fd, buf, 0, buf.length, start);
      const end = buf.lastIndexOf(0x0a);
      if (end < 0 && start > 0) continue;
      if (end < 0) return { line: null, whole: 0 };
      const begin = buf.lastIndexOf(0x0a, end - 1) + 1;
      if (begin === 0 && start > 0) continue;
      return { line: buf.slice(begin, end).toString(), whole: start + end + 1 };
    }
  } finally {
    fs.closeSync(fd);
  }
}

// A subscriber's checkpoint: its output file holds whole lines up to the last event it
// printed (a SIGKILL can cut the last line: that part is dropped and printed again).
function resumeFrom(file) {
  const { whole } = lastLine(file);
  if (fs.existsSync(file) && fs.statSync(file).size > whole) fs.truncateSync(file, whole);
  return ["--from", String(lastPosition(file) + 1)];
}

function lastPosition(file) {
  const { line } = lastLine(file);
  return line ? JSON.parse(line).position : -1;
}

// Calls onLine for every line of a file or of a command's output, streaming.
async function eachLine(source, onLine) {
  const stream = typeof source === "string" ? fs.createReadStream(source)
    : spawn(source[0], source.slice(1), { stdio: ["ignore", "pipe", "inherit"] }).stdout;
  const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
  for await (const line of lines) if (line) onLine(line);
}

run(async () => {
  const a = args();
  const doppel = a.doppel;
  const seconds = Number(a.seconds || 120);
  const interval = Number(a["interval-ms"] || 3000);
  if (a["mem-growth-mb"]) MEM_GROWTH_MB = Number(a["mem-growth-mb"]);
  ({ random } = seededRandom(20251123, { test: "chaos_soak_test", a }));
  // The summary is an artifact to keep: in --out, else here, never loose in the temp folder.
  const out = a.out || ".";
  fs.mkdirSync(out, { recursive: true });
  const dir = tempDir();
  const domain = domainFor(7);
  const p = basePort();
  const ep = (k) => `tcp://127.0.0.1:${p + k}`;
  const store = ep(0), pub = ep(1), twin0 = ep(2), twin1 = ep(3);
  const httpPort = p + 4;
  const tokens = path.join(dir, "tokens");
  fs.writeFileSync(tokens, "soak-viewer viewer soak\n", { mode: 0o600 });
  log(`soak for ${seconds} s in ${dir}, ports ${p}..${p + 4}, DDS domain ${domain}`);

  const subFiles = [0, 1].map((i) => path.join(dir, `sub${i}.jsonl`));
  const procs = {
    store: new Managed("store", ["store", "--data", path.join(dir, "log"), "--listen", store,
                                 "--publish", pub]),
    twin0: new Managed("twin0", ["twin", "--store", store, "--publish", pub, "--twin-publish",
                                 twin0, "--partition", "0/2"]),
    twin1: new Managed("twin1", ["twin", "--store", store, "--publish", pub, "--twin-publish",
                                 twin1, "--partition", "1/2"]),
    bridge: new Managed("bridge", ["bridge-dds", "--store", store, "--publish", pub, "--domain",
                                   String(domain), "--twin-publish", `${twin0},${twin1}`,
                                   "--model", "sim_arm_*=doppel_arm6",
                                   "--model", "sim_base_*=doppel_base"]),
    gateway: new Managed("gateway", ["gateway", "--port", String(httpPort), "--tokens", tokens,
                                     "--twin-publish", `${twin0},${twin1}`, "--store", store,
                                     "--publish", pub]),
    sim: new Managed("sim", ["sim-fleet", "--robots", String(ROBOTS), "--rate", "20", "--domain",
                             String(domain)]),
    sub0: new Managed("sub0", ["subscribe", "--store", store, "--publish", pub],
                      { out: subFiles[0], onStart: () => resumeFrom(subFiles[0]) }),
    sub1: new Managed("sub1", ["subscribe", "--store", store, "--publish", pub],
                      { out: subFiles[1], onStart: () => resumeFrom(subFiles[1]) }),
  };
  const ackLog = path.join(dir, "acks.txt");
  const appender = new Managed("appender", ["bench", "append", "--store", store, "--clients", "2",
                                            "--duration", String(seconds), "--payload-bytes", "100",
                                            "--ack-log", ackLog, "--stream-prefix", "soak"]);
  procs.store.start(doppel);
  await sleep(500);
  for (const [name, m] of Object.entries(procs)) if (name !== "store") m.start(doppel);
  appender.start(doppel);
  const clients = [0, 1].map(() => new DashboardClient(`ws://127.0.0.1:${httpPort}/?token=soak-viewer`));
  const all = [...Object.values(procs), appender];
  const sampler = setInterval(() => all.forEach((m) => m.sampleRss()), 1000);
  // Restart whatever exited by itself (a crash is a finding: it is counted and reported).
  const crashes = [];
  const watchdog = setInterval(() => {
    for (const m of Object.values(procs)) {
      if (m.wanted && !m.alive() && !m.restarting) {
        const inc = m.incarnations[m.incarnations.length - 1];
        if (inc.exit && inc.exit.signal !== "SIGKILL") {
          crashes.push(`${m.name} exited by itself: ${JSON.stringify(inc.exit)}: ${m.stderr.slice(-1500)}`);
        }
        m.start(doppel);
      }
    }
  }, 500);

  // The nemesis.
  const victims = ["store", "twin0", "twin1", "bridge", "gateway", "sim", "sub0"];
  const deadline = Date.now() + seconds * 1000 - 8000;
  let gatewayLastStart = Date.now();
  while (Date.now() < deadline) {
    await sleep(interval * (0.5 + random()));
    const victim = procs[victims[Math.floor(random() * victims.length)]];
    if (random() < 0.6) {
      victim.restarting = true;
      log(`kill -9 ${victim.name}`);
      await victim.kill(doppel);
      victim.restarting = false;
      if (victim.name === "gateway") gatewayLastStart = Date.now();
    } else {
      log(`pause ${victim.name}`);
      await victim.pause();
    }
  }
  log("nemesis stopped; waiting for the appender to finish");
  await waitFor("the appender to finish", () => !appender.alive(), 60000);
  check(appender.incarnations[0].exit.code === 0,
        `appender exited with ${JSON.stringify(appender.incarnations[0].exit)}: ${appender.stderr.slice(-2000)}`);
  // The fleet stops; twins and subscribers catch up.
  await procs.sim.stop();
  // Caught up: nothing in the store after a subscriber's last event (a small read each, not
  // the whole log), twice a second apart so late derived events (silences) are in too.
  const caughtUp = () => subFiles.every((f) => execFileSync(doppel, [
    "read", "--store", store, "--from", String(lastPosition(f) + 1), "--limit", "1",
    "--format", "jsonl"]).toString().trim() === "");
  await waitFor("subscribers to reach the store's end", async () => {
    if (!caughtUp()) return false;
    await sleep(3000);
    return caughtUp();
  }, 180000);
  // The store's events, as ids by position (a long soak holds millions: keep them small).
  const ids = [];
  let bad = null;
  await eachLine([doppel, "read", "--store", store, "--format", "jsonl"], (line) => {
    const e = JSON.parse(line);
    if (e.position !== ids.length && !bad) bad = `position ${ids.length} missing (got ${e.position})`;
    ids.push(e.id);
  });
  check(!bad, bad);
  log(`${ids.length} events in the store, positions dense`);

  // 1. No acknowledged event lost: at the position it was acknowledged with.
  let acks = 0;
  await eachLine(ackLog, (line) => {
    const [id, stream, version, position] = line.split(" ");
    if (ids[Number(position)] !== id && !bad) {
      bad = `acknowledged event ${id} (${stream} v${version} @${position}) is missing or moved`;
    }
    acks++;
  });
  check(!bad, bad);
  check(acks > 100, `only ${acks} acknowledged appends`);
  execFileSync(doppel, ["verify", "--store", store]);
  log(`acks: ${acks} acknowledged events all present; verify OK`);

  // 2. Subscribers: exactly once, in order.
  for (const file of subFiles) {
    let n = 0;
    await eachLine(file, (line) => {
      const e = JSON.parse(line);
      if ((e.position !== n || e.id !== ids[n]) && !bad) {
        bad = `${path.basename(file)}: line ${n} is ${line.slice(0, 200)}`;
      }
      n++;
    });
    check(!bad, bad);
    check(n === ids.length, `${path.basename(file)}: ${n} events, store has ${ids.length}`);
  }
  log("subscribers: every event exactly once, in order");

  // 3. Twins converge to the store's state.
  const robots = [];
  for (let i = 0; i < ROBOTS; i++) robots.push(`sim_${i % 2 === 0 ? "arm" : "base"}_${Math.floor(i / 2)}`);
  const head = (r) => {
    const out = execFileSync(doppel, ["read", "--store", store, "--stream", `robot-${r}`,
                                      "--backward", "--limit", "1", "--format", "jsonl"]).toString();
    return out.trim() ? JSON.parse(out).version : -1;
  };
  const heads = () => new Map(robots.map((r) => [r, head(r)]));
  check(robots.every((r) => head(r) >= 0), `robots in the store: ${robots.join(", ")}`);
  let lastDiff = "";
  await waitFor("twins to converge to the store", () => {
    const h = heads();
    for (const r of robots) {
      const t = clients[0].latest.get(r);
      if (!t || t.version !== h.get(r)) {
        lastDiff = `${r}: twin ${t && t.version} store ${h.get(r)}`;
        return false;
      }
    }
    return true;
  }, 60000).catch((e) => { throw new Error(`${e.message}: ${lastDiff}`); });
  for (const r of robots) {
    const s = JSON.parse(execFileSync(doppel, ["state", "--store", store, "--robot", r]).toString());
    const t = clients[0].latest.get(r);
    check(s.version === t.version, `${r}: state version ${s.version}, twin ${t.version}`);
    t.joint_names.forEach((name, i) => {
      check(Math.abs(s.joints[name].position - t.joint_position[i]) < 1e-9,
            `${r}.${name}: state ${s.joints[name].position}, twin ${t.joint_position[i]}`);
    });
  }
  log(`twins: ${robots.length} robots converged (version and joints equal to doppel state)`);

  // 4. Gateway clients reconnected and resumed.
  for (const [i, c] of clients.entries()) {
    const after = c.received.filter((t) => t > gatewayLastStart).length;
    check(after > 0, `client ${i} received nothing after the gateway's last restart`);
    log(`client ${i}: ${c.connects} connections, ${after} messages since the last gateway start`);
  }

  // 5. Memory flat after warm-up. A store fills its memtables and caches for minutes under
  // write load, so "flat" is judged on each incarnation's second half: its peak there may
  // exceed the peak of its first half (after 10 s) by at most MEM_GROWTH_MB. A leak keeps
  // growing; a cache levels off.
  const memory = [];
  const grown = [];
  for (const m of all) {
    for (const inc of m.incarnations) {
      const warm = inc.rss.filter(([t]) => t - inc.start >= 10000);
      if (warm.length < 10) continue;
      const half = Math.floor(warm.length / 2);
      const peak = (xs) => Math.max(...xs.map(([, kb]) => kb)) / 1024;
      const first = peak(warm.slice(0, half)), second = peak(warm.slice(half));
      memory.push({ name: m.name, lived_s: Math.round((warm[warm.length - 1][0] - inc.start) / 1000),
                    first_half_peak_mb: Math.round(first), second_half_peak_mb: Math.round(second) });
      if (second - first > MEM_GROWTH_MB) {
        grown.push(`${m.name} (${Math.round(first)} -> ${Math.round(second)} MB)`);
      }
    }
  }
  memory.sort((x, y) => y.lived_s - x.lived_s);
  log(`memory: ${memory.length} incarnations past warm-up; longest: ${JSON.stringify(memory.slice(0, 8))}`);
  check(grown.length === 0, `still growing in the second half of their life: ${grown.join(", ")}`);

  clearInterval(watchdog);
  clearInterval(sampler);
  clients.forEach((c) => c.close());
  for (const m of Object.values(procs)) await m.stop();
  check(crashes.length === 0, `processes crashed:\n${crashes.join("\n")}`);
  const summary = {
    seconds, events: ids.length, acknowledged: acks,
    kills: Object.fromEntries(Object.values(procs).map((m) => [m.name, m.kills])),
    pauses: Object.fromEntries(Object.values(procs).map((m) => [m.name, m.pauses])),
    reconnects: clients.map((c) => c.connects - 1), memory: memory.slice(0, 8),
  };
  fs.writeFileSync(path.join(out, "soak-summary.json"), JSON.stringify(summary, null, 2));
  log(`summary: ${JSON.stringify(summary)}`);
});
