// A seek storm (issue 26 item 4): replay client A sends thousands of seeks and disconnects;
// client B, opened right after on the same gateway, must get its replayed state at once, not
// after A's seeks (each a fold of the fleet) have run one by one on the shared replay worker.
// Checked through /metrics: A's pending seeks were coalesced (only the latest matters) or
// dropped with A, so the worker ran a handful of them, and every seek sent is accounted for.
// Also: a session's client requests are bounded (beyond that, a refusal status).
"use strict";
const WebSocket = require("ws");
const { args, sleep, waitFor, check, run, startUp, playbackControlFrame, fetchMetrics, metricValue } = require("./lib");

const SEEKS = 2000;
const NS_PER_MS = 1000000n;

let checks = 0;
function ok(condition, message) {
  check(condition, message);
  checks++;
  console.log(`  ok ${message}`);
}

// A replay client keeping what it needs: serverInfo, channels, statuses, message and state frames.
function client(url) {
  const ws = new WebSocket(url, ["foxglove.sdk.v1"]);
  const c = { ws, serverInfo: null, channels: new Map(), statuses: [], messages: [], states: [],
              closed: false };
  c.opened = new Promise((resolve, reject) => {
    ws.on("open", resolve);
    ws.on("error", reject);
  });
  ws.on("close", () => (c.closed = true));
  ws.on("message", (data, isBinary) => {
    if (!isBinary) {
      const j = JSON.parse(data.toString());
      if (j.op === "serverInfo") c.serverInfo = j;
      if (j.op === "advertise") for (const ch of j.channels) c.channels.set(ch.topic, ch);
      if (j.op === "status") c.statuses.push(j);
      return;
    }
    const b = Buffer.from(data);
    if (b.readUInt8(0) === 0x01) c.messages.push({ at: Date.now() });
    if (b.readUInt8(0) === 0x05) {
      const idLen = b.readUInt32LE(15);
      c.states.push({ time: b.readBigUInt64LE(2), id: b.subarray(19, 19 + idLen).toString("utf8") });
    }
  });
  c.subscribeTwins = () => {
    const twins = [...c.channels.values()].filter((ch) => ch.topic.endsWith("/twin"));
    ws.send(JSON.stringify({ op: "subscribe",
                             subscriptions: twins.map((ch, i) => ({ id: i + 1, channelId: ch.id })) }));
    return twins.length;
  };
  return c;
}

