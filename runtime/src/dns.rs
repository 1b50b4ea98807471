//! Name resolution on the thread pool: Node's `dns.lookup` (libuv's `uv_getaddrinfo`).
//!
//! `getaddrinfo(3)` blocks, so, as in Node and libuv, it runs on the loop's thread pool and the
//! callback runs on the loop thread as a thread-pool completion (poll phase). It reads what the
//! system reads (`/etc/hosts`, then DNS, per `/etc/nsswitch.conf`), and addresses come back in
//! the order the system returns them (Node 20's default `verbatim` order).
//!
//! ```
//! use oneloop_runtime::{dns, Loop};
//!
//! let mut lp = Loop::new()?;
//! dns::lookup(&mut lp, "localhost", dns::Family::Any, |_lp, addr| {
//!     assert!(addr.expect("localhost resolves").is_loopback());
//! })?;
//! lp.run()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! A [`Resolver`] adds static names in front of the system's (a test's `inventory` →
//! 127.0.0.1 without editing `/etc/hosts`); the HTTP client takes one.
//!
//! # Differences from Node
//! - An empty host name is `ENOTFOUND` (Node answers a `null` address).
//! - The error code is read from `getaddrinfo`'s message as the standard library reports it:
//!   `ENOTFOUND` (no such name, or no address of the asked family), `EAI_AGAIN` (temporary
//!   failure), `EAI_FAIL` (anything else).

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::{IpAddr, ToSocketAddrs};
use std::sync::Arc;

use crate::{Loop, WorkError};

/// The address family asked for (Node's `family: 0 | 4 | 6`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Family {
    /// Either (Node's 0, the default).
    #[default]
    Any,
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

impl Family {
    fn admits(self, ip: &IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

/// A failed lookup, printed as Node prints it: `getaddrinfo ENOTFOUND nosuch.example`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsError {
    code: &'static str,
    hostname: String,
    detail: String,
}

impl DnsError {
    fn new(code: &'static str, hostname: &str, detail: impl Into<String>) -> DnsError {
        DnsError {
            code,
            hostname: hostname.to_string(),
            detail: detail.into(),
        }
    }

    /// Node's `err.code`: `"ENOTFOUND"`, `"EAI_AGAIN"`, `"EAI_FAIL"`, `"EINVAL"` (a name with a
    /// NUL byte) or `"ECANCELED"`.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The name that was looked up (Node's `err.hostname`).
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The system's own words (`getaddrinfo`'s message), for logs.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "getaddrinfo {} {}", self.code, self.hostname)
    }
}

impl std::error::Error for DnsError {}

impl From<DnsError> for io::Error {
    fn from(e: DnsError) -> io::Error {
        let kind = match e.code {
            "ENOTFOUND" => io::ErrorKind::NotFound,
            "EINVAL" => io::ErrorKind::InvalidInput,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e.to_string())
    }
}

/// What a lookup asks: the system, behind an optional table of static names.
///
/// Cheap to clone (the table is shared). `Resolver::default()` is the system's resolver alone.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    hosts: Option<Arc<HashMap<String, Vec<IpAddr>>>>,
}

impl Resolver {
    /// The system's resolver (`getaddrinfo`).
    pub fn system() -> Resolver {
        Resolver::default()
    }

    /// Answers `name` (ASCII case-insensitively) with `addrs` before asking the system, as a
    /// line of `/etc/hosts` would.
    pub fn with_host(mut self, name: &str, addrs: impl IntoIterator<Item = IpAddr>) -> Resolver {
        let mut hosts = self.hosts.as_deref().cloned().unwrap_or_default();
        hosts.insert(name.to_ascii_lowercase(), addrs.into_iter().collect());
        self.hosts = Some(Arc::new(hosts));
        self
    }

