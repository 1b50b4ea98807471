//! The keep-alive agent (Node's `http.Agent({ keepAlive: true })`): per host:port, a free list
//! of idle connections, a cap on the connections in use and a FIFO queue of the requests
//! waiting for one.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::rc::Rc;

use oneloop_runtime::{Loop, TcpId};

use super::url::Origin;
use super::{connect_error, fail_later, start, ClientError, ClientResponse, Conn, Job};
use crate::http::parse::Version;

/// Settings of an [`Agent`], fixed when it is created. See docs/http.md "Keep-alive agent" for
/// Node 20's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AgentOptions {
    /// Most connections in use per host:port, connecting included (Node's `maxSockets`,
    /// Infinity there); further requests wait, first come first served. 0 counts as 1.
    /// Default 16.
    pub max_sockets_per_host: usize,
    /// Most idle connections kept per host:port (Node's `maxFreeSockets`, 256 there); a
    /// connection freed beyond that is closed. 0 turns reuse off. Default 16.
    pub max_free_sockets_per_host: usize,
    /// An idle connection is closed after this many milliseconds (Node's agent `timeout`); 0
    /// keeps it until the server closes it. Default 4,000: below the 5 s keep-alive timeout of
    /// Node's server and ours, so the client usually closes first and the race on a
    /// connection the server is closing (see [`Agent`]) is rare.
    pub free_socket_timeout_ms: u64,
    /// Most requests waiting for a connection per host:port; one more fails at once with
    /// [`ClientError::QueueFull`] (Node's queue has no bound). Default 1,024. A request's
    /// [`deadline_ms`](super::ClientRequest::deadline_ms) bounds how long it waits.
    pub max_queued_per_host: usize,
}

impl Default for AgentOptions {
    fn default() -> AgentOptions {
        AgentOptions {
            max_sockets_per_host: 16,
            max_free_sockets_per_host: 16,
            free_socket_timeout_ms: 4_000,
            max_queued_per_host: 1_024,
        }
    }
}

/// A pool of kept-alive connections shared by the requests sent with
/// [`ClientRequest::agent`](super::ClientRequest::agent) (Node's
/// `new http.Agent({ keepAlive: true })`). A cheap handle: clones share the pool. The user owns
/// it; there is no global agent.
///
/// ```
/// use oneloop::http::{self, Agent, AgentOptions, ClientRequest};
/// use oneloop::runtime::Loop;
///
/// let mut lp = Loop::new()?;
/// let server = http::create_server(&mut lp, |_lp, _req, res| res.end("hi"));
/// let addr = server.listen(&mut lp, "127.0.0.1:0", |_lp, _addr| {})?;
/// let agent = Agent::new(AgentOptions::default());
/// let url = format!("http://{addr}/");
/// let (a, u) = (agent.clone(), url.clone());
/// http::request(&mut lp, ClientRequest::new("GET", &url)?.agent(&agent), move |lp, first| {
///     assert_eq!(first.expect("a response").status(), 200);
///     assert_eq!(a.idle_sockets(), 1); // freed before this callback runs
///     let again = ClientRequest::new("GET", &u).expect("a valid URL").agent(&a);
///     let srv = server.clone();
///     http::request(lp, again, move |lp, second| {
///         assert!(second.is_ok());
///         assert_eq!(srv.connections(), 1); // the same connection carried both
///         srv.close(lp, |_lp| {});
///     })
///     .expect("a valid request");
/// })?;
/// lp.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Guarantees
/// - A request takes the host's most recently freed idle connection (LIFO), else a new one if
///   fewer than `max_sockets_per_host` are in use, else waits in a FIFO queue for the next
///   connection freed or closed. Time spent waiting does not count toward `timeout_ms`; it
///   counts toward [`deadline_ms`](super::ClientRequest::deadline_ms), which fails a waiting
///   request with [`ClientError::Timeout`] and takes it out of the queue.
/// - At most `max_queued_per_host` requests wait per host; one more fails at once with
///   [`ClientError::QueueFull`].
/// - After a response the connection is kept only if the response is HTTP/1.1 without
///   `Connection: close` (or HTTP/1.0 with `Connection: keep-alive`), was not read until
///   close, was followed by no byte, the request was fully written and did not fail, and the
///   host has fewer than `max_free_sockets_per_host` idle connections. Otherwise it is closed.
/// - An idle connection does not keep the loop alive (it is unref'd, as Node's free sockets
///   are). Any byte, EOF, error or `free_socket_timeout_ms` of silence on it closes it.
/// - A request is resent at most once: when it went out on a reused connection that failed
///   before any response byte (the server closed it while idle), is idempotent (GET, HEAD,
///   OPTIONS, PUT, DELETE, TRACE), and then on a new connection. Other requests get
///   [`ClientError::Closed`]. Node resends nothing and reports `ECONNRESET` ("socket hang up").
///
/// # Pitfalls
/// - [`Agent::destroy`] closes the idle connections and fails the waiting requests with
///   [`ClientError::Closed`]; requests in flight finish, and their connections are closed
///   afterwards. The agent stays usable but keeps no connection from then on. Node's
///   `destroy` also destroys the connections in use.
#[derive(Clone)]
pub struct Agent {
    shared: Rc<RefCell<Pool>>,
}

