//! Helpers shared by the `tcp_*` tests: a streaming hash, a deterministic byte stream, a loop
//! watchdog, an echo server and file-descriptor limits.
#![allow(dead_code)] // each test binary uses a different subset

use std::net::SocketAddr;
use std::time::Duration;

use oneloop_runtime::{ListenOptions, Loop, ServerId};

/// A 64-bit FNV-1a variant over little-endian 8-byte words (8x fewer multiplies than the
/// byte-wise original, which matters in debug builds hashing 64 MiB). Streaming: `update` may
/// split the input anywhere and the result is the same.
pub struct Hash64 {
    h: u64,
    tail: [u8; 8],
    tail_len: usize,
    len: u64,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

impl Default for Hash64 {
    fn default() -> Self {
        Hash64 {
            h: FNV_OFFSET,
            tail: [0; 8],
            tail_len: 0,
            len: 0,
        }
    }
}

impl Hash64 {
    fn word(&mut self, w: u64) {
        self.h = (self.h ^ w).wrapping_mul(FNV_PRIME);
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.tail_len > 0 {
            let take = (8 - self.tail_len).min(data.len());
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&data[..take]);
            self.tail_len += take;
            data = &data[take..];
            if self.tail_len < 8 {
                return;
            }
            self.word(u64::from_le_bytes(self.tail));
            self.tail_len = 0;
        }
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            self.word(u64::from_le_bytes(w.try_into().expect("8 bytes")));
        }
        let rest = words.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    /// The hash and the number of bytes hashed.
    pub fn finish(mut self) -> (u64, u64) {
        if self.tail_len > 0 {
            let mut last = [0u8; 8];
            last[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
            self.word(u64::from_le_bytes(last));
        }
        self.word(self.len);
        (self.h, self.len)
    }
}

/// A deterministic pseudo-random byte stream (xorshift64*), generated chunk by chunk.
pub struct Pattern(u64);

impl Pattern {
    pub fn new(seed: u64) -> Pattern {
        Pattern(seed | 1)
    }

    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let mut x = self.0;
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.0 = x;
            let v = x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// Panics (failing the test) if the loop is still running after `secs`. Unref'd: it never keeps
/// the loop alive by itself.
#[track_caller]
pub fn watchdog(lp: &mut Loop, secs: u64) {
    let at = std::panic::Location::caller();
    let t = lp.set_timeout(secs * 1000, move |_| {
        panic!("watchdog: loop still running after {secs} s (test at {at})")
    });
    lp.unref(t).expect("fresh timer");
}

pub fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// An echo server with Node's `pipe` backpressure: pause reading while the write queue is over
/// the high-water mark, resume on drain. Closes itself after `close_after` connections closed.
pub fn echo_server(lp: &mut Loop, options: ListenOptions, close_after: usize) -> ServerId {
    use std::cell::Cell;
    use std::rc::Rc;
    let closed = Rc::new(Cell::new(0usize));
    let server = Rc::new(Cell::new(None::<ServerId>));
    let srv = server.clone();
    let id = lp
        .tcp_listen("127.0.0.1:0".parse().unwrap(), options, move |lp, conn| {
            echo_on(lp, conn, closed.clone(), srv.clone(), close_after)
        })
        .expect("listen");
    server.set(Some(id));
    id
}

/// Makes `conn` an echo connection (see [`echo_server`]).
pub fn echo_on(
    lp: &mut Loop,
    conn: oneloop_runtime::TcpId,
    closed: std::rc::Rc<std::cell::Cell<usize>>,
    server: std::rc::Rc<std::cell::Cell<Option<ServerId>>>,
    close_after: usize,
) {
    lp.tcp_on_data(conn, |lp, id, data| {
        if !lp.tcp_write(id, data).expect("echo write") {
            lp.tcp_pause(id).unwrap();
        }
    })
    .unwrap();
    lp.tcp_on_drain(conn, |lp, id| lp.tcp_resume(id).unwrap())
        .unwrap();
    lp.tcp_on_close(conn, move |lp, _, had_error| {
        assert!(!had_error, "echo connection closed with an error");
        closed.set(closed.get() + 1);
        if closed.get() == close_after {
            if let Some(s) = server.get() {
                lp.tcp_server_close(s, |_| {}).unwrap();
            }
        }
    })
    .unwrap();
}

/// Raises this process's RLIMIT_NOFILE soft limit to at least `want` (up to the hard limit).
/// Returns the soft limit now in force.
pub fn raise_nofile(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit struct for the duration of the call.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    if lim.rlim_cur < want && lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = want.min(lim.rlim_max);
        // SAFETY: `lim` is a valid rlimit struct; raising the soft limit up to the hard limit
        // needs no privilege.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
        // SAFETY: as above.
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    }
    lim.rlim_cur
}

/// (soft, hard) RLIMIT_NOFILE.
pub fn nofile() -> (u64, u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit struct for the duration of the call.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (lim.rlim_cur, lim.rlim_max)
}

/// Sets the RLIMIT_NOFILE soft limit (keeping the hard limit).
pub fn set_nofile_soft(soft: u64) {
    let (_, hard) = nofile();
    let lim = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `lim` is a valid rlimit struct; lowering the soft limit needs no privilege.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(rc, 0, "setrlimit: {}", std::io::Error::last_os_error());
}

/// CPU time (user + system) consumed by the calling thread.
pub fn thread_cpu_time() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is valid and writable; RUSAGE_THREAD reports the calling thread.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    assert_eq!(rc, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}
