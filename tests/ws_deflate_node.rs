//! permessage-deflate against Node's `ws` (8.23.0, pinned in tests/node/package.json; installed
//! by ./test.sh's `npm ci`): ws as a compressing client of oneloop's shared and dedicated
//! endpoints (tests/node/ws_deflate_client.js: 60 echoes, text and binary, fragmented ones,
//! with and without client context takeover), and oneloop-ws-load's `--deflate` fan-out
//! against a ws server with perMessageDeflate (tests/node/ws_deflate_server.js).

mod ws_common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use oneloop::app::App;
use oneloop::load::ws::{self, WsLoadConfig, WsMode};
use oneloop::ws::{echo_handler, CompressionMode, WsOptions};
use serde_json::Value;
use ws_common::serve;

fn node_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    assert!(
        dir.join("node_modules/ws/package.json").is_file(),
        "Node's ws is missing: run ./test.sh (npm ci --prefix tests/node)"
    );
    dir
}

/// Kills the child (started by this test) when dropped.
struct Reaper(Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn node_ws_client_with_per_message_deflate_gets_every_echo_from_shared_and_dedicated() {
    let addr = serve(|| {
        let mut app = App::new();
        for (path, compression) in [
            ("/shared", CompressionMode::Shared),
            ("/dedicated", CompressionMode::Dedicated),
        ] {
            let options = WsOptions {
                compression,
                max_payload: 1 << 20,
                max_backpressure: 0,
                ..Default::default()
            };
            app.ws(path, options, echo_handler());
        }
        app
    });
    let dir = node_dir();
    for (path, no_takeover, want_ext) in [
        (
            "/shared",
            "0",
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        ),
        ("/dedicated", "0", "permessage-deflate"),
        (
            "/dedicated",
            "1",
            "permessage-deflate; client_no_context_takeover",
        ),
    ] {
        let out = Command::new("node")
            .arg("ws_deflate_client.js")
            .arg(format!("ws://{addr}{path}"))
            .arg(no_takeover)
            .current_dir(&dir)
            .output()
            .expect("node (v20) must be installed");
        let line = String::from_utf8_lossy(&out.stdout);
        let v: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| {
            panic!(
                "{path}: {e}: {line} {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert!(out.status.success(), "{path}: {v}");
        assert_eq!(v["extensions"], want_ext, "{path}: {v}");
        assert_eq!(v["negotiated"], "permessage-deflate", "{path}: {v}");
        assert_eq!(
            (v["ok"].as_u64(), v["bad"].as_u64()),
            (Some(60), Some(0)),
            "{path}: {v}"
        );
        assert_eq!(v["code"], 1000, "{path}: {v}");
    }
}

#[test]
fn ws_load_deflate_fanout_against_a_node_ws_server_with_per_message_deflate() {
    let dir = node_dir();
    let mut child = Reaper(
        Command::new("node")
            .arg("ws_deflate_server.js")
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("node (v20) must be installed"),
    );
    let mut port = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut port)
        .unwrap();
    let port: u16 = port.trim().parse().expect("the node server's port");
    let mut c = WsLoadConfig::new(&format!("ws://127.0.0.1:{port}/"), WsMode::Fanout).unwrap();
    c.connections = 10;
    c.pipeline = 4;
    c.size = 2048;
    c.json_payload = true;
    c.deflate = true;
    c.messages = Some(100);
    c.warmup = Duration::ZERO;
    c.duration = Duration::from_secs(10);
    c.timeout = Duration::from_secs(3);
    let r = ws::run(c).unwrap();
    assert_eq!(r.failure, None);
    assert_eq!((r.deliveries, r.mismatches), (1_000, 0));
    assert_eq!(r.bytes, 1_000 * 2048);
    // ws compressed every copy (threshold 0): far fewer bytes than the payloads.
    assert!(r.wire_bytes * 2 < r.bytes, "{} wire bytes", r.wire_bytes);
}
