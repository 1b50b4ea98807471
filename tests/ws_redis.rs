//! The WebSocket hub bridged through a real redis-server: `examples/chat.rs --redis` as two
//! processes, and as one process with two workers. A message reaches every client of the
//! room once (its sender's process does not get it back from Redis), in publish order.

mod chat_common;
mod examples_common;
mod redis_common;
mod ws_common;

use std::net::SocketAddr;

use chat_common::{
    exactly_once_exchange, hub_stats, start_chat, wait_room_subscribers, ChatClient,
};
use examples_common::free_port;
use redis_common::RedisServer;

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn chat_messages_cross_two_processes_once_each_and_in_order() {
    let redis = RedisServer::start();
    let url = redis.url();
    let (pa, pb) = (free_port(), free_port());
    let _a = start_chat("127.0.0.1", pa, &["--redis", &url]);
    let _b = start_chat("127.0.0.1", pb, &["--redis", &url]);
    // p and a room peer on A, q on B.
    let mut clients = vec![
        ChatClient::connect(addr(pa)),
        ChatClient::connect(addr(pa)),
        ChatClient::connect(addr(pb)),
    ];
    assert_ne!(clients[0].pid, clients[2].pid);
    wait_room_subscribers(redis.port, 2);
    exactly_once_exchange(&mut clients, 0, 2, 100);

    // The counters agree: A dropped its own messages coming back, and delivered B's marker.
    let a = hub_stats(addr(pa));
    let r = &a["redis"];
    assert_eq!(r["publisher_ready"], true, "{a}");
    assert_eq!(r["publish_failed"], 0, "{a}");
    assert!(r["own_dropped"].as_u64().unwrap() >= 101, "{a}");
    assert!(r["delivered"].as_u64().unwrap() >= 1, "{a}");
}

#[test]
fn chat_messages_cross_two_workers_of_one_process_once_each_and_in_order() {
    let redis = RedisServer::start();
    let port = free_port();
    let _chat = start_chat(
        "127.0.0.1",
        port,
        &["--workers", "2", "--redis", &redis.url()],
    );
    // SO_REUSEPORT spreads connections by hash: connect until both workers have a client
    // and worker 0 has two.
    let mut clients: Vec<ChatClient> = Vec::new();
    for _ in 0..64 {
        let on = |w: u64, cs: &[ChatClient]| cs.iter().filter(|c| c.worker == w).count();
        if on(0, &clients) >= 2 && on(1, &clients) >= 1 {
            break;
        }
        clients.push(ChatClient::connect(addr(port)));
    }
    let p = clients
        .iter()
        .position(|c| c.worker == 0)
        .expect("a client on worker 0");
    let q = clients
        .iter()
        .position(|c| c.worker == 1)
        .expect("64 connections never reached worker 1");
    wait_room_subscribers(redis.port, 2);
    exactly_once_exchange(&mut clients, p, q, 100);
}

#[test]
fn without_redis_each_process_is_its_own_room() {
    // The local-only default: no bridge, no Redis connection, no cross-process delivery.
    let (pa, pb) = (free_port(), free_port());
    let _a = start_chat("127.0.0.1", pa, &[]);
    let _b = start_chat("127.0.0.1", pb, &[]);
    let mut a = ChatClient::connect(addr(pa));
    let mut b = ChatClient::connect(addr(pb));
    a.say("a", "only on A");
    assert_eq!(a.next_chat(), "a: only on A");
    b.say("b", "only on B");
    assert_eq!(b.next_chat(), "b: only on B");
    // A's next message is its own again: B's never came.
    a.say("a", "again");
    assert_eq!(a.next_chat(), "a: again");
    let stats = hub_stats(addr(pa));
    assert_eq!(stats["redis"], serde_json::Value::Null, "{stats}");
}

/// Polls `/hub/stats` of a one-worker chat until `want(redis stats)` holds (at most 10 s).
fn wait_stats(at: SocketAddr, what: &str, want: impl Fn(&serde_json::Value) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let s = hub_stats(at);
        if want(&s["redis"]) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {s}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn while_redis_is_down_delivery_is_local_only_and_it_recovers_when_redis_returns() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let (pa, pb) = (free_port(), free_port());
    let _a = start_chat("127.0.0.1", pa, &["--redis", &url]);
    let _b = start_chat("127.0.0.1", pb, &["--redis", &url]);
    let mut a = ChatClient::connect(addr(pa));
    let mut a2 = ChatClient::connect(addr(pa));
    let mut b = ChatClient::connect(addr(pb));
    wait_room_subscribers(redis.port, 2);
    a.say("a", "before");
    for c in [&mut a, &mut a2, &mut b] {
        assert_eq!(c.next_chat(), "a: before");
    }

    redis.kill();
    wait_stats(addr(pa), "A notices Redis is gone", |r| {
        r["publisher_ready"] == false && r["subscriber_ready"] == false
    });
    a.say("a", "during the outage");
    // A's own room still works.
    assert_eq!(a.next_chat(), "a: during the outage");
    assert_eq!(a2.next_chat(), "a: during the outage");
    wait_stats(addr(pa), "the failed publish is counted", |r| {
        r["publish_failed"].as_u64() >= Some(1)
    });

    redis.restart(); // same port
    for at in [addr(pa), addr(pb)] {
        wait_stats(at, "both connections back", |r| {
            r["publisher_ready"] == true && r["subscriber_ready"] == true
        });
    }
    wait_room_subscribers(redis.port, 2); // subscriptions restored on the new server
    a.say("a", "after");
    // B never gets the outage's message, not even late (nothing was queued for Redis).
    assert_eq!(b.next_chat(), "a: after");
    assert_eq!(a2.next_chat(), "a: after");
    b.say("b", "B to A again");
    assert_eq!(a.next_chat(), "a: after");
    assert_eq!(a.next_chat(), "b: B to A again");
}
