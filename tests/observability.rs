//! Observability against real processes: the examples' pino-shaped JSON logs parsed line by
//! line (and read by the real `pino-pretty`), `/metrics` parsed by Python's `prometheus_client`
//! OpenMetrics parser with counts matching the requests sent, `/readyz` during a SIGTERM drain,
//! and one scrape covering two workers.
//!
//! Needs what `./test.sh` (run by `.ci/run`) installs: a venv at `target/py` with `tests/observability/requirements.txt`
//! and `npm ci` in `tests/observability/` (or `ONELOOP_PYTHON` naming a python that has
//! `prometheus_client`).
mod examples_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use examples_common::{example_binary, free_port, Running};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

/// Starts `example` with `args` on `port`, stdout lines forwarded to the returned channel;
/// returns once the port accepts connections (the log level may hide the listening line).
fn start(
    example: &str,
    args: &[&str],
    port: u16,
    env: &[(&str, &str)],
) -> (Running, Receiver<String>) {
    let mut cmd = Command::new(example_binary(example));
    cmd.args(args)
        .args(["--port", &port.to_string()])
        .env_remove("RUST_LOG")
        .env_remove("LOG_LEVEL")
        .env_remove("LOG_FORMAT")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = Running(cmd.spawn().expect("start the example"));
    let stdout = child.0.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + WAIT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{example} did not listen in time"
        );
        assert!(matches!(child.0.try_wait(), Ok(None)), "{example} exited");
        std::thread::sleep(Duration::from_millis(20));
    }
    (child, rx)
}

/// One request on a fresh connection (`Connection: close`); returns status and body.
fn request(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read the response");
    let status = out
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {out:?}"));
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Lines received until `n` JSON lines with `msg == "request completed"` arrived.
fn access_lines(rx: &Receiver<String>, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("access log lines in time");
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {line}"));
        if v["msg"] == "request completed" {
            out.push(v);
        }
    }
    out
}

fn python() -> PathBuf {
    if let Ok(p) = std::env::var("ONELOOP_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/py/bin/python");
    if venv.exists() {
        return venv;
    }
    // test.sh's fallback: a user install for the system python3.
    let system = Command::new("python3")
        .args(["-c", "import prometheus_client"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        system,
        "{} missing and python3 has no prometheus_client: run ./test.sh, or python3 -m venv target/py && target/py/bin/pip install -r tests/observability/requirements.txt",
        venv.display()
    );
    PathBuf::from("python3")
}

/// `/metrics` parsed by prometheus_client's OpenMetrics parser: the samples.
fn scrape(port: u16) -> Vec<Value> {
    let (status, text) = request(port, "GET", "/metrics", "");
    assert_eq!(status, 200);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/observability/parse_metrics.py"
    );
    let mut child = Command::new(python())
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejected the scrape: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    match serde_json::from_slice(&out.stdout).unwrap() {
        Value::Array(samples) => samples,
        other => panic!("parser printed {other}"),
    }
}

/// Sum of sample `name`'s values over samples whose labels include every pair of `labels`.
fn sum(samples: &[Value], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s["name"] == name)
        .filter(|s| labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .map(|s| s["value"].as_f64().unwrap())
        .sum()
}

#[test]
fn access_log_lines_are_pino_http_json_with_exact_fields_and_types() {
    let port = free_port();
    let (_server, rx) = start("hello_app", &["--observe"], port, &[]);
    assert_eq!(request(port, "GET", "/api/users/7?x=1", "").0, 200);
    assert_eq!(request(port, "GET", "/nope", "").0, 404);
    let lines = access_lines(&rx, 2);
    let pid = _server.0.id() as u64;
    for (line, (url, status)) in lines
        .iter()
        .zip([("/api/users/7?x=1", 200), ("/nope", 404)])
    {
        let obj = line.as_object().unwrap();
        let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        let mut want = vec![
            "level",
            "time",
            "pid",
            "hostname",
            "reqId",
            "req",
            "res",
            "responseTime",
            "msg",
        ];
        let mut got = keys.clone();
        want.sort_unstable();
        got.sort_unstable();
        assert_eq!(got, want, "{line}");
        assert_eq!(line["level"], 30);
        assert!(
            line["time"].as_u64().unwrap() > 1_600_000_000_000,
            "epoch ms: {line}"
        );
        assert_eq!(line["pid"].as_u64(), Some(pid));
        assert!(line["hostname"].is_string());
        assert_eq!(line["msg"], "request completed");
        assert!(line["responseTime"].as_f64().unwrap() >= 0.0);
        let req = line["req"].as_object().unwrap();
        let mut req_keys: Vec<&str> = req.keys().map(String::as_str).collect();
        req_keys.sort_unstable();
        assert_eq!(
            req_keys,
            ["id", "method", "remoteAddress", "remotePort", "url"]
        );
        assert_eq!(line["req"]["id"], line["reqId"]);
        assert!(line["reqId"].is_u64());
        assert_eq!(line["req"]["method"], "GET");
        assert_eq!(line["req"]["url"], url);
        assert_eq!(line["req"]["remoteAddress"], "127.0.0.1");
        assert!(line["req"]["remotePort"].as_u64().unwrap() > 0);
        assert_eq!(line["res"], serde_json::json!({ "statusCode": status }));
    }
    assert!(lines[1]["reqId"].as_u64() > lines[0]["reqId"].as_u64());
}

