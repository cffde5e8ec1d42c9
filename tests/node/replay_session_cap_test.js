// Replay sessions are budgeted (issue 26 item 3): per token (--max-replay-sessions-per-token)
// and in total (--max-replay-sessions). Over a cap, the upgrade is refused with 429 or 503 and
// a body naming the flag; a session that closes gives its place back, and /metrics counts
// sessions open and refused. Runs `doppel up` with caps of 2 per token and 3 in all.
"use strict";
const WebSocket = require("ws");
const http = require("node:http");
const { args, sleep, waitFor, check, run, startUp } = require("./lib");

const NS_PER_MS = 1000000n;

function metrics(base) {
  return new Promise((resolve, reject) => {
    http.get(`http://${base}/metrics`, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve(body));
    }).on("error", reject);
  });
}

function gauge(text, name) {
  const m = new RegExp(`\\n${name} (\\d+)`).exec(`\n${text}`);
  return m ? Number(m[1]) : undefined;
}

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
    robots: 2, rate: 20, salt: 27,
    extra: ["--max-replay-sessions", "3", "--max-replay-sessions-per-token", "2"],
  });
  try {
    await sleep(3000);
    const nowNs = BigInt(Date.now()) * NS_PER_MS;
    const url = (token) =>
      `ws://${up.base}/replay?from=${nowNs - 2000n * NS_PER_MS}&to=${nowNs}&token=${token}`;

    const v1 = await open(url(up.tokens.viewer));
    const v2 = await open(url(up.tokens.viewer));
    ok(v1.ws && v2.ws, "a viewer token opens two replay sessions");
    const v3 = await open(url(up.tokens.viewer));
    ok(v3.status === 429 && /--max-replay-sessions-per-token/.test(v3.body),
       `its third is refused: ${v3.status} ${v3.body.trim()}`);
    const o1 = await open(url(up.tokens.operator));
    ok(o1.ws, "another token still opens one (three in all)");
    const a1 = await open(url(up.tokens.admin));
    ok(a1.status === 503 && /--max-replay-sessions\b/.test(a1.body),
       `a fourth session in all is refused: ${a1.status} ${a1.body.trim()}`);
    let text = await metrics(up.base);
    ok(gauge(text, "doppel_gateway_replay_sessions") === 3 &&
       gauge(text, "doppel_gateway_replay_sessions_refused_total") === 2,
       "/metrics: 3 replay sessions open, 2 refused");

    // A session that closes gives its place back.
    v1.ws.close();
    await waitFor("the closed session's place freed", async () =>
      gauge(await metrics(up.base), "doppel_gateway_replay_sessions") === 2, 10000);
    const v4 = await open(url(up.tokens.viewer));
    ok(v4.ws, "the viewer opens a session again once one of its own closed");
    for (const s of [v2, o1, v4]) s.ws.close();
    await waitFor("every place freed", async () =>
      gauge(await metrics(up.base), "doppel_gateway_replay_sessions") === 0, 10000);
    ok(true, "all sessions closed: none open");
  } finally {
    await up.stop();
  }
  console.log(`replay_session_cap_test: ${checks} checks passed`);
});
