//! UDP (`dgram`) over real loopback sockets: echo between two loops, echo for node's `dgram`,
//! socket options, ref/unref, send completions and errors.

use std::cell::{Cell, RefCell};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use oneloop_runtime::{Loop, UdpError, UdpOptions};

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// An echo server on its own loop and thread; closes when `stop` is sent. Returns its address.
fn spawn_echo_server() -> (
    SocketAddr,
    oneloop_runtime::AsyncHandle,
    thread::JoinHandle<()>,
) {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = thread::spawn(move || {
        let mut lp = Loop::new().unwrap();
        let id = lp.udp_bind(local(), UdpOptions::default()).unwrap();
        lp.udp_on_message(id, move |lp, data, peer| {
            lp.udp_send(id, data, peer, |_, r| {
                r.expect("echo sent");
            })
            .unwrap();
        })
        .unwrap();
        let stop = lp.async_handle(move |lp| {
            let _ = lp.udp_close(id, |_| {});
            lp.stop();
        });
        tx.send((lp.udp_local_addr(id).unwrap(), stop.clone()))
            .unwrap();
        lp.run().unwrap();
        let _ = lp.async_close(stop.id(), |_| {});
        lp.run().unwrap();
    });
    let (addr, stop) = rx.recv().unwrap();
    (addr, stop, t)
}

#[test]
fn udp_echo_between_two_loops_delivers_each_datagram_with_its_peer_address() {
    let (server, stop, t) = spawn_echo_server();
    let mut lp = Loop::new().unwrap();
    let client = lp.udp_bind(local(), UdpOptions::default()).unwrap();
    let me = lp.udp_local_addr(client).unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let sent = Rc::new(Cell::new(0usize));
    const N: usize = 100;
    let g = Rc::clone(&got);
    lp.udp_on_message(client, move |lp, data, peer| {
        assert_eq!(peer, server);
        g.borrow_mut().push(data.to_vec());
        if g.borrow().len() == N {
            lp.udp_close(client, |_| {}).unwrap();
        }
    })
    .unwrap();
    // All at once: 100 small datagrams fit the loopback socket buffers, so none is dropped.
    for i in 0..N {
        let s = Rc::clone(&sent);
        let msg = format!("datagram {i}");
        let len = msg.len();
        lp.udp_send(client, msg.as_bytes(), server, move |_, r| {
            assert_eq!(r.unwrap(), len);
            s.set(s.get() + 1);
        })
        .unwrap();
    }
    lp.run().unwrap();
    stop.send().unwrap();
    t.join().unwrap();
    assert_eq!(sent.get(), N, "every send callback ran once");
    let mut got: Vec<String> = got
        .borrow()
        .iter()
        .map(|d| String::from_utf8(d.clone()).unwrap())
        .collect();
    got.sort_by_key(|s| s[9..].parse::<usize>().unwrap());
    let want: Vec<String> = (0..N).map(|i| format!("datagram {i}")).collect();
    assert_eq!(got, want);
    assert_ne!(me.port(), 0);
}

#[test]
fn udp_echo_for_nodes_dgram_client() {
    let (server, stop, t) = spawn_echo_server();
    let script: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "node",
        "udp_echo_client.js",
    ]
    .iter()
    .collect();
    let out = Command::new("node")
        .arg(&script)
        .arg(server.port().to_string())
        .output()
        .expect("this test needs node (v20) on PATH");
    stop.send().unwrap();
    t.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "echoed 200");
}

#[test]
fn a_datagram_of_65507_bytes_arrives_whole() {
    let mut lp = Loop::new().unwrap();
    let a = lp.udp_bind(local(), UdpOptions::default()).unwrap();
    let b = lp.udp_bind(local(), UdpOptions::default()).unwrap();
    let len = Rc::new(Cell::new(0));
    let l = Rc::clone(&len);
    lp.udp_on_message(b, move |lp, data, _| {
        assert!(data.iter().enumerate().all(|(i, &x)| x == (i % 251) as u8));
        l.set(data.len());
        lp.udp_close(a, |_| {}).unwrap();
        lp.udp_close(b, |_| {}).unwrap();
    })
    .unwrap();
    let big: Vec<u8> = (0..65_507).map(|i| (i % 251) as u8).collect();
    let to = lp.udp_local_addr(b).unwrap();
    lp.udp_send(a, &big, to, |_, r| assert_eq!(r.unwrap(), 65_507))
        .unwrap();
    lp.run().unwrap();
    assert_eq!(len.get(), 65_507);
}

#[test]
fn a_send_the_kernel_refuses_reports_the_error_to_its_callback() {
    let mut lp = Loop::new().unwrap();
    let a = lp.udp_bind(local(), UdpOptions::default()).unwrap();
    let err = Rc::new(RefCell::new(None));
    let e = Rc::clone(&err);
    let too_big = vec![0u8; 70_000];
    let to = lp.udp_local_addr(a).unwrap();
    lp.udp_send(a, &too_big, to, move |lp, r| {
        *e.borrow_mut() = Some(r.unwrap_err());
        lp.udp_close(a, |_| {}).unwrap();
    })
    .unwrap();
    lp.run().unwrap();
    let err = err.borrow_mut().take().expect("callback ran");
    assert_eq!(err.raw_os_error(), Some(libc::EMSGSIZE), "{err}");
    // The id is stale now: a clear error, not a panic.
    assert!(matches!(
        lp.udp_send(a, b"x", to, |_, _| {}),
        Err(UdpError::Stale)
    ));
    assert!(matches!(lp.udp_local_addr(a), Err(UdpError::Stale)));
}

