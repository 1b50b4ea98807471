//! HTTP over a Unix domain socket: real `curl --unix-socket` against a oneloop server that
//! `listen_path`s, and the oneloop client's `socket_path` against Node's http server listening
//! on a path, compared with curl's answer from the same server.

mod http_common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use oneloop::http::{self, ClientRequest, ServerConfig};
use oneloop::runtime::Loop;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oneloop-http-unix-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `curl -sS -i --unix-socket path <args>`: (status, body), or panics naming curl's error.
fn curl(socket: &Path, args: &[&str]) -> (u16, Vec<u8>) {
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", "--unix-socket"])
        .arg(socket)
        .args(args)
        .output()
        .expect("this test needs `curl` on PATH");
    assert!(
        out.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, raw[split + 4..].to_vec())
}

/// The oneloop server on a socket path answers curl: a plain GET, a POST body echoed, a 1 MB
/// body; after a graceful close the socket file is gone.
#[test]
fn curl_unix_socket_reaches_a_oneloop_server_listening_on_a_path() {
    let dir = temp_dir("curl");
    let path = dir.join("http.sock");
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let p = path.clone();
    let server_thread = thread::spawn(move || {
        let mut lp = Loop::new().unwrap();
        let server = http::create_server_with(&mut lp, ServerConfig::default(), http_common::route);
        server
            .listen_path(&mut lp, &p, move |_lp| ready_tx.send(()).unwrap())
            .unwrap();
        assert!(server.local_addr().is_none(), "no IP address for a path");
        let s = server.clone();
        let poll = lp.set_interval(Duration::from_millis(5), move |lp| {
            if stop_rx.try_recv().is_ok() {
                s.close(lp, |_| {});
            }
        });
        lp.unref(poll).unwrap();
        lp.run().unwrap();
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(path.exists());
    assert_eq!(
        curl(&path, &["http://localhost/n/42"]),
        (200, b"42".to_vec())
    );
    assert_eq!(
        curl(&path, &["-d", "hello over a pipe", "http://localhost/echo"]),
        (200, b"hello over a pipe".to_vec())
    );
    let (status, body) = curl(&path, &["http://localhost/big/1000000"]);
    assert_eq!(status, 200);
    assert_eq!(body.len(), 1_000_000);
    assert_eq!(curl(&path, &["http://x/status/404"]).0, 404);
    stop_tx.send(()).unwrap();
    server_thread.join().unwrap();
    assert!(!path.exists(), "closing the server removed its socket file");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Node's `http` server on a path, killed (by pid) when dropped.
struct NodeOnPath(Child);

impl Drop for NodeOnPath {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_node_on(path: &Path) -> NodeOnPath {
    let script = format!("{}/tests/node/unix_server.js", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("node")
        .arg(&script)
        .arg(path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("this test needs `node` (v20) on PATH");
    let stdout = child.stdout.take().unwrap();
    let node = NodeOnPath(child);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("node ready");
    assert_eq!(line.trim(), "ready");
    node
}

/// The oneloop client with `socket_path` against Node's server on a path gets the same status
/// and body as curl `--unix-socket` does from the same server, for a GET, a POST with a body
/// and a non-200 status; the server saw the URL's host in `Host`. The host name in one URL
/// does not resolve: with a socket path nothing is looked up (as Node's `socketPath`).
#[test]
fn client_socket_path_against_node_on_a_path_matches_curl() {
    let dir = temp_dir("node");
    let path = dir.join("node.sock");
    let _node = start_node_on(&path);
    let cases: [(&str, &str, Option<&str>); 3] = [
        ("GET", "http://localhost/items?x=1", None),
        (
            "POST",
            "http://api.internal.invalid:8080/upload",
            Some("0123456789"),
        ),
        ("GET", "http://localhost/teapot", None),
    ];
    for (method, url, body) in cases {
        let mut args = vec!["-X", method];
        if let Some(b) = body {
            args.extend(["--data-binary", b]);
        }
        args.push(url);
        let expected = curl(&path, &args);

        let mut lp = Loop::new().unwrap();
        let mut req = ClientRequest::new(method, url).unwrap().socket_path(&path);
        if let Some(b) = body {
            req = req.body(b.as_bytes().to_vec());
        }
        let got = std::rc::Rc::new(std::cell::RefCell::new(None));
        let g = got.clone();
        http::request(&mut lp, req.timeout_ms(10_000), move |_lp, res| {
            let res = res.expect("response over the socket path");
            assert_eq!(res.header("x-served-by"), Some("node"));
            *g.borrow_mut() = Some((res.status(), res.body().to_vec()));
        })
        .unwrap();
        lp.run().unwrap();
        let got = got.borrow_mut().take().expect("the client answered");
        assert_eq!(got, expected, "{method} {url}");
        let text = String::from_utf8(got.1).unwrap();
        let host = url[7..].split('/').next().unwrap();
        assert!(text.contains(&format!("host={host}")), "{text}");
    }
    // A missing socket path is a connect error, not a hang or a panic.
    let mut lp = Loop::new().unwrap();
    let req = ClientRequest::new("GET", "http://localhost/")
        .unwrap()
        .socket_path(dir.join("missing.sock"));
    let err = std::rc::Rc::new(std::cell::RefCell::new(None));
    let e = err.clone();
    http::request(&mut lp, req, move |_lp, res| {
        let msg = match res {
            Ok(_) => panic!("no server there"),
            Err(err) => err.to_string(),
        };
        *e.borrow_mut() = Some(msg);
    })
    .unwrap();
    lp.run().unwrap();
    let err = err.borrow_mut().take().unwrap();
    assert!(err.contains("ENOENT"), "{err}");
    drop(_node);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `oneloop-load --unix-socket`: the load generator's socket-path option drives exactly the
/// requests asked for through a oneloop server on a path, with no errors.
#[test]
fn the_load_generator_counts_requests_over_a_unix_socket() {
    use oneloop::load::{self, LoadConfig};
    let dir = temp_dir("load");
    let path = dir.join("load.sock");
    let (ready_tx, ready_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let p = path.clone();
    let server_thread = thread::spawn(move || {
        let mut lp = Loop::new().unwrap();
        let server = http::create_server_with(&mut lp, ServerConfig::default(), http_common::route);
        server
            .listen_path(&mut lp, &p, move |_lp| ready_tx.send(()).unwrap())
            .unwrap();
        let s = server.clone();
        let poll = lp.set_interval(Duration::from_millis(5), move |lp| {
            if stop_rx.try_recv().is_ok() {
                s.close(lp, |_| {});
            }
        });
        lp.unref(poll).unwrap();
        lp.run().unwrap();
    });
    ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let mut c = LoadConfig::new("http://localhost/n/7").unwrap();
    c.socket_path = Some(path.clone());
    c.connections = 4;
    c.requests = Some(1000);
    c.duration = Duration::from_secs(20);
    let r = load::run(c, None).expect("load run");
    stop_tx.send(()).unwrap();
    server_thread.join().unwrap();
    assert_eq!(r.requests, 1000);
    assert_eq!(r.statuses.get(&200), Some(&1000));
    assert_eq!(r.errors.total(), 0, "{:?}", r.errors);
    assert_eq!(r.connects, 4);
    let _ = std::fs::remove_dir_all(&dir);
}
