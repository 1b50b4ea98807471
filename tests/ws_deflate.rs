//! permessage-deflate (RFC 7692) over real loopback sockets: negotiation (each parameter
//! accepted or refused, never a failed handshake), compressed messages split across fragments,
//! RSV1 misuse, a deflate bomb, context takeover across 1,000 messages, and a shared publish.
//! The client side compresses and inflates with the crate's own raw-deflate codec.

mod ws_common;

use std::io::Write;
use std::net::SocketAddr;

use bytes::BytesMut;
use oneloop::app::App;
use oneloop::ws::deflate::{Deflater, Inflater};
use oneloop::ws::frame::{encode_masked_frame_flags, OpCode};
use oneloop::ws::{echo_handler, CompressionMode, Hub, WsOptions};
use ws_common::{serve, upgrade_request, Client, Frame, KEY, MASK};

fn server() -> SocketAddr {
    serve(|| {
        let mut app = App::new();
        let opts = |compression| WsOptions {
            compression,
            max_payload: 64 * 1024,
            ..Default::default()
        };
        app.ws("/off", opts(CompressionMode::Off), echo_handler());
        app.ws("/shared", opts(CompressionMode::Shared), echo_handler());
        app.ws(
            "/dedicated",
            opts(CompressionMode::Dedicated),
            echo_handler(),
        );
        let hub = Hub::new();
        let pubsub = WsOptions {
            compression: CompressionMode::Shared,
            hub: hub.clone(),
            ..Default::default()
        };
        app.ws("/room", pubsub, move |_lp, ws| {
            ws.subscribe("room");
            let hub = hub.clone();
            ws.on_message(move |lp, _ws, msg| {
                hub.publish(lp, "room", msg);
            });
        });
        app
    })
}

fn connect(addr: SocketAddr, path: &str, offer: Option<&str>) -> (Client, Option<String>) {
    let ext = offer
        .map(|o| format!("Sec-WebSocket-Extensions: {o}\r\n"))
        .unwrap_or_default();
    let req = upgrade_request(
        path,
        &format!("Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{ext}"),
    );
    let (c, head) = Client::raw(addr, req.as_bytes());
    assert!(head.starts_with("HTTP/1.1 101 "), "{offer:?}: {head}");
    let answer = head
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: "))
        .map(str::to_owned);
    (c, answer)
}

/// A masked client frame with FIN/RSV1 flags.
fn cframe(flags: u8, op: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    encode_masked_frame_flags(&mut b, flags, op, MASK, payload);
    b.to_vec()
}

fn inflate(inf: &mut Inflater, f: &Frame) -> Vec<u8> {
    assert!(f.rsv1, "expected a compressed frame: {f:?}");
    let mut out = Vec::new();
    inf.inflate(&f.payload, &mut out, 1 << 24).unwrap();
    inf.finish(&mut out, 1 << 24).unwrap();
    out
}

/// `n` bytes of JSON-ish text that compresses about 3x on its own.
fn json_text(seed: u32, n: usize) -> String {
    let mut s = String::from("[");
    let mut x = seed | 1;
    while s.len() < n {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        s.push_str(&format!(
            "{{\"user\":\"u{}\",\"text\":\"message number {}\"}},",
            x >> 20,
            x % 1000
        ));
    }
    s.truncate(n - 1);
    s.push(']');
    s
}

