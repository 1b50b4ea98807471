//! WebSocket protocol over real loopback sockets: the handshake, frame lengths, fragmentation,
//! control frames, every protocol-violation close code, the close handshake, odd deliveries.

mod ws_common;

use std::sync::mpsc;
use std::time::Duration;

use oneloop::app::App;
use oneloop::ws::frame::OpCode;
use oneloop::ws::{echo_handler, WsOptions};
use ws_common::{frame, good_request, raw_frame, serve, upgrade_request, Client, KEY};

/// An app with an echo endpoint at `/echo` accepting messages up to `max_payload`.
fn echo_server(max_payload: usize) -> std::net::SocketAddr {
    serve(move || {
        let mut app = App::new();
        let options = WsOptions {
            max_payload,
            ..Default::default()
        };
        app.ws("/echo", options, echo_handler());
        app
    })
}

fn echo() -> std::net::SocketAddr {
    echo_server(16 * 1024)
}

// -- handshake ----------------------------------------------------------------------------------

#[test]
fn handshake_answers_101_with_the_accept_key() {
    let addr = echo();
    let mut c = Client::connect(addr, "/echo");
    c.send_text("hi");
    assert_eq!(c.read_text(), "hi");
}

#[test]
fn handshake_ignores_the_query_string() {
    let addr = echo();
    let mut c = Client::connect(addr, "/echo?room=1");
    c.send_text("q");
    assert_eq!(c.read_text(), "q");
}

#[test]
fn handshake_refuses_version_8_with_426_and_advertises_13() {
    let addr = echo();
    let req = upgrade_request(
        "/echo",
        &format!("Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 8\r\n"),
    );
    let (mut c, head) = Client::raw(addr, req.as_bytes());
    assert!(head.starts_with("HTTP/1.1 426 "), "{head}");
    assert!(head.contains("Sec-WebSocket-Version: 13\r\n"), "{head}");
    c.read_to_end();
}

#[test]
fn handshake_refuses_a_missing_or_invalid_key_with_400() {
    let addr = echo();
    for extra in [
        "Sec-WebSocket-Version: 13\r\n".to_string(),
        "Sec-WebSocket-Key: not-base64\r\nSec-WebSocket-Version: 13\r\n".to_string(),
    ] {
        let (mut c, head) = Client::raw(addr, upgrade_request("/echo", &extra).as_bytes());
        assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
        c.read_to_end();
    }
}

#[test]
fn upgrade_on_a_path_without_a_ws_route_gets_404() {
    let addr = echo();
    let (mut c, head) = Client::raw(addr, good_request("/nope").as_bytes());
    assert!(head.starts_with("HTTP/1.1 404 "), "{head}");
    c.read_to_end();
}

#[test]
fn handshake_on_http_1_0_is_refused_with_400() {
    let addr = echo();
    let req = good_request("/echo").replacen("HTTP/1.1", "HTTP/1.0", 1);
    let (mut c, head) = Client::raw(addr, req.as_bytes());
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    assert!(head.contains("\r\nDate: "), "{head}");
    c.read_to_end();
}

#[test]
fn handshake_with_two_sec_websocket_keys_is_refused_with_400() {
    let addr = echo();
    let req = upgrade_request(
        "/echo",
        &format!(
            "Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"
        ),
    );
    let (mut c, head) = Client::raw(addr, req.as_bytes());
    assert!(head.starts_with("HTTP/1.1 400 "), "{head}");
    c.read_to_end();
}

#[test]
fn an_h2c_upgrade_offer_is_served_by_the_app_routes() {
    let addr = serve(|| {
        let mut app = App::new();
        app.get("/", |_req, res| res.send("plain"));
        app.ws("/", WsOptions::default(), echo_handler());
        app
    });
    // `/` has a ws route, but this request offers only h2c: ordinary HTTP.
    let (mut c, head) = Client::raw(
        addr,
        b"GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\nConnection: close\r\n\r\n",
    );
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(c.read_to_end().ends_with(b"plain"));
}

// -- frames -------------------------------------------------------------------------------------

#[test]
fn echoes_7_16_and_64_bit_lengths() {
    let addr = echo_server(200_000);
    let mut c = Client::connect(addr, "/echo");
    for len in [0usize, 1, 125, 126, 127, 65_535, 65_536, 100_000] {
        let p: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        c.send_frame(true, OpCode::Binary, &p);
        let f = c.read_frame();
        assert_eq!((f.fin, f.op, f.payload.len()), (true, 2, len));
        assert_eq!(f.payload, p);
    }
}

#[test]
fn echoes_1_mib_binary_and_text_messages() {
    let addr = echo_server(2 << 20);
    let mut c = Client::connect(addr, "/echo");
    let p: Vec<u8> = (0..1 << 20).map(|i| (i * 7 % 256) as u8).collect();
    c.send_frame(true, OpCode::Binary, &p);
    assert_eq!(c.read_frame().payload, p);
    let t = "é".repeat(1 << 19);
    c.send_text(&t);
    assert_eq!(c.read_text(), t);
}

