//! A chat room: `cargo run --example chat`, then open http://127.0.0.1:3000/ in two tabs.
//!
//! Listens on `PORT` (default 3000) on `HOST` (default 127.0.0.1); `--port N` and `--host H`
//! override. `--workers N` runs N loops sharing the port (SO_REUSEPORT; 0 = one per core).
//! `--redis URL` (`redis://127.0.0.1:6379`) bridges the room through Redis pub/sub, so every
//! worker and every process started with the same URL is one room; without it each worker
//! is its own room. SIGTERM/SIGINT drain gracefully (WebSockets get 1001). Routes:
//! - `GET /`: the page (HTML + a few lines of JavaScript)
//! - `/chat`: the WebSocket. Every text message is `{"name": .., "text": ..}` JSON from the page;
//!   the server stamps it and publishes it to the `room` topic, sender included. Shared
//!   permessage-deflate: browsers negotiate it, and a publish of 1 KiB or more is compressed
//!   once for the whole room. A new client first gets `{"system": "connected to worker W (pid P)", "worker": W, "pid": P}`.
//! - `GET /hub/stats`: the answering worker's hub: `{"worker", "pid", "origin", "redis"}`
//!   (`redis`: the bridge's counters and connection state, `null` without `--redis`)
//! - `/echo`: a WebSocket echo (messages up to 16 MiB; the Autobahn target, see docs/ws.md);
//!   up to 1 MiB queued per client, then echoes are dropped and reading pauses. Shared
//!   permessage-deflate when the client offers it; `/echo-dedicated` is the same with
//!   dedicated compression (a window per connection), `/echo-plain` without compression.
//! - `/bench`: publish fan-out for benches/ws: every client is subscribed to `bench`, and each
//!   message received is published to all of them, the sender included (with `--redis`, on
//!   every process); a subscriber more than 1 MiB behind misses messages (and its own reading
//!   pauses); `/bench-deflate` is the same with shared compression (topic `bench-deflate`)
mod common;

use std::cell::Cell;
use std::rc::Rc;

use oneloop::app::App;
use oneloop::cluster::{self, ClusterOptions};
use oneloop::http::ServerConfig;
use oneloop::runtime::Loop;
use oneloop::shutdown::{graceful_shutdown, ShutdownOptions};
use oneloop::ws::{
    echo_handler, CompressionMode, Hub, HubRedisOptions, HubRedisStats, Message, WsOptions,
};
use serde_json::{json, Value};

const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>oneloop chat</title>
<style>
  body { font: 15px system-ui, sans-serif; max-width: 40em; margin: 2em auto; }
  #log { border: 1px solid #ccc; height: 20em; overflow-y: auto; padding: .5em; }
  #log p { margin: .2em 0; } .sys { color: #888; } b { margin-right: .4em; }
  form { display: flex; gap: .5em; margin-top: .5em; } #text { flex: 1; }
</style>
<h1>oneloop chat</h1>
<div id="log"></div>
<form id="form"><input id="name" placeholder="name" size="10"><input id="text"
  placeholder="message" autocomplete="off"><button>Send</button></form>
<script>
const log = document.getElementById("log");
const line = (html, cls) => {
  const p = document.createElement("p");
  if (cls) p.className = cls;
  p.innerHTML = html;
  log.appendChild(p);
  log.scrollTop = log.scrollHeight;
};
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
const name = document.getElementById("name");
name.value = "guest" + Math.floor(Math.random() * 1000);
const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/chat");
ws.onopen = () => line("connected", "sys");
ws.onclose = e => line("disconnected (" + e.code + ")", "sys");
ws.onmessage = e => {
  const m = JSON.parse(e.data);
  if (m.system) line(esc(m.system), "sys");
  else line("<b>" + esc(m.name) + "</b>" + esc(m.text));
};
document.getElementById("form").onsubmit = e => {
  e.preventDefault();
  const text = document.getElementById("text");
  if (text.value && ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ name: name.value, text: text.value }));
    text.value = "";
  }
};
</script>
"#;

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = common::Args::from_env();
    let port: u16 = args.port(3000).parse().unwrap_or(3000);
    let host = args.host();
    let workers: usize = args
        .value("--workers")
        .and_then(|w| w.parse().ok())
        .unwrap_or(1);
    let redis = args.value("--redis");
    let many = cluster::worker_count(workers) > 1;
    let options = ClusterOptions {
        workers,
        ..ClusterOptions::default()
    };
    cluster::run(options, move |lp, worker| {
        let hub = match &redis {
            Some(url) => Hub::with_redis(lp, url, HubRedisOptions::default()).map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("--redis: {e}"))
            })?,
            None => Hub::new(),
        };
        let app = build(hub.clone(), worker);
        let mut config = ServerConfig::default();
        config.listen.reuse_port = many;
        let shown = host.clone();
        let server = app.listen_on(lp, (host.as_str(), port), config, move |_lp, addr| {
            if worker == 0 {
                println!(
                    "chat: listening on http://{shown}:{}/ (WebSocket at /chat)",
                    addr.port()
                );
            }
        })?;
        graceful_shutdown(lp, vec![server], ShutdownOptions::default(), move |lp| {
            hub.disconnect_redis(lp);
        })
    })
}

