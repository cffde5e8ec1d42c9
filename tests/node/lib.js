// Shared helpers of doppel's Node tests: start `doppel up` as a real process, read its log.
"use strict";
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
  const data = fs.mkdtempSync(path.join(os.tmpdir(), "doppel-up-"));
  const domain = domainFor(salt);
  const proc = spawn(
    doppel,
    ["up", "--data", data, "--port", "0", "--robots", String(robots), "--rate", String(rate),
     "--domain", String(domain), "--for", "300s", ...extra],
    { stdio: ["ignore", "pipe", "pipe"] });
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

function run(main) {
  main().then(() => { console.log("PASS"); process.exit(0); },
              (e) => { console.error("FAIL:", e.stack || e); process.exit(1); });
}

module.exports = { args, domainFor, sleep, waitFor, startUp, readStream, check, run };
