// Node `ws` fan-out server with permessage-deflate (ws defaults, threshold 0 so every message
// is compressed), for tests/ws_deflate_node.rs (oneloop-ws-load's --deflate against it):
// node ws_deflate_server.js   prints the port, then broadcasts every message to every client.
"use strict";
const { WebSocketServer, WebSocket } = require("ws");
const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", perMessageDeflate: { threshold: 0 } });
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => {
    for (const c of wss.clients) if (c.readyState === WebSocket.OPEN) c.send(data, { binary: isBinary });
  });
});
wss.on("listening", () => console.log(wss.address().port));
setTimeout(() => process.exit(0), 20000);
