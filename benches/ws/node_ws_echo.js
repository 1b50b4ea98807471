// Node `ws` echo server, the comparison for oneloop's /echo (examples/chat.rs).
// node node_ws_echo.js [port]   (no permessage-deflate, as oneloop; 16 MiB max payload)
"use strict";
const { WebSocketServer } = require("ws");
const port = Number(process.argv[2] || process.env.PORT || 9002);
const wss = new WebSocketServer({ port, path: "/echo", perMessageDeflate: false, maxPayload: 16 << 20 });
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on("listening", () => console.log(`node ws: listening on ws://127.0.0.1:${port}/echo`));