#[test]
fn reassembles_fragments_including_empty_ones() {
    let addr = echo();
    let mut c = Client::connect(addr, "/echo");
    c.send_frame(false, OpCode::Text, b"");
    c.send_frame(false, OpCode::Continuation, b"Hel");
    c.send_frame(false, OpCode::Continuation, b"");
    c.send_frame(true, OpCode::Continuation, b"lo");
    assert_eq!(c.read_text(), "Hello");
    // A message made only of empty fragments.
    c.send_frame(false, OpCode::Binary, b"");
    c.send_frame(true, OpCode::Continuation, b"");
    let f = c.read_frame();
    assert_eq!((f.op, f.payload.len()), (2, 0));
}

#[test]
fn ping_inside_a_fragmented_message_is_answered_and_the_message_stays_intact() {
    let addr = echo();
    let mut c = Client::connect(addr, "/echo");
    c.send_frame(false, OpCode::Text, b"frag");
    c.send_frame(true, OpCode::Ping, b"p1");
    c.send_frame(false, OpCode::Continuation, b"men");
    c.send_frame(true, OpCode::Pong, b"unsolicited");
    c.send_frame(true, OpCode::Continuation, b"ted");
    let pong = c.read_frame();
    assert_eq!((pong.op, pong.payload.as_slice()), (0xA, &b"p1"[..]));
    assert_eq!(c.read_text(), "fragmented");
}

#[test]
fn utf8_split_across_fragments_is_accepted() {
    let addr = echo();
    let mut c = Client::connect(addr, "/echo");
    let s = "κόσμε€😀".as_bytes();
    // Split inside the 4-byte emoji and inside the 3-byte euro sign.
    c.send_frame(false, OpCode::Text, &s[..4]);
    c.send_frame(false, OpCode::Continuation, &s[4..12]);
    c.send_frame(false, OpCode::Continuation, &s[12..s.len() - 2]);
    c.send_frame(true, OpCode::Continuation, &s[s.len() - 2..]);
    assert_eq!(c.read_text(), "κόσμε€😀");
}

#[test]
fn invalid_utf8_fails_fast_before_the_message_ends() {
    let addr = echo();
    let mut c = Client::connect(addr, "/echo");
    c.send_frame(false, OpCode::Text, b"ok");
    // 0xF4 0x90 can never start a valid sequence: 1007 now, no final fragment needed.
    c.send_frame(false, OpCode::Continuation, &[0xF4, 0x90]);
    c.expect_close(1007);
}

// -- violations ---------------------------------------------------------------------------------

fn violation(bytes: Vec<u8>, code: u16) {
    let addr = echo();
    let mut c = Client::connect(addr, "/echo");
    c.send(&bytes);
    c.expect_close(code);
}

#[test]
fn unmasked_frame_fails_with_1002() {
    violation(vec![0x81, 0x02, b'h', b'i'], 1002);
}

#[test]
fn rsv_bits_fail_with_1002() {
    for b0 in [0xC1, 0xA1, 0x91] {
        violation(raw_frame(b0, b"x"), 1002);
    }
}

#[test]
fn reserved_opcodes_fail_with_1002() {
    for op in [0x3, 0x7, 0xB, 0xF] {
        violation(raw_frame(0x80 | op, b""), 1002);
    }
}

#[test]
fn fragmented_control_frame_fails_with_1002() {
    violation(frame(false, OpCode::Ping, b"x"), 1002);
}

#[test]
fn oversized_control_frame_fails_with_1002() {
    violation(frame(true, OpCode::Ping, &[0u8; 126]), 1002);
}

#[test]
fn continuation_without_a_message_fails_with_1002() {
    violation(frame(true, OpCode::Continuation, b"x"), 1002);
}

#[test]
fn new_message_inside_a_fragmented_one_fails_with_1002() {
    let mut b = frame(false, OpCode::Text, b"a");
    b.extend(frame(true, OpCode::Text, b"b"));
    violation(b, 1002);
}

#[test]
fn invalid_utf8_text_fails_with_1007() {
    violation(frame(true, OpCode::Text, &[b'a', 0xFF, b'b']), 1007);
    // A truncated sequence at the end of the message.
    violation(frame(true, OpCode::Text, &[0xE2, 0x82]), 1007);
}

#[test]
fn invalid_utf8_close_reason_fails_with_1007() {
    violation(frame(true, OpCode::Close, &[0x03, 0xE8, 0xFF]), 1007);
}

#[test]
fn invalid_close_code_and_one_byte_close_fail_with_1002() {
    violation(frame(true, OpCode::Close, &[0x03, 0xED]), 1002); // 1005
    violation(frame(true, OpCode::Close, &[0x03, 0xE7]), 1002); // 999
    violation(frame(true, OpCode::Close, &[0x03]), 1002);
}

