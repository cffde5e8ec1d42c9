// Replay sessions are budgeted (issue 26 item 3): per token (--max-replay-sessions-per-token)
// and in total (--max-replay-sessions). Over a cap, the upgrade is refused with 429 or 503 and
// a body naming the flag; a session that closes gives its place back, and /metrics counts
// sessions open and refused. Sessions read ahead on the gateway's shared threads, so the
// process's thread count does not grow with them. Runs `doppel up` with caps of 10 per token
// and 12 in all.
"use strict";
const WebSocket = require("ws");
const fs = require("node:fs");
const { args, sleep, waitFor, check, run, startUp, fetchMetrics, metricValue } = require("./lib");

// The process's thread count and resident memory (MB), from /proc.
function usage(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  return { threads: Number(/Threads:\s+(\d+)/.exec(status)[1]),
           rssMb: Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024 };
}

const NS_PER_MS = 1000000n;

// Opens a replay session: resolves { ws } once its serverInfo arrives, or { status, body } when
// the upgrade is refused.
function open(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, ["foxglove.sdk.v1"]);
    ws.on("unexpected-response", (req, res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    ws.on("message", (data, isBinary) => {
      if (!isBinary && JSON.parse(data.toString()).op === "serverInfo") resolve({ ws });
    });
    ws.on("error", (e) => { if (!/Unexpected server response/.test(e.message)) reject(e); });
  });
}

let checks = 0;
function ok(condition, message) {
  check(condition, message);
  checks++;
  console.log(`  ok ${message}`);
}

run(async () => {
  const { doppel } = args();
  const up = await startUp(doppel, {
    // Enough history (about 10,000 events in the window) that a reader blocks with pages
    // ahead instead of finishing: a reader with a thread of its own keeps that thread.
    robots: 16, rate: 50, salt: 27,
    extra: ["--max-replay-sessions", "12", "--max-replay-sessions-per-token", "10"],
  });
  try {
    await sleep(13000);
    const nowNs = BigInt(Date.now()) * NS_PER_MS;
    const url = (token) =>
      `ws://${up.base}/replay?from=${nowNs - 12000n * NS_PER_MS}&to=${nowNs}&token=${token}`;

    const before = usage(up.proc.pid);
    const viewers = [];
    for (let i = 0; i < 10; i++) viewers.push(await open(url(up.tokens.viewer)));
    ok(viewers.every((v) => v.ws), "a viewer token opens ten replay sessions");
    const v11 = await open(url(up.tokens.viewer));
    ok(v11.status === 429 && /--max-replay-sessions-per-token/.test(v11.body),
       `its eleventh is refused: ${v11.status} ${v11.body.trim()}`);
    const o1 = await open(url(up.tokens.operator));
    const o2 = await open(url(up.tokens.operator));
    ok(o1.ws && o2.ws, "another token still opens two (twelve in all)");
    const a1 = await open(url(up.tokens.admin));
    ok(a1.status === 503 && /--max-replay-sessions\b/.test(a1.body),
       `a thirteenth session in all is refused: ${a1.status} ${a1.body.trim()}`);
    let text = await fetchMetrics(up.base);
    ok(metricValue(text, "doppel_gateway_replay_sessions") === 12 &&
       metricValue(text, "doppel_gateway_replay_sessions_refused_total") === 2,
       "/metrics: 12 replay sessions open, 2 refused");
    const open12 = usage(up.proc.pid);
    ok(open12.threads - before.threads <= 2,
       `twelve sessions: ${before.threads} -> ${open12.threads} threads ` +
       `(RSS ${before.rssMb.toFixed(0)} -> ${open12.rssMb.toFixed(0)} MB)`);
    const v1 = viewers[0];

    // A session that closes gives its place back.
    v1.ws.close();
    await waitFor("the closed session's place freed", async () =>
      metricValue(await fetchMetrics(up.base), "doppel_gateway_replay_sessions") === 11, 10000);
    const v4 = await open(url(up.tokens.viewer));
    ok(v4.ws, "the viewer opens a session again once one of its own closed");
    for (const s of [...viewers.slice(1), o1, o2, v4]) s.ws.close();
    await waitFor("every place freed", async () =>
      metricValue(await fetchMetrics(up.base), "doppel_gateway_replay_sessions") === 0, 10000);
    const after = usage(up.proc.pid);
    ok(after.threads <= open12.threads,
       `all sessions closed: none open; ${after.threads} threads, RSS ${after.rssMb.toFixed(0)} MB`);
  } finally {
    await up.stop();
  }
  console.log(`replay_session_cap_test: ${checks} checks passed`);
});
