//! `app.ws(path, options, handler)`: a WebSocket endpoint on the app's upgrade hook.

use oneloop_runtime::Loop;

use super::App;
use crate::ws::{Endpoint, WebSocket, WsOptions};

impl App {
    /// Accepts WebSocket upgrades on exactly `path` (the query string is ignored): a valid
    /// handshake gets `101` and `handler(lp, ws)` runs before any message arrives; a bad one
    /// gets 400 (426 with `Sec-WebSocket-Version: 13` for a version other than 13). Upgrade
    /// requests for paths without a route get 404. See [`crate::ws`].
    pub fn ws(
        &mut self,
        path: &str,
        options: WsOptions,
        handler: impl Fn(&mut Loop, WebSocket) + 'static,
    ) -> &mut Self {
        let endpoint = Endpoint::new(options, handler);
        self.upgrade_route(path, move |lp, req, id, rest| {
            endpoint.upgrade(lp, &req, id, rest);
        })
    }
}
