//! The run itself: connections on one oneloop `Loop`, timers for the schedule, counting.
//!
//! Every socket of the run belongs to one slot of [`Engine::conns`]; its callbacks capture the
//! slot number and the shared engine. A socket always ends in `on_close`, and that is the one
//! place a load connection is reopened, so a slot never has two sockets.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::rc::Rc;
use std::time::Duration;

use hdrhistogram::Histogram;
use oneloop_runtime::{Loop, SocketOptions, TcpId, TimerId};

use super::config::LoadConfig;
use super::report::{ErrorCounts, HandshakeCounts, IdleReport, Report, SlowlorisReport};
use super::response::{Completed, ResponseParser};

/// A snapshot handed to the progress callback once a second.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Time since the run started (warm-up included).
    pub elapsed: Duration,
    /// Still warming up: nothing is counted yet.
    pub warming_up: bool,
    /// Responses counted so far.
    pub requests: u64,
    /// Responses per second over the last interval.
    pub recent_rate: f64,
    /// Errors counted so far.
    pub errors: u64,
}

/// The progress callback.
pub type ProgressFn = Box<dyn FnMut(&Progress)>;

/// Latencies above this are recorded as this (1 hour, in ns).
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;
/// Wait before reopening a connection whose connect failed, so a dead server is not hammered.
const RECONNECT_DELAY_MS: u64 = 10;
/// The slowloris drip: an endless header section, one byte at a time.
const DRIP: &[u8] = b"X-Slowloris: a\r\n";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Load,
    Idle,
    Slow,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Warmup,
    Measure,
    Done,
}

/// Which error a failing socket is charged with.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fault {
    Connect,
    Read,
    Write,
    Timeout,
    Parse,
}

struct Conn {
    kind: Kind,
    id: Option<TcpId>,
    connected: bool,
    /// When the current connect began, or when it completed (ns).
    since: u64,
    /// Requests in flight: (intended send time, actual send time), in ns.
    inflight: VecDeque<(u64, u64)>,
    parser: ResponseParser,
    /// Unconsumed bytes (a partial response head or line).
    pending: Vec<u8>,
    /// The server announced it will close: send nothing more on this socket.
    closing: bool,
    /// The error this socket was already charged with; nothing more is counted at close.
    fault: Option<Fault>,
    /// Open loop: the intended send time of this connection's next request (ns). Idle
    /// connections with `--idle-every`: when to repeat the request (`u64::MAX`: not yet).
    next_due: u64,
    /// Idle: the first request was answered.
    answered: bool,
    /// Slowloris: bytes of `DRIP` sent so far.
    dripped: usize,
}

struct Stats {
    latency: Histogram<u64>,
    requests: u64,
    bytes: u64,
    statuses: Vec<u64>,
    non_2xx: u64,
    errors: ErrorCounts,
    connects: u64,
    /// TLS handshakes completed on load connections: (full, resumed).
    handshakes: (u64, u64),
}

impl Stats {
    fn new() -> Stats {
        Stats {
            latency: Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("valid histogram bounds"),
            requests: 0,
            bytes: 0,
            statuses: vec![0; 1000],
            non_2xx: 0,
            errors: ErrorCounts::default(),
            connects: 0,
            handshakes: (0, 0),
        }
    }

    fn reset(&mut self) {
        self.latency.reset();
        self.requests = 0;
        self.bytes = 0;
        self.statuses.iter_mut().for_each(|n| *n = 0);
        self.non_2xx = 0;
        self.errors = ErrorCounts::default();
        self.connects = 0;
        self.handshakes = (0, 0);
    }

    fn charge(&mut self, fault: Fault, requests_lost: u64) {
        let e = &mut self.errors;
        match fault {
            Fault::Connect => e.connect += 1,
            Fault::Read => e.read += 1,
            Fault::Write => e.write += 1,
            Fault::Timeout => e.timeout += requests_lost.max(1),
            Fault::Parse => e.parse += 1,
        }
    }
}