/// The agent's state. Never borrowed across a call into the loop or a user callback.
struct Pool {
    options: AgentOptions,
    hosts: HashMap<Origin, Host>,
    /// Set by [`Agent::destroy`]: no connection is kept from then on.
    destroyed: bool,
    /// Numbers the jobs that wait with a deadline, so its timer finds its job.
    next_job: u64,
}

/// One host:port. Removed from the map once it has nothing in it.
///
/// Invariant: a request waits only while no idle connection is usable for it and `busy` is at
/// the cap, or it needs a new connection and `busy` is at the cap.
#[derive(Default)]
struct Host {
    /// Idle connections, the most recently freed last.
    free: Vec<TcpId>,
    /// Connections carrying a request, connecting included.
    busy: usize,
    /// Requests waiting for a connection, in arrival order, each with its number.
    queue: VecDeque<(u64, Job)>,
}

impl Host {
    fn is_empty(&self) -> bool {
        self.free.is_empty() && self.busy == 0 && self.queue.is_empty()
    }
}

impl Agent {
    /// An agent with no connections yet.
    pub fn new(options: AgentOptions) -> Agent {
        Agent {
            shared: Rc::new(RefCell::new(Pool {
                options,
                hosts: HashMap::new(),
                destroyed: false,
                next_job: 0,
            })),
        }
    }

    /// The settings it was created with.
    pub fn options(&self) -> AgentOptions {
        self.shared.borrow().options
    }

    /// Idle connections kept for reuse, all hosts together.
    pub fn idle_sockets(&self) -> usize {
        self.shared
            .borrow()
            .hosts
            .values()
            .map(|h| h.free.len())
            .sum()
    }

    /// Connections carrying a request (connecting included), all hosts together.
    pub fn active_sockets(&self) -> usize {
        self.shared.borrow().hosts.values().map(|h| h.busy).sum()
    }

    /// Requests waiting for a connection, all hosts together.
    pub fn queued_requests(&self) -> usize {
        self.shared
            .borrow()
            .hosts
            .values()
            .map(|h| h.queue.len())
            .sum()
    }

