//! The HTTP client with host names: resolved on the thread pool (the system's resolver, or one
//! with static names), tried address by address, pooled by name in an agent, and failing with
//! Node's `getaddrinfo ENOTFOUND` message. Servers are real, on loopback.
//!
//! Each test runs its loop on a thread with a deadline, so a hang fails the test instead of
//! stalling the suite; the results arriving prove `lp.run()` returned by itself.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use oneloop::http::{self, Agent, AgentOptions, ClientError, ClientRequest, ClientResponse};
use oneloop::runtime::dns::{Family, Resolver};
use oneloop::runtime::Loop;

type Outcome = Result<ClientResponse, ClientError>;
/// Where a test's requests report: pushes the outcome, closes the server after the last.
type Done = Rc<dyn Fn(&mut Loop, Outcome)>;

const DEADLINE: Duration = Duration::from_secs(20);
const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// On a fresh loop on its own thread: a server on 127.0.0.1 answering each request with its
/// `Host` header, `|`, and the client's port (one per connection); `client(lp, addr, done)` sends requests and pushes their outcomes into `done`.
/// The server closes once `expected` outcomes are in; returns them, in arrival order.
fn with_server(
    expected: usize,
    client: impl FnOnce(&mut Loop, SocketAddr, Done) + Send + 'static,
) -> Vec<Outcome> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lp = Loop::new().expect("loop");
        let server = http::create_server(&mut lp, |_lp, req, res| {
            let host = req.header("host").unwrap_or("(none)").to_owned();
            let port = req.remote_addr().map_or(0, |a| a.port());
            res.end(format!("{host}|{port}"));
        });
        let results: Rc<RefCell<Vec<Outcome>>> = Rc::default();
        let done: Done = {
            let (results, server) = (Rc::clone(&results), server.clone());
            Rc::new(move |lp: &mut Loop, outcome| {
                results.borrow_mut().push(outcome);
                if results.borrow().len() == expected {
                    server.close(lp, |_lp| {});
                }
            })
        };
        let addr = server
            .listen(&mut lp, "127.0.0.1:0", |_lp, _addr| {})
            .expect("listen");
        client(&mut lp, addr, done);
        lp.run().expect("run");
        let out = std::mem::take(&mut *results.borrow_mut());
        let _ = tx.send(out);
    });
    rx.recv_timeout(DEADLINE)
        .expect("the loop did not exit by itself within the deadline")
}

/// The `Host` header the server saw.
fn host(outcome: &Outcome) -> String {
    served(outcome).0
}

/// The `Host` header the server saw and the client's port.
fn served(outcome: &Outcome) -> (String, u16) {
    let body = match outcome {
        Ok(res) => String::from_utf8_lossy(res.body()).into_owned(),
        Err(e) => panic!("request failed: {e}"),
    };
    let (host, port) = body.split_once('|').expect("host|port");
    (host.to_owned(), port.parse().expect("a port"))
}

/// Sends `req` and hands its outcome to `done`.
fn send(lp: &mut Loop, req: ClientRequest<impl Into<Option<Agent>> + Clone>, done: &Done) {
    let done = Rc::clone(done);
    http::request(lp, req, move |lp, r| done(lp, r)).expect("request");
}

#[test]
fn localhost_resolves_through_the_system_resolver() {
    let out = with_server(1, |lp, addr, done| {
        let url = format!("http://localhost:{}/", addr.port());
        send(lp, ClientRequest::new("GET", &url).unwrap(), &done);
    });
    assert_eq!(out.len(), 1);
    assert!(host(&out[0]).starts_with("localhost:"), "{:?}", out[0]);
}

#[test]
fn a_name_from_a_resolver_hook_reaches_the_server_with_its_host_header() {
    let out = with_server(1, |lp, addr, done| {
        let url = format!("http://Inventory:{}/items", addr.port());
        let resolver = Resolver::system().with_host("inventory", [LOCAL]);
        send(
            lp,
            ClientRequest::new("GET", &url).unwrap().lookup(resolver),
            &done,
        );
    });
    assert_eq!(out.len(), 1);
    let host = host(&out[0]);
    assert!(host.starts_with("Inventory:"), "Host as written: {host}");
}