#[test]
fn each_negotiation_parameter_is_accepted_or_refused_without_failing_the_handshake() {
    let addr = server();
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("/off", "permessage-deflate", None),
        ("/dedicated", "permessage-deflate", Some("permessage-deflate")),
        (
            "/shared",
            "permessage-deflate",
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
        ),
        (
            "/dedicated",
            "permessage-deflate; server_no_context_takeover",
            Some("permessage-deflate; server_no_context_takeover"),
        ),
        (
            "/dedicated",
            "permessage-deflate; client_no_context_takeover",
            Some("permessage-deflate; client_no_context_takeover"),
        ),
        (
            "/dedicated",
            "permessage-deflate; server_max_window_bits=10",
            Some("permessage-deflate; server_max_window_bits=10"),
        ),
        (
            "/dedicated",
            "permessage-deflate; client_max_window_bits",
            Some("permessage-deflate"),
        ),
        (
            "/dedicated",
            "permessage-deflate; client_max_window_bits=9",
            Some("permessage-deflate"),
        ),
        // Refused: no extension in the answer, the handshake still succeeds.
        ("/dedicated", "permessage-deflate; server_max_window_bits=8", None),
        ("/dedicated", "permessage-deflate; server_max_window_bits=16", None),
        ("/dedicated", "permessage-deflate; server_max_window_bits", None),
        ("/dedicated", "permessage-deflate; client_max_window_bits=7", None),
        ("/shared", "permessage-deflate; foo=bar", None),
        (
            "/shared",
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
            None,
        ),
        ("/shared", "x-webkit-deflate-frame", None),
        // Several offers: the first acceptable one.
        (
            "/dedicated",
            "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=12, permessage-deflate",
            Some("permessage-deflate; server_max_window_bits=12"),
        ),
    ];
    for (path, offer, want) in cases {
        let (_c, got) = connect(addr, path, Some(offer));
        assert_eq!(got.as_deref(), *want, "{path} {offer}");
    }
    // No offer: no extension.
    assert_eq!(connect(addr, "/shared", None).1, None);
}

#[test]
fn compressed_messages_split_across_fragments_are_reassembled_and_echoed_compressed() {
    let addr = server();
    for path in ["/shared", "/dedicated"] {
        let (mut c, ext) = connect(addr, path, Some("permessage-deflate"));
        assert!(ext.is_some());
        let text = json_text(1, 10_000);
        let z = Deflater::new(15, true).compress(text.as_bytes());
        let (a, rest) = z.split_at(z.len() / 3);
        let (b, d) = rest.split_at(rest.len() / 2);
        // RSV1 on the first frame only; a ping between fragments.
        c.send(&cframe(0x40, OpCode::Text, a));
        c.send(&cframe(0x00, OpCode::Continuation, b));
        c.send(&cframe(0x80, OpCode::Ping, b"p"));
        c.send(&cframe(0x80, OpCode::Continuation, d));
        let pong = c.read_frame();
        assert_eq!(pong.op, 0xA);
        let echo = c.read_frame();
        assert_eq!((echo.fin, echo.op), (true, 1));
        assert!(
            echo.payload.len() < text.len() / 2,
            "{path}: not compressed"
        );
        assert_eq!(
            inflate(&mut Inflater::new(), &echo),
            text.as_bytes(),
            "{path}"
        );
        // Below the 1 KiB threshold: sent plain.
        c.send(&cframe(0x80, OpCode::Text, b"short"));
        let plain = c.read_frame();
        assert!(!plain.rsv1);
        assert_eq!(plain.payload, b"short");
    }
}

#[test]
fn rsv1_on_a_continuation_or_control_frame_or_without_negotiation_is_1002() {
    let addr = server();
    let z = Deflater::new(15, true).compress(b"hello hello hello");
    let (mut c, _) = connect(addr, "/shared", Some("permessage-deflate"));
    c.send(&cframe(0x40, OpCode::Text, &z));
    c.send(&cframe(0xC0, OpCode::Continuation, &z));
    c.expect_close(1002);
    let (mut c, _) = connect(addr, "/shared", Some("permessage-deflate"));
    c.send(&cframe(0xC0, OpCode::Ping, b""));
    c.expect_close(1002);
    let (mut c, ext) = connect(addr, "/off", Some("permessage-deflate"));
    assert_eq!(ext, None);
    c.send(&cframe(0xC0, OpCode::Text, &z));
    c.expect_close(1002);
    // Corrupt compressed data: 1007.
    let (mut c, _) = connect(addr, "/dedicated", Some("permessage-deflate"));
    c.send(&cframe(0xC0, OpCode::Binary, &[0xff; 40]));
    c.expect_close(1007);
}

