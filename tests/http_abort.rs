//! `Response::on_abort` over real sockets: called once when the connection goes before the
//! response finished (a reset, or the server's own timeout), never after a finished one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use oneloop::http::{self, ServerConfig};
use oneloop::runtime::Loop;

fn wait_for(counter: &AtomicUsize, n: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    while counter.load(Ordering::SeqCst) < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    counter.load(Ordering::SeqCst)
}

#[test]
fn on_abort_runs_once_when_the_client_resets_before_the_answer() {
    let aborted = Arc::new(AtomicUsize::new(0));
    let a = Arc::clone(&aborted);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lp = Loop::new().unwrap();
        let server =
            http::create_server_with(&mut lp, ServerConfig::default(), move |_lp, req, res| {
                let a = Arc::clone(&a);
                res.on_abort(move |_lp| {
                    a.fetch_add(1, Ordering::SeqCst);
                });
                if req.path() == "/now" {
                    res.end("done");
                }
                // "/hang": never answered; the response object is dropped here.
            });
        let addr = server.listen(&mut lp, "127.0.0.1:0", |_, _| {}).unwrap();
        tx.send(addr).unwrap();
        lp.set_timeout(10_000, |lp| lp.stop());
        lp.run().unwrap();
    });
    let addr = rx.recv().unwrap();
    // Answered: closing afterwards is no abort.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /now HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    assert!(buf.ends_with(b"done"));
    // Unanswered, then the client resets.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(aborted.load(Ordering::SeqCst), 0);
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    assert_eq!(wait_for(&aborted, 1), 1);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(aborted.load(Ordering::SeqCst), 1, "once");
}

#[test]
fn app_on_abort_runs_when_the_client_resets() {
    let aborted = Arc::new(AtomicUsize::new(0));
    let a = Arc::clone(&aborted);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut app = oneloop::app::App::new();
        app.get("/now", |_req, res| res.send("now"));
        app.get("/hang", move |_req, res| {
            let a = Arc::clone(&a);
            res.on_abort(move |_lp| {
                a.fetch_add(1, Ordering::SeqCst);
            });
        });
        let mut lp = Loop::new().unwrap();
        let server = app
            .listen_on(&mut lp, "127.0.0.1:0", ServerConfig::default(), |_, _| {})
            .unwrap();
        tx.send(server.local_addr().unwrap()).unwrap();
        lp.set_timeout(10_000, |lp| lp.stop());
        lp.run().unwrap();
    });
    let addr = rx.recv().unwrap();
    // A finished exchange first, on a connection closed before the next one opens (its slot
    // is reused).
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /now HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    drop(s);
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /hang HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
    assert_eq!(wait_for(&aborted, 1), 1);
}
