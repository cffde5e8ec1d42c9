// Shared helpers of doppel's Node tests: start `doppel up` as a real process, read its log,
// temporary directories that do not outlive the test, and seeded randomness.
"use strict";
const http = require("node:http");
const { spawn, execFileSync } = require("node:child_process");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");

function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  if (!out.doppel) throw new Error("usage: --doppel PATH_TO_DOPPEL [--out DIR]");
  return out;
}

// The script's name (up_restart_test): the owner in temporary directory names, the ctest name.
const SCRIPT = path.basename(process.argv[1] || "node", ".js").replace(/[^A-Za-z0-9_]/g, "_");

// ---- Temporary directories ------------------------------------------------------------------
// Each is $TMPDIR/doppel-node-<script>[-<label>]-<pid>-XXXXXX and is removed when the test
// ends: passing, failing (run() exits), on an uncaught error, or on SIGINT/SIGTERM/SIGHUP.
// SIGKILL (a ctest timeout) leaves it: the first tempDir() of a later node test removes every
// doppel-node-* directory whose process (the pid in its name) is gone.
const TEMP_PREFIX = "doppel-node-";
const tempDirs = new Set();
const tracked = new Set();      // child processes to kill before their directories go
const cleanupHooks = [];        // a test's own cleanup, run before the directories are removed
let swept = false;

// Whether process `pid` runs: a zombie has a /proc entry but will never clean up.
function processRuns(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch (e) {
    return false;
  }
}

// Removes the entries of `root` named <prefix>...-<pid>-<suffix> whose process no longer runs.
function removeStaleTempDirs(root = os.tmpdir(), prefix = TEMP_PREFIX) {
  let names = [];
  try {
    names = fs.readdirSync(root);
  } catch (e) {
    return;
  }
  for (const name of names) {
    const m = name.startsWith(prefix) && name.slice(prefix.length).match(/-(\d+)-[^-]+$/);
    if (!m || processRuns(m[1])) continue;
    fs.rmSync(path.join(root, name), { recursive: true, force: true });
  }
}

