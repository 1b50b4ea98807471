// Node `ws` publish fan-out server, the comparison for oneloop's /bench (examples/chat.rs):
// every client on /bench is a subscriber, and each message received is sent to every open
// client, the sender included (ws's README broadcast recipe).
// node node_ws_fanout.js [port]           (no permessage-deflate, as oneloop's /bench)
// node node_ws_fanout.js [port] deflate   (perMessageDeflate: true, ws's defaults: 1 KiB
//                                          threshold, context takeover, a zlib stream per socket)
"use strict";
const { WebSocketServer, WebSocket } = require("ws");
const port = Number(process.argv[2] || process.env.PORT || 9003);
const perMessageDeflate = process.argv[3] === "deflate";
const wss = new WebSocketServer({ port, path: "/bench", perMessageDeflate, maxPayload: 16 << 20 });
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => {
    for (const client of wss.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});
wss.on("listening", () => console.log(`node ws: listening on ws://127.0.0.1:${port}/bench (perMessageDeflate: ${perMessageDeflate})`));