    /// Closes the idle connections now and fails every waiting request with
    /// [`ClientError::Closed`] (from a later loop callback). Requests in flight finish; their
    /// connections are then closed, as is every later one: the agent keeps nothing any more.
    pub fn destroy(&self, lp: &mut Loop) {
        let (idle, waiting) = {
            let mut pool = self.shared.borrow_mut();
            pool.destroyed = true;
            let (mut idle, mut waiting) = (Vec::new(), Vec::new());
            for host in pool.hosts.values_mut() {
                idle.append(&mut host.free);
                waiting.extend(host.queue.drain(..).map(|(_, job)| job));
            }
            pool.hosts.retain(|_, h| !h.is_empty());
            (idle, waiting)
        };
        for id in idle {
            let _ = lp.tcp_destroy(id);
        }
        for mut job in waiting {
            if let Some(timer) = job.queue_timer.take() {
                let _ = lp.clear_timeout(timer);
            }
            fail_later(lp, job.on_response, ClientError::Closed);
        }
    }

    /// Queues `job` behind the host's waiting requests and starts what can start. If it has
    /// to wait and `max_queued_per_host` are already waiting, it fails with
    /// [`ClientError::QueueFull`].
    pub(super) fn enqueue(&self, lp: &mut Loop, job: Job) {
        let origin = job.spec.origin.clone();
        let n = self.number(lp, job, |host, entry| host.queue.push_back(entry));
        self.pump(lp, &origin);
        let max = self.options().max_queued_per_host;
        let refused = self.host_mut(&origin, |host| {
            let over = host.queue.len() > max && host.queue.back().is_some_and(|e| e.0 == n);
            over.then(|| host.queue.pop_back()).flatten()
        });
        if let Some((_, mut job)) = refused {
            if let Some(timer) = job.queue_timer.take() {
                let _ = lp.clear_timeout(timer);
            }
            fail_later(lp, job.on_response, ClientError::QueueFull);
            self.forget_if_empty(&origin);
        }
    }

    /// Gives `job` a number, arms its deadline for the time it waits (if it has one) and
    /// puts it in its host's queue with `put`; returns the number.
    fn number(&self, lp: &mut Loop, mut job: Job, put: impl FnOnce(&mut Host, (u64, Job))) -> u64 {
        let origin = job.spec.origin.clone();
        let n = {
            let mut pool = self.shared.borrow_mut();
            pool.next_job += 1;
            pool.next_job
        };
        if let Some(deadline) = job.spec.deadline {
            let (a, key) = (self.clone(), origin.clone());
            let left = deadline.saturating_sub(lp.now());
            job.queue_timer = Some(lp.set_timeout(left, move |lp| a.expire(lp, &key, n)));
        }
        self.host_mut(&origin, |host| put(host, (n, job)));
        n
    }

    /// The deadline of job `n` passed while it waited: it fails with
    /// [`ClientError::Timeout`] and leaves the queue.
    fn expire(&self, lp: &mut Loop, origin: &Origin, n: u64) {
        let job = self.host_mut(origin, |host| {
            let at = host.queue.iter().position(|e| e.0 == n)?;
            host.queue.remove(at).map(|(_, job)| job)
        });
        self.forget_if_empty(origin);
        if let Some(job) = job {
            (job.on_response)(lp, Err(ClientError::Timeout));
        }
    }

    /// The connection of `job` was stale and is closed: its place goes to `job`'s resend, ahead
    /// of the waiting requests (it was first).
    pub(super) fn resend(&self, lp: &mut Loop, job: Job) {
        let origin = job.spec.origin.clone();
        self.host_mut(&origin, |host| host.busy = host.busy.saturating_sub(1));
        self.number(lp, job, |host, entry| host.queue.push_front(entry));
        self.pump(lp, &origin);
    }

    /// A request of `origin` failed before it had a connection (its host did not resolve, or
    /// no socket could be made): its place goes to the next waiting request.
    pub(super) fn gave_up(&self, lp: &mut Loop, origin: &Origin) {
        self.host_mut(origin, |host| host.busy = host.busy.saturating_sub(1));
        self.pump(lp, origin);
    }