#[test]
fn close_codes_1012_to_1014_are_accepted_and_echoed() {
    // IANA-registered: Service Restart, Try Again Later, Bad Gateway.
    let addr = echo();
    for code in [1012u16, 1013, 1014] {
        let mut c = Client::connect(addr, "/echo");
        c.send_frame(true, OpCode::Close, &code.to_be_bytes());
        c.expect_close(code);
    }
}

#[test]
fn oversized_message_fails_with_1009() {
    // One frame over the limit: refused from its header.
    violation(frame(true, OpCode::Binary, &vec![0u8; 16 * 1024 + 1]), 1009);
    // Fragments that add up to more than the limit.
    let mut b = frame(false, OpCode::Binary, &vec![0u8; 10_000]);
    b.extend(frame(true, OpCode::Continuation, &vec![0u8; 10_000]));
    violation(b, 1009);
}

// -- close handshake ----------------------------------------------------------------------------

#[test]
fn close_frame_is_echoed_with_its_code_and_reported_to_on_close() {
    let (tx, rx) = mpsc::channel();
    let addr = serve(move || {
        let mut app = App::new();
        app.ws("/echo", WsOptions::default(), move |_lp, ws| {
            let tx = tx.clone();
            ws.on_close(move |_lp, _ws, code, reason| {
                tx.send((code, reason.to_string())).unwrap();
            });
        });
        app
    });
    let mut c = Client::connect(addr, "/echo");
    let mut payload = 4001u16.to_be_bytes().to_vec();
    payload.extend_from_slice(b"bye");
    c.send_frame(true, OpCode::Close, &payload);
    c.expect_close(4001);
    drop(c); // on_close runs once the TCP connection is closed
    let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(got, (4001, "bye".to_string()));

    // An empty Close is answered with an empty Close; on_close reports 1005.
    let mut c = Client::connect(addr, "/echo");
    c.send_frame(true, OpCode::Close, b"");
    let f = c.read_frame();
    assert_eq!((f.op, f.payload.len()), (8, 0));
    c.expect_eof();
    drop(c);
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap().0, 1005);

    // A dropped connection reports 1006.
    let c = Client::connect(addr, "/echo");
    drop(c);
    assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap().0, 1006);
}

#[test]
fn server_close_sends_code_and_reason_and_waits_for_the_reply() {
    let addr = serve(|| {
        let mut app = App::new();
        app.ws("/bye", WsOptions::default(), |_lp, ws| {
            ws.on_message(|lp, ws, _msg| {
                ws.close(lp, 4000, "done");
                // Nothing goes out after the Close frame.
                assert_eq!(ws.send(lp, "late"), oneloop::ws::SendStatus::Dropped);
            });
        });
        app
    });
    let mut c = Client::connect(addr, "/bye");
    c.send_text("x");
    let f = c.read_frame();
    assert_eq!(f.close_code(), Some(4000));
    assert_eq!(&f.payload[2..], b"done");
    c.send_frame(true, OpCode::Close, &4000u16.to_be_bytes());
    c.expect_eof();
}

// -- delivery -----------------------------------------------------------------------------------

#[test]
fn hundred_messages_in_one_write_are_all_echoed_in_order() {
    let addr = echo();
    let mut c = Client::connect(addr, "/echo");
    let mut all = Vec::new();
    for i in 0..100 {
        all.extend(frame(true, OpCode::Text, format!("m{i}").as_bytes()));
    }
    c.send(&all);
    for i in 0..100 {
        assert_eq!(c.read_text(), format!("m{i}"));
    }
}

#[test]
fn byte_by_byte_delivery_reassembles_frames() {
    let addr = echo();
    let mut c = Client::connect(addr, "/echo");
    let mut all = frame(false, OpCode::Text, "héllo ".as_bytes());
    all.extend(frame(true, OpCode::Ping, b"pp"));
    all.extend(frame(true, OpCode::Continuation, "wörld".as_bytes()));
    all.extend(frame(true, OpCode::Binary, &[7u8; 300]));
    for b in all {
        c.send(&[b]);
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(c.read_frame().op, 0xA);
    assert_eq!(c.read_text(), "héllo wörld");
    assert_eq!(c.read_frame().payload, vec![7u8; 300]);
}

#[test]
fn frame_in_the_same_write_as_the_handshake_is_not_lost() {
    let addr = echo();
    let mut bytes = good_request("/echo").into_bytes();
    bytes.extend(frame(true, OpCode::Text, b"early"));
    bytes.extend(frame(true, OpCode::Text, b"bird"));
    let (mut c, head) = Client::raw(addr, &bytes);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(c.read_text(), "early");
    assert_eq!(c.read_text(), "bird");
}
