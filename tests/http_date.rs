//! The Date header comes from a cache refreshed by a timer at each second boundary (no clock
//! read per response); it must still be current.

mod http_common;

use std::time::{Duration, SystemTime};

use http_common::{fast_config, spawn_server};

fn date_of(client: &mut http_common::Client) -> String {
    client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let resp = client.read_response();
    resp.header("date").expect("a Date header").to_string()
}

#[test]
fn date_header_advances_with_the_clock() {
    let server = spawn_server(fast_config(), false);
    let mut client = server.connect();
    let first = date_of(&mut client);
    assert_eq!(first.len(), 29, "IMF-fixdate: {first}");
    assert!(first.ends_with(" GMT"));
    std::thread::sleep(Duration::from_millis(1100));
    let second = date_of(&mut client);
    assert_ne!(first, second, "the cached date was refreshed");
    // And it names the current second (allowing one second of skew at the boundary).
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let hms = |s: u64| format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60);
    assert!(
        second.contains(&hms(secs)) || second.contains(&hms(secs - 1)),
        "{second} vs now {}",
        hms(secs)
    );
}