    /// An exchange on `id` ended: keep the connection idle if `keep` and there is room, else
    /// close it; then start what waits for `origin`.
    pub(super) fn release(&self, lp: &mut Loop, id: TcpId, origin: &Origin, keep: bool) {
        let (max_free, destroyed) = {
            let pool = self.shared.borrow();
            (pool.options.max_free_sockets_per_host, pool.destroyed)
        };
        let park = self.host_mut(origin, |host| {
            host.busy = host.busy.saturating_sub(1);
            keep && !destroyed && host.free.len() < max_free
        });
        if park {
            self.park(lp, id, origin);
        } else {
            let _ = lp.tcp_destroy(id);
        }
        self.pump(lp, origin);
    }

    /// Starts the host's waiting requests, in order, while connections are available.
    fn pump(&self, lp: &mut Loop, origin: &Origin) {
        let mut doomed = Vec::new();
        loop {
            let next = {
                let mut pool = self.shared.borrow_mut();
                let max = pool.options.max_sockets_per_host.max(1);
                let Some(host) = pool.hosts.get_mut(origin) else {
                    break;
                };
                let Some((n, mut job)) = host.queue.pop_front() else {
                    break;
                };
                let reuse = match job.fresh_only {
                    true => None,
                    false => take_free(lp, &mut host.free, &mut doomed),
                };
                let conn = match reuse {
                    Some(id) => Conn::Reused(id),
                    None if host.busy < max => Conn::Fresh,
                    None => {
                        host.queue.push_front((n, job));
                        break;
                    }
                };
                host.busy += 1;
                let timer = job.queue_timer.take();
                (job, conn, timer)
            };
            let (job, conn, timer) = next;
            if let Some(timer) = timer {
                let _ = lp.clear_timeout(timer); // from here on `start` applies the deadline
            }
            if let Err((on_response, err)) = start(lp, job, conn, Some(self)) {
                self.host_mut(origin, |host| host.busy = host.busy.saturating_sub(1));
                fail_later(lp, on_response, connect_error(&err));
            }
        }
        for id in doomed {
            let _ = lp.tcp_destroy(id);
        }
        self.forget_if_empty(origin);
    }

    /// Makes `id` an idle connection of `origin`: unref'd, with the idle timeout, and callbacks
    /// that close it on any event (an idle connection expects nothing).
    fn park(&self, lp: &mut Loop, id: TcpId, key: &Origin) {
        let (a, origin) = (self.clone(), key.clone());
        let _ = lp.tcp_on_data(id, move |lp, id, data| {
            log::debug!(
                "http client: {} unsolicited bytes on an idle connection",
                data.len()
            );
            a.close_idle(lp, &origin, id);
        });
        let (a, origin) = (self.clone(), key.clone());
        let _ = lp.tcp_on_end(id, move |lp, id| a.close_idle(lp, &origin, id));
        let (a, origin) = (self.clone(), key.clone());
        let _ = lp.tcp_on_timeout(id, move |lp, id| a.close_idle(lp, &origin, id));
        let _ = lp.tcp_on_error(id, |_lp, _id, err| {
            log::debug!("http client: idle connection failed: {err}");
        });
        let (a, origin) = (self.clone(), key.clone());
        let _ = lp.tcp_on_close(id, move |_lp, id, _had_error| a.remove_idle(&origin, id));
        let timeout_ms = self.options().free_socket_timeout_ms;
        let _ = lp.tcp_set_timeout(id, timeout_ms);
        let _ = lp.unref(id);
        self.host_mut(key, |host| host.free.push(id));
    }

    /// An idle connection saw data, EOF or its timeout: drop it from the free list and close it.
    fn close_idle(&self, lp: &mut Loop, origin: &Origin, id: TcpId) {
        self.remove_idle(origin, id);
        let _ = lp.tcp_destroy(id);
    }

    /// Drops `id` from the free list of `origin`, if it is there.
    fn remove_idle(&self, origin: &Origin, id: TcpId) {
        self.host_mut(origin, |host| host.free.retain(|&f| f != id));
        self.forget_if_empty(origin);
    }

