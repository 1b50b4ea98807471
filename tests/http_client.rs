//! The HTTP client (`http::request`, `http::get`) over real loopback sockets: against oneloop's
//! own server in the same loop, against raw servers writing crafted bytes, and against Node 20.
//!
//! Every test runs its loop on a thread and waits for it with a deadline, so a hang fails the
//! test instead of stalling the suite; receiving the results proves `lp.run()` returned by
//! itself. Each callback pushes its result, so "called exactly once" is `results.len() == 1`.

mod http_common;

use std::cell::RefCell;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use oneloop::http::{self, ClientError, ClientRequest, ClientResponse, Version};
use oneloop::runtime::Loop;

type Outcome = Result<ClientResponse, ClientError>;
type Results = Rc<RefCell<Vec<Outcome>>>;

/// How long any loop may run before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);

/// Runs `setup` on a fresh loop on its own thread, then `lp.run()` until the loop exits by
/// itself; returns what the callbacks pushed. Panics if the loop is still running after
/// [`DEADLINE`].
fn on_loop(setup: impl FnOnce(&mut Loop, Results) + Send + 'static) -> Vec<Outcome> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lp = Loop::new().expect("loop");
        let results: Results = Rc::default();
        setup(&mut lp, Rc::clone(&results));
        lp.run().expect("loop run");
        let out = std::mem::take(&mut *results.borrow_mut());
        let _ = tx.send(out);
    });
    rx.recv_timeout(DEADLINE)
        .expect("the loop did not exit by itself within the deadline")
}

/// Sends `req` from a fresh loop; asserts the callback ran exactly once and returns its result.
fn send(req: ClientRequest) -> Outcome {
    let mut results = on_loop(move |lp, results| {
        http::request(lp, req, move |_lp, r| results.borrow_mut().push(r)).expect("request");
    });
    assert_eq!(results.len(), 1, "the callback must run exactly once");
    results.pop().expect("one result")
}

fn get(url: &str) -> ClientRequest {
    ClientRequest::new("GET", url).expect("valid URL")
}

// -- against oneloop's own server ------------------------------------------------------------

/// The routes of the in-loop server.
fn route(lp: &mut Loop, req: http::Request, res: http::Response) {
    let _ = lp;
    match req.path() {
        "/json" => {
            res.set_header("content-type", "application/json");
            res.set_header("X-Mixed-Case", "yes");
            res.end(r#"{"message":"Hello, World!"}"#);
        }
        "/echo" => {
            let ct = req.header("content-type").unwrap_or("none").to_owned();
            req.collect(1 << 20, move |_lp, body| {
                res.set_header("x-request-content-type", ct);
                res.end(body.expect("small body"));
            });
        }
        "/chunked" => {
            res.write("hello ");
            res.write("world");
            res.add_trailers(&[("x-trailer", "t1")]);
            res.end("");
        }
        "/empty" => {
            res.status(204);
            res.end("");
        }
        _ => {
            res.status(404);
            res.end("not found");
        }
    }
}

/// Starts the routes' server on 127.0.0.1:0 in `lp`, sends every request built from its
/// address, and closes the server once all callbacks ran (so the loop can exit).
fn with_server(requests: Vec<Box<dyn FnOnce(SocketAddr) -> ClientRequest + Send>>) -> Vec<Outcome> {
    on_loop(move |lp, results| {
        let server = http::create_server(lp, route);
        let addr = server
            .listen(lp, "127.0.0.1:0", |_lp, _addr| {})
            .expect("listen");
        let total = requests.len();
        for build in requests {
            let (results, server) = (Rc::clone(&results), server.clone());
            http::request(lp, build(addr), move |lp, r| {
                results.borrow_mut().push(r);
                if results.borrow().len() == total {
                    server.close(lp, |_lp| {});
                }
            })
            .expect("request");
        }
    })
}

fn one(build: impl FnOnce(SocketAddr) -> ClientRequest + Send + 'static) -> ClientResponse {
    let mut results = with_server(vec![Box::new(build)]);
    assert_eq!(results.len(), 1, "the callback must run exactly once");
    results.pop().unwrap().expect("a response")
}

#[test]
fn client_gets_json_with_headers_from_our_server() {
    let res = one(|addr| get(&format!("http://{addr}/json")));
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), Version::Http11);
    assert_eq!(&res.body()[..], br#"{"message":"Hello, World!"}"#);
    assert_eq!(res.header("Content-Type"), Some("application/json"));
    assert_eq!(res.header("content-length"), Some("27"));
    assert!(res
        .headers()
        .any(|(n, v)| n == "X-Mixed-Case" && v == b"yes"));
    assert!(res.trailers().is_empty());
}

