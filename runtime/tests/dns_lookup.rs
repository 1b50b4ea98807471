//! `dns::lookup` through the system resolver (getaddrinfo on the pool) and a `Resolver`'s static
//! names: `localhost`, an unknown name, IP literals answered on the next tick, family filters.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;

use oneloop_runtime::dns::{self, Family, Resolver};
use oneloop_runtime::Loop;

type Log = Rc<RefCell<Vec<String>>>;

#[test]
fn localhost_resolves_to_a_loopback_address() {
    let mut lp = Loop::new().unwrap();
    let got = Rc::new(RefCell::new(None));
    let g = got.clone();
    dns::lookup_all(&mut lp, "localhost", Family::Any, move |_lp, r| {
        *g.borrow_mut() = Some(r)
    })
    .unwrap();
    lp.run().unwrap();
    let addrs = got
        .borrow_mut()
        .take()
        .unwrap()
        .expect("localhost resolves");
    assert!(!addrs.is_empty());
    assert!(addrs.iter().all(IpAddr::is_loopback), "{addrs:?}");
}

#[test]
fn an_unknown_name_fails_with_enotfound_as_node_prints_it() {
    let mut lp = Loop::new().unwrap();
    let got = Rc::new(RefCell::new(None));
    let g = got.clone();
    dns::lookup(
        &mut lp,
        "nonexistent.invalid",
        Family::Any,
        move |_lp, r| *g.borrow_mut() = Some(r),
    )
    .unwrap();
    lp.run().unwrap();
    let err = got.borrow_mut().take().unwrap().unwrap_err();
    assert_eq!(err.code(), "ENOTFOUND", "{}", err.detail());
    assert_eq!(err.to_string(), "getaddrinfo ENOTFOUND nonexistent.invalid");
    assert_eq!(err.hostname(), "nonexistent.invalid");
}

#[test]
fn an_ip_literal_answers_on_the_next_tick_before_immediates() {
    // Node: dns.lookup('127.0.0.1', cb) queues cb with process.nextTick.
    let log = Log::default();
    let mut lp = Loop::new().unwrap();
    let l = log.clone();
    lp.set_immediate(move |_| l.borrow_mut().push("immediate".into()));
    let l = log.clone();
    dns::lookup(&mut lp, "127.0.0.1", Family::Any, move |_lp, r| {
        l.borrow_mut().push(format!("literal {}", r.unwrap()))
    })
    .unwrap();
    let l = log.clone();
    lp.next_tick(move |_| l.borrow_mut().push("tick".into()));
    let l = log.clone();
    dns::lookup(&mut lp, "[::1]", Family::Any, move |_lp, r| {
        l.borrow_mut().push(format!("literal {}", r.unwrap()))
    })
    .unwrap();
    lp.run().unwrap();
    assert_eq!(
        *log.borrow(),
        ["literal 127.0.0.1", "tick", "literal ::1", "immediate"]
    );
}

#[test]
fn a_resolver_answers_its_static_names_case_insensitively_and_filters_by_family() {
    let inventory = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7));
    let resolver = Resolver::system().with_host("Inventory", [inventory]);
    let log = Log::default();
    let mut lp = Loop::new().unwrap();
    let l = log.clone();
    resolver
        .lookup(&mut lp, "inventory", Family::V4, move |_lp, r| {
            l.borrow_mut().push(r.unwrap().to_string())
        })
        .unwrap();
    let l = log.clone();
    resolver
        .lookup(&mut lp, "INVENTORY", Family::V6, move |_lp, r| {
            l.borrow_mut().push(r.unwrap_err().code().to_string())
        })
        .unwrap();
    // Names it does not know go to the system.
    let l = log.clone();
    resolver
        .lookup(&mut lp, "localhost", Family::V4, move |_lp, r| {
            l.borrow_mut().push(format!("system {}", r.unwrap()))
        })
        .unwrap();
    lp.run().unwrap();
    assert_eq!(
        *log.borrow(),
        ["127.0.0.7", "ENOTFOUND", "system 127.0.0.1"]
    );
}

#[test]
fn a_pending_lookup_keeps_the_loop_alive_until_its_callback() {
    let mut lp = Loop::new().unwrap();
    let done = Rc::new(RefCell::new(false));
    let d = done.clone();
    dns::lookup(&mut lp, "localhost", Family::Any, move |_lp, _r| {
        *d.borrow_mut() = true
    })
    .unwrap();
    assert!(lp.is_alive());
    lp.run().unwrap();
    assert!(*done.borrow());
}