struct Engine {
    cfg: LoadConfig,
    /// `pipeline` copies of the request, back to back; sending k requests writes a prefix.
    batch: Vec<u8>,
    request_len: usize,
    conns: Vec<Conn>,
    phase: Phase,
    started: u64,
    measure_start: u64,
    measure_end: u64,
    /// Open loop: ns between two requests of one connection.
    interval_ns: u64,
    /// Requests in flight on all load connections.
    inflight_total: u64,
    stats: Stats,
    idle: IdleReport,
    slow: SlowlorisReport,
    timers: Vec<TimerId>,
    progress: Option<ProgressFn>,
    last_progress: (u64, u64),
}

type Shared = Rc<RefCell<Engine>>;

/// Runs `config` on a fresh loop on this thread and returns what was measured.
///
/// `progress`, when given, is called once a second.
///
/// # Errors
/// An invalid configuration, or the loop failing to start or poll.
pub fn run(config: LoadConfig, progress: Option<ProgressFn>) -> io::Result<Report> {
    config.validate()?;
    let mut lp = Loop::new()?;
    let engine = Rc::new(RefCell::new(Engine::new(config, progress)));
    start(&engine, &mut lp);
    lp.run()?;
    let report = engine.borrow_mut().report(&lp);
    Ok(report)
}

impl Engine {
    fn new(cfg: LoadConfig, progress: Option<ProgressFn>) -> Engine {
        let request = cfg.request_bytes();
        let head_request = cfg.method.eq_ignore_ascii_case("HEAD");
        let batch = request.repeat(cfg.pipeline);
        let conn = |kind| Conn {
            kind,
            id: None,
            connected: false,
            since: 0,
            inflight: VecDeque::new(),
            parser: ResponseParser::new(head_request),
            pending: Vec::new(),
            closing: false,
            fault: None,
            next_due: 0,
            answered: false,
            dripped: 0,
        };
        let mut conns = Vec::with_capacity(cfg.connections + cfg.idle + cfg.slowloris);
        conns.extend((0..cfg.connections).map(|_| conn(Kind::Load)));
        conns.extend((0..cfg.idle).map(|_| conn(Kind::Idle)));
        conns.extend((0..cfg.slowloris).map(|_| conn(Kind::Slow)));
        let interval_ns = match cfg.rate {
            Some(rate) => (cfg.connections as f64 * 1e9 / rate).max(1.0) as u64,
            None => 0,
        };
        Engine {
            idle: IdleReport {
                connections: cfg.idle,
                ..IdleReport::default()
            },
            slow: SlowlorisReport {
                connections: cfg.slowloris,
                ..SlowlorisReport::default()
            },
            request_len: request.len(),
            batch,
            conns,
            phase: Phase::Warmup,
            started: 0,
            measure_start: 0,
            measure_end: 0,
            interval_ns,
            inflight_total: 0,
            stats: Stats::new(),
            timers: Vec::new(),
            progress,
            last_progress: (0, 0),
            cfg,
        }
    }

    fn measuring(&self) -> bool {
        self.phase == Phase::Measure
    }

    /// How many more requests may be issued under `--requests`.
    fn budget(&self) -> u64 {
        match (self.phase, self.cfg.requests) {
            (Phase::Done, _) => 0,
            (Phase::Measure, Some(n)) => {
                n.saturating_sub(self.stats.requests + self.inflight_total)
            }
            _ => u64::MAX,
        }
    }

    fn begin_measure(&mut self, lp: &Loop) {
        if self.phase != Phase::Warmup {
            return;
        }
        self.stats.reset();
        self.phase = Phase::Measure;
        self.measure_start = lp.hrtime();
    }

    /// Ends the run: closes every socket, clears the timers, stops the loop.
    fn finish(&mut self, lp: &mut Loop) {
        if self.phase == Phase::Done {
            return;
        }
        if self.phase == Phase::Warmup {
            self.begin_measure(lp);
        }
        self.phase = Phase::Done;
        self.measure_end = lp.hrtime();
        for t in self.timers.drain(..) {
            let _ = lp.clear_timeout(t);
        }
        for c in &mut self.conns {
            if let Some(id) = c.id.take() {
                let _ = lp.tcp_destroy(id);
            }
        }
        lp.stop();
    }

