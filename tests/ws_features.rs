//! WebSocket features over real loopback sockets: pub/sub fan-out, send statuses under
//! backpressure and drain, automatic pings and the idle timeout.

mod ws_common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use oneloop::app::App;
use oneloop::ws::frame::OpCode;
use oneloop::ws::{Hub, Message, SendStatus, WsOptions};
use ws_common::{serve, Client};

#[test]
fn publish_fans_out_to_every_subscriber() {
    const N: usize = 6;
    let addr = serve(|| {
        let mut app = App::new();
        let hub = Hub::new();
        let options = WsOptions {
            hub: hub.clone(),
            ..Default::default()
        };
        app.ws("/room", options, move |_lp, ws| {
            let hub = hub.clone();
            ws.on_message(move |lp, ws, msg| {
                let text = msg.as_text().unwrap_or("").to_string();
                if text == "join" {
                    assert!(ws.subscribe("room"));
                    assert!(!ws.subscribe("room"));
                    ws.send(lp, format!("joined {}", hub.subscribers("room")));
                } else if let Some(rest) = text.strip_prefix("say ") {
                    // To the others (uWS's ws.publish skips the sender).
                    let n = ws.publish(lp, "room", rest);
                    ws.send(lp, format!("said to {n}"));
                } else if let Some(rest) = text.strip_prefix("all ") {
                    let n = hub.publish(lp, "room", Message::Binary(Bytes::from(rest.to_owned())));
                    assert_eq!(n, N);
                } else if text == "leave" {
                    assert!(ws.unsubscribe("room"));
                    ws.send(lp, format!("left {}", hub.subscribers("room")));
                }
            });
        });
        app
    });
    let mut clients: Vec<Client> = (0..N).map(|_| Client::connect(addr, "/room")).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send_text("join");
        assert_eq!(c.read_text(), format!("joined {}", i + 1));
    }
    clients[0].send_text("say hello");
    assert_eq!(clients[0].read_text(), format!("said to {}", N - 1));
    for c in &mut clients[1..] {
        assert_eq!(c.read_text(), "hello");
    }
    clients[3].send_text("all everyone");
    for c in &mut clients {
        let f = c.read_frame();
        assert_eq!((f.op, f.payload.as_slice()), (2, &b"everyone"[..]));
    }
    clients[5].send_text("leave");
    assert_eq!(clients[5].read_text(), format!("left {}", N - 1));
    // A closed subscriber is unsubscribed: the next fan-out reaches the N - 2 others.
    drop(clients.pop());
    let mut gone = clients.pop().unwrap();
    gone.send_frame(true, OpCode::Close, &1000u16.to_be_bytes());
    gone.expect_close(1000);
    drop(gone);
    std::thread::sleep(Duration::from_millis(50));
    clients[0].send_text("say again");
    assert_eq!(clients[0].read_text(), format!("said to {}", N - 3));
}

#[test]
fn send_reports_backpressured_then_dropped_past_max_backpressure_then_drains() {
    let (tx, rx) = mpsc::channel();
    let addr = serve(move || {
        let mut app = App::new();
        let options = WsOptions {
            max_backpressure: 64 * 1024,
            ..Default::default()
        };
        app.ws("/flood", options, move |_lp, ws| {
            let tx = tx.clone();
            ws.on_message(move |lp, ws, _msg| {
                // The client never reads: push 16 KiB messages until one is dropped.
                let chunk = Bytes::from(vec![b'x'; 16 * 1024]);
                let mut statuses = Vec::new();
                let mut queued_at_drop = 0;
                for _ in 0..8192 {
                    let s = ws.send(lp, chunk.clone());
                    statuses.push(s);
                    if s == SendStatus::Dropped {
                        queued_at_drop = ws.buffered_amount(lp);
                        break;
                    }
                }
                tx.send((statuses, queued_at_drop)).unwrap();
                ws.on_drain(|lp, ws| {
                    if ws.buffered_amount(lp) == 0 {
                        ws.send(lp, "drained");
                    }
                });
            });
        });
        app
    });
    let mut c = Client::connect(addr, "/flood");
    c.send_text("go");
    let (statuses, queued) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let first_bp = statuses
        .iter()
        .position(|s| *s == SendStatus::Backpressured)
        .expect("some send was backpressured");
    assert!(statuses[..first_bp].iter().all(|s| *s == SendStatus::Sent));
    assert_eq!(statuses.last(), Some(&SendStatus::Dropped));
    let bp = &statuses[first_bp..statuses.len() - 1];
    assert!(bp.iter().all(|s| *s == SendStatus::Backpressured));
    assert!(queued > 64 * 1024 && queued <= 80 * 1024, "queued {queued}");
    // Now read everything: the queue empties, on_drain runs, "drained" arrives last.
    let sent = statuses.len() - 1;
    for _ in 0..sent {
        let f = c.read_frame();
        assert_eq!(f.payload.len(), 16 * 1024);
    }
    assert_eq!(c.read_text(), "drained");
}

#[test]
fn idle_connection_gets_a_ping_then_is_closed() {
    let (tx, rx) = mpsc::channel();
    let addr = serve(move || {
        let mut app = App::new();
        let options = WsOptions {
            idle_timeout: Duration::from_millis(400),
            ..Default::default()
        };
        app.ws("/idle", options, move |_lp, ws| {
            let tx = tx.clone();
            ws.on_close(move |_lp, _ws, code, reason| {
                tx.send((code, reason.to_string())).unwrap();
            });
        });
        app
    });
    let start = Instant::now();
    let mut c = Client::connect(addr, "/idle");
    let ping = c.read_frame();
    assert_eq!(ping.op, 9);
    c.expect_eof();
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_secs(2),
        "{took:?}"
    );
    let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(got, (1006, "idle timeout".to_string()));
}

#[test]
fn answered_pings_keep_a_connection_open_past_the_idle_timeout() {
    let addr = serve(|| {
        let mut app = App::new();
        let options = WsOptions {
            idle_timeout: Duration::from_millis(300),
            ..Default::default()
        };
        app.ws("/idle", options, oneloop::ws::echo_handler());
        app
    });
    let mut c = Client::connect(addr, "/idle");
    let start = Instant::now();
    let mut pings = 0;
    while start.elapsed() < Duration::from_millis(1000) {
        let f = c.read_frame();
        assert_eq!(f.op, 9);
        pings += 1;
        c.send_frame(true, OpCode::Pong, &f.payload);
    }
    assert!(pings >= 2, "{pings}");
    c.send_text("still here");
    loop {
        let f = c.read_frame();
        if f.op == 1 {
            assert_eq!(f.payload, b"still here");
            break;
        }
    }
}

#[test]
fn no_idle_timeout_when_disabled() {
    let addr = serve(|| {
        let mut app = App::new();
        let options = WsOptions {
            idle_timeout: Duration::ZERO,
            ..Default::default()
        };
        app.ws("/e", options, oneloop::ws::echo_handler());
        app
    });
    let mut c = Client::connect(addr, "/e");
    c.s.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut b = [0u8; 1];
    use std::io::Read;
    let r = c.s.read(&mut b);
    assert!(r.is_err(), "nothing arrives: {r:?}");
    c.s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.send_text("x");
    assert_eq!(c.read_text(), "x");
}
