//! The keep-alive `Agent` over real loopback sockets: against oneloop's own server in the same
//! loop, and against raw servers on threads that count connections and script what the server
//! does with each one.
//!
//! Every test runs its loop on a thread and waits for it with a deadline, so a hang fails the
//! test instead of stalling the suite; getting the result back proves `lp.run()` returned by
//! itself. Each callback pushes its result, so "called exactly once" is a count.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use oneloop::http::{self, Agent, AgentOptions, ClientError, ClientRequest, ClientResponse};
use oneloop::runtime::Loop;

type Outcome = Result<ClientResponse, ClientError>;
type Results = Rc<RefCell<Vec<Outcome>>>;

/// How long any loop may run before the test fails.
const DEADLINE: Duration = Duration::from_secs(10);

/// Runs `setup` on a fresh loop on its own thread, then `lp.run()` until the loop exits by
/// itself, then the closure `setup` returned (with the loop still alive) to collect what the
/// test checks. Panics if that takes longer than [`DEADLINE`].
fn on_loop<T: Send + 'static>(
    setup: impl FnOnce(&mut Loop) -> Box<dyn FnOnce(&mut Loop) -> T> + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lp = Loop::new().expect("loop");
        let after = setup(&mut lp);
        lp.run().expect("loop run");
        let _ = tx.send(after(&mut lp));
    });
    rx.recv_timeout(DEADLINE)
        .expect("the loop did not exit by itself within the deadline")
}

fn get(url: &str, agent: &Agent) -> ClientRequest<Agent> {
    ClientRequest::new("GET", url)
        .expect("valid URL")
        .agent(agent)
}

/// Sends `req` and pushes its outcome, then runs `then` (the next step of the test).
fn send(
    lp: &mut Loop,
    req: ClientRequest<Agent>,
    results: &Results,
    then: impl FnOnce(&mut Loop) + 'static,
) {
    let results = Rc::clone(results);
    http::request(lp, req, move |lp, r| {
        results.borrow_mut().push(r);
        then(lp);
    })
    .expect("a valid request");
}

/// Status or error of each outcome, for one readable assertion.
fn summary(results: &[Outcome]) -> Vec<Result<u16, ClientError>> {
    results
        .iter()
        .map(|r| r.as_ref().map(|r| r.status()).map_err(Clone::clone))
        .collect()
}

// -- raw servers -------------------------------------------------------------------------------