function tempDir(label = "") {
  if (!swept) {
    swept = true;
    removeStaleTempDirs();
  }
  const owner = label ? `${SCRIPT}-${label.replace(/[^A-Za-z0-9_]/g, "_")}` : SCRIPT;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${TEMP_PREFIX}${owner}-${process.pid}-`));
  tempDirs.add(dir);
  return dir;
}

function removeTempDir(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

// A child process that must not outlive the test (it would write into a removed directory).
function track(proc) {
  tracked.add(proc);
  proc.once("exit", () => tracked.delete(proc));
  return proc;
}

function onCleanup(fn) {
  cleanupHooks.push(fn);
}

// Synchronous: it runs in the "exit" event, where nothing asynchronous happens any more.
function cleanup() {
  for (const fn of cleanupHooks.splice(0)) {
    try {
      fn();
    } catch (e) {
      console.error("cleanup:", e);
    }
  }
  for (const proc of tracked) {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill("SIGCONT");  // a paused process cannot die of SIGKILL until continued
      proc.kill("SIGKILL");
    }
  }
  // A killed child's files may still be open: removal does not wait for them, it only unlinks.
  for (const dir of [...tempDirs]) {
    try {
      removeTempDir(dir);
    } catch (e) {
      console.error(`cleanup: could not remove ${dir}: ${e.message}`);
    }
  }
}
process.on("exit", cleanup);
// Without handlers these signals end node without its "exit" event, leaving the directories.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    console.error(`${SCRIPT}: ${signal}, cleaning up`);
    process.exit(128 + os.constants.signals[signal]);
  });
}

// ---- Seeded randomness -----------------------------------------------------------------------
// A randomized test takes its seed from --seed, else DOPPEL_TEST_SEED, else a fixed fallback
// (never a random one: the same commit runs the same schedule), and prints it with the command
// that replays it; run() prints it again on failure.
let seedTrace = null;

// mulberry32: a 32-bit seeded generator, uniform in [0, 1) like Math.random; small, fast, and
// plenty for choosing victims and delays.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function parseSeed(text, where) {
  if (!/^(\d+|0x[0-9a-fA-F]+)$/.test(text) || Number(text) > 0xffffffff) {
    throw new Error(`${where}=${text} is not a number from 0 to 4294967295`);
  }
  return Number(text);
}

// { seed, random }: random() draws from the seeded generator. `test` is the ctest name.
function seededRandom(fallback, { test = SCRIPT, a = args() } = {}) {
  let seed = fallback >>> 0;
  let from = "fixed";
  if (a.seed !== undefined) {
    seed = parseSeed(a.seed, "--seed");
    from = "--seed";
  } else if (process.env.DOPPEL_TEST_SEED) {
    seed = parseSeed(process.env.DOPPEL_TEST_SEED, "DOPPEL_TEST_SEED");
    from = "DOPPEL_TEST_SEED";
  }
  // --doppel is BUILD/tools/doppel: ctest runs from BUILD.
  const build = path.dirname(path.dirname(path.resolve(a.doppel)));
  seedTrace = `seed ${seed}; replay: DOPPEL_TEST_SEED=${seed} ctest --test-dir ${build} ` +
              `-R '^${test}$' (or add --seed ${seed} to the node command)`;
  console.log(`[   SEED   ] ${seedTrace} (${from})`);
  return { seed, random: mulberry32(seed) };
}

// A DDS domain of our own, so concurrent tests' robots do not show up here.
function domainFor(salt) {
  return 20 + ((process.pid * 7 + salt) % 150);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, predicate, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

// Starts `doppel up` and resolves once it printed its URLs.
async function startUp(doppel, { robots = 6, rate = 20, salt = 0, extra = [] } = {}) {
  const data = tempDir("up");
  const domain = domainFor(salt);
  const proc = track(spawn(
    doppel,
    ["up", "--data", data, "--port", "0", "--robots", String(robots), "--rate", String(rate),
     "--domain", String(domain), "--for", "300s", ...extra],
    { stdio: ["ignore", "pipe", "pipe"] }));
  let stdout = "";
  let stderr = "";
  proc.stdout.on("data", (d) => (stdout += d));
  proc.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
  await waitFor("doppel up to print its URLs", () => /foxglove:\s+ws:\/\//.test(stdout) || proc.exitCode !== null);
  if (proc.exitCode !== null) throw new Error(`doppel up exited: ${stderr}`);
  const ws = stdout.match(/foxglove:\s+(ws:\/\/\S+)/)[1];
  const dashboard = stdout.match(/dashboard:\s+(http:\/\/\S+)/)[1];
  const tokens = {};
  for (const line of fs.readFileSync(path.join(data, "tokens"), "utf8").split("\n")) {
    const [token, role] = line.split(" ");
    if (token && !token.startsWith("#")) tokens[role] = token;
  }
  const port = Number(new URL(dashboard).port);
  return {
    proc, data, domain, ws, dashboard, tokens, port,
    base: `127.0.0.1:${port}`,
    stderr: () => stderr,
    async stop() {
      if (proc.exitCode === null) proc.kill("SIGINT");
      const r = await exited;
      if (r.code !== 0) throw new Error(`doppel up exited with ${r.code} ${r.signal}: ${stderr.slice(-2000)}`);
      return r;
    },
  };
}

// Every event of `stream` as doppel read prints it (the process holding the log has stopped).
function readStream(doppel, data, stream) {
  const out = execFileSync(doppel, ["read", "--data", path.join(data, "log"), "--stream", stream],
                           { maxBuffer: 1 << 30 }).toString();
  return out.split("\n").filter((l) => l).map((l) => JSON.parse(l));
}

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

// process.exit runs the "exit" event, and with it cleanup(): temporary directories go either way.
function run(main) {
  main().then(() => { console.log("PASS"); process.exit(0); },
              (e) => {
                console.error("FAIL:", e.stack || e);
                if (seedTrace) console.error(`FAIL with ${seedTrace}`);
                process.exit(1);
              });
}

// A Foxglove PlaybackControlRequest (opcode 0x03) as a client sends it to /replay: command
// (0 play, 1 pause), speed, an optional seek time in ns, and a request id.
function playbackControlFrame({ command = 0, speed = 1, seek = null, id = "" }) {
  const idBytes = Buffer.from(id, "utf8");
  const b = Buffer.alloc(19 + idBytes.length);
  b.writeUInt8(0x03, 0);
  b.writeUInt8(command, 1);
  b.writeFloatLE(speed, 2);
  b.writeUInt8(seek === null ? 0 : 1, 6);
  b.writeBigUInt64LE(seek === null ? 0n : BigInt(seek), 7);
  b.writeUInt32LE(idBytes.length, 15);
  idBytes.copy(b, 19);
  return b;
}

// The Prometheus page a gateway serves at http://<base>/metrics.
function fetchMetrics(base) {
  return new Promise((resolve, reject) => {
    http.get(`http://${base}/metrics`, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve(body));
    }).on("error", reject);
  });
}

// The value of an unlabelled metric in a Prometheus page; undefined if absent.
function metricValue(text, name) {
  const m = new RegExp(`\\n${name} (\\d+)`).exec(`\n${text}`);
  return m ? Number(m[1]) : undefined;
}

module.exports = {
  args, domainFor, sleep, waitFor, startUp, readStream, check, run,
  tempDir, removeTempDir, removeStaleTempDirs, track, onCleanup, mulberry32, seededRandom,
  playbackControlFrame, fetchMetrics, metricValue,
};