#[test]
fn client_posts_a_body_that_is_echoed_back() {
    let res = one(|addr| {
        ClientRequest::new("POST", &format!("http://{addr}/echo"))
            .unwrap()
            .header("content-type", "text/plain")
            .body("hello, echo")
    });
    assert_eq!(res.status(), 200);
    assert_eq!(&res.body()[..], b"hello, echo");
    assert_eq!(res.header("x-request-content-type"), Some("text/plain"));
}

#[test]
fn client_decodes_a_chunked_response_with_trailers() {
    let res = one(|addr| get(&format!("http://{addr}/chunked")));
    assert_eq!(res.status(), 200);
    assert_eq!(res.header("transfer-encoding"), Some("chunked"));
    assert_eq!(&res.body()[..], b"hello world");
    assert_eq!(res.trailers(), [("x-trailer".to_owned(), b"t1".to_vec())]);
}

#[test]
fn client_reads_no_body_for_head_and_204_and_gets_a_404() {
    let mut results = with_server(vec![
        Box::new(|addr| ClientRequest::new("HEAD", &format!("http://{addr}/json")).unwrap()),
        Box::new(|addr| get(&format!("http://{addr}/empty"))),
        Box::new(|addr| get(&format!("http://{addr}/nope"))),
    ]);
    assert_eq!(results.len(), 3);
    // Completion order is not guaranteed: sort by status.
    results.sort_by_key(|r| r.as_ref().map(|r| r.status()).unwrap_or(0));
    let statuses: Vec<u16> = results
        .iter()
        .map(|r| r.as_ref().unwrap().status())
        .collect();
    assert_eq!(statuses, [200, 204, 404]);
    let head = results[0].as_ref().unwrap();
    assert_eq!(
        head.header("content-length"),
        Some("27"),
        "HEAD keeps the length"
    );
    assert!(head.body().is_empty());
    assert!(results[1].as_ref().unwrap().body().is_empty());
    assert_eq!(&results[2].as_ref().unwrap().body()[..], b"not found");
}

#[test]
fn client_get_shorthand_and_localhost_reach_our_server() {
    let results = on_loop(|lp, results| {
        let server = http::create_server(lp, route);
        let addr = server.listen(lp, "127.0.0.1:0", |_lp, _| {}).unwrap();
        let url = format!("http://localhost:{}/json", addr.port());
        http::get(lp, &url, move |lp, r| {
            results.borrow_mut().push(r);
            server.close(lp, |_lp| {});
        })
        .unwrap();
    });
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].as_ref().unwrap().status(), 200);
}

// -- against raw servers ---------------------------------------------------------------------

/// A one-connection server on a thread: accepts, reads the request head, then runs `script`
/// with the stream and the head. The returned receiver gets what the script returns.
fn raw_server<T: Send + 'static>(
    script: impl FnOnce(TcpStream, Vec<u8>) -> T + Send + 'static,
) -> (SocketAddr, mpsc::Receiver<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        stream.set_write_timeout(Some(DEADLINE)).unwrap();
        let head = read_head(&mut stream);
        let _ = tx.send(script(stream, head));
    });
    (addr, rx)
}

/// Reads up to the end of a request head (the tests send no request bodies to raw servers).
fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    head
}

/// A raw server that answers with `bytes`, then closes.
fn answers(bytes: &'static [u8]) -> SocketAddr {
    raw_server(move |mut s, _| {
        let _ = s.write_all(bytes);
    })
    .0
}

#[test]
fn client_sends_host_and_connection_close() {
    let (addr, head) = raw_server(|mut s, head| {
        let _ = s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n");
        head
    });
    send(get(&format!("http://{addr}/p?q=1#frag")).header("X-A", "1")).unwrap();
    let head = String::from_utf8(head.recv_timeout(DEADLINE).unwrap()).unwrap();
    assert_eq!(
        head,
        format!("GET /p?q=1 HTTP/1.1\r\nHost: {addr}\r\nX-A: 1\r\nConnection: close\r\n\r\n")
    );
}

