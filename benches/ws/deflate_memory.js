// Opens N WebSocket clients (Node ws, pinned in package.json) to URL, offering
// permessage-deflate unless MODE=plain; prints "open" when all are connected, then waits for a
// line on stdin, makes every client send one 2 KiB JSON-like message (compressed: threshold 0)
// and wait for its echo, prints "echoed", waits for stdin again and exits.
// node deflate_memory.js URL N MODE     (used by deflate_memory.sh)
"use strict";
const WebSocket = require("ws");
const [url, n, mode] = [process.argv[2], Number(process.argv[3] || 1000), process.argv[4] || "deflate"];
const msg = JSON.stringify(Array.from({ length: 40 }, (_, i) => ({ id: i * 7919 % 1000, user: `user${i}`, text: `message ${i * 31 % 97}` }))).slice(0, 2048);
const socks = [];
let open = 0;
let echoed = 0;
for (let i = 0; i < n; i++) {
  const ws = new WebSocket(url, { perMessageDeflate: mode === "plain" ? false : { threshold: 0 } });
  ws.on("open", () => { if (++open === n) console.log("open"); });
  ws.on("message", () => { if (++echoed === n) console.log("echoed"); });
  ws.on("error", (e) => { console.error(String(e)); process.exit(1); });
  socks.push(ws);
}
let step = 0;
process.stdin.on("data", () => {
  step++;
  if (step === 1) for (const ws of socks) ws.send(msg);
  else process.exit(0);
});
setTimeout(() => process.exit(1), 60000);
