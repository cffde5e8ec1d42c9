// `doppel up` as a user runs it: --for stops it by itself, a restart resumes the same history
// (same tokens, events continue, the log verifies), and Ctrl-C (SIGINT) stops it cleanly.
"use strict";
const { execFileSync, spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { args, domainFor, startUp, readStream, check, run, tempDir } = require("./lib");

function upFor(doppel, data, domain, seconds) {
  const r = spawnSync(doppel, ["up", "--data", data, "--port", "0", "--robots", "2", "--domain",
                               String(domain), "--for", `${seconds}s`], { timeout: 60000 });
  check(r.status === 0, `doppel up --for exited ${r.status}: ${r.stderr}`);
  return r.stdout.toString();
}

run(async () => {
  const { doppel } = args();
  const data = tempDir("restart");
  const domain = domainFor(4);
  const first = upFor(doppel, data, domain, 4);
  check(/\(0 events already there\)/.test(first), `first start is empty: ${first}`);
  const tokens = fs.readFileSync(path.join(data, "tokens"), "utf8");
  const before = readStream(doppel, data, "robot-sim_arm_0");
  check(before.length > 10, `first run recorded events: ${before.length}`);

  const second = upFor(doppel, data, domain, 4);
  const already = Number((second.match(/\((\d+) events already there\)/) || [])[1]);
  check(already > 0, `second start sees the history: ${second}`);
  check(fs.readFileSync(path.join(data, "tokens"), "utf8") === tokens, "tokens kept");
  check(second.includes(tokens.split("\n").find((l) => l.includes(" operator ")).split(" ")[0]),
        "the printed dashboard URL carries the kept operator token");
  const after = readStream(doppel, data, "robot-sim_arm_0");
  check(after.length > before.length, `events continue: ${before.length} -> ${after.length}`);
  after.forEach((e, i) => check(e.version === i, `dense versions at ${i}`));
  check(after.slice(0, before.length).every((e, i) => e.id === before[i].id), "history unchanged");
  execFileSync(doppel, ["verify", "--data", path.join(data, "log")]);

  // Ctrl-C: a clean exit with status 0.
  const up = await startUp(doppel, { robots: 2, salt: 5 });
  const r = await up.stop();
  check(r.code === 0, `SIGINT exit: ${JSON.stringify(r)}`);
});