    fn report(&mut self, lp: &Loop) -> Report {
        if self.phase != Phase::Done {
            self.measure_end = lp.hrtime();
        }
        let statuses: BTreeMap<u16, u64> = self
            .stats
            .statuses
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(code, n)| (code as u16, *n))
            .collect();
        self.slow
            .held_secs
            .sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        Report {
            url: self.cfg.url.clone(),
            connections: self.cfg.connections,
            pipeline: self.cfg.pipeline,
            target_rate: self.cfg.rate,
            elapsed: Duration::from_nanos(self.measure_end.saturating_sub(self.measure_start)),
            requests: self.stats.requests,
            bytes: self.stats.bytes,
            latency: self.stats.latency.clone(),
            statuses,
            non_2xx: self.stats.non_2xx,
            errors: self.stats.errors,
            connects: self.stats.connects,
            handshakes: self.cfg.tls.is_some().then_some(HandshakeCounts {
                full: self.stats.handshakes.0,
                resumed: self.stats.handshakes.1,
            }),
            idle: (self.cfg.idle > 0).then_some(self.idle),
            slowloris: (self.cfg.slowloris > 0).then(|| self.slow.clone()),
        }
    }

    // -- socket events ---------------------------------------------------------------------

    fn on_connect(&mut self, lp: &mut Loop, slot: usize) {
        let now = lp.hrtime();
        let c = &mut self.conns[slot];
        c.connected = true;
        c.since = now;
        let Some(id) = c.id else { return };
        match c.kind {
            Kind::Load => {
                self.stats.connects += 1;
                // A TLS socket connects once its handshake has completed.
                match lp.tls_info(id).map(|info| info.resumed) {
                    Some(true) => self.stats.handshakes.1 += 1,
                    Some(false) => self.stats.handshakes.0 += 1,
                    None => {}
                }
                self.pump(lp, slot, now);
            }
            Kind::Idle => {
                self.idle.connected += 1;
                c.next_due = u64::MAX;
                c.inflight.push_back((now, now));
                let _ = lp.tcp_write(id, &self.batch[..self.request_len]);
            }
            Kind::Slow => {
                self.slow.connected += 1;
                // The request line and Host at once; the rest of the head never comes.
                let line = format!(
                    "{} {} HTTP/1.1\r\nHost: {}\r\n",
                    self.cfg.method, self.cfg.path, self.cfg.authority
                );
                let _ = lp.tcp_write(id, line.as_bytes());
            }
        }
    }

    fn on_data(&mut self, lp: &mut Loop, slot: usize, data: &[u8]) {
        let now = lp.hrtime();
        match self.conns[slot].kind {
            Kind::Load => {}
            Kind::Idle => return self.on_idle_data(lp, slot, data),
            Kind::Slow => return self.on_slow_data(slot, data),
        }
        let measuring = self.measuring();
        if measuring {
            self.stats.bytes += data.len() as u64;
        }
        let c = &mut self.conns[slot];
        let mut pending = std::mem::take(&mut c.pending);
        let from_pending = !pending.is_empty();
        if from_pending {
            pending.extend_from_slice(data);
        }
        let input: &[u8] = if from_pending { &pending } else { data };
        let mut off = 0;
        let mut failed = false;
        loop {
            match c.parser.parse(&input[off..]) {
                Ok((n, Some(done))) => {
                    off += n;
                    if !record(
                        &mut self.stats,
                        c,
                        &mut self.inflight_total,
                        done,
                        now,
                        measuring,
                    ) {
                        failed = true;
                        break;
                    }
                }
                Ok((n, None)) => {
                    off += n;
                    break;
                }
                Err(e) => {
                    log::debug!("oneloop-load: response error {e:?}");
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            self.fail(lp, slot, Fault::Parse);
            return;
        }
        if from_pending {
            pending.drain(..off);
        } else {
            pending.clear();
            pending.extend_from_slice(&data[off..]);
        }
        let c = &mut self.conns[slot];
        c.pending = pending;
        if let Some(n) = self.cfg.requests {
            if self.measuring() && self.stats.requests >= n {
                self.finish(lp);
                return;
            }
        }
        let c = &mut self.conns[slot];
        if self.cfg.new_connection_per_request && c.inflight.is_empty() {
            // One request per connection: close it; `on_close` opens the next one.
            if let Some(id) = c.id {
                let _ = lp.tcp_destroy(id);
            }
            return;
        }
        if c.closing {
            if c.inflight.is_empty() {
                // The server said it closes; don't wait for its FIN to reopen.
                if let Some(id) = c.id {
                    let _ = lp.tcp_destroy(id);
                }
            }
            return;
        }
        self.pump(lp, slot, now);
    }

    fn on_idle_data(&mut self, lp: &mut Loop, slot: usize, data: &[u8]) {
        let now = lp.hrtime();
        let every = self.cfg.idle_every;
        let c = &mut self.conns[slot];
        let mut pending = std::mem::take(&mut c.pending);
        pending.extend_from_slice(data);
        match c.parser.parse(&pending) {
            Ok((n, Some(done))) => {
                pending.drain(..n);
                if c.inflight.pop_front().is_some() {
                    if c.answered {
                        self.idle.repeats += 1;
                    } else {
                        c.answered = true;
                        self.idle.answered += 1;
                    }
                }
                c.closing |= done.close;
                if let Some(every) = every {
                    c.next_due = now + every.as_nanos() as u64;
                }
            }
            Ok((n, None)) => {
                pending.drain(..n);
            }
            Err(_) => {
                if let Some(id) = c.id {
                    let _ = lp.tcp_destroy(id);
                }
            }
        }
        c.pending = pending;
    }

    fn on_slow_data(&mut self, slot: usize, data: &[u8]) {
        let c = &mut self.conns[slot];
        let fresh = c.pending.is_empty();
        if fresh && data.len() >= 12 && data.starts_with(b"HTTP/1.") {
            if let Ok(code) = std::str::from_utf8(&data[9..12])
                .unwrap_or("")
                .parse::<u16>()
            {
                *self.slow.statuses.entry(code).or_default() += 1;
            }
        }
        c.pending.push(1); // marks "answered": later bytes are not a new status line
    }

    /// The peer sent FIN: a close-delimited body is complete.
    fn on_end(&mut self, lp: &mut Loop, slot: usize) {
        let now = lp.hrtime();
        let measuring = self.measuring();
        let c = &mut self.conns[slot];
        if c.kind != Kind::Load {
            return;
        }
        if let Some(done) = c.parser.eof() {
            record(
                &mut self.stats,
                c,
                &mut self.inflight_total,
                done,
                now,
                measuring,
            );
        }
    }

    fn on_error(&mut self, slot: usize, err: &io::Error) {
        let c = &mut self.conns[slot];
        if c.fault.is_some() {
            return;
        }
        let fault = if !c.connected {
            Fault::Connect
        } else if matches!(
            err.kind(),
            io::ErrorKind::BrokenPipe | io::ErrorKind::WriteZero
        ) {
            Fault::Write
        } else {
            Fault::Read
        };
        log::debug!("oneloop-load: {fault:?} error on connection {slot}: {err}");
        c.fault = Some(fault);
        match (c.kind, fault) {
            (Kind::Load, _) if self.phase != Phase::Done => {
                self.stats.charge(fault, c.inflight.len() as u64);
            }
            (Kind::Idle, Fault::Connect) => self.idle.connect_errors += 1,
            (Kind::Slow, Fault::Connect) => self.slow.connect_errors += 1,
            _ => {}
        }
    }

    /// The socket is gone. Returns whether the slot should be reconnected, and after how long.
    fn on_close(&mut self, lp: &mut Loop, slot: usize) -> Option<u64> {
        let now = lp.hrtime();
        let running = self.phase != Phase::Done;
        let c = &mut self.conns[slot];
        let lost = c.inflight.len() as u64;
        if c.kind == Kind::Load {
            self.inflight_total -= lost;
        }
        let was_connected = c.connected;
        let fault = c.fault.take();
        c.id = None;
        c.connected = false;
        c.closing = false;
        c.inflight.clear();
        c.pending.clear();
        c.parser = ResponseParser::new(self.cfg.method.eq_ignore_ascii_case("HEAD"));
        if !running {
            return None;
        }
        match c.kind {
            Kind::Load => {
                if fault.is_none() && lost > 0 {
                    self.stats.errors.closed += lost;
                }
                Some(if fault == Some(Fault::Connect) {
                    RECONNECT_DELAY_MS
                } else {
                    0
                })
            }
            Kind::Idle => {
                if was_connected {
                    self.idle.closed_by_server += 1;
                }
                None
            }
            Kind::Slow => {
                if was_connected {
                    self.slow.closed_by_server += 1;
                    self.slow
                        .held_secs
                        .push(now.saturating_sub(c.since) as f64 / 1e9);
                }
                None
            }
        }
    }

    // -- sending -----------------------------------------------------------------------------

    /// Sends what the schedule allows on a load connection: in closed loop, enough to have
    /// `pipeline` requests in flight; in open loop, every request now due, up to `pipeline` in
    /// flight, each stamped with its intended send time.
    fn pump(&mut self, lp: &mut Loop, slot: usize, now: u64) {
        let budget = self.budget();
        let c = &mut self.conns[slot];
        let Some(id) = c.id else { return };
        if !c.connected || c.closing || c.fault.is_some() {
            return;
        }
        let room = (self.cfg.pipeline - c.inflight.len().min(self.cfg.pipeline)) as u64;
        let mut k = room.min(budget) as usize;
        if self.interval_ns == 0 {
            for _ in 0..k {
                c.inflight.push_back((now, now));
            }
        } else {
            let mut sent = 0;
            while sent < k && c.next_due <= now {
                c.inflight.push_back((c.next_due, now));
                c.next_due += self.interval_ns;
                sent += 1;
            }
            k = sent;
        }
        if k == 0 {
            return;
        }
        self.inflight_total += k as u64;
        let _ = lp.tcp_write(id, &self.batch[..k * self.request_len]);
    }

    /// Charges `fault` and closes the socket (it is reopened from `on_close`).
    fn fail(&mut self, lp: &mut Loop, slot: usize, fault: Fault) {
        let c = &mut self.conns[slot];
        if c.fault.is_none() {
            c.fault = Some(fault);
            if self.phase != Phase::Done && c.kind == Kind::Load {
                self.stats.charge(fault, c.inflight.len() as u64);
            }
        }
        if let Some(id) = c.id {
            let _ = lp.tcp_destroy(id);
        }
    }

    // -- timers ------------------------------------------------------------------------------

    /// Open loop: sends whatever is due on every connection.
    fn tick(&mut self, lp: &mut Loop) {
        let now = lp.hrtime();
        for slot in 0..self.cfg.connections {
            if self.conns[slot].next_due <= now {
                self.pump(lp, slot, now);
            }
        }
    }

    /// Times out requests and connects that waited longer than the timeout.
    fn check_timeouts(&mut self, lp: &mut Loop) {
        let now = lp.hrtime();
        let limit = self.cfg.timeout.as_nanos() as u64;
        for slot in 0..self.conns.len() {
            let c = &self.conns[slot];
            if c.id.is_none() || c.fault.is_some() {
                continue;
            }
            let late = |t: u64| now.saturating_sub(t) > limit;
            if !c.connected && late(c.since) {
                match c.kind {
                    Kind::Load => self.fail(lp, slot, Fault::Connect),
                    Kind::Idle => {
                        self.idle.connect_errors += 1;
                        self.fail(lp, slot, Fault::Connect);
                    }
                    Kind::Slow => {
                        self.slow.connect_errors += 1;
                        self.fail(lp, slot, Fault::Connect);
                    }
                }
            } else if c.kind == Kind::Load && c.inflight.front().is_some_and(|&(_, s)| late(s)) {
                self.fail(lp, slot, Fault::Timeout);
            }
        }
    }

    /// `--idle-every`: idle connections whose repeat is due send their request again.
    fn repeat_idle(&mut self, lp: &mut Loop) {
        let now = lp.hrtime();
        let len = self.request_len;
        for c in self.conns.iter_mut().filter(|c| c.kind == Kind::Idle) {
            if let (Some(id), true) = (c.id, c.connected) {
                if c.inflight.is_empty() && !c.closing && c.next_due <= now {
                    c.next_due = u64::MAX;
                    c.inflight.push_back((now, now));
                    let _ = lp.tcp_write(id, &self.batch[..len]);
                }
            }
        }
    }

    /// Slowloris: one more byte of the endless head on every dripping connection.
    fn drip(&mut self, lp: &mut Loop) {
        for c in self.conns.iter_mut().filter(|c| c.kind == Kind::Slow) {
            if let (Some(id), true) = (c.id, c.connected) {
                let i = c.dripped % DRIP.len();
                c.dripped += 1;
                let _ = lp.tcp_write(id, &DRIP[i..=i]);
            }
        }
    }

    fn report_progress(&mut self, lp: &Loop) {
        let now = lp.hrtime();
        let (t0, n0) = self.last_progress;
        let n = self.stats.requests;
        let dt = now.saturating_sub(t0) as f64 / 1e9;
        let recent_rate = if dt > 0.0 && n >= n0 {
            (n - n0) as f64 / dt
        } else {
            0.0
        };
        self.last_progress = (now, n);
        let p = Progress {
            elapsed: Duration::from_nanos(now.saturating_sub(self.started)),
            warming_up: self.phase == Phase::Warmup,
            requests: n,
            recent_rate,
            errors: self.stats.errors.total(),
        };
        if let Some(cb) = self.progress.as_mut() {
            cb(&p);
        }
    }
}

/// Counts one complete response on `c`. False when there was no request for it.
fn record(
    stats: &mut Stats,
    c: &mut Conn,
    inflight_total: &mut u64,
    done: Completed,
    now: u64,
    measuring: bool,
) -> bool {
    let Some((intended, _sent)) = c.inflight.pop_front() else {
        return false;
    };
    *inflight_total -= 1;
    if done.close {
        c.closing = true;
    }
    if measuring {
        stats.requests += 1;
        stats
            .latency
            .saturating_record(now.saturating_sub(intended).max(1));
        if let Some(n) = stats.statuses.get_mut(usize::from(done.status)) {
            *n += 1;
        }
        if !(200..300).contains(&done.status) {
            stats.non_2xx += 1;
        }
    }
    true
}

/// Opens the socket for `slot` and wires its callbacks.
fn connect(engine: &Shared, lp: &mut Loop, slot: usize) {
    let addr = {
        let mut e = engine.borrow_mut();
        if e.phase == Phase::Done {
            return;
        }
        let now = lp.hrtime();
        let c = &mut e.conns[slot];
        c.since = now;
        c.fault = None;
        (e.cfg.addr, e.cfg.socket_path.clone(), e.cfg.tls.clone())
    };
    let options = SocketOptions {
        no_delay: true,
        ..SocketOptions::default()
    };
    let on_connect = {
        let engine = Rc::clone(engine);
        move |lp: &mut Loop, _id: TcpId| engine.borrow_mut().on_connect(lp, slot)
    };
    let connected = match &addr.1 {
        Some(path) => lp.pipe_connect(path, options, on_connect),
        None => match addr.2 {
            Some(tls) => lp.tls_connect(addr.0, tls, options, on_connect),
            None => lp.tcp_connect(addr.0, options, on_connect),
        },
    };
    let id = match connected {
        Ok(id) => id,
        Err(err) => {
            // No socket at all (out of file descriptors): count it and retry later.
            let retry = {
                let mut e = engine.borrow_mut();
                e.on_error(slot, &err);
                e.conns[slot].fault = None;
                e.conns[slot].kind == Kind::Load
            };
            if retry {
                let engine = Rc::clone(engine);
                lp.set_timeout(RECONNECT_DELAY_MS, move |lp| connect(&engine, lp, slot));
            }
            return;
        }
    };
    engine.borrow_mut().conns[slot].id = Some(id);
    let e = Rc::clone(engine);
    let _ = lp.tcp_on_data(id, move |lp, _id, data| {
        e.borrow_mut().on_data(lp, slot, data)
    });
    let e = Rc::clone(engine);
    let _ = lp.tcp_on_end(id, move |lp, _id| e.borrow_mut().on_end(lp, slot));
    let e = Rc::clone(engine);
    let _ = lp.tcp_on_error(id, move |_lp, _id, err| e.borrow_mut().on_error(slot, err));
    let e = Rc::clone(engine);
    let _ = lp.tcp_on_close(id, move |lp, _id, _had_error| {
        let again = e.borrow_mut().on_close(lp, slot);
        match again {
            Some(0) => connect(&e, lp, slot),
            Some(ms) => {
                let e2 = Rc::clone(&e);
                lp.set_timeout(ms, move |lp| connect(&e2, lp, slot));
            }
            None => {}
        }
    });
}

/// Opens every connection and arms the timers.
fn start(engine: &Shared, lp: &mut Loop) {
    let (n, warmup, duration, check_ms, rate, slow, drip_ms, progress, repeat_ms) = {
        let mut e = engine.borrow_mut();
        let now = lp.hrtime();
        e.started = now;
        e.last_progress = (now, 0);
        if e.cfg.warmup.is_zero() {
            e.begin_measure(lp);
        }
        // Spread the open-loop schedule: connection i starts i/rate seconds in.
        let step = e.interval_ns / e.cfg.connections.max(1) as u64;
        for (i, c) in e.conns.iter_mut().enumerate() {
            c.next_due = now + step * i as u64;
        }
        let check_ms = (e.cfg.timeout.as_millis() as u64 / 4).clamp(10, 250);
        (
            e.conns.len(),
            e.cfg.warmup,
            e.cfg.duration,
            check_ms,
            e.cfg.rate.is_some(),
            e.cfg.slowloris > 0,
            e.cfg.slowloris_interval.as_millis().max(1) as u64,
            e.progress.is_some(),
            // Repeats are checked 10 times per interval (at most every 250 ms).
            (e.cfg.idle > 0)
                .then_some(e.cfg.idle_every)
                .flatten()
                .map(|d| (d.as_millis() as u64 / 10).clamp(1, 250)),
        )
    };
    for slot in 0..n {
        connect(engine, lp, slot);
    }
    let mut timers = Vec::new();
    if !warmup.is_zero() {
        let e = Rc::clone(engine);
        timers.push(lp.set_timeout(warmup, move |lp| e.borrow_mut().begin_measure(lp)));
    }
    if !(warmup + duration).is_zero() {
        let e = Rc::clone(engine);
        timers.push(lp.set_timeout(warmup + duration, move |lp| e.borrow_mut().finish(lp)));
    }
    let e = Rc::clone(engine);
    timers.push(lp.set_interval(check_ms, move |lp| e.borrow_mut().check_timeouts(lp)));
    if rate {
        // Timers have millisecond resolution: each tick sends everything due by now.
        let e = Rc::clone(engine);
        timers.push(lp.set_interval(1u64, move |lp| e.borrow_mut().tick(lp)));
    }
    if slow {
        let e = Rc::clone(engine);
        timers.push(lp.set_interval(drip_ms, move |lp| e.borrow_mut().drip(lp)));
    }
    if let Some(ms) = repeat_ms {
        let e = Rc::clone(engine);
        timers.push(lp.set_interval(ms, move |lp| e.borrow_mut().repeat_idle(lp)));
    }
    if progress {
        let e = Rc::clone(engine);
        timers.push(lp.set_interval(1000u64, move |lp| e.borrow_mut().report_progress(lp)));
    }
    engine.borrow_mut().timers = timers;
}
