//! Unix domain sockets (pipes) over real socket files in a temp dir: echo (std client and loop
//! client), half-close, backpressure, the socket file's life (EADDRINUSE on an existing file,
//! removed on close), connect errors, addresses, ref/unref and why-alive kinds.

mod tcp_common;

use std::cell::{Cell, RefCell};
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::rc::Rc;
use std::thread;
use std::time::Duration;

use oneloop_runtime::{ListenOptions, Loop, ServerId, SocketOptions, StreamAddr, TcpId};
use tcp_common::{echo_on, watchdog, Hash64, Pattern};

/// A fresh directory for this test's socket files (removed at the end of the test).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("oneloop-pipe-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn pipe_echo_server(lp: &mut Loop, path: &std::path::Path, close_after: usize) -> ServerId {
    let closed = Rc::new(Cell::new(0usize));
    let server = Rc::new(Cell::new(None::<ServerId>));
    let srv = server.clone();
    let id = lp
        .pipe_listen(path, ListenOptions::default(), move |lp, conn| {
            echo_on(lp, conn, closed.clone(), srv.clone(), close_after)
        })
        .expect("pipe_listen");
    server.set(Some(id));
    id
}

/// 8 MiB through a loop echo server on a Unix socket from a blocking std client (writer and
/// reader threads); hashes and lengths equal; the server closes after the connection and
/// removes its file.
#[test]
fn unix_socket_echo_8_mib_with_a_std_client_then_the_socket_file_is_removed() {
    let dir = TempDir::new("echo");
    let path = dir.path("echo.sock");
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 30);
    let server = pipe_echo_server(&mut lp, &path, 1);
    assert_eq!(lp.pipe_server_path(server).unwrap(), path);
    assert!(
        lp.tcp_server_addr(server).is_err(),
        "a pipe server has no IP"
    );
    let total = 8 << 20;
    let p = path.clone();
    let client = thread::spawn(move || {
        let stream = UnixStream::connect(&p).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let sender = thread::spawn(move || {
            let mut pattern = Pattern::new(7);
            let mut hash = Hash64::default();
            let mut buf = vec![0u8; 64 * 1024];
            let mut left = total;
            while left > 0 {
                let n = left.min(buf.len());
                pattern.fill(&mut buf[..n]);
                hash.update(&buf[..n]);
                writer.write_all(&buf[..n]).unwrap();
                left -= n;
            }
            writer.shutdown(Shutdown::Write).unwrap();
            hash.finish()
        });
        let mut reader = stream;
        let mut hash = Hash64::default();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => hash.update(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => panic!("client read: {e}"),
            }
        }
        (sender.join().unwrap(), hash.finish())
    });
    lp.run().unwrap();
    let (sent, received) = client.join().unwrap();
    assert_eq!(sent.1, total as u64);
    assert_eq!(sent, received);
    assert!(
        !path.exists(),
        "the server removed its socket file on close"
    );
}

/// A loop client (`pipe_connect`) and a loop server on one loop: the client writes 1 MiB with
/// backpressure (write -> false -> drain), ends, and gets every byte back before its `on_end`.
#[test]
fn unix_socket_echo_with_a_loop_client_and_backpressure() {
    let dir = TempDir::new("loopclient");
    let path = dir.path("e.sock");
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 30);
    pipe_echo_server(&mut lp, &path, 1);
    let total = 1 << 20;
    let got = Rc::new(RefCell::new(Hash64::default()));
    let ended = Rc::new(Cell::new(false));
    let saw_false = Rc::new(Cell::new(false));
    let sent = Rc::new(RefCell::new((Hash64::default(), Pattern::new(3), 0usize)));
    fn pump(
        lp: &mut Loop,
        id: TcpId,
        sent: &RefCell<(Hash64, Pattern, usize)>,
        total: usize,
    ) -> bool {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let mut s = sent.borrow_mut();
            if s.2 == total {
                drop(s);
                lp.tcp_end(id).unwrap();
                return true;
            }
            let n = (total - s.2).min(buf.len());
            s.1.fill(&mut buf[..n]);
            s.0.update(&buf[..n]);
            s.2 += n;
            drop(s);
            if !lp.tcp_write(id, &buf[..n]).unwrap() {
                return false;
            }
        }
    }
    let s = sent.clone();
    let f = saw_false.clone();
    let client = lp
        .pipe_connect(&path, SocketOptions::default(), move |lp, id| {
            if !pump(lp, id, &s, total) {
                f.set(true);
            }
        })
        .unwrap();
    assert!(lp.stream_is_pipe(client));
    let s = sent.clone();
    lp.tcp_on_drain(client, move |lp, id| {
        pump(lp, id, &s, total);
    })
    .unwrap();
    let g = got.clone();
    lp.tcp_on_data(client, move |_lp, _id, d| g.borrow_mut().update(d))
        .unwrap();
    let e = ended.clone();
    lp.tcp_on_end(client, move |_lp, _id| e.set(true)).unwrap();
    lp.run().unwrap();
    assert!(ended.get());
    assert!(
        saw_false.get(),
        "1 MiB to a Unix socket hit the 64 KiB high-water mark"
    );
    let got = Rc::try_unwrap(got).ok().unwrap().into_inner().finish();
    let sent = Rc::try_unwrap(sent).ok().unwrap().into_inner().0.finish();
    assert_eq!(got.1, total as u64);
    assert_eq!(got, sent);
}