#[test]
fn an_unknown_name_fails_with_nodes_enotfound_message() {
    let out = with_server(2, |lp, _addr, done| {
        // The system resolver (no such name anywhere), and a hook that knows other names.
        send(
            lp,
            ClientRequest::new("GET", "http://nosuch.invalid:1/").unwrap(),
            &done,
        );
        let resolver = Resolver::system().with_host("inventory", [LOCAL]);
        let req = ClientRequest::new("GET", "http://nosuch.invalid:1/")
            .unwrap()
            .lookup(resolver);
        send(lp, req, &done);
    });
    assert_eq!(out.len(), 2);
    // Node's own message for the same request (run live).
    let node = std::process::Command::new("node")
        .args([
            "-e",
            "require('http').get('http://nosuch.invalid:1/').on('error', e => process.stdout.write(e.code + ' ' + e.message))",
        ])
        .output()
        .expect("node (v20) must be installed: the differential check runs it");
    let node = String::from_utf8_lossy(&node.stdout).into_owned();
    assert_eq!(node, "ENOTFOUND getaddrinfo ENOTFOUND nosuch.invalid");
    for outcome in &out {
        match outcome {
            Err(e @ ClientError::Dns { code, message }) => {
                assert_eq!(*code, "ENOTFOUND");
                assert_eq!(message, "getaddrinfo ENOTFOUND nosuch.invalid");
                assert_eq!(e.to_string(), "getaddrinfo ENOTFOUND nosuch.invalid");
            }
            other => panic!("expected ENOTFOUND, got {other:?}"),
        }
    }
}

#[test]
fn a_refused_address_falls_back_to_the_next_one() {
    // Nothing listens on 127.0.0.2 at the server's port: that connect is refused.
    let out = with_server(1, |lp, addr, done| {
        let dead = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        let resolver = Resolver::system().with_host("twoaddrs", [dead, LOCAL]);
        let url = format!("http://twoaddrs:{}/", addr.port());
        send(
            lp,
            ClientRequest::new("GET", &url).unwrap().lookup(resolver),
            &done,
        );
    });
    assert!(host(&out[0]).starts_with("twoaddrs:"));
}

#[test]
fn when_every_address_is_refused_the_last_error_is_reported() {
    // A port nobody listens on, on two addresses.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = with_server(1, move |lp, _addr, done| {
        let dead = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        let resolver = Resolver::system().with_host("nobody", [dead, LOCAL]);
        let url = format!("http://nobody:{port}/");
        send(
            lp,
            ClientRequest::new("GET", &url).unwrap().lookup(resolver),
            &done,
        );
    });
    assert!(
        matches!(&out[0], Err(ClientError::Connect { kind, .. }) if *kind == std::io::ErrorKind::ConnectionRefused),
        "{:?}",
        out[0]
    );
}

#[test]
fn family_selects_the_address_family() {
    let out = with_server(1, |lp, addr, done| {
        let v6 = "::1".parse().unwrap();
        let resolver = Resolver::system().with_host("dual", [v6, LOCAL]);
        let url = format!("http://dual:{}/", addr.port());
        let req = ClientRequest::new("GET", &url)
            .unwrap()
            .lookup(resolver)
            .family(Family::V4);
        send(lp, req, &done);
    });
    assert!(host(&out[0]).starts_with("dual:"));
}

#[test]
fn an_agent_pools_connections_by_host_name_and_frees_the_slot_of_a_failed_lookup() {
    let out = with_server(5, move |lp, addr, done| {
        let agent = Agent::new(AgentOptions {
            max_sockets_per_host: 1,
            ..AgentOptions::default()
        });
        let resolver = Resolver::system().with_host("inventory", [LOCAL]);
        let url = format!("http://inventory:{}/", addr.port());
        // Three lookups that fail, one socket allowed: each failure must free the slot for
        // the next, or the others wait forever.
        for _ in 0..3 {
            let req = ClientRequest::new("GET", "http://nosuch.invalid/").unwrap();
            send(lp, req.agent(&agent), &done);
        }
        // Two requests to one name through one socket: the second reuses the first's.
        for _ in 0..2 {
            let req = ClientRequest::new("GET", &url)
                .unwrap()
                .lookup(resolver.clone());
            send(lp, req.agent(&agent), &done);
        }
    });
    let failed = out
        .iter()
        .filter(|o| matches!(o, Err(ClientError::Dns { .. })))
        .count();
    assert_eq!(failed, 3, "{out:?}");
    let ok: Vec<(String, u16)> = out.iter().filter(|o| o.is_ok()).map(served).collect();
    assert_eq!(ok.len(), 2, "{out:?}");
    assert_eq!(
        ok[0].1, ok[1].1,
        "the second request reused the first one's connection"
    );
}