/// A server on threads: accepts connections until dropped (or the deadline) and runs `script`
/// with each one's index (0, 1, ...) and stream.
struct RawServer {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl RawServer {
    fn start(script: impl Fn(usize, TcpStream) + Send + Sync + 'static) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (accepted, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (count, stopped) = (Arc::clone(&accepted), Arc::clone(&stop));
        let script = Arc::new(script);
        thread::spawn(move || {
            let start = Instant::now();
            while !stopped.load(Ordering::SeqCst) && start.elapsed() < DEADLINE {
                match listener.accept() {
                    Ok((stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        stream.set_read_timeout(Some(DEADLINE)).unwrap();
                        stream.set_write_timeout(Some(DEADLINE)).unwrap();
                        let n = count.fetch_add(1, Ordering::SeqCst);
                        let script = Arc::clone(&script);
                        thread::spawn(move || script(n, stream));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        RawServer {
            addr,
            accepted,
            stop,
        }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Reads up to the end of a request head; empty at EOF (the client closed).
fn read_head(stream: &mut TcpStream) -> Vec<u8> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return Vec::new(),
        }
    }
    head
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Answers every request on `stream` with `response` until the client closes, then sends the
/// connection's index on `closed`.
fn serve(n: usize, mut stream: TcpStream, response: &[u8], closed: &mpsc::Sender<usize>) {
    while !read_head(&mut stream).is_empty() {
        if stream.write_all(response).is_err() {
            break;
        }
    }
    let _ = closed.send(n);
}

/// A raw keep-alive server answering [`OK`]; the receiver gets each connection's index when
/// the client closes it.
fn keep_alive_server() -> (RawServer, mpsc::Receiver<usize>) {
    let (tx, rx) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let server = RawServer::start(move |n, stream| {
        let closed = tx.lock().unwrap().clone();
        serve(n, stream, OK, &closed);
    });
    (server, rx)
}

// -- against oneloop's own server ----------------------------------------------------------

#[test]
fn agent_reuses_one_connection_for_sequential_requests_to_our_server() {
    let (results, peers, seen) = on_loop(|lp| {
        let peers: Rc<RefCell<HashSet<SocketAddr>>> = Rc::default();
        let p = Rc::clone(&peers);
        let server = http::create_server(lp, move |_lp, req, res| {
            p.borrow_mut().extend(req.remote_addr());
            res.end("hi");
        });
        let addr = server.listen(lp, "127.0.0.1:0", |_lp, _| {}).unwrap();
        let agent = Agent::new(AgentOptions::default());
        let results: Results = Rc::default();
        // (idle, active, server connections) seen by each callback.
        let seen: Rc<RefCell<Vec<(usize, usize, usize)>>> = Rc::default();

        fn step(
            lp: &mut Loop,
            left: usize,
            url: Rc<String>,
            agent: Agent,
            server: http::Server,
            results: Results,
            seen: Rc<RefCell<Vec<(usize, usize, usize)>>>,
        ) {
            let (a, r) = (agent.clone(), Rc::clone(&results));
            send(lp, get(&url, &agent), &r, move |lp| {
                let counts = (a.idle_sockets(), a.active_sockets(), server.connections());
                seen.borrow_mut().push(counts);
                if left > 1 {
                    step(lp, left - 1, url, a, server, results, seen);
                } else {
                    server.close(lp, |_lp| {});
                }
            });
        }
        let url = Rc::new(format!("http://{addr}/"));
        step(
            lp,
            5,
            url,
            agent,
            server,
            Rc::clone(&results),
            Rc::clone(&seen),
        );
        Box::new(move |_lp| {
            let out = std::mem::take(&mut *results.borrow_mut());
            let peers = peers.borrow().len();
            let seen = seen.borrow().clone();
            (summary(&out), peers, seen)
        })
    });
    assert_eq!(results, vec![Ok(200); 5]);
    assert_eq!(
        peers, 1,
        "all five requests came from one client connection"
    );
    // Freed before each callback: 1 idle, 0 active, and the server never saw a second one.
    assert_eq!(seen, vec![(1, 0, 1); 5]);
}

#[test]
fn agent_caps_connections_per_host_and_queues_the_rest_in_order() {
    let (results, arrivals, queued_at_start, max_active) = on_loop(|lp| {
        // (request index, client address) in the order the server got them.
        let arrivals: Rc<RefCell<Vec<(usize, SocketAddr)>>> = Rc::default();
        let log = Rc::clone(&arrivals);
        let server = http::create_server(lp, move |lp, req, res| {
            let index: usize = req.path()[1..].parse().unwrap();
            log.borrow_mut().push((index, req.remote_addr().unwrap()));
            // Answer a little later, so the other requests are waiting meanwhile.
            lp.set_timeout(20, move |_lp| res.end("done"));
        });
        let addr = server.listen(lp, "127.0.0.1:0", |_lp, _| {}).unwrap();
        let agent = Agent::new(AgentOptions {
            max_sockets_per_host: 2,
            ..AgentOptions::default()
        });
        let results: Results = Rc::default();
        let max_active = Rc::new(RefCell::new(0));
        for i in 0..6 {
            let req = get(&format!("http://{addr}/{i}"), &agent);
            let (a, s, m, r) = (
                agent.clone(),
                server.clone(),
                Rc::clone(&max_active),
                Rc::clone(&results),
            );
            send(lp, req, &results, move |lp| {
                let now = a.active_sockets().max(s.connections());
                let mut max = m.borrow_mut();
                *max = (*max).max(now);
                if r.borrow().len() == 6 {
                    s.close(lp, |_lp| {});
                }
            });
        }
        let queued_at_start = (agent.active_sockets(), agent.queued_requests());
        Box::new(move |_lp| {
            let out = std::mem::take(&mut *results.borrow_mut());
            let arrivals = arrivals.borrow().clone();
            let max = *max_active.borrow();
            (summary(&out), arrivals, queued_at_start, max)
        })
    });
    assert_eq!(results, vec![Ok(200); 6]);
    assert_eq!(queued_at_start, (2, 4), "two connecting, four waiting");
    assert!(max_active <= 2, "{max_active} connections at once");
    let mut per_connection: HashMap<SocketAddr, Vec<usize>> = HashMap::new();
    for &(index, peer) in &arrivals {
        per_connection.entry(peer).or_default().push(index);
    }
    assert_eq!(per_connection.len(), 2, "{arrivals:?}");
    for indexes in per_connection.values() {
        assert!(indexes.windows(2).all(|w| w[0] < w[1]), "{arrivals:?}");
    }
    // FIFO: the first two requests went out first.
    let first: HashSet<usize> = arrivals[..2].iter().map(|&(i, _)| i).collect();
    assert_eq!(first, HashSet::from([0, 1]), "{arrivals:?}");
}

// -- against raw servers -------------------------------------------------------------------

#[test]
fn idle_agent_socket_does_not_keep_the_loop_alive() {
    let (server, closed) = keep_alive_server();
    let url = server.url();
    let (results, idle) = on_loop(move |lp| {
        let agent = Agent::new(AgentOptions::default());
        let results: Results = Rc::default();
        send(lp, get(&url, &agent), &results, |_lp| {});
        Box::new(move |_lp| {
            let out = std::mem::take(&mut *results.borrow_mut());
            (summary(&out), agent.idle_sockets())
        })
    });
    assert_eq!(results, vec![Ok(200)]);
    assert_eq!(idle, 1, "the loop exited with the connection still pooled");
    // Dropping the loop closed it.
    assert_eq!(closed.recv_timeout(DEADLINE), Ok(0));
    assert_eq!(server.accepted(), 1);
}

#[test]
fn agent_does_not_reuse_a_connection_after_connection_close() {
    // The server says close but would go on serving: only the header stops the reuse.
    let (tx, _closed) = mpsc::channel();
    let tx = std::sync::Mutex::new(tx);
    let server = RawServer::start(move |n, stream| {
        let closed = tx.lock().unwrap().clone();
        let response = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
        serve(n, stream, response, &closed);
    });
    let url = server.url();
    let (results, idle) = on_loop(move |lp| {
        let agent = Agent::new(AgentOptions::default());
        let results: Results = Rc::default();
        let idle: Rc<RefCell<Vec<usize>>> = Rc::default();
        let (a, r, i) = (agent.clone(), Rc::clone(&results), Rc::clone(&idle));
        send(lp, get(&url, &agent), &results, move |lp| {
            i.borrow_mut().push(a.idle_sockets());
            send(lp, get(&url, &a), &r, move |_lp| {
                i.borrow_mut().push(a.idle_sockets());
            });
        });
        Box::new(move |_lp| {
            let out = std::mem::take(&mut *results.borrow_mut());
            let idle = idle.borrow().clone();
            (summary(&out), idle)
        })
    });
    assert_eq!(results, vec![Ok(200), Ok(200)]);
    assert_eq!(idle, [0, 0]);
    assert_eq!(server.accepted(), 2, "each request had its own connection");
}

#[test]
fn agent_survives_a_server_closing_an_idle_connection() {
    // Each connection: one response, then the server closes 50 ms later without reading more.
    let server = RawServer::start(|_n, mut stream| {
        if !read_head(&mut stream).is_empty() {
            let _ = stream.write_all(OK);
            thread::sleep(Duration::from_millis(50));
        }
    });
    let url = server.url();
    let (results, idle_before_last) = on_loop(move |lp| {
        let url = Rc::new(url);
        let agent = Agent::new(AgentOptions::default());
        let results: Results = Rc::default();
        let idle_before_last = Rc::new(RefCell::new(usize::MAX));
        let (a, r, u, i) = (
            agent.clone(),
            Rc::clone(&results),
            Rc::clone(&url),
            Rc::clone(&idle_before_last),
        );
        // 1: GET on a new connection.
        send(lp, get(&url, &agent), &results, move |lp| {
            // 2: GET at once on the pooled connection, which the server is about to close with
            //    the request unread: resent on a new connection.
            let (a2, r2, u2) = (a.clone(), Rc::clone(&r), Rc::clone(&u));
            send(lp, get(&u, &a), &r, move |lp| {
                // 3: POST the same way: not resent, so Closed (or a response), never a hang.
                let post = ClientRequest::new("POST", &u2)
                    .unwrap()
                    .body("x")
                    .agent(&a2);
                let (a3, r3) = (a2.clone(), Rc::clone(&r2));
                send(lp, post, &r2, move |lp| {
                    // 4: GET on a new connection; 5: after the server closed that one while
                    //    idle, GET again: the dead connection was dropped from the pool.
                    let (a4, r4) = (a3.clone(), Rc::clone(&r3));
                    send(lp, get(&u2, &a3), &r3, move |lp| {
                        lp.set_timeout(200, move |lp| {
                            *i.borrow_mut() = a4.idle_sockets();
                            send(lp, get(&u2, &a4), &r4, |_lp| {});
                        });
                    });
                });
            });
        });
        Box::new(move |_lp| {
            let out = std::mem::take(&mut *results.borrow_mut());
            let idle = *idle_before_last.borrow();
            (summary(&out), idle)
        })
    });
    assert_eq!(results.len(), 5, "{results:?}");
    assert_eq!(results[..2], [Ok(200), Ok(200)], "{results:?}");
    assert!(
        matches!(results[2], Ok(200) | Err(ClientError::Closed)),
        "{results:?}"
    );
    assert_eq!(results[3..], [Ok(200), Ok(200)], "{results:?}");
    assert_eq!(
        idle_before_last, 0,
        "the closed idle connection left the pool"
    );
    // 1, the resend of 2, 4 and 5 each had a connection; 3 went out on 2's and failed (had
    // the client seen that one close first, 3 would have had its own and succeeded).
    let post_ok = usize::from(results[2].is_ok());
    assert_eq!(server.accepted(), 4 + post_ok);
}

#[test]
fn agent_closes_idle_connections_after_free_socket_timeout() {
    let (server, closed) = keep_alive_server();
    let url = server.url();
    let (results, idle, server_saw) = on_loop(move |lp| {
        let agent = Agent::new(AgentOptions {
            free_socket_timeout_ms: 100,
            ..AgentOptions::default()
        });
        let results: Results = Rc::default();
        let idle: Rc<RefCell<Vec<usize>>> = Rc::default();
        let server_saw = Rc::new(RefCell::new(None));
        let (a, i, s) = (agent.clone(), Rc::clone(&idle), Rc::clone(&server_saw));
        send(lp, get(&url, &agent), &results, move |lp| {
            i.borrow_mut().push(a.idle_sockets());
            lp.set_timeout(300, move |_lp| {
                i.borrow_mut().push(a.idle_sockets());
                // Asked while the loop (and the agent) still exist: only the timeout closed it.
                *s.borrow_mut() = closed.try_recv().ok();
            });
        });
        Box::new(move |_lp| {
            let out = std::mem::take(&mut *results.borrow_mut());
            let idle = idle.borrow().clone();
            let saw = server_saw.borrow_mut().take();
            (summary(&out), idle, saw)
        })
    });
    assert_eq!(results, vec![Ok(200)]);
    assert_eq!(idle, [1, 0], "pooled, then closed by the idle timeout");
    assert_eq!(server_saw, Some(0), "the server saw the connection close");
}

#[test]
fn agent_destroys_a_connection_that_receives_bytes_after_the_response() {
    // Connection 0: a second, unsolicited response in the same write. Connection 1: one 50 ms
    // after the response, while the connection is idle. Connection 2: well behaved.
    let server = RawServer::start(|n, mut stream| {
        let mut served = 0;
        while !read_head(&mut stream).is_empty() {
            served += 1;
            let mut out = OK.to_vec();
            if n == 0 && served == 1 {
                out.extend_from_slice(OK);
            }
            if stream.write_all(&out).is_err() {
                break;
            }
            if n == 1 && served == 1 {
                thread::sleep(Duration::from_millis(50));
                let _ = stream.write_all(OK);
            }
        }
    });
    let url = server.url();
    let (results, idle) = on_loop(move |lp| {
        let url = Rc::new(url);
        let agent = Agent::new(AgentOptions::default());
        let results: Results = Rc::default();
        let idle: Rc<RefCell<Vec<usize>>> = Rc::default();
        let (a, r, u, i) = (
            agent.clone(),
            Rc::clone(&results),
            Rc::clone(&url),
            Rc::clone(&idle),
        );
        send(lp, get(&url, &agent), &results, move |lp| {
            i.borrow_mut().push(a.idle_sockets());
            let (a2, r2) = (a.clone(), Rc::clone(&r));
            send(lp, get(&u, &a), &r, move |lp| {
                i.borrow_mut().push(a2.idle_sockets());
                lp.set_timeout(150, move |lp| {
                    i.borrow_mut().push(a2.idle_sockets());
                    send(lp, get(&u, &a2), &r2, move |_lp| {
                        i.borrow_mut().push(a2.idle_sockets());
                    });
                });
            });
        });
        Box::new(move |lp| {
            let out = std::mem::take(&mut *results.borrow_mut());
            let idle = idle.borrow().clone();
            agent.destroy(lp);
            (summary(&out), idle)
        })
    });
    assert_eq!(results, vec![Ok(200); 3]);
    // 0 after the first (extra bytes in the read); 1 after the second, then 0 once the late
    // bytes arrived; 1 after the third.
    assert_eq!(idle, [0, 1, 0, 1]);
    assert_eq!(
        server.accepted(),
        3,
        "no connection carried a second request"
    );
}

#[test]
fn agent_destroy_closes_idle_connections_and_fails_waiting_requests() {
    let (server, closed) = keep_alive_server();
    let url = server.url();
    let (results, counts) = on_loop(move |lp| {
        let results: Results = Rc::default();
        let counts: Rc<RefCell<Vec<(usize, usize)>>> = Rc::default();
        // One connection at most: the second request waits, and destroy fails it.
        let one = Agent::new(AgentOptions {
            max_sockets_per_host: 1,
            ..AgentOptions::default()
        });
        send(lp, get(&url, &one), &results, |_lp| {});
        send(lp, get(&url, &one), &results, |_lp| {});
        counts
            .borrow_mut()
            .push((one.active_sockets(), one.queued_requests()));
        one.destroy(lp);
        counts
            .borrow_mut()
            .push((one.active_sockets(), one.queued_requests()));
        // A pooled connection, closed by destroy from the response callback.
        let agent = Agent::new(AgentOptions::default());
        let (a, c) = (agent.clone(), Rc::clone(&counts));
        send(lp, get(&url, &agent), &results, move |lp| {
            c.borrow_mut().push((a.idle_sockets(), a.active_sockets()));
            a.destroy(lp);
            c.borrow_mut().push((a.idle_sockets(), a.active_sockets()));
        });
        Box::new(move |_lp| {
            let out = std::mem::take(&mut *results.borrow_mut());
            let counts = counts.borrow().clone();
            (summary(&out), counts)
        })
    });
    // The waiting request fails (exactly once); both others get their response.
    let mut results = results;
    results.sort_by_key(Result::is_ok);
    assert_eq!(
        results,
        vec![Err(ClientError::Closed), Ok(200), Ok(200)],
        "{results:?}"
    );
    assert_eq!(counts, [(1, 1), (1, 0), (1, 0), (0, 0)]);
    // Both connections were closed: one by destroy, one after its response (a destroyed agent
    // keeps nothing).
    let mut seen = vec![
        closed.recv_timeout(DEADLINE).unwrap(),
        closed.recv_timeout(DEADLINE).unwrap(),
    ];
    seen.sort_unstable();
    assert_eq!(seen, [0, 1]);
    assert_eq!(server.accepted(), 2);
}

#[test]
fn agent_queue_past_its_bound_fails_with_queue_full_and_deadline_counts_queue_time() {
    let (results, queued) = on_loop(|lp| {
        let server = http::create_server(lp, move |lp, _req, res| {
            lp.set_timeout(300, move |_lp| res.end("done"));
        });
        let addr = server.listen(lp, "127.0.0.1:0", |_lp, _| {}).unwrap();
        let agent = Agent::new(AgentOptions {
            max_sockets_per_host: 1,
            max_queued_per_host: 2,
            ..AgentOptions::default()
        });
        let results: Results = Rc::default();
        let url = format!("http://{addr}/");
        // 0 runs (300 ms); 1 waits with a 100 ms deadline; 2 waits; 3 finds the queue full.
        let reqs = [
            get(&url, &agent),
            get(&url, &agent).deadline_ms(100),
            get(&url, &agent),
            get(&url, &agent),
        ];
        for req in reqs {
            let (r, s) = (Rc::clone(&results), server.clone());
            send(lp, req, &results, move |lp| {
                if r.borrow().len() == 4 {
                    s.close(lp, |_lp| {});
                }
            });
        }
        let queued = agent.queued_requests();
        Box::new(move |_lp| (summary(&results.borrow()), queued))
    });
    assert_eq!(queued, 2, "one running, two waiting, one refused");
    // In completion order: the refusal at once, the deadline while waiting, then the two.
    assert_eq!(
        results,
        vec![
            Err(ClientError::QueueFull),
            Err(ClientError::Timeout),
            Ok(200),
            Ok(200)
        ]
    );
}