/// Half-close: the client ends its side; the server (allow_half_open) sees `on_end`, still
/// writes its reply and ends; the client reads the reply, then EOF.
#[test]
fn half_close_on_a_unix_socket_server_writes_after_the_peers_fin() {
    let dir = TempDir::new("half");
    let path = dir.path("h.sock");
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 10);
    let options = ListenOptions {
        socket: SocketOptions {
            allow_half_open: true,
            ..SocketOptions::server_default()
        },
        ..ListenOptions::default()
    };
    let server = Rc::new(Cell::new(None::<ServerId>));
    let srv = server.clone();
    let id = lp
        .pipe_listen(&path, options, move |lp, conn| {
            let got = Rc::new(RefCell::new(Vec::new()));
            let g = got.clone();
            lp.tcp_on_data(conn, move |_lp, _id, d| g.borrow_mut().extend_from_slice(d))
                .unwrap();
            lp.tcp_on_end(conn, move |lp, id| {
                assert!(lp.tcp_read_ended(id));
                let reply = format!("got {} bytes after your FIN", got.borrow().len());
                lp.tcp_write(id, reply.as_bytes()).unwrap();
                lp.tcp_end(id).unwrap();
            })
            .unwrap();
            let srv = srv.clone();
            lp.tcp_on_close(conn, move |lp, _, had_error| {
                assert!(!had_error);
                lp.tcp_server_close(srv.get().unwrap(), |_| {}).unwrap();
            })
            .unwrap();
        })
        .unwrap();
    server.set(Some(id));
    let p = path.clone();
    let client = thread::spawn(move || {
        let mut s = UnixStream::connect(&p).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"hello").unwrap();
        s.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).unwrap();
        reply
    });
    lp.run().unwrap();
    assert_eq!(client.join().unwrap(), "got 5 bytes after your FIN");
}

/// Node's stale-file rule: listening on a path where a file exists (here the file a dropped
/// std listener left behind) fails with EADDRINUSE and leaves the file alone; after removing
/// it, listening works, and closing the server removes the file again.
#[test]
fn listen_on_an_existing_socket_file_is_eaddrinuse_and_close_removes_the_file() {
    let dir = TempDir::new("stale");
    let path = dir.path("stale.sock");
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists(), "a dropped std listener leaves its file");
    let mut lp = Loop::new().unwrap();
    let err = lp
        .pipe_listen(&path, ListenOptions::default(), |_, _| {})
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert_eq!(
        err.to_string(),
        format!(
            "listen EADDRINUSE: address already in use {}",
            path.display()
        )
    );
    assert!(path.exists(), "the stale file is not removed for you");
    std::fs::remove_file(&path).unwrap();
    let server = lp
        .pipe_listen(&path, ListenOptions::default(), |_, _| {})
        .unwrap();
    assert!(path.exists());
    assert_eq!(
        lp.server_local_addr(server).unwrap(),
        StreamAddr::Unix(Some(path.clone()))
    );
    let closed = Rc::new(Cell::new(false));
    let c = closed.clone();
    lp.tcp_server_close(server, move |_| c.set(true)).unwrap();
    assert!(!path.exists(), "closing the server removes the socket file");
    lp.run().unwrap();
    assert!(closed.get());
}