#[test]
fn broadcast_ttl_and_multicast_options_succeed_on_loopback() {
    let mut lp = Loop::new().unwrap();
    let opts = UdpOptions {
        reuse_addr: true,
        ..UdpOptions::default()
    };
    let s = lp.udp_bind("0.0.0.0:0".parse().unwrap(), opts).unwrap();
    lp.udp_set_broadcast(s, true).unwrap();
    lp.udp_set_ttl(s, 64).unwrap();
    lp.udp_set_multicast_ttl(s, 2).unwrap();
    lp.udp_set_multicast_loop(s, true).unwrap();
    let group: IpAddr = "239.1.2.3".parse().unwrap();
    lp.udp_add_membership(s, group, Some(Ipv4Addr::LOCALHOST))
        .unwrap();
    lp.udp_drop_membership(s, group, Some(Ipv4Addr::LOCALHOST))
        .unwrap();
    // Not a multicast address: the OS error, clearly (Node: `addMembership EINVAL`).
    let bad = lp
        .udp_add_membership(s, "127.0.0.1".parse().unwrap(), None)
        .unwrap_err();
    match &bad {
        UdpError::Io(e) => assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}"),
        other => panic!("expected the OS error, got {other}"),
    }
    assert!(bad.to_string().contains("Invalid argument"), "{bad}");
    lp.udp_close(s, |_| {}).unwrap();
    lp.run().unwrap();
}

#[test]
fn a_datagram_sent_to_a_joined_group_on_loopback_arrives() {
    let mut lp = Loop::new().unwrap();
    let opts = UdpOptions {
        reuse_addr: true,
        ..UdpOptions::default()
    };
    let rx = lp.udp_bind("0.0.0.0:0".parse().unwrap(), opts).unwrap();
    let port = lp.udp_local_addr(rx).unwrap().port();
    let group = Ipv4Addr::new(239, 1, 2, 4);
    lp.udp_add_membership(rx, group.into(), Some(Ipv4Addr::LOCALHOST))
        .unwrap();
    // A plain std socket sends through the loopback interface.
    let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket2::SockRef::from(&tx)
        .set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
        .unwrap();
    let got = Rc::new(RefCell::new(None));
    let g = Rc::clone(&got);
    lp.udp_on_message(rx, move |lp, data, _| {
        *g.borrow_mut() = Some(data.to_vec());
        lp.udp_close(rx, |_| {}).unwrap();
    })
    .unwrap();
    tx.send_to(b"to the group", (group, port)).unwrap();
    lp.run().unwrap();
    assert_eq!(got.borrow().as_deref(), Some(&b"to the group"[..]));
}

#[test]
fn a_refd_idle_udp_socket_keeps_run_from_returning() {
    let mut lp = Loop::new().unwrap();
    let s = lp.udp_bind(local(), UdpOptions::default()).unwrap();
    assert_eq!(lp.active_handles()[0].kind, "udp");
    let to = lp.udp_local_addr(s).unwrap();
    let got = Rc::new(Cell::new(false));
    let g = Rc::clone(&got);
    lp.udp_on_message(s, move |lp, _, _| {
        g.set(true);
        lp.udp_close(s, |_| {}).unwrap();
    })
    .unwrap();
    // Arrives later: if the socket did not hold `run`, it would have returned already.
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .send_to(b"late", to)
            .unwrap();
    });
    lp.run().unwrap();
    t.join().unwrap();
    assert!(got.get());
}

#[test]
fn an_unrefd_udp_socket_lets_run_return_and_stays_open() {
    let mut lp = Loop::new().unwrap();
    let s = lp.udp_bind(local(), UdpOptions::default()).unwrap();
    lp.unref(s).unwrap();
    assert!(!lp.has_ref(s).unwrap());
    assert!(lp.active_handles().is_empty());
    lp.run().unwrap(); // returns at once
    assert!(lp.udp_local_addr(s).is_ok(), "still open");
    lp.ref_(s).unwrap();
    assert!(lp.is_alive());
    let closed = Rc::new(Cell::new(false));
    let c = Rc::clone(&closed);
    lp.udp_close(s, move |_| c.set(true)).unwrap();
    lp.run().unwrap();
    assert!(closed.get());
    assert!(lp.unref(s).is_err());
}

#[test]
fn udp_over_ipv6_loopback_echoes_and_takes_the_v6_multicast_options() {
    let mut lp = Loop::new().unwrap();
    let v6 = UdpOptions {
        ipv6_only: true,
        ..UdpOptions::default()
    };
    let a = lp.udp_bind("[::1]:0".parse().unwrap(), v6.clone()).unwrap();
    let b = lp.udp_bind("[::1]:0".parse().unwrap(), v6).unwrap();
    lp.udp_set_multicast_ttl(a, 3).unwrap();
    lp.udp_set_multicast_loop(a, false).unwrap();
    let from_a = lp.udp_local_addr(a).unwrap();
    let got = Rc::new(RefCell::new(None));
    let g = Rc::clone(&got);
    lp.udp_on_message(b, move |lp, data, peer| {
        *g.borrow_mut() = Some((data.to_vec(), peer));
        lp.udp_close(a, |_| {}).unwrap();
        lp.udp_close(b, |_| {}).unwrap();
    })
    .unwrap();
    let to = lp.udp_local_addr(b).unwrap();
    lp.udp_send(a, b"over v6", to, |_, r| assert_eq!(r.unwrap(), 7))
        .unwrap();
    lp.run().unwrap();
    assert_eq!(*got.borrow(), Some((b"over v6".to_vec(), from_a)));
}
