//! `app.ws(path, options, handler)`: a WebSocket endpoint on the app's upgrade hook.

use std::rc::Rc;

use oneloop_runtime::Loop;

use super::App;
use crate::ws::{Endpoint, WebSocket, WsOptions};

impl App {
    /// Accepts WebSocket upgrades on exactly `path` (the query string is ignored): a valid
    /// handshake gets `101` and `handler(lp, ws)` runs before any message arrives; a bad one
    /// gets 400 (426 with `Sec-WebSocket-Version: 13` for a version other than 13). Upgrade
    /// requests for other paths (or offering only other protocols) go to the app's ordinary
    /// routes (so 404 unless one matches). When the server closes gracefully, every socket of
    /// this endpoint is closed with 1001 "going away". See [`crate::ws`].
    pub fn ws(
        &mut self,
        path: &str,
        options: WsOptions,
        handler: impl Fn(&mut Loop, WebSocket) + 'static,
    ) -> &mut Self {
        let endpoint = Endpoint::new(options, handler);
        let ep = Rc::clone(&endpoint);
        self.on_closing(move |lp| ep.going_away(lp));
        self.upgrade_route(path, "websocket", move |lp, req, id, rest| {
            endpoint.upgrade(lp, &req, id, rest);
        })
    }
}