/// Connecting to a missing path reports ENOENT to `on_error` (with the path), then `on_close`
/// with `had_error`, from a later callback; a stale socket file nobody listens on is
/// ECONNREFUSED.
#[test]
fn connect_to_a_missing_path_is_enoent_and_to_a_stale_file_is_econnrefused() {
    let dir = TempDir::new("connerr");
    let stale = dir.path("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 10);
    let errors = Rc::new(RefCell::new(Vec::new()));
    for path in [dir.path("missing.sock"), stale.clone()] {
        let id = lp
            .pipe_connect(&path, SocketOptions::default(), |_, _| {
                panic!("connected to nothing")
            })
            .unwrap();
        let e = errors.clone();
        lp.tcp_on_error(id, move |_lp, _id, err| {
            e.borrow_mut().push((err.kind(), err.to_string()))
        })
        .unwrap();
        let e = errors.clone();
        lp.tcp_on_close(id, move |_lp, _id, had_error| {
            assert!(had_error);
            e.borrow_mut().push((ErrorKind::Other, "closed".into()));
        })
        .unwrap();
    }
    assert!(errors.borrow().is_empty(), "never from inside pipe_connect");
    lp.run().unwrap();
    let errors = errors.borrow();
    // Both errors from the pending phase, then both closes from the close phase.
    assert_eq!(errors.len(), 4, "{errors:?}");
    assert_eq!(errors[0].0, ErrorKind::NotFound);
    let missing = dir.path("missing.sock");
    assert_eq!(errors[0].1, format!("connect ENOENT {}", missing.display()));
    assert_eq!(errors[1].0, ErrorKind::ConnectionRefused);
    assert_eq!(errors[2].1, "closed");
    assert_eq!(errors[3].1, "closed");
}

/// Addresses: the client sees the server's path as its peer and is itself unnamed; the
/// accepted socket sees the reverse. `tcp_peer_addr` (IP only) is an error on a pipe;
/// `tcp_set_nodelay`/`tcp_set_keepalive` are no-ops that succeed (as Node on a pipe).
#[test]
fn pipe_addresses_are_the_path_or_unnamed_and_tcp_only_options_are_no_ops() {
    let dir = TempDir::new("addr");
    let path = dir.path("a.sock");
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 10);
    let seen = Rc::new(RefCell::new(Vec::new()));
    let s = seen.clone();
    let server = lp
        .pipe_listen(&path, ListenOptions::default(), move |lp, conn| {
            s.borrow_mut().push((
                lp.stream_local_addr(conn).unwrap(),
                lp.stream_peer_addr(conn).unwrap(),
            ));
            lp.tcp_destroy(conn).unwrap();
        })
        .unwrap();
    let s = seen.clone();
    lp.pipe_connect(&path, SocketOptions::default(), move |lp, id| {
        s.borrow_mut().push((
            lp.stream_local_addr(id).unwrap(),
            lp.stream_peer_addr(id).unwrap(),
        ));
        assert!(lp.tcp_peer_addr(id).is_err());
        lp.tcp_set_nodelay(id, true).unwrap();
        lp.tcp_set_keepalive(id, Some(Duration::from_secs(1)))
            .unwrap();
        lp.tcp_destroy(id).unwrap();
        lp.tcp_server_close(server, |_| {}).unwrap();
    })
    .unwrap();
    lp.run().unwrap();
    let seen = seen.borrow();
    let named = StreamAddr::Unix(Some(path.clone()));
    let unnamed = StreamAddr::Unix(None);
    assert!(seen.contains(&(named.clone(), unnamed.clone())), "{seen:?}");
    assert!(seen.contains(&(unnamed.clone(), named.clone())), "{seen:?}");
    assert_eq!(unnamed.to_string(), "(unnamed)");
    assert_eq!(named.to_string(), path.display().to_string());
}

