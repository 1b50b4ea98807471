//! oneloop-ws-load's counting against oneloop WebSocket servers in this process: `/echo`
//! (echo_handler), `/bench` (every client subscribed, each message published to all, as
//! examples/chat.rs), and misbehaving routes: `/corrupt` (echoes one byte changed), `/lossy`
//! (drops every 10th message) and `/closer` (closes after 5 messages). Count-bounded runs must
//! count exactly; the bad routes must be reported as mismatches or failures, in bounded time.

use std::net::SocketAddr;
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use oneloop::app::App;
use oneloop::http::ServerConfig;
use oneloop::load::ws::{self, WsLoadConfig, WsMode, WsReport};
use oneloop::runtime::Loop;
use oneloop::ws::{echo_handler, CompressionMode, Message, WsOptions};

fn app() -> App {
    let mut app = App::new();
    let unlimited = || WsOptions {
        max_payload: 1 << 20,
        max_backpressure: 0,
        ..Default::default()
    };
    app.ws("/echo", unlimited(), echo_handler());
    app.ws("/bench", unlimited(), |_lp, ws| {
        ws.subscribe("bench");
        ws.on_message(|lp, ws, msg| {
            ws.hub().publish(lp, "bench", msg);
        });
    });
    for (path, compression) in [
        ("/bench-shared", CompressionMode::Shared),
        ("/bench-dedicated", CompressionMode::Dedicated),
    ] {
        let topic = path.to_owned();
        let options = WsOptions {
            compression,
            ..unlimited()
        };
        app.ws(path, options, move |_lp, ws| {
            ws.subscribe(&topic);
            let topic = topic.clone();
            ws.on_message(move |lp, ws, msg| {
                ws.hub().publish(lp, &topic, msg);
            });
        });
    }
    app.ws("/corrupt", unlimited(), |_lp, ws| {
        ws.on_message(|lp, ws, msg| {
            let mut v = msg.as_bytes().to_vec();
            if let Some(b) = v.last_mut() {
                *b ^= 1;
            }
            ws.send(lp, Message::Binary(Bytes::from(v)));
        });
    });
    app.ws("/lossy", unlimited(), |_lp, ws| {
        let mut n = 0u64;
        ws.on_message(move |lp, ws, msg| {
            n += 1;
            if n == 10 {
                n = 0; // dropped
            } else {
                ws.send(lp, msg);
            }
        });
    });
    app.ws("/closer", unlimited(), |_lp, ws| {
        let mut n = 0u64;
        ws.on_message(move |lp, ws, msg| {
            n += 1;
            if n == 5 {
                ws.close(lp, 1000, "enough");
            } else {
                ws.send(lp, msg);
            }
        });
    });
    app
}

/// The server, started once per test binary on its own thread and loop (stops after 60 s).
fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lp = Loop::new().unwrap();
            let server = app()
                .listen_on(&mut lp, "127.0.0.1:0", ServerConfig::default(), |_, _| {})
                .unwrap();
            tx.send(server.local_addr().unwrap()).unwrap();
            lp.set_timeout(60_000, |lp| lp.stop());
            lp.run().unwrap();
        });
        rx.recv_timeout(Duration::from_secs(5)).unwrap()
    })
}

fn config(path: &str, mode: WsMode) -> WsLoadConfig {
    let mut c = WsLoadConfig::new(&format!("ws://{}{path}", server()), mode).unwrap();
    c.warmup = Duration::ZERO;
    c.duration = Duration::from_secs(10);
    c.timeout = Duration::from_secs(2);
    c
}

fn run(c: WsLoadConfig) -> WsReport {
    let t = Instant::now();
    let r = ws::run(c).unwrap();
    assert!(t.elapsed() < Duration::from_secs(15), "run not bounded");
    r
}

#[test]
fn echo_counts_exactly() {
    let mut c = config("/echo", WsMode::Echo);
    c.connections = 7;
    c.pipeline = 3;
    c.size = 100;
    c.messages = Some(2_000);
    let r = run(c);
    assert_eq!(r.failure, None);
    assert_eq!(r.sent, 2_000);
    assert_eq!(r.messages, 2_000);
    assert_eq!(r.deliveries, 2_000);
    assert_eq!(r.bytes, 200_000);
    assert_eq!(r.latency.len(), 2_000);
    assert_eq!(r.mismatches, 0);
    let j = r.to_json();
    assert_eq!(j["messages"], 2_000);
    assert_eq!(j["mode"], "echo");
}

#[test]
fn echo_large_messages_count_exactly() {
    // 70,000 bytes: 64-bit length headers, frames spread over many reads.
    let mut c = config("/echo", WsMode::Echo);
    c.connections = 2;
    c.pipeline = 2;
    c.size = 70_000;
    c.messages = Some(50);
    let r = run(c);
    assert_eq!(r.failure, None);
    assert_eq!((r.messages, r.mismatches), (50, 0));
    assert_eq!(r.bytes, 50 * 70_000);
}

