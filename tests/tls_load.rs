//! oneloop-load's handshake-per-request mode (`--new-connection`, `--no-resume`) against a
//! real oneloop HTTPS server on a free loopback port: N requests cost N TLS handshakes, all
//! full without resumption, all but the first resumed with it.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use oneloop::load::{self, parse_args, Command, HandshakeCounts, Report};
use oneloop::runtime::Loop;
use oneloop::tls::ServerTls;

/// A oneloop HTTPS server on its own thread answering every request "hi".
fn https_server() -> SocketAddr {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("rcgen");
    let tls = ServerTls::from_pem(
        c.cert.pem().as_bytes(),
        c.signing_key.serialize_pem().as_bytes(),
    )
    .expect("pem")
    .build()
    .expect("tls config");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lp = Loop::new().unwrap();
        let server = oneloop::https::create_server(&mut lp, tls, |_lp, _req, res| res.end("hi"));
        let addr = server.listen(&mut lp, "127.0.0.1:0", |_lp, _| {}).unwrap();
        tx.send(addr).unwrap();
        lp.run().unwrap();
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

fn load(args: &[&str]) -> Report {
    let Command::Run { config, .. } = parse_args(args.iter().copied()).expect("args") else {
        panic!("not a run");
    };
    load::run(*config, None).expect("run")
}

#[test]
fn new_connection_without_resumption_makes_one_full_handshake_per_request() {
    let url = format!("https://localhost:{}/", https_server().port());
    let r = load(&[
        &url,
        "-c",
        "1",
        "-n",
        "25",
        "--new-connection",
        "--no-resume",
    ]);
    assert_eq!(r.requests, 25);
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
    assert_eq!(r.connects, 25);
    assert_eq!(
        r.handshakes,
        Some(HandshakeCounts {
            full: 25,
            resumed: 0
        })
    );
    assert!(r.human().contains("TLS handshakes: 25 full, 0 resumed"));
}

#[test]
fn new_connection_with_resumption_resumes_every_handshake_after_the_first() {
    let url = format!("https://localhost:{}/", https_server().port());
    let r = load(&[&url, "-c", "1", "-n", "25", "--new-connection"]);
    assert_eq!(r.requests, 25);
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
    assert_eq!(
        r.handshakes,
        Some(HandshakeCounts {
            full: 1,
            resumed: 24
        })
    );
    let json = r.to_json();
    assert_eq!(json["handshakes"]["resumed"], 24);
}

#[test]
fn keep_alive_https_load_makes_one_handshake_per_connection() {
    let url = format!("https://localhost:{}/", https_server().port());
    let r = load(&[&url, "-c", "2", "-n", "200"]);
    assert_eq!(r.requests, 200);
    assert_eq!(r.connects, 2);
    let h = r.handshakes.expect("an https run counts handshakes");
    assert_eq!(h.full + h.resumed, 2);
}
