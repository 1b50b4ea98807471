//! `redis://[[user]:password@]host[:port][/db]` and `unix:///path/to/redis.sock[?db=N]` URLs.

use std::net::{IpAddr, Ipv6Addr};

use super::RedisError;

/// Default Redis port.
pub const DEFAULT_PORT: u16 = 6379;

/// Where and as whom to connect, parsed from a URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisUrl {
    /// Host name or IP literal (without brackets).
    pub host: String,
    /// The address when `host` is an IP literal: nothing to resolve.
    pub ip: Option<IpAddr>,
    /// Port (default 6379).
    pub port: u16,
    /// ACL user name (Redis 6+); `None` means the default user.
    pub username: Option<String>,
    /// Password, percent-decoded.
    pub password: Option<String>,
    /// Database index selected after connecting (default 0).
    pub db: u32,
    /// The Unix socket path of a `unix://` URL (then `host` is empty and `port` 0).
    pub path: Option<String>,
}

fn percent_decode(s: &str) -> Result<String, RedisError> {
    let bad = || RedisError::InvalidUrl("bad percent-encoding in user or password");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// Parses `redis://[[user]:password@]host[:port][/db]` or `unix:///absolute/path[?db=N]`.
/// `rediss://` (TLS) is refused with a clear error until TLS lands.
///
/// # Errors
/// [`RedisError::InvalidUrl`] saying what is wrong.
pub fn parse_url(url: &str) -> Result<RedisUrl, RedisError> {
    let bad = RedisError::InvalidUrl;
    let rest = if let Some(rest) = url.strip_prefix("redis://") {
        rest
    } else if url.starts_with("rediss://") {
        return Err(bad("rediss:// (TLS) is not supported yet"));
    } else if let Some(rest) = url.strip_prefix("unix://") {
        return parse_unix(rest);
    } else {
        return Err(bad("expected redis://[[user]:password@]host[:port][/db]"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => match info.split_once(':') {
            Some((user, pass)) => (
                Some(percent_decode(user)?).filter(|u| !u.is_empty()),
                Some(percent_decode(pass)?),
            ),
            // `redis://secret@host`: as ioredis, a lone userinfo is the password.
            None => (None, Some(percent_decode(info)?)),
        },
    };
    let (host, ip, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let close = v6.find(']').ok_or(bad("unclosed [ in host"))?;
        let ip: Ipv6Addr = v6[..close].parse().map_err(|_| bad("bad IPv6 literal"))?;
        let port = match &v6[close + 1..] {
            "" => None,
            after => Some(
                after
                    .strip_prefix(':')
                    .ok_or(bad("junk after IPv6 literal"))?,
            ),
        };
        (ip.to_string(), Some(IpAddr::V6(ip)), port)
    } else {
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        };
        let ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !ok {
            return Err(bad("bad host name"));
        }
        (host.to_ascii_lowercase(), host.parse().ok(), port)
    };
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or(bad("bad port"))?,
    };
    let path = path.split(['?', '#']).next().unwrap_or("");
    let db = match path {
        "" => 0,
        d => d
            .parse()
            .map_err(|_| bad("the path must be a database number"))?,
    };
    Ok(RedisUrl {
        host,
        ip,
        port,
        username,
        password,
        db,
        path: None,
    })
}

/// `unix:///path[?db=N]` (the part after `unix://`).
fn parse_unix(rest: &str) -> Result<RedisUrl, RedisError> {
    let bad = RedisError::InvalidUrl;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !path.starts_with('/') || path.len() < 2 {
        return Err(bad("expected unix:///absolute/path/to/redis.sock[?db=N]"));
    }
    let mut db = 0;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("db", n)) => db = n.parse().map_err(|_| bad("db must be a number"))?,
            _ => return Err(bad("the only query parameter of unix:// is db")),
        }
    }
    Ok(RedisUrl {
        host: String::new(),
        ip: None,
        port: 0,
        username: None,
        password: None,
        db,
        path: Some(percent_decode(path)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_credentials_and_db() {
        let u = parse_url("redis://alice:p%40ss@LocalHost:6380/3").expect("valid");
        assert_eq!(
            (u.host.as_str(), u.ip, u.port, u.db),
            ("localhost", None, 6380, 3)
        );
        assert_eq!(
            (u.username.as_deref(), u.password.as_deref()),
            (Some("alice"), Some("p@ss"))
        );
        let u = parse_url("redis://127.0.0.1").expect("valid");
        assert_eq!((u.ip, u.port, u.db), (Some([127, 0, 0, 1].into()), 6379, 0));
        let u = parse_url("redis://:secret@[::1]:7000/").expect("valid");
        assert_eq!(
            (u.ip, u.port, u.username, u.password.as_deref()),
            (Some("::1".parse().expect("ip")), 7000, None, Some("secret"))
        );
    }

    #[test]
    fn parses_unix_socket_urls() {
        let u = parse_url("unix:///tmp/redis%20x.sock?db=4").expect("valid");
        assert_eq!((u.path.as_deref(), u.db), (Some("/tmp/redis x.sock"), 4));
    }

    #[test]
    fn refuses_what_it_cannot_connect_to() {
        for url in [
            "http://x",
            "rediss://x",
            "unix://relative.sock",
            "unix:///tmp/r.sock?db=x",
            "redis://",
            "redis://h:0",
            "redis://h:99999",
            "redis://h/abc",
            "redis://h o",
            "redis://[::1",
        ] {
            assert!(
                matches!(parse_url(url), Err(RedisError::InvalidUrl(_))),
                "{url}"
            );
        }
    }
}
