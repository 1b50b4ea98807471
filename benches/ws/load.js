// Echo load client (Node `ws`), superseded by oneloop-ws-load (src/load/ws.rs), which run.sh uses:
// this one saturates its core before either server does. C connections, each keeping P messages of S bytes in flight, for D seconds.
// node load.js url connections pipeline size seconds  -> one JSON line {msgs_per_s, ...}
"use strict";
const WebSocket = require("ws");
const [url, C = 64, P = 8, S = 32, D = 5] = process.argv.slice(2);
const conns = Number(C), pipeline = Number(P), size = Number(S), seconds = Number(D);
const payload = "x".repeat(size);
let received = 0, open = 0, counting = false;
const sockets = [];
for (let i = 0; i < conns; i++) {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  ws.on("open", () => {
    open++;
    if (open === conns) start();
  });
  ws.on("message", () => {
    if (counting) received++;
    ws.send(payload);
  });
  ws.on("error", (e) => { console.error(String(e)); process.exit(1); });
  sockets.push(ws);
}
function start() {
  for (const ws of sockets) for (let i = 0; i < pipeline; i++) ws.send(payload);
  // 1 s warm-up, then count.
  setTimeout(() => {
    counting = true;
    const t0 = process.hrtime.bigint();
    setTimeout(() => {
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      console.log(JSON.stringify({ url, conns, pipeline, size, seconds: secs, msgs_per_s: Math.round(received / secs) }));
      process.exit(0);
    }, seconds * 1000);
  }, 1000);
}
