//! What a load run does, and the command line that describes it.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

/// One load run. Build it with [`LoadConfig::new`] and change fields, or parse a command line
/// with [`parse_args`].
#[derive(Clone, Debug)]
pub struct LoadConfig {
    /// The URL as given (for reports).
    pub url: String,
    /// Where to connect.
    pub addr: SocketAddr,
    /// Connect to this Unix domain socket instead of `addr` (curl's `--unix-socket`); the URL
    /// still gives `Host` and the path.
    pub socket_path: Option<std::path::PathBuf>,
    /// The `Host` header: the URL's authority.
    pub authority: String,
    /// Path and query sent in the request line.
    pub path: String,
    /// The request method (`GET`).
    pub method: String,
    /// Extra request headers, sent after `Host` in this order.
    pub headers: Vec<(String, String)>,
    /// The request body (sent with `Content-Length` when not empty).
    pub body: Vec<u8>,
    /// Keep-alive connections sending requests (10).
    pub connections: usize,
    /// Requests in flight per connection (1: no pipelining).
    pub pipeline: usize,
    /// Open loop: total requests per second, spread evenly over the connections; latency is
    /// measured from each request's intended send time. `None`: closed loop.
    pub rate: Option<f64>,
    /// How long to measure (10 s), after the warm-up.
    pub duration: Duration,
    /// Load sent but not measured before the measurement starts (0).
    pub warmup: Duration,
    /// Stop after this many measured responses (and at the latest after `duration`).
    pub requests: Option<u64>,
    /// A request without its response for this long is a timeout error, and its connection
    /// is closed and reopened; a connect that takes this long is a connect error (2 s).
    pub timeout: Duration,
    /// Extra connections that send one request each, then stay open and silent.
    pub idle: usize,
    /// Idle connections send their request again this long after each answer (`None`: never).
    /// Keeps them open through a server's keep-alive timeout (Node's and oneloop's: 5 s).
    pub idle_every: Option<Duration>,
    /// Extra connections that send a request head one byte per `slowloris_interval`.
    pub slowloris: usize,
    /// The slowloris drip interval (1 s).
    pub slowloris_interval: Duration,
    /// `https://`: every connection speaks TLS. The server's certificate is *not* verified
    /// (a load tool points at test servers with development certificates); SNI is the
    /// URL's host.
    pub tls: Option<crate::tls::TlsConnectOptions>,
    /// `--new-connection`: every load connection is closed by the client once its response
    /// has arrived and a new one is opened for the next request, so each request pays a TCP
    /// connect and, over `https://`, a TLS handshake (handshakes per second = requests per
    /// second). Needs a pipeline of 1.
    pub new_connection_per_request: bool,
}

impl LoadConfig {
    /// A closed-loop run against `url` (`http://host[:port][/path]`) with the defaults.
    ///
    /// # Errors
    /// A URL that is not `http://` or whose host does not resolve.
    pub fn new(url: &str) -> io::Result<LoadConfig> {
        let https = url.starts_with("https://");
        let scheme = if https { "https://" } else { "http://" };
        let (addr, authority, path) = parse_url(url, scheme)?;
        let tls = match https {
            false => None,
            true => {
                let host = match authority.rsplit_once(':') {
                    Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
                    _ => authority,
                };
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let server_name = crate::tls::ServerName::try_from(host.to_owned())
                    .map_err(|e| invalid(format!("{host}: {e}")))?;
                Some(crate::tls::TlsConnectOptions {
                    config: crate::tls::ClientTls::danger_accept_invalid_certs().config(),
                    server_name,
                    handshake_timeout_ms: crate::tls::DEFAULT_HANDSHAKE_TIMEOUT_MS,
                })
            }
        };
        Ok(LoadConfig {
            tls,
            url: url.to_owned(),
            addr,
            socket_path: None,
            authority: authority.to_owned(),
            path: path.to_owned(),
            method: "GET".into(),
            headers: Vec::new(),
            body: Vec::new(),
            connections: 10,
            pipeline: 1,
            rate: None,
            duration: Duration::from_secs(10),
            warmup: Duration::ZERO,
            requests: None,
            timeout: Duration::from_secs(2),
            idle: 0,
            idle_every: None,
            slowloris: 0,
            slowloris_interval: Duration::from_secs(1),
            new_connection_per_request: false,
        })
    }

    /// `--no-resume`: every TLS handshake is a full one (the client keeps no session
    /// tickets or ids). By default a reconnecting client resumes its last session with the
    /// server when the server offers resumption, as a browser or Node's agent would.
    ///
    /// # Errors
    /// The URL is not `https://`.
    pub fn disable_tls_resumption(&mut self) -> io::Result<()> {
        let tls = self
            .tls
            .as_mut()
            .ok_or_else(|| invalid("--no-resume needs an https:// URL".into()))?;
        let mut config = (*tls.config).clone();
        config.resumption = crate::tls::rustls::client::Resumption::disabled();
        tls.config = std::sync::Arc::new(config);
        Ok(())
    }

