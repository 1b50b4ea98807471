// Node `ws` (pinned in package.json) as a permessage-deflate client of oneloop, for
// tests/ws_deflate_node.rs: node ws_deflate_client.js <url> [clientNoContextTakeover]
// Offers ws's default (`permessage-deflate; client_max_window_bits`), compresses everything it
// sends (threshold 0), sends 60 messages (text and binary, 0 B to 200 KiB, some fragmented),
// checks each echo, prints one JSON line: the negotiated extension and the counts.
"use strict";
const WebSocket = require("ws");
const url = process.argv[2];
// undefined (ws's default), not false: an explicit false refuses a server's client_no_context_takeover.
const clientNoContextTakeover = process.argv[3] === "1" ? true : undefined;
const ws = new WebSocket(url, {
  perMessageDeflate: { threshold: 0, clientNoContextTakeover },
});
function text(seed, n) {
  let s = "";
  let x = seed | 1;
  while (s.length < n) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    s += `{"user":"u${x >>> 20}","text":"message ${x % 1000} é€"},`;
  }
  return s.slice(0, n);
}
const sizes = [0, 1, 10, 100, 1000, 1023, 1024, 4096, 65535, 65536, 200000];
const msgs = [];
for (let i = 0; i < 60; i++) {
  const n = sizes[i % sizes.length];
  const t = text(i, n);
  msgs.push(i % 3 === 2 ? Buffer.from(t) : t);
}
let next = 0;
let ok = 0;
let bad = 0;
let header = null;
ws.on("upgrade", (res) => {
  header = res.headers["sec-websocket-extensions"] || null;
});
const result = () => ({ extensions: header, negotiated: ws.extensions, ok, bad });
ws.on("open", () => send());
function send() {
  const m = msgs[next];
  const binary = Buffer.isBuffer(m);
  if (next % 5 === 4 && m.length > 10) {
    // Fragmented: two frames, the first one carries RSV1.
    const half = Math.floor(m.length / 2);
    ws.send(m.slice(0, half), { binary, fin: false });
    ws.send(m.slice(half), { binary, fin: true });
  } else {
    ws.send(m, { binary });
  }
}
ws.on("message", (data, isBinary) => {
  const m = msgs[next];
  const want = Buffer.isBuffer(m) ? m : Buffer.from(m);
  if (isBinary === Buffer.isBuffer(m) && Buffer.compare(data, want) === 0) ok++;
  else bad++;
  next++;
  if (next < msgs.length) send();
  else ws.close(1000, "done");
});
ws.on("close", (code) => {
  console.log(JSON.stringify({ ...result(), code }));
  process.exit(0);
});
ws.on("error", (e) => {
  console.log(JSON.stringify({ ...result(), error: String(e) }));
  process.exit(1);
});
setTimeout(() => {
  console.log(JSON.stringify({ ...result(), error: "timeout" }));
  process.exit(1);
}, 10000);
