//! The subscriber connection against a real redis-server: channels and patterns reach their
//! own callbacks, unsubscribe stops delivery, in RESP3 (push) and RESP2 (arrays) alike.

mod redis_common;

use std::cell::RefCell;
use std::rc::Rc;

use oneloop::redis::{Redis, RedisOptions, Subscriber};
use oneloop::runtime::Loop;
use redis_common::RedisServer;

type Log = Rc<RefCell<Vec<String>>>;

fn run_pubsub(resp3: bool) -> Vec<String> {
    let server = RedisServer::start();
    let mut lp = Loop::new().expect("loop");
    let t = lp.set_timeout(20_000, |_lp| panic!("test still running after 20 s"));
    lp.unref(t).expect("timer");
    let opts = RedisOptions {
        resp3,
        ..RedisOptions::default()
    };
    let sub = Subscriber::connect(&mut lp, &server.url(), opts.clone()).expect("url");
    let publisher = Redis::connect(&mut lp, &server.url(), opts).expect("url");
    let got: Log = Rc::default();
    let g = Rc::clone(&got);
    sub.subscribe(
        &mut lp,
        "a",
        move |_lp, m| push(&g, format!("a got {:?} on {:?}", m.payload, m.channel)),
        |_lp, r| r.expect("subscribed"),
    );
    let g = Rc::clone(&got);
    sub.psubscribe(
        &mut lp,
        "news.*",
        move |_lp, m| {
            push(
                &g,
                format!(
                    "news.* got {:?} on {:?} via {:?}",
                    m.payload, m.channel, m.pattern
                ),
            )
        },
        |_lp, r| r.expect("psubscribed"),
    );
    // "b" drives the test: its message "3" (after "1" and "2" on the same connection) starts
    // the unsubscribe step, its message "4" ends the test.
    let (g, s2, p2) = (Rc::clone(&got), sub.clone(), publisher.clone());
    let on_b = move |lp: &mut Loop, m: &oneloop::redis::Message| {
        push(&g, format!("b got {:?}", m.payload));
        if &m.payload[..] == b"4" {
            p2.quit(lp, |_lp, _| {});
            s2.client().quit(lp, |_lp, _| {});
            return;
        }
        let (g2, p3) = (Rc::clone(&g), p2.clone());
        s2.unsubscribe(lp, "a", move |lp, r| {
            r.expect("unsubscribed");
            let p4 = p3.clone();
            p3.publish(lp, "a", "after unsubscribe", move |lp, r| {
                push(&g2, format!("publish after unsubscribe: {r:?}"));
                p4.publish(lp, "b", "4", |_lp, r| assert_eq!(r, Ok(1)));
            });
        });
    };
    let (g, s2, p2) = (Rc::clone(&got), sub.clone(), publisher.clone());
    // The last subscribe's confirmation: all three subscriptions are live.
    sub.subscribe(&mut lp, "b", on_b, move |lp, r| {
        r.expect("subscribed");
        push(&g, format!("channels {:?}", s2.channels()));
        p2.publish(lp, "a", "1", |_lp, r| assert_eq!(r, Ok(1)));
        p2.publish(lp, "news.eu", "2", |_lp, r| assert_eq!(r, Ok(1)));
        p2.publish(lp, "b", "3", |_lp, r| assert_eq!(r, Ok(1)));
    });
    lp.run().expect("run");
    let out = got.borrow().clone();
    out
}

fn push(log: &Log, s: impl Into<String>) {
    log.borrow_mut().push(s.into());
}

const WANT: [&str; 6] = [
    "channels [b\"a\", b\"b\"]",
    "a got b\"1\" on b\"a\"",
    "news.* got b\"2\" on b\"news.eu\" via Some(b\"news.*\")",
    "b got b\"3\"",
    "publish after unsubscribe: Ok(0)",
    "b got b\"4\"",
];

#[test]
fn channels_and_patterns_reach_their_callbacks_over_resp3() {
    assert_eq!(run_pubsub(true), WANT);
}

#[test]
fn channels_and_patterns_reach_their_callbacks_over_resp2() {
    assert_eq!(run_pubsub(false), WANT);
}