    /// The bytes of one request.
    pub fn request_bytes(&self) -> Vec<u8> {
        let mut r = format!(
            "{} {} HTTP/1.1\r\nHost: {}\r\n",
            self.method, self.path, self.authority
        );
        for (k, v) in &self.headers {
            r.push_str(&format!("{k}: {v}\r\n"));
        }
        let has_len = self
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-length"));
        if !self.body.is_empty() && !has_len {
            r.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        r.push_str("\r\n");
        let mut bytes = r.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// Checks the settings that would make a run meaningless.
    ///
    /// # Errors
    /// No connections of any kind, a pipeline of 0, or a rate that is not positive.
    pub fn validate(&self) -> io::Result<()> {
        if self.connections + self.idle + self.slowloris == 0 {
            return Err(invalid("no connections (-c, --idle or --slowloris)".into()));
        }
        if self.pipeline == 0 {
            return Err(invalid("--pipeline must be at least 1".into()));
        }
        if let Some(r) = self.rate {
            if !(r > 0.0 && r.is_finite()) {
                return Err(invalid("--rate must be a positive number".into()));
            }
            if self.connections == 0 {
                return Err(invalid("--rate needs at least one connection (-c)".into()));
            }
        }
        if self.new_connection_per_request && self.pipeline != 1 {
            return Err(invalid(
                "--new-connection sends one request per connection: no --pipeline".into(),
            ));
        }
        if self.duration.is_zero() && self.requests.is_none() {
            return Err(invalid("--duration must be positive".into()));
        }
        Ok(())
    }
}

/// Splits `scheme://host[:port][/path]` into the resolved address (port 80 by default), the
/// authority as written and the path (`/` if none).
pub(crate) fn parse_url<'u>(
    url: &'u str,
    scheme: &str,
) -> io::Result<(SocketAddr, &'u str, &'u str)> {
    let rest = url
        .strip_prefix(scheme)
        .ok_or_else(|| invalid(format!("only {scheme} URLs are supported: {url}")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(invalid(format!("no host in {url}")));
    }
    let with_port = if authority.rsplit_once(':').is_some_and(|(h, p)| {
        !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':')
    }) {
        authority.to_owned()
    } else {
        let default_port = if scheme == "https://" { 443 } else { 80 };
        format!("{authority}:{default_port}")
    };
    let addr = with_port
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| invalid(format!("{authority} did not resolve")))?;
    Ok((addr, authority, path))
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run with this configuration; `json` selects the output format.
    Run {
        /// The run.
        config: Box<LoadConfig>,
        /// Print the report as JSON instead of the human summary.
        json: bool,
    },
    /// Print the usage text.
    Help,
}

/// The usage text.
pub const USAGE: &str = "\
usage: oneloop-load URL [options]
  -c, --connections N     keep-alive connections (10)
  -d, --duration T        measured time, e.g. 10s, 500ms, 1m (10s)
  -p, --pipeline N        requests in flight per connection (1)
  -R, --rate N            open loop: N requests/s in total, latency from intended send time
  -n, --requests N        stop after N measured responses
      --warmup T          load before measuring (0)
      --timeout T         request/connect timeout (2s)
  -m, --method M          request method (GET)
  -H, --header 'K: V'     extra request header (repeatable)
      --body S            request body (sent with Content-Length)
      --idle N            N extra connections: one request each, then held open
      --idle-every T      idle connections repeat their request T after each answer
      --slowloris N       N extra connections dripping a request head
      --drip T            slowloris byte interval (1s)
      --unix-socket PATH  connect to this Unix socket instead of the URL's host:port
      --new-connection    one request per connection: close after each response and
                          reconnect (https: one TLS handshake per request)
      --no-resume         https: never resume a TLS session (every handshake is full)
      --json              print the report as JSON
  -h, --help              this text";