fn stats_json(s: &HubRedisStats) -> Value {
    json!({
        "publisher_ready": s.publisher_ready,
        "subscriber_ready": s.subscriber_ready,
        "remote_topics": s.remote_topics,
        "published": s.published,
        "publish_failed": s.publish_failed,
        "too_large": s.too_large,
        "received": s.received,
        "own_dropped": s.own_dropped,
        "delivered": s.delivered,
        "malformed": s.malformed,
    })
}

fn build(hub: Hub, worker: usize) -> App {
    let mut app = App::new();
    app.get("/", |_req, res| {
        res.set("content-type", "text/html; charset=utf-8");
        res.send(PAGE);
    });
    let h = hub.clone();
    app.get("/hub/stats", move |_req, res| {
        let body = json!({
            "worker": worker,
            "pid": std::process::id(),
            "origin": h.redis_origin(),
            "redis": h.redis_stats().as_ref().map(stats_json),
        });
        res.json(&body);
    });

    let bench_hub = hub.clone();
    let online = Rc::new(Cell::new(0usize));
    let options = WsOptions {
        hub: hub.clone(),
        compression: CompressionMode::Shared,
        ..Default::default()
    };
    app.ws("/chat", options, move |lp: &mut Loop, ws| {
        ws.subscribe("room");
        online.set(online.get() + 1);
        let pid = std::process::id();
        let welcome = json!({
            "system": format!("connected to worker {worker} (pid {pid})"),
            "worker": worker,
            "pid": pid,
        });
        ws.send(lp, welcome.to_string());
        // `online` counts this worker's clients only.
        let joined = json!({ "system": format!("someone joined ({} online)", online.get()) });
        hub.publish(lp, "room", joined.to_string());

        ws.on_message(|lp, ws, msg| {
            let Message::Text(text) = msg else { return };
            let Ok(m) = serde_json::from_str::<Value>(&text) else {
                ws.close(lp, 1003, "expected JSON");
                return;
            };
            let name: String = m["name"]
                .as_str()
                .unwrap_or("anon")
                .chars()
                .take(32)
                .collect();
            let text: String = m["text"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(2000)
                .collect();
            let out = json!({ "name": name, "text": text });
            // To everyone in the room, the sender included.
            ws.hub().publish(lp, "room", out.to_string());
        });
        let hub = hub.clone();
        let online = Rc::clone(&online);
        ws.on_close(move |lp, _ws, _code, _reason| {
            online.set(online.get() - 1);
            let left = json!({ "system": format!("someone left ({} online)", online.get()) });
            hub.publish(lp, "room", left.to_string());
        });
    });

    // 1 MiB of queued replies per client: far above what a reading client ever has queued (an
    // echo of a 16 MiB message is still accepted: the limit is checked before each send), and
    // what bounds a client that sends without reading.
    let echo_options = WsOptions {
        max_payload: 16 * 1024 * 1024,
        max_backpressure: 1024 * 1024,
        ..Default::default()
    };
    let with = |compression| WsOptions {
        compression,
        ..echo_options.clone()
    };
    app.ws("/echo", with(CompressionMode::Shared), echo_handler());
    app.ws(
        "/echo-dedicated",
        with(CompressionMode::Dedicated),
        echo_handler(),
    );
    app.ws("/echo-plain", echo_options.clone(), echo_handler());

    // The chat's hub (topic `bench`): with --redis, /bench fans out across processes too.
    let bench_options = WsOptions {
        max_payload: 64 * 1024,
        max_backpressure: 1024 * 1024,
        hub: bench_hub,
        ..Default::default()
    };
    app.ws("/bench", bench_options.clone(), |_lp, ws| {
        ws.subscribe("bench");
        ws.on_message(|lp, ws, msg| {
            ws.hub().publish(lp, "bench", msg);
        });
    });
    let deflate_options = WsOptions {
        compression: CompressionMode::Shared,
        ..bench_options
    };
    app.ws("/bench-deflate", deflate_options, |_lp, ws| {
        ws.subscribe("bench-deflate");
        ws.on_message(|lp, ws, msg| {
            ws.hub().publish(lp, "bench-deflate", msg);
        });
    });
    app
}