/// ref/unref: an unref'd pipe server does not keep the loop alive (run returns at once with
/// the server still listening); a ref'd one does, and why-alive names it "pipe_server"; a
/// connected pipe socket is listed as "pipe" and, once unref'd, no longer keeps the loop.
#[test]
fn unrefd_pipe_servers_and_sockets_let_the_loop_exit_and_why_alive_names_them() {
    let dir = TempDir::new("ref");
    let path = dir.path("r.sock");
    let mut lp = Loop::new().unwrap();
    // Accepted sockets are unref'd at once, so only the client's socket is under test.
    let server = lp
        .pipe_listen(&path, ListenOptions::default(), |lp, conn| {
            lp.unref(conn).unwrap()
        })
        .unwrap();
    let kinds =
        |lp: &Loop| -> Vec<&'static str> { lp.active_handles().iter().map(|h| h.kind).collect() };
    assert_eq!(kinds(&lp), ["pipe_server"]);
    assert!(lp.is_alive());
    lp.unref(server).unwrap();
    assert!(!lp.is_alive());
    lp.run().unwrap(); // returns: nothing ref'd
    assert!(lp.tcp_server_is_listening(server));

    // A connected pipe socket keeps the loop alive until unref'd.
    let client = lp
        .pipe_connect(&path, SocketOptions::default(), |_, _| {})
        .unwrap();
    assert_eq!(kinds(&lp), ["pipe"]);
    let c = client;
    lp.set_timeout(50, move |lp| lp.unref(c).unwrap());
    watchdog(&mut lp, 10);
    lp.run().unwrap();
    assert!(
        lp.tcp_is_open(client),
        "the loop exited with the unref'd socket open"
    );
    assert!(!lp.has_ref(client).unwrap());
    lp.tcp_destroy(client).unwrap();
    lp.tcp_server_close(server, |_| {}).unwrap();
    lp.run().unwrap();
}

/// The shared state machine on a pipe: `max_connections` drops the second connection and
/// reports it with pipe addresses (the server's path, an unnamed peer), and an idle timeout
/// fires on a pipe socket without closing it.
#[test]
fn max_connections_drop_and_idle_timeout_work_on_pipes() {
    let dir = TempDir::new("drop");
    let path = dir.path("d.sock");
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 10);
    let options = ListenOptions {
        max_connections: Some(1),
        ..ListenOptions::default()
    };
    let timeouts = Rc::new(Cell::new(0));
    let t = timeouts.clone();
    let server = lp
        .pipe_listen(&path, options, move |lp, conn| {
            lp.tcp_set_timeout(conn, 30).unwrap();
            let t = t.clone();
            lp.tcp_on_timeout(conn, move |lp, id| {
                t.set(t.get() + 1);
                assert!(lp.tcp_is_open(id), "a timeout does not close");
                lp.tcp_destroy(id).unwrap();
            })
            .unwrap();
        })
        .unwrap();
    let drops = Rc::new(RefCell::new(Vec::new()));
    let d = drops.clone();
    lp.tcp_server_on_drop(server, move |lp, info| {
        d.borrow_mut().push(info);
        lp.tcp_server_close(server, |_| {}).unwrap();
    })
    .unwrap();
    let first = lp
        .pipe_connect(&path, SocketOptions::default(), |_, _| {})
        .unwrap();
    // The second connects once the first was accepted (it would otherwise race it).
    let p = path.clone();
    lp.set_timeout(10, move |lp| {
        let second = lp
            .pipe_connect(&p, SocketOptions::default(), |_, _| {})
            .unwrap();
        lp.unref(second).unwrap();
    });
    lp.unref(first).unwrap();
    lp.run().unwrap();
    assert_eq!(timeouts.get(), 1);
    let drops = drops.borrow();
    assert_eq!(drops.len(), 1);
    assert_eq!(drops[0].local, StreamAddr::Unix(Some(path.clone())));
    assert_eq!(drops[0].remote, StreamAddr::Unix(None));
}

/// A Linux abstract name (`"\0name"`, Node's spelling): listen, connect and echo with no file
/// in the file system; the client sees the name as its peer.
#[test]
fn abstract_socket_names_work_without_a_file() {
    use std::os::unix::ffi::OsStrExt;
    let name = format!("\0oneloop-abstract-{}", std::process::id());
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(name.as_bytes()));
    let mut lp = Loop::new().unwrap();
    watchdog(&mut lp, 10);
    let server = pipe_echo_server(&mut lp, &path, 1);
    let got = Rc::new(RefCell::new(Vec::new()));
    let peer = Rc::new(RefCell::new(None));
    let pr = peer.clone();
    let client = lp
        .pipe_connect(&path, SocketOptions::default(), move |lp, id| {
            *pr.borrow_mut() = Some(lp.stream_peer_addr(id).unwrap());
            lp.tcp_write(id, b"abstract").unwrap();
            lp.tcp_end(id).unwrap();
        })
        .unwrap();
    let g = got.clone();
    lp.tcp_on_data(client, move |_lp, _id, d| {
        g.borrow_mut().extend_from_slice(d)
    })
    .unwrap();
    lp.run().unwrap();
    assert!(!lp.tcp_server_is_listening(server));
    assert_eq!(*got.borrow(), b"abstract");
    assert_eq!(*peer.borrow(), Some(StreamAddr::Unix(Some(path))));
}