/// Parses the arguments after the program name.
///
/// # Errors
/// An unknown option, a missing or malformed value, or no URL.
pub fn parse_args<I, S>(args: I) -> io::Result<Command>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut args: Vec<String> = args.into_iter().map(Into::into).collect();
    // `--name=value` is `--name value`.
    args = args
        .into_iter()
        .flat_map(|a| match a.split_once('=') {
            Some((k, v)) if k.starts_with("--") => vec![k.to_owned(), v.to_owned()],
            _ => vec![a],
        })
        .collect();
    let mut url = None;
    let mut json = false;
    let mut flags: Vec<String> = Vec::new();
    let mut opts: Vec<(String, String)> = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "--json" => json = true,
            "--new-connection" | "--no-resume" => flags.push(a),
            s if s.starts_with('-') && s.len() > 1 => {
                let v = it
                    .next()
                    .ok_or_else(|| invalid(format!("{s} needs a value")))?;
                opts.push((s.to_owned(), v));
            }
            _ if url.is_none() => url = Some(a),
            _ => return Err(invalid(format!("unexpected argument {a}"))),
        }
    }
    let url = url.ok_or_else(|| invalid(format!("no URL given\n{USAGE}")))?;
    let mut c = LoadConfig::new(&url)?;
    for (k, v) in opts {
        match k.as_str() {
            "-c" | "--connections" => c.connections = number(&k, &v)?,
            "-d" | "--duration" => c.duration = parse_duration(&v)?,
            "-p" | "--pipeline" => c.pipeline = number(&k, &v)?,
            "-R" | "--rate" => {
                c.rate = Some(
                    v.parse()
                        .map_err(|_| invalid(format!("{k}: not a number: {v}")))?,
                )
            }
            "-n" | "--requests" => c.requests = Some(number(&k, &v)?),
            "--warmup" => c.warmup = parse_duration(&v)?,
            "--timeout" => c.timeout = parse_duration(&v)?,
            "-m" | "--method" => c.method = v,
            "-H" | "--header" => {
                let (name, value) = v
                    .split_once(':')
                    .ok_or_else(|| invalid(format!("{k} wants 'name: value', got {v}")))?;
                c.headers
                    .push((name.trim().to_owned(), value.trim().to_owned()));
            }
            "--body" => c.body = v.into_bytes(),
            "--idle" => c.idle = number(&k, &v)?,
            "--idle-every" => {
                let every = parse_duration(&v)?;
                if every.is_zero() {
                    return Err(invalid(format!("{k} must be above 0")));
                }
                c.idle_every = Some(every);
            }
            "--slowloris" => c.slowloris = number(&k, &v)?,
            "--drip" => c.slowloris_interval = parse_duration(&v)?,
            "--unix-socket" => c.socket_path = Some(v.into()),
            _ => return Err(invalid(format!("unknown option {k}\n{USAGE}"))),
        }
    }
    for flag in flags {
        match flag.as_str() {
            "--new-connection" => c.new_connection_per_request = true,
            _ => c.disable_tls_resumption()?,
        }
    }
    c.validate()?;
    Ok(Command::Run {
        config: Box::new(c),
        json,
    })
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> io::Result<T> {
    v.parse()
        .map_err(|_| invalid(format!("{name}: not a number: {v}")))
}

/// Parses `10s`, `500ms`, `2m`, `1h`, `250us` or a bare number of seconds (`1.5`).
///
/// # Errors
/// Anything else.
pub fn parse_duration(s: &str) -> io::Result<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| invalid(format!("not a duration: {s}")))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1e3,
        "us" => n / 1e6,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(invalid(format!("unknown unit in {s} (us, ms, s, m, h)"))),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(invalid(format!("not a duration: {s}")));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_durations_in_every_unit() {
        let table = [
            ("10s", 10_000),
            ("10", 10_000),
            ("1.5", 1_500),
            ("500ms", 500),
            ("2m", 120_000),
            ("1h", 3_600_000),
        ];
        for (text, ms) in table {
            assert_eq!(parse_duration(text).unwrap().as_millis(), ms, "{text}");
        }
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn parses_a_wrk_like_command_line() {
        let cmd = parse_args([
            "http://127.0.0.1:3000/plaintext?x=1",
            "-c",
            "256",
            "-d",
            "10s",
            "--pipeline=16",
            "-H",
            "X-A: b",
            "--json",
        ])
        .unwrap();
        let Command::Run { config, json } = cmd else {
            panic!("not a run")
        };
        assert!(json);
        assert_eq!(config.connections, 256);
        assert_eq!(config.pipeline, 16);
        assert_eq!(config.path, "/plaintext?x=1");
        assert_eq!(config.addr.port(), 3000);
        assert_eq!(
            config.request_bytes(),
            b"GET /plaintext?x=1 HTTP/1.1\r\nHost: 127.0.0.1:3000\r\nX-A: b\r\n\r\n"
        );
    }

    #[test]
    fn refuses_bad_command_lines() {
        assert!(parse_args(["ftp://127.0.0.1/"]).is_err()); // https:// is accepted since TLS
        assert!(parse_args(["http://127.0.0.1:1/", "--bogus", "1"]).is_err());
        assert!(parse_args(["http://127.0.0.1:1/", "-p", "0"]).is_err());
        assert!(parse_args(["http://127.0.0.1:1/", "-c"]).is_err());
        assert!(matches!(parse_args(["-h"]).unwrap(), Command::Help));
        // One request per connection cannot pipeline; resumption is a TLS thing.
        assert!(parse_args(["http://127.0.0.1:1/", "--new-connection", "-p", "2"]).is_err());
        assert!(parse_args(["http://127.0.0.1:1/", "--no-resume"]).is_err());
    }

    #[test]
    fn parses_the_handshake_per_request_flags() {
        let cmd = parse_args(["https://127.0.0.1:1/", "--new-connection", "--no-resume"]).unwrap();
        let Command::Run { config, .. } = cmd else {
            panic!("not a run")
        };
        assert!(config.new_connection_per_request);
        // The store is private to rustls; its Debug form names it.
        let tls = config.tls.expect("https");
        assert!(format!("{:?}", tls.config.resumption).contains("NoClientSessionStorage"));
    }
}