    /// Runs `f` on the entry for `origin`, created if missing.
    fn host_mut<T>(&self, origin: &Origin, f: impl FnOnce(&mut Host) -> T) -> T {
        let mut pool = self.shared.borrow_mut();
        if !pool.hosts.contains_key(origin) {
            pool.hosts.insert(origin.clone(), Host::default());
        }
        f(pool.hosts.get_mut(origin).expect("inserted above"))
    }

    fn forget_if_empty(&self, origin: &Origin) {
        let mut pool = self.shared.borrow_mut();
        if pool.hosts.get(origin).is_some_and(Host::is_empty) {
            pool.hosts.remove(origin);
        }
    }
}

impl fmt::Debug for Agent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Agent");
        if let Ok(pool) = self.shared.try_borrow() {
            d.field("options", &pool.options)
                .field("hosts", &pool.hosts.len())
                .field("destroyed", &pool.destroyed);
        }
        d.finish_non_exhaustive()
    }
}

/// Pops the most recently freed connection that can still carry a request. Ones already
/// closed are dropped; ones whose peer has ended go to `doomed`, to be closed.
fn take_free(lp: &Loop, free: &mut Vec<TcpId>, doomed: &mut Vec<TcpId>) -> Option<TcpId> {
    while let Some(id) = free.pop() {
        if !lp.tcp_is_open(id) {
            continue;
        }
        if lp.tcp_read_ended(id) {
            doomed.push(id);
            continue;
        }
        return Some(id);
    }
    None
}

/// Whether the server lets the connection carry another request (RFC 9112 §9.3): HTTP/1.1
/// unless a `Connection` field has `close`; HTTP/1.0 only if one has `keep-alive` (and none
/// `close`).
pub(super) fn keeps_alive(res: &ClientResponse) -> bool {
    let (mut close, mut keep_alive) = (false, false);
    for (name, value) in res.headers() {
        if name.eq_ignore_ascii_case("connection") {
            for option in value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                close |= option.eq_ignore_ascii_case(b"close");
                keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    match res.version() {
        Version::Http11 => !close,
        Version::Http10 => keep_alive && !close,
    }
}

#[cfg(test)]
mod tests {
    use super::super::reader::ResponseReader;
    use super::*;

    #[test]
    fn keeps_http11_unless_close_and_http10_only_with_keep_alive() {
        let table: &[(&[u8], bool)] = &[
            (b"HTTP/1.1 200 OK\r\n", true),
            (b"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\n", true),
            (b"HTTP/1.1 200 OK\r\nConnection: close\r\n", false),
            (b"HTTP/1.1 200 OK\r\nconnection: Upgrade, CLOSE\r\n", false),
            (
                b"HTTP/1.1 200 OK\r\nConnection: x\r\nConnection: close\r\n",
                false,
            ),
            (b"HTTP/1.0 200 OK\r\n", false),
            (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n", true),
            (
                b"HTTP/1.0 200 OK\r\nConnection: keep-alive, close\r\n",
                false,
            ),
        ];
        for &(head, expected) in table {
            let mut raw = head.to_vec();
            raw.extend_from_slice(b"Content-Length: 0\r\n\r\n");
            let mut reader = ResponseReader::new(false, 1024, 1024);
            let res = reader.feed(&raw).unwrap().expect("complete");
            assert_eq!(
                keeps_alive(&res),
                expected,
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn defaults_are_sixteen_sockets_and_four_seconds() {
        let o = AgentOptions::default();
        assert_eq!(
            (
                o.max_sockets_per_host,
                o.max_free_sockets_per_host,
                o.free_socket_timeout_ms
            ),
            (16, 16, 4_000)
        );
        let agent = Agent::new(o);
        assert_eq!(
            (agent.idle_sockets(), agent.active_sockets()),
            (0, 0),
            "{agent:?}"
        );
    }
}