    /// Every address of `host` of `family`, in the system's order (Node's
    /// `dns.lookup(host, {all: true})`). An IP literal answers itself without a lookup, on the
    /// next tick (as Node).
    ///
    /// # Errors
    /// Only when the thread pool cannot start; a failed lookup reaches `callback`.
    #[track_caller]
    pub fn lookup_all(
        &self,
        lp: &mut Loop,
        host: &str,
        family: Family,
        callback: impl FnOnce(&mut Loop, Result<Vec<IpAddr>, DnsError>) + 'static,
    ) -> io::Result<()> {
        if let Some(found) = self.answer_locally(host, family) {
            lp.next_tick(move |lp| callback(lp, found));
            return Ok(());
        }
        let name = host.to_string();
        lp.queue_work(move || getaddrinfo(&name, family), {
            let host = host.to_string();
            move |lp, done| {
                let result = match done {
                    Ok(result) => result,
                    Err(WorkError::Cancelled) => {
                        Err(DnsError::new("ECANCELED", &host, "lookup cancelled"))
                    }
                    Err(WorkError::Panicked(msg)) => Err(DnsError::new("EAI_FAIL", &host, msg)),
                };
                callback(lp, result)
            }
        })?;
        Ok(())
    }

    /// The first address of `host` of `family` (Node's `dns.lookup(host, cb)`).
    ///
    /// # Errors
    /// As [`Resolver::lookup_all`].
    #[track_caller]
    pub fn lookup(
        &self,
        lp: &mut Loop,
        host: &str,
        family: Family,
        callback: impl FnOnce(&mut Loop, Result<IpAddr, DnsError>) + 'static,
    ) -> io::Result<()> {
        let name = host.to_string();
        self.lookup_all(lp, host, family, move |lp, all| {
            let first = all.and_then(|addrs| {
                addrs
                    .first()
                    .copied()
                    .ok_or_else(|| DnsError::new("ENOTFOUND", &name, "no address"))
            });
            callback(lp, first)
        })
    }

    /// An IP literal, or a static name: answered without the pool. Never an empty `Ok`.
    fn answer_locally(&self, host: &str, family: Family) -> Option<Result<Vec<IpAddr>, DnsError>> {
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Some(Ok(vec![ip]));
        }
        if host.is_empty() {
            return Some(Err(DnsError::new("ENOTFOUND", host, "empty host name")));
        }
        let addrs = self.hosts.as_ref()?.get(&host.to_ascii_lowercase())?;
        let found: Vec<IpAddr> = addrs
            .iter()
            .copied()
            .filter(|ip| family.admits(ip))
            .collect();
        Some(if found.is_empty() {
            Err(DnsError::new(
                "ENOTFOUND",
                host,
                "no address of that family",
            ))
        } else {
            Ok(found)
        })
    }
}

/// Node's `dns.lookup(host, {all: true}, cb)` on the system resolver.
///
/// # Errors
/// As [`Resolver::lookup_all`].
#[track_caller]
pub fn lookup_all(
    lp: &mut Loop,
    host: &str,
    family: Family,
    callback: impl FnOnce(&mut Loop, Result<Vec<IpAddr>, DnsError>) + 'static,
) -> io::Result<()> {
    Resolver::system().lookup_all(lp, host, family, callback)
}

/// Node's `dns.lookup(host, cb)` on the system resolver: the first address.
///
/// # Errors
/// As [`Resolver::lookup_all`].
#[track_caller]
pub fn lookup(
    lp: &mut Loop,
    host: &str,
    family: Family,
    callback: impl FnOnce(&mut Loop, Result<IpAddr, DnsError>) + 'static,
) -> io::Result<()> {
    Resolver::system().lookup(lp, host, family, callback)
}

/// The blocking call, on a pool thread. Duplicates (one per socket type on some systems) are
/// dropped, keeping the first of each.
fn getaddrinfo(host: &str, family: Family) -> Result<Vec<IpAddr>, DnsError> {
    let addrs = (host, 0u16).to_socket_addrs().map_err(|e| {
        let detail = e.to_string();
        let code = if e.kind() == io::ErrorKind::InvalidInput {
            "EINVAL"
        } else if detail.contains("not known") || detail.contains("No address") {
            "ENOTFOUND"
        } else if detail.contains("Temporary failure") {
            "EAI_AGAIN"
        } else {
            "EAI_FAIL"
        };
        DnsError::new(code, host, detail)
    })?;
    let mut found: Vec<IpAddr> = Vec::new();
    for ip in addrs.map(|a| a.ip()).filter(|ip| family.admits(ip)) {
        if !found.contains(&ip) {
            found.push(ip);
        }
    }
    if found.is_empty() {
        return Err(DnsError::new(
            "ENOTFOUND",
            host,
            "no address of that family",
        ));
    }
    Ok(found)
}