run(async () => {
  const { doppel } = args();
  const t00 = Date.now();
  // A live fleet writes the history the replays read.
  const up = await startUp(doppel, { robots: 4, rate: 20, salt: 26 });
  try {
    await sleep(6000);
    const nowNs = BigInt(Date.now()) * NS_PER_MS;
    const from = nowNs - 4500n * NS_PER_MS;  // the robots are up by then
    const replay = `ws://${up.base}/replay?from=${from}&to=${nowNs}&token=${up.tokens.viewer}`;

    // One seek's cost, for scale: what the storm would cost if every seek ran.
    const probe = client(replay);
    await probe.opened;
    await waitFor("probe serverInfo and channels", () => probe.serverInfo && probe.channels.size > 0);
    probe.subscribeTwins();
    const p0 = Date.now();
    const PROBES = 20;
    for (let i = 0; i < PROBES; i++) {
      probe.ws.send(playbackControlFrame({ command: 1, seek: from + BigInt(i % 2 ? 4000 : 500) * NS_PER_MS, id: `p${i}` }));
      await waitFor(`probe seek ${i}`, () => probe.states.some((s) => s.id === `p${i}`), 10000);
    }
    const seekMs = (Date.now() - p0) / PROBES;
    probe.ws.close();
    ok(true, `one seek costs about ${seekMs.toFixed(2)} ms: ${SEEKS} would cost ${(seekMs * SEEKS / 1000).toFixed(1)} s`);
    const before = await fetchMetrics(up.base);

    // A: the storm, then gone as soon as the seeks are on the wire.
    const a = client(replay);
    await a.opened;
    await waitFor("A serverInfo and channels", () => a.serverInfo && a.channels.size > 0);
    a.subscribeTwins();
    for (let i = 0; i < SEEKS; i++) {
      a.ws.send(playbackControlFrame({ command: 1, seek: from + BigInt(100 + (i % 4000)) * NS_PER_MS, id: `a${i}` }));
    }
    await waitFor("A's seeks written", () => a.ws.bufferedAmount === 0, 10000);
    a.ws.terminate();

    // B, right after: its state at `from` without waiting for A's seeks.
    const b0 = Date.now();
    const b = client(replay);
    await b.opened;
    await waitFor("B serverInfo and channels", () => b.serverInfo && b.channels.size > 0, 20000);
    const twins = b.subscribeTwins();
    await waitFor("B's first replayed state", () => b.messages.length > 0, 20000);
    const bMs = Date.now() - b0;
    b.ws.send(playbackControlFrame({ command: 1, seek: from + 2000n * NS_PER_MS, id: "b-seek" }));
    await waitFor("B's seek answered", () => b.states.some((s) => s.id === "b-seek"), 20000);
    const bSeekMs = Date.now() - b0;
    ok(bMs < 3000 && bMs < (seekMs * SEEKS) / 4,
       `B's first state of ${twins} twins ${bMs} ms after A left, its seek answered after ${bSeekMs} ms ` +
       `(A's ${SEEKS} seeks one by one: ${(seekMs * SEEKS / 1000).toFixed(1)} s)`);

    // The worker ran a handful of A's seeks; the rest were replaced or dropped with A.
    const after = await waitFor("A's jobs settled", async () => {
      const text = await fetchMetrics(up.base);
      const run_ = metricValue(text, "doppel_gateway_replay_seeks_total");
      const co = metricValue(text, "doppel_gateway_replay_seeks_coalesced_total");
      const dr = metricValue(text, "doppel_gateway_replay_jobs_dropped_total");
      return [run_, co, dr].every((v) => v !== undefined) && text;
    }, 10000).catch(() => null);
    ok(after !== null, "/metrics has doppel_gateway_replay_seeks_total, _seeks_coalesced_total, _jobs_dropped_total");
    const delta = (name) => metricValue(after, name) - (metricValue(before, name) || 0);
    const ran = delta("doppel_gateway_replay_seeks_total") - 1;  // B's own
    const coalesced = delta("doppel_gateway_replay_seeks_coalesced_total");
    const dropped = delta("doppel_gateway_replay_jobs_dropped_total");
    ok(ran <= SEEKS / 20,
       `of A's ${SEEKS} seeks the worker ran ${ran}; ${coalesced} were coalesced, ${dropped} jobs dropped with A`);
    // Seeks the gateway had not read when A left were never queued: not all are accounted for.
    ok(coalesced + dropped > 10 * ran, `A's seeks were mostly coalesced or dropped, not run`);

    // Requests without a seek are bounded per session: beyond the bound, a refusal status.
    const c = client(replay);
    await c.opened;
    await waitFor("C serverInfo and channels", () => c.serverInfo && c.channels.size > 0);
    // A seek first keeps the worker busy on C while the requests queue behind it.
    c.ws.send(playbackControlFrame({ command: 1, seek: from + 4500n * NS_PER_MS, id: "c-seek" }));
    for (let i = 0; i < 200; i++) c.ws.send(playbackControlFrame({ command: 1, id: `c${i}` }));
    await waitFor("C's last request answered or refused", () =>
      c.states.some((s) => s.id === "c199") || c.statuses.some((s) => s.id === "replay-busy"), 20000);
    await sleep(300);
    const refused = c.statuses.filter((s) => s.id === "replay-busy");
    const answered = c.states.filter((s) => /^c\d+$/.test(s.id)).length;
    ok(refused.length > 0 && answered + refused.length === 200 && /refused/.test(refused[0].message),
       `C's 200 pauses: ${answered} answered, ${refused.length} refused ("${refused.length && refused[0].message}")`);
    c.ws.close();
    b.ws.close();
    await sleep(100);
    await up.stop();
    ok(true, `doppel up stopped cleanly (${checks} checks, ${((Date.now() - t00) / 1000).toFixed(1)} s)`);
  } finally {
    if (up.proc.exitCode === null) up.proc.kill("SIGKILL");
  }
});