#[test]
fn echo_duration_mode_measures_the_duration() {
    let mut c = config("/echo", WsMode::Echo);
    c.connections = 4;
    c.pipeline = 2;
    c.warmup = Duration::from_millis(100);
    c.duration = Duration::from_millis(300);
    let r = run(c);
    assert_eq!(r.failure, None);
    assert!(r.messages > 0);
    assert_eq!(r.mismatches, 0);
    let secs = r.elapsed.as_secs_f64();
    assert!((0.29..0.6).contains(&secs), "measured {secs} s");
    // Every counted echo was sent in the measured interval; at most C x P are still in flight.
    assert!(r.sent >= r.messages && r.sent - r.messages <= 8);
}

#[test]
fn fanout_counts_every_delivery() {
    let mut c = config("/bench", WsMode::Fanout);
    c.connections = 50;
    c.pipeline = 4;
    c.size = 16;
    c.messages = Some(300);
    let r = run(c);
    assert_eq!(r.failure, None);
    assert_eq!(r.sent, 300);
    assert_eq!(r.messages, 300);
    assert_eq!(r.deliveries, 300 * 50);
    assert_eq!(r.latency.len(), 300 * 50);
    assert_eq!(r.complete_latency.len(), 300);
    assert_eq!(r.mismatches, 0);
    // The last subscriber never gets a message before the median one.
    assert!(r.complete_latency.max() >= r.latency.value_at_quantile(0.5));
}

#[test]
fn corrupted_echoes_are_mismatches() {
    let mut c = config("/corrupt", WsMode::Echo);
    c.connections = 2;
    c.pipeline = 2;
    c.messages = Some(100);
    let r = run(c);
    assert_eq!(r.messages, 100);
    assert_eq!(r.mismatches, 100);
}

#[test]
fn lost_messages_end_the_run_as_a_stall() {
    let mut c = config("/lossy", WsMode::Echo);
    c.connections = 1;
    c.pipeline = 1;
    c.messages = Some(100);
    c.timeout = Duration::from_millis(300);
    let r = run(c);
    let f = r.failure.unwrap_or_default();
    assert!(f.contains("stalled"), "{f}");
    assert_eq!(r.messages, 9);
}

#[test]
fn a_server_close_ends_the_run() {
    let mut c = config("/closer", WsMode::Echo);
    c.connections = 1;
    c.pipeline = 1;
    c.messages = Some(100);
    let r = run(c);
    let f = r.failure.unwrap_or_default();
    assert!(f.contains("Close 1000"), "{f}");
    assert_eq!(r.messages, 4);
}

#[test]
fn refused_and_wrong_paths_fail_cleanly() {
    let r = run(config("/nope", WsMode::Echo));
    let f = r.failure.unwrap_or_default();
    assert!(f.contains("404"), "{f}");

    let mut c = config("/echo", WsMode::Echo);
    // A port nothing listens on: bind one, drop it.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    c.addr = free;
    let r = run(c);
    assert!(r.failure.is_some());
    assert_eq!(r.messages, 0);
}

#[test]
fn fanout_with_deflate_counts_exactly_and_compressed_frames_cost_fewer_wire_bytes() {
    let fanout = |path: &str, deflate: bool| {
        let mut c = config(path, WsMode::Fanout);
        c.connections = 20;
        c.pipeline = 4;
        c.size = 2048;
        c.json_payload = true;
        c.deflate = deflate;
        c.messages = Some(200);
        let r = run(c);
        assert_eq!(r.failure, None, "{path} deflate={deflate}");
        assert_eq!((r.deliveries, r.mismatches), (4_000, 0), "{path}");
        assert_eq!(r.bytes, 4_000 * 2048);
        assert_eq!(r.to_json()["deflate"], deflate);
        r.wire_bytes
    };
    let plain = fanout("/bench", false);
    let shared = fanout("/bench-shared", true);
    let dedicated = fanout("/bench-dedicated", true);
    // Everything read counts (the publisher's own copies too): at least the payloads.
    assert!(plain >= 4_000 * 2048, "{plain}");
    assert!(shared * 2 < plain, "shared {shared} vs plain {plain}");
    assert!(
        dedicated * 2 < plain,
        "dedicated {dedicated} vs plain {plain}"
    );
    // Offering to a server without compression fails the run clearly.
    let mut c = config("/bench", WsMode::Fanout);
    c.connections = 2;
    c.deflate = true;
    c.messages = Some(1);
    let r = run(c);
    assert!(
        r.failure
            .as_deref()
            .is_some_and(|f| f.contains("did not accept permessage-deflate")),
        "{:?}",
        r.failure
    );
}