fn vm_rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_deflate_bomb_is_closed_with_1009_and_server_memory_stays_bounded() {
    let addr = server();
    // One message that would inflate to 1 GiB of zeros: a first frame of about 1 KiB
    // (1 MiB of zeros; deflate's best ratio is ~1:1000), then 1023 frames of the same
    // size, each another MiB with the window taken over. max_payload is 64 KiB.
    let mut d = Deflater::new(15, false);
    let mib = vec![0u8; 1 << 20];
    let first = d.compress(&mib);
    let next = d.compress(&mib);
    assert!(
        first.len() < 1100 && next.len() < 1100,
        "{} {}",
        first.len(),
        next.len()
    );
    let rss_before = vm_rss_kib();
    let (mut c, _) = connect(addr, "/dedicated", Some("permessage-deflate"));
    let mut w = c.s.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut all = cframe(0x40, OpCode::Binary, &first);
        for i in 0..1023 {
            let fin = if i == 1022 { 0x80 } else { 0 };
            all.extend(cframe(fin, OpCode::Continuation, &next));
        }
        // The server closes early: later writes may fail, which is fine.
        let _ = w.write_all(&all);
    });
    let reason = c.expect_close(1009);
    assert!(reason.contains("inflation"), "{reason}");
    writer.join().unwrap();
    // Nothing like 1 GiB (nor even 64 MiB) was allocated: the inflated buffer is capped at
    // max_payload + 1 bytes (unit test ws::deflate::tests::a_bomb_fails_at_the_limit...).
    let grew = vm_rss_kib().saturating_sub(rss_before);
    assert!(grew < 32 * 1024, "RSS grew by {grew} KiB");
}

#[test]
fn context_takeover_holds_across_1000_messages_both_ways() {
    let addr = server();
    let (mut c, ext) = connect(addr, "/dedicated", Some("permessage-deflate"));
    assert_eq!(ext.as_deref(), Some("permessage-deflate"));
    let mut tx = Deflater::new(15, false);
    let mut rx = Inflater::new();
    let base = json_text(7, 2048);
    let mut sent_bytes = 0;
    let mut received_bytes = 0;
    for i in 0..1000 {
        // The same 2 KiB with a different counter: tiny once the window holds the previous one.
        let msg = format!("{{\"seq\":{i:06}}}{}", &base[14..]);
        let z = tx.compress(msg.as_bytes());
        sent_bytes += z.len();
        c.send(&cframe(0xC0, OpCode::Text, &z));
        let f = c.read_frame();
        received_bytes += f.payload.len();
        assert_eq!(inflate(&mut rx, &f), msg.as_bytes(), "message {i}");
    }
    // Both windows were really taken over: on average far below one message's own
    // compressed size (~340 bytes for this text).
    let alone = Deflater::new(15, true).compress(base.as_bytes()).len();
    assert!(alone > 200, "{alone}");
    assert!(sent_bytes / 1000 < alone / 4, "{sent_bytes}");
    assert!(received_bytes / 1000 < alone / 4, "{received_bytes}");
}

#[test]
fn a_shared_publish_sends_the_same_compressed_bytes_to_every_compressing_subscriber() {
    let addr = server();
    let mut subs: Vec<Client> = (0..3)
        .map(|_| connect(addr, "/room", Some("permessage-deflate")).0)
        .collect();
    let (plain, ext) = connect(addr, "/room", None);
    assert_eq!(ext, None);
    subs.push(plain);
    let (mut window9, ext) = connect(
        addr,
        "/room",
        Some("permessage-deflate; server_max_window_bits=9"),
    );
    assert!(ext.unwrap().contains("server_max_window_bits=9"));
    let text = json_text(3, 2048);
    // Publish from the first subscriber (the hub publishes to everyone, sender included).
    subs[0].send(&cframe(0x80, OpCode::Text, text.as_bytes()));
    let frames: Vec<Frame> = subs.iter_mut().map(|c| c.read_frame()).collect();
    assert!(frames[0].rsv1 && frames[0].payload.len() < text.len() / 2);
    assert_eq!(frames[0], frames[1]);
    assert_eq!(frames[0], frames[2]);
    assert_eq!(inflate(&mut Inflater::new(), &frames[0]), text.as_bytes());
    assert!(!frames[3].rsv1);
    assert_eq!(frames[3].payload, text.as_bytes());
    let f9 = window9.read_frame();
    assert_eq!(inflate(&mut Inflater::new(), &f9), text.as_bytes());
}