#[test]
fn log_level_from_pino_names_filters_access_lines() {
    let port = free_port();
    let (_server, rx) = start("hello_app", &["--observe"], port, &[("LOG_LEVEL", "warn")]);
    assert_eq!(request(port, "GET", "/json", "").0, 200);
    assert_eq!(request(port, "GET", "/json", "").0, 200);
    // No info line may arrive (the listening line was at info too): nothing at all.
    match rx.recv_timeout(Duration::from_millis(500)) {
        Err(_) => {}
        Ok(line) => panic!("LOG_LEVEL=warn let an info line through: {line}"),
    }
}

#[test]
fn pino_pretty_reads_our_lines_as_pino_records() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/observability");
    let bin = format!("{dir}/node_modules/.bin/pino-pretty");
    assert!(
        std::path::Path::new(&bin).exists(),
        "{bin} missing: run ./test.sh (npm ci --prefix tests/observability)"
    );
    let port = free_port();
    let (_server, rx) = start("hello_app", &["--observe"], port, &[]);
    assert_eq!(request(port, "GET", "/api/orders/42", "").0, 200);
    let line = serde_json::to_string(&access_lines(&rx, 1)[0]).unwrap();
    let mut child = Command::new("node")
        .args([&bin, "--colorize", "false"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run pino-pretty");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{line}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let pretty = String::from_utf8_lossy(&out.stdout);
    // pino-pretty echoes lines it cannot read as pino records unchanged; a record it read
    // becomes `[time] LEVEL (pid): msg` and indented fields.
    let pid = _server.0.id();
    assert!(
        pretty.contains(&format!("INFO ({pid}): request completed")),
        "{pretty}"
    );
    assert!(pretty.contains("\"url\": \"/api/orders/42\""), "{pretty}");
    assert!(pretty.contains("\"statusCode\": 200"), "{pretty}");
    assert!(!pretty.contains("\"msg\""), "not parsed as pino: {pretty}");
}

#[test]
fn metrics_scrape_parses_with_prometheus_client_and_counts_match_requests() {
    let port = free_port();
    let (_server, _rx) = start("rest_api", &[], port, &[("LOG_LEVEL", "silent")]);
    let product = r#"{"name":"lamp","price":12.5}"#;
    for _ in 0..3 {
        assert_eq!(request(port, "POST", "/api/products", product).0, 201);
    }
    for id in 1..=3 {
        assert_eq!(
            request(port, "GET", &format!("/api/products/{id}"), "").0,
            200
        );
    }
    for _ in 0..4 {
        assert_eq!(request(port, "GET", "/api/products/99", "").0, 404);
    }
    assert_eq!(request(port, "GET", "/no/such/path", "").0, 404);
    let samples = scrape(port);
    let count = "http_request_duration_seconds_count";
    let route = |r: &'static str, status: &'static str| {
        sum(&samples, count, &[("route", r), ("status_code", status)])
    };
    assert_eq!(route("/api/products", "201"), 3.0);
    assert_eq!(route("/api/products/:id", "200"), 3.0);
    assert_eq!(route("/api/products/:id", "404"), 4.0);
    assert_eq!(route("unmatched", "404"), 1.0);
    // Exactly those requests: no raw path became a label.
    assert_eq!(sum(&samples, count, &[]), 11.0);
    let inf = sum(
        &samples,
        "http_request_duration_seconds_bucket",
        &[
            ("route", "/api/products/:id"),
            ("status_code", "404"),
            ("le", "+Inf"),
        ],
    );
    assert_eq!(inf, 4.0);
    // The scrape request itself is in flight while it is served.
    assert_eq!(sum(&samples, "http_requests_in_flight", &[]), 1.0);
    for name in [
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_cpu_seconds_total",
        "oneloop_log_lines_dropped_total",
    ] {
        assert!(samples.iter().any(|s| s["name"] == name), "no {name}");
    }
    assert!(sum(&samples, "process_open_fds", &[]) >= 3.0);
}

#[test]
fn readyz_turns_503_during_a_sigterm_drain_and_the_port_closes_after_exit() {
    let port = free_port();
    let (mut server, _rx) = start(
        "rest_api",
        &["--unready-delay-ms", "3000"],
        port,
        &[("LOG_LEVEL", "silent")],
    );
    assert_eq!(
        request(port, "GET", "/readyz", ""),
        (200, r#"{"status":"ready"}"#.into())
    );
    assert_eq!(request(port, "GET", "/healthz", "").0, 200);
    let pid = server.0.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    // The signal is handled by the loop shortly after delivery: poll (bounded) for the flip.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut last = request(port, "GET", "/readyz", "");
    while last.0 == 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        last = request(port, "GET", "/readyz", "");
    }
    assert_eq!(last, (503, r#"{"status":"draining"}"#.into()));
    // Still serving other requests while unready.
    assert_eq!(request(port, "GET", "/api/products", "").0, 200);
    let status = server.0.wait().expect("wait for exit");
    assert!(status.success(), "drained and exited 0: {status:?}");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "nothing listens after exit"
    );
}

#[test]
fn one_scrape_covers_both_workers_with_every_request_counted() {
    let port = free_port();
    let (_server, _rx) = start(
        "rest_api",
        &["--workers", "2", "--metrics-period-ms", "50"],
        port,
        &[("LOG_LEVEL", "silent")],
    );
    let sent = 40;
    for _ in 0..sent {
        // A fresh connection each: the kernel spreads them over both workers' listeners.
        assert_eq!(request(port, "GET", "/api/products", "").0, 200);
    }
    let counted = |samples: &[Value], worker: &'static str| {
        sum(
            samples,
            "http_request_duration_seconds_count",
            &[("route", "/api/products"), ("worker", worker)],
        )
    };
    // The other worker's counts are at most one publish period (50 ms) old: scrape until
    // they are in (bounded).
    let deadline = Instant::now() + Duration::from_secs(5);
    let samples = loop {
        let s = scrape(port);
        if counted(&s, "0") + counted(&s, "1") == sent as f64 || Instant::now() > deadline {
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (w0, w1) = (counted(&samples, "0"), counted(&samples, "1"));
    assert_eq!(w0 + w1, sent as f64, "worker 0: {w0}, worker 1: {w1}");
    // 40 connections all on one listener would be a 2^-39 chance with SO_REUSEPORT's hash.
    assert!(w0 > 0.0 && w1 > 0.0, "worker 0: {w0}, worker 1: {w1}");
    for worker in ["0", "1"] {
        let elu = samples.iter().find(|s| {
            s["name"] == "oneloop_eventloop_utilization" && s["labels"]["worker"] == worker
        });
        let elu = elu.unwrap_or_else(|| panic!("no utilisation for worker {worker}"));
        let v = elu["value"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v));
        assert!(samples.iter().any(|s| s["name"] == "oneloop_active_handles"
            && s["labels"]["worker"] == worker
            && s["labels"]["type"] == "server"));
    }
}

/// The REST example's thread-pool route and its async/await twin give the same answers: the
/// digest computed on the pool, and the same 404 for a missing product (the async one's `Err`
/// goes through the error middleware).
#[test]
fn rest_api_digest_route_and_its_async_version_answer_the_same() {
    let port = free_port();
    let (_server, _rx) = start("rest_api", &[], port, &[("LOG_LEVEL", "silent")]);
    let (status, created) = request(
        port,
        "POST",
        "/api/products",
        r#"{"name":"lamp","price":12.5}"#,
    );
    assert_eq!(status, 201, "{created}");
    let id = serde_json::from_str::<Value>(&created).unwrap()["id"]
        .as_u64()
        .expect("an id");
    let callback = request(
        port,
        "GET",
        &format!("/api/products/{id}/digest?rounds=1000"),
        "",
    );
    let awaited = request(
        port,
        "GET",
        &format!("/api/products/{id}/digest-async?rounds=1000"),
        "",
    );
    assert_eq!(callback.0, 200, "{}", callback.1);
    assert_eq!(awaited, callback);
    let missing = request(port, "GET", "/api/products/999999/digest", "");
    let missing_async = request(port, "GET", "/api/products/999999/digest-async", "");
    assert_eq!(missing.0, 404);
    assert_eq!(missing_async, missing);
}
