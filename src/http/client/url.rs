//! `http://` URLs the client can serve without blocking: IP literals and `localhost`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::ClientError;

/// Where a request goes: the address to connect to, the `Host` value and the request-target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Target {
    pub(super) addr: SocketAddr,
    pub(super) host: String,
    pub(super) path: String,
}

/// Parses `http://host[:port][/path][?query][#fragment]`, where host is an IPv4 literal, a
/// bracketed IPv6 literal or `localhost`. The fragment is dropped; an empty path is `/`.
pub(super) fn parse_url(url: &str) -> Result<Target, ClientError> {
    let bad = ClientError::InvalidUrl;
    let rest = match url.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("http://") => &url[7..],
        _ => return Err(bad("only http:// URLs are supported")),
    };
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
        (IpAddr::V6(ip), &authority[..=close], port)
    } else {
        let (name, port) = match authority.split_once(':') {
            Some((name, port)) => (name, Some(port)),
            None => (authority, None),
        };
        let ip = if name.eq_ignore_ascii_case("localhost") {
            Ipv4Addr::LOCALHOST
        } else {
            name.parse()
                .map_err(|_| bad("host must be an IP literal or localhost (no DNS)"))?
        };
        (IpAddr::V4(ip), name, port)
    };
    let port = match port {
        None | Some("") => 80,
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
        80 => host_name.to_owned(),
        p => format!("{host_name}:{p}"),
    };
    Ok(Target {
        addr: SocketAddr::new(ip, port),
        host,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ip_literal_and_localhost_urls() {
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
            ("http://localhost:9/p#x", "127.0.0.1:9", "localhost:9", "/p"),
            ("http://127.0.0.1:/", "127.0.0.1:80", "127.0.0.1", "/"),
        ];
        for &(url, addr, host, path) in table {
            let t = parse_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(t.addr, addr.parse::<SocketAddr>().unwrap(), "{url}");
            assert_eq!((t.host.as_str(), t.path.as_str()), (host, path), "{url}");
        }
    }

    #[test]
    fn refuses_urls_it_cannot_serve_without_blocking() {
        for url in [
            "https://127.0.0.1/",
            "127.0.0.1:80/",
            "http://example.com/",
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
