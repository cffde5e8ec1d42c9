// The anchor of the gateway benchmark: a Node `ws` server (npm) doing the gateway's fan-out
// job for the same messages. The benchmark feeds it over one WebSocket on /feed (text frames:
// {"robot": id | null, "stamp": ns, "payload": "..."}; robot null = the fleet summary); clients
// connect on / with the foxglove.websocket.v1 subprotocol, send {"op":"subscribe","robot":id},
// and get the same binary Message Data frames the gateway sends (0x01 | u32 sub | u64 stamp |
// payload). It sends nothing else: no advertise, no backpressure policy, no auth.
"use strict";
const { WebSocketServer } = require("ws");

const port = Number(process.argv[2] || 0);
const bySubscription = new Map(); // robot -> Set(ws); "" = summary
const wss = new WebSocketServer({ port, host: "127.0.0.1", perMessageDeflate: false,
                                  handleProtocols: (protocols) => [...protocols][0] });

function frame(stamp, payload) {
  const body = Buffer.from(payload);
  const out = Buffer.allocUnsafe(13 + body.length);
  out[0] = 1;
  out.writeUInt32LE(1, 1);
  out.writeBigUInt64LE(BigInt(stamp), 5);
  body.copy(out, 13);
  return out;
}

wss.on("connection", (ws, req) => {
  if (req.url.startsWith("/feed")) {
    ws.on("message", (data) => {
      const m = JSON.parse(data);
      const targets = bySubscription.get(m.robot === null ? "" : m.robot);
      if (!targets) return;
      const f = frame(m.stamp, m.payload);
      for (const client of targets) client.send(f, { binary: true });
    });
    return;
  }
  ws.on("message", (data) => {
    const m = JSON.parse(data);
    if (m.op !== "subscribe") return;
    for (const key of ["", m.robot]) {
      if (!bySubscription.has(key)) bySubscription.set(key, new Set());
      bySubscription.get(key).add(ws);
    }
  });
  ws.on("close", () => { for (const s of bySubscription.values()) s.delete(ws); });
});
wss.on("listening", () => console.log(JSON.stringify({ port: wss.address().port })));