#[test]
fn client_reads_a_body_until_close() {
    let addr =
        answers(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this, until EOF");
    let res = send(get(&format!("http://{addr}/"))).expect("a response");
    assert_eq!(&res.body()[..], b"all of this, until EOF");
}

#[test]
fn client_skips_100_continue_and_reads_the_final_response() {
    let addr =
        answers(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let res = send(get(&format!("http://{addr}/"))).expect("a response");
    assert_eq!((res.status(), &res.body()[..]), (200, &b"ok"[..]));
}

#[test]
fn client_rejects_a_bad_status_line() {
    let addr = answers(b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n");
    let err = send(get(&format!("http://{addr}/"))).unwrap_err();
    assert!(matches!(err, ClientError::BadResponse(_)), "{err:?}");
}

#[test]
fn client_rejects_differing_content_lengths() {
    let addr = answers(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc");
    let err = send(get(&format!("http://{addr}/"))).unwrap_err();
    assert_eq!(
        err,
        ClientError::BadResponse("differing Content-Length values")
    );
}

#[test]
fn client_reports_closed_when_the_server_closes_mid_body() {
    let addr = answers(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nonly5");
    assert_eq!(
        send(get(&format!("http://{addr}/"))).unwrap_err(),
        ClientError::Closed
    );
    let addr = answers(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n");
    assert_eq!(
        send(get(&format!("http://{addr}/"))).unwrap_err(),
        ClientError::Closed
    );
    let addr = answers(b"HTTP/1.1 200 OK\r\nContent-");
    assert_eq!(
        send(get(&format!("http://{addr}/"))).unwrap_err(),
        ClientError::Closed
    );
}

#[test]
fn client_rejects_a_head_over_max_head_size() {
    // Default limit (16 KiB): a 17 KiB field that never ends.
    let (addr, _rx) = raw_server(|mut s, _| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nX-Big: ");
        let _ = s.write_all(&vec![b'a'; 17 * 1024]);
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink); // hold the connection until the client closes it
    });
    let err = send(get(&format!("http://{addr}/"))).unwrap_err();
    assert_eq!(err, ClientError::HeadTooLarge);
    // An explicit smaller limit.
    let addr = answers(b"HTTP/1.1 200 OK\r\nX: 0123456789012345678901234567890123456789\r\n\r\n");
    let err = send(get(&format!("http://{addr}/")).max_head_size(32)).unwrap_err();
    assert_eq!(err, ClientError::HeadTooLarge);
}

#[test]
fn client_rejects_a_body_over_max_body_size_and_destroys_the_connection() {
    // An endless body until close: the client must give up and close, so the writer fails.
    let (addr, rx) = raw_server(|mut s, _| {
        let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n");
        let chunk = vec![b'x'; 16 * 1024];
        let start = Instant::now();
        while start.elapsed() < DEADLINE {
            if s.write_all(&chunk).is_err() {
                return true; // the client destroyed the connection
            }
        }
        false
    });
    let err = send(get(&format!("http://{addr}/")).max_body_size(100_000)).unwrap_err();
    assert_eq!(err, ClientError::BodyTooLarge);
    assert!(
        rx.recv_timeout(DEADLINE).unwrap(),
        "the server kept writing"
    );
    // A Content-Length over the limit fails before any body byte is read.
    let addr = answers(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n");
    let err = send(get(&format!("http://{addr}/")).max_body_size(10)).unwrap_err();
    assert_eq!(err, ClientError::BodyTooLarge);
    // And exactly the limit passes.
    let addr = answers(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789");
    let res = send(get(&format!("http://{addr}/")).max_body_size(10)).unwrap();
    assert_eq!(res.body().len(), 10);
}

#[test]
fn client_times_out_when_the_server_never_answers() {
    let (addr, rx) = raw_server(|mut s, _| {
        let mut sink = Vec::new();
        // Returns once the client closes (or the deadline passes).
        s.read_to_end(&mut sink).map(|_| ()).map_err(|e| e.kind())
    });
    let start = Instant::now();
    let err = send(get(&format!("http://{addr}/")).timeout_ms(200)).unwrap_err();
    let took = start.elapsed();
    assert_eq!(err, ClientError::Timeout);
    assert!(
        took >= Duration::from_millis(190),
        "timed out after {took:?}"
    );
    assert!(took < Duration::from_secs(3), "timed out after {took:?}");
    // The socket was destroyed: the server sees EOF, not its own read timeout.
    assert_eq!(rx.recv_timeout(DEADLINE).unwrap(), Ok(()));
}

#[test]
fn client_reports_a_connect_error_for_a_closed_port() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    }; // dropped: nothing listens there now
    match send(get(&format!("http://{addr}/"))) {
        Err(ClientError::Connect { kind, .. }) => assert_eq!(kind, ErrorKind::ConnectionRefused),
        other => panic!("expected a connect error, got {other:?}"),
    }
}

#[test]
fn client_refuses_invalid_requests_without_calling_back() {
    let results = on_loop(|lp, results| {
        let r = Rc::clone(&results);
        let err = http::get(lp, "ftp://example.com/", move |_lp, x| {
            r.borrow_mut().push(x)
        });
        assert!(matches!(err, Err(ClientError::InvalidUrl(_))));
        let req = get("http://127.0.0.1:9/").header("X", "a\r\nInjected: 1");
        let err = http::request(lp, req, move |_lp, x| results.borrow_mut().push(x));
        assert!(matches!(err, Err(ClientError::InvalidHeader { .. })));
    });
    assert!(results.is_empty());
}

// -- against Node 20 ---------------------------------------------------------------------------

#[test]
fn client_receives_exact_bytes_from_a_node_server() {
    let node = http_common::start_node("http_client_node.js");
    let port = node.addr.port();

    let mut results = on_loop(move |lp, results| {
        for path in ["/chunked", "/length"] {
            let r = Rc::clone(&results);
            http::get(
                lp,
                &format!("http://127.0.0.1:{port}{path}"),
                move |_lp, x| r.borrow_mut().push(x),
            )
            .unwrap();
        }
    });
    drop(node);
    assert_eq!(results.len(), 2);
    let mut responses: Vec<ClientResponse> = results.drain(..).map(|r| r.unwrap()).collect();
    responses.sort_by_key(|r| r.header("x-route").map(str::to_owned));

    // The byte pattern both routes send: 0..=255 repeated, 1000 bytes.
    let expected: Vec<u8> = (0..1000u32).map(|i| (i % 256) as u8).collect();
    let chunked = &responses[0];
    assert_eq!(chunked.header("x-route"), Some("chunked"));
    assert_eq!(chunked.header("transfer-encoding"), Some("chunked"));
    assert_eq!(&chunked.body()[..], &expected[..]);
    let sum: u64 = expected.iter().map(|&b| u64::from(b)).sum();
    assert_eq!(
        chunked.trailers(),
        [("X-Checksum".to_owned(), format!("sum-{sum}").into_bytes())]
    );
    let length = &responses[1];
    assert_eq!(length.header("x-route"), Some("length"));
    assert_eq!(length.header("content-length"), Some("1000"));
    assert_eq!(&length.body()[..], &expected[..]);
    assert!(length.trailers().is_empty());
}

#[test]
fn abort_fails_a_request_in_flight_at_once_and_closes_its_connection() {
    // A server that accepts and never answers; it reports when the client's side closed.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (closed_tx, closed_rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = closed_tx.send(Instant::now());
    });
    let started = Instant::now();
    let results = on_loop(move |lp, results| {
        let url = format!("http://{addr}/");
        let handle = http::request(lp, get(&url), move |_lp, r| results.borrow_mut().push(r))
            .expect("request");
        // Abort 100 ms later, as a handler whose client left would.
        lp.set_timeout(Duration::from_millis(100), move |lp| handle.abort(lp));
    });
    assert_eq!(results.len(), 1, "the callback runs exactly once");
    assert_eq!(results[0].as_ref().err(), Some(&ClientError::Aborted));
    let closed = closed_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the server saw the connection close");
    assert!(closed.duration_since(started) < Duration::from_secs(5));
}

#[test]
fn abort_before_the_connection_exists_fails_the_request_when_it_would_start() {
    let results = on_loop(|lp, results| {
        // A host name: the request waits for its lookup, and is aborted meanwhile.
        let handle = http::request(lp, get("http://localhost:9/"), move |_lp, r| {
            results.borrow_mut().push(r)
        })
        .expect("request");
        handle.abort(lp);
    });
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].as_ref().err(), Some(&ClientError::Aborted));
}
