//! `http://` URLs: an IP literal, or a host name the client resolves on the thread pool.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use super::ClientError;

/// Where a request goes: the host to resolve (or the address itself), the port, the `Host`
/// value and the request-target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) origin: Origin,
    pub(super) host: String,
    pub(super) path: String,
}

/// The host and port a connection is made to: what an [`Agent`](super::Agent) pools by, as
/// Node's agent pools by `host:port`. Cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Origin {
    /// The host name, lower-cased, or an IP literal without brackets.
    pub(super) name: Arc<str>,
    /// The address when `name` is an IP literal: nothing to resolve.
    pub(super) ip: Option<IpAddr>,
    pub(super) port: u16,
    /// `https://`: the connection speaks TLS (an agent pools it apart from plain ones).
    pub(super) tls: bool,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.ip {
            Some(IpAddr::V6(_)) => write!(f, "[{}]:{}", self.name, self.port),
            _ => write!(f, "{}:{}", self.name, self.port),
        }
    }
}

/// Whether `name` is a host name a resolver can be asked for: dot-separated labels of ASCII
/// letters, digits, `-` and `_` (RFC 1123, plus the underscore real zones use), at most 253
/// bytes, labels of 1 to 63 bytes; a final dot is allowed.
fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Parses `http[s]://host[:port][/path][?query][#fragment]`, where host is an IPv4 literal, a
/// bracketed IPv6 literal or a host name (resolved later, when a connection is made). The
/// fragment is dropped; an empty path is `/`.
pub(super) fn parse_url(url: &str) -> Result<Target, ClientError> {
    let bad = ClientError::InvalidUrl;
    let (tls, rest) = match (url.get(..7), url.get(..8)) {
        (Some(scheme), _) if scheme.eq_ignore_ascii_case("http://") => (false, &url[7..]),
        (_, Some(scheme)) if scheme.eq_ignore_ascii_case("https://") => (true, &url[8..]),
        _ => return Err(bad("only http:// and https:// URLs are supported")),
    };
    let default_port = if tls { 443 } else { 80 };
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(auth_end);
    if authority.contains('@') {
        return Err(bad("userinfo is not supported"));
    }
    // `host_name` is the host as written (brackets kept), `port` the text after its `:`.
    let (ip, host_name, port) = if authority.starts_with('[') {
        let close = authority.find(']').ok_or(bad("unclosed [ in host"))?;
        let ip: Ipv6Addr = authority[1..close]
            .parse()
            .map_err(|_| bad("bad IPv6 literal"))?;
        let port = match &authority[close + 1..] {
            "" => None,
            after => Some(
                after
                    .strip_prefix(':')
                    .ok_or(bad("junk after the IPv6 literal"))?,
            ),
        };
        (Some(IpAddr::V6(ip)), &authority[..=close], port)
    } else {
        let (name, port) = match authority.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        };
        let ip = name.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4);
        if ip.is_none() && !is_host_name(name) {
            return Err(bad("host is neither an IP literal nor a valid host name"));
        }
        (ip, name, port)
    };
    let port = match port {
        None | Some("") => default_port,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => match p.parse::<u16>() {
            Ok(n) if n > 0 => n,
            _ => return Err(bad("port out of range")),
        },
        Some(_) => return Err(bad("bad port")),
    };
    let tail = tail.split('#').next().unwrap_or("");
    let path = match tail.as_bytes().first() {
        None => "/".to_owned(),
        Some(b'?') => format!("/{tail}"),
        Some(_) => tail.to_owned(),
    };
    if !path.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(bad(
            "path has a space, control or non-ASCII byte: percent-encode it",
        ));
    }
    let host = match port {
        p if p == default_port => host_name.to_owned(),
        p => format!("{host_name}:{p}"),
    };
    let name = match ip {
        Some(ip) => ip.to_string(),
        None => host_name.to_ascii_lowercase(),
    };
    Ok(Target {
        origin: Origin {
            name: name.into(),
            ip,
            port,
            tls,
        },
        host,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_literal_and_host_name_urls() {
        let table: &[(&str, &str, &str, &str)] = &[
            (
                "http://127.0.0.1:3000/json",
                "127.0.0.1:3000",
                "127.0.0.1:3000",
                "/json",
            ),
            ("HTTP://10.0.0.1", "10.0.0.1:80", "10.0.0.1", "/"),
            (
                "http://10.0.0.1:80?x=1#frag",
                "10.0.0.1:80",
                "10.0.0.1",
                "/?x=1",
            ),
            (
                "http://[::1]:8080/a/b?c",
                "[::1]:8080",
                "[::1]:8080",
                "/a/b?c",
            ),
            ("http://[::1]", "[::1]:80", "[::1]", "/"),
            ("http://LocalHost:9/p#x", "localhost:9", "LocalHost:9", "/p"),
            (
                "http://inventory:4000",
                "inventory:4000",
                "inventory:4000",
                "/",
            ),
            (
                "http://api.example.com./v1",
                "api.example.com.:80",
                "api.example.com.",
                "/v1",
            ),
            ("http://my_svc-2/", "my_svc-2:80", "my_svc-2", "/"),
            ("http://127.0.0.1:/", "127.0.0.1:80", "127.0.0.1", "/"),
        ];
        for &(url, addr, host, path) in table {
            let t = parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(t.origin.to_string(), addr, "{url}");
            assert_eq!(
                t.origin.ip,
                t.origin.name.parse::<IpAddr>().ok(),
                "{url}: only IP literals skip the lookup"
            );
            assert_eq!((t.host.as_str(), t.path.as_str()), (host, path), "{url}");
        }
    }

    #[test]
    fn refuses_malformed_urls() {
        let long_label = format!("http://{}.com/", "a".repeat(64));
        for url in [
            "127.0.0.1:80/",
            "http://exa mple.com/",
            "http://a..b/",
            "http://.a/",
            "http://a%2e/",
            "http://caf\u{e9}.com/",
            long_label.as_str(),
            "http://u:p@127.0.0.1/",
            "http://::1/",
            "http://[::1/",
            "http://[::1]x/",
            "http://[zz]/",
            "http://127.0.0.1:0/",
            "http://127.0.0.1:65536/",
            "http://127.0.0.1:8a/",
            "http:///",
            "http://127.0.0.1/a b",
            "http://127.0.0.1/caf\u{e9}",
        ] {
            assert!(
                matches!(parse_url(url), Err(ClientError::InvalidUrl(_))),
                "{url}"
            );
        }
    }
}
