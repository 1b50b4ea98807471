//! A reverse proxy: the server and the client on one loop.
//!
//!     cargo run --release --example hello                      # the upstream, on :3000
//!     cargo run --release --example proxy                      # on :8080, forwarding to :3000
//!     curl -i localhost:8080/json
//!
//! `--upstream ADDR` (or `UPSTREAM`, default 127.0.0.1:3000; the host an IP literal or a name,
//! resolved on the thread pool for each new upstream connection) is where requests go; `--port`/`PORT` (default 8080) and `--host`/`HOST` where it listens (port 0 picks
//! a free one; the address is printed). What it shows: the handler returns at once, and the
//! response is finished later, from the client's callback; the connection waits for it (Node's
//! `http.request(...)` answered into `res`). Meanwhile the loop serves other connections.
//!
//! Each request's body is collected (up to 1 MiB, else 413) and forwarded with the method, path,
//! query and end-to-end headers. Hop-by-hop headers (RFC 9110 §7.6.1: the fixed list and every
//! field named in `Connection`) are dropped both ways. What goes out is framed by what is
//! sent: a chunked upstream body goes out with its own Content-Length (the client drops an
//! upstream Content-Length that came with Transfer-Encoding, RFC 9112 §6.3). An upstream that
//! is down or answers garbage gives 502. Every request gets 504 unless its answer is back 5 s
//! (`--timeout-ms`) after it arrived, time waiting for an upstream connection included. Upstream
//! connections are reused through one keep-alive `http::Agent` (at most 16 open, at most 256
//! requests waiting: more get 503 at once). Tested by tests/proxy_example.rs.
//!
//! `--upstream https://host:port` forwards over TLS: the upstream's certificate is verified
//! against Mozilla's roots (as Node's), or against `--ca FILE` (PEM, Node's `ca`) for a
//! private CA; a refused certificate gives 502 with the reason (e.g. `self-signed
//! certificate ... (DEPTH_ZERO_SELF_SIGNED_CERT)`). The agent keeps the TLS connections alive
//! like plain ones, so a handshake is paid once per upstream connection, not per request.
//!
//! `--async` serves the same proxy written with async/await ([`forward_async`]): the body is
//! awaited as a promise, the upstream answer with `http::request_async`; same answers, same
//! order on the loop.
mod common;

use oneloop::http::{
    self, Agent, AgentOptions, ClientError, ClientRequest, ClientResponse, Request, Response,
};
use oneloop::runtime::task::{self, Promise};
use oneloop::runtime::Loop;
use oneloop::tls::ClientTls;

/// Largest request body forwarded; more is 413.
const MAX_BODY: usize = 1 << 20;
/// How long after its arrival a request is answered 504 if the upstream has not answered
/// (`--timeout-ms`).
const UPSTREAM_TIMEOUT_MS: u64 = 5_000;
/// Requests waiting for an upstream connection; more are answered 503 at once.
const MAX_QUEUED: usize = 256;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
fn is_hop_by_hop(name: &str) -> bool {
    const HOP: [&str; 9] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "proxy-authorization",
    ];
    HOP.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Whether `name` is hop-by-hop in a message whose `Connection` fields are `connection`: one
/// of the fixed list, or named by `Connection` (RFC 9110 §7.6.1).
fn is_hop(name: &str, connection: &[&[u8]]) -> bool {
    is_hop_by_hop(name)
        || connection.iter().any(|value| {
            value
                .split(|&b| b == b',')
                .any(|option| option.trim_ascii().eq_ignore_ascii_case(name.as_bytes()))
        })
}

/// Where requests go: `origin` is `http://host:port` or `https://host:port`; `tls` is whom an
/// `https://` upstream must be certified by (`None`: Mozilla's roots).
struct Upstream {
    origin: String,
    tls: Option<ClientTls>,
}

impl Upstream {
    /// `--upstream` as given (`host:port` means `http://host:port`) and `--ca`.
    fn parse(upstream: &str, ca: Option<&str>) -> std::io::Result<Upstream> {
        let origin = match upstream.starts_with("http://") || upstream.starts_with("https://") {
            true => upstream.trim_end_matches('/').to_owned(),
            false => format!("http://{upstream}"),
        };
        let tls = match ca {
            Some(path) => Some(
                ClientTls::with_ca_file(path)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
            ),
            None => None,
        };
        Ok(Upstream { origin, tls })
    }
}

/// The upstream request for `req` (its body is added once collected).
fn upstream_request(
    upstream: &Upstream,
    timeout_ms: u64,
    req: &Request,
) -> Result<ClientRequest, ClientError> {
    let url = format!("{}{}", upstream.origin, req.target());
    // A deadline from now: queue time and connecting included, not just upstream silence.
    let mut out = ClientRequest::new(req.method(), &url)?.deadline_ms(timeout_ms);
    if let Some(tls) = &upstream.tls {
        out = out.tls(tls.clone());
    }
    let connection: Vec<&[u8]> = req
        .headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
        .map(|(_, v)| v)
        .collect();
    for (name, value) in req.headers() {
        // The client writes Host (the upstream's) and frames the body (Content-Length) itself.
        let own = name.eq_ignore_ascii_case("host") || name.eq_ignore_ascii_case("content-length");
        if !is_hop(name, &connection) && !own {
            out = out.header(name, value);
        }
    }
    Ok(out)
}

/// Answers `res` with the upstream's `result`.
fn reply(res: &Response, result: Result<ClientResponse, ClientError>) {
    match result {
        Ok(up) => {
            res.status(up.status());
            // Content-Length passes through: the client exposes it only when it framed the
            // body (never with Transfer-Encoding), so it matches the decoded body, and it is
            // what a HEAD response must keep. Without it `end` frames what is sent.
            let connection: Vec<&[u8]> = up
                .headers()
                .filter(|(n, _)| n.eq_ignore_ascii_case("connection"))
                .map(|(_, v)| v)
                .collect();
            for (name, value) in up.headers() {
                if !is_hop(name, &connection) {
                    let _ = res.append_header(name.to_owned(), value.to_vec());
                }
            }
            res.end(up.body());
        }
        Err(ClientError::Timeout) => res.status(504).end("upstream timed out\n"),
        Err(ClientError::QueueFull) => res.status(503).end("too many requests waiting\n"),
        Err(e) => res.status(502).end(format!("bad gateway: {e}\n")),
    }
}

/// The handler of `--async`: the callback version's steps, as one task.
fn forward_async(forward: ClientRequest, agent: Agent, req: Request, res: Response) {
    task::spawn(async move {
        // `req.collect` as a promise (the error as text: a promise's values are cloned).
        let (body, collected) = Promise::<bytes::Bytes, String>::pending();
        req.collect(MAX_BODY, move |_lp, body| {
            collected.settle(body.map_err(|e| e.to_string()));
        });
        let forward = match body.await {
            Ok(body) if body.is_empty() => forward,
            Ok(body) => forward.body(body),
            Err(e) => return res.status(413).end(format!("{e}\n")),
        };
        match http::request_async(forward.agent(&agent)).await {
            Err(e @ ClientError::InvalidHeader { .. }) => {
                res.status(400).end(format!("cannot forward: {e}\n"))
            }
            result => reply(&res, result),
        }
    })
    .detach();
}

fn main() -> std::io::Result<()> {
    env_logger::init();
    let args = common::Args::from_env();
    let upstream = args
        .value_or_env("--upstream", "UPSTREAM")
        .unwrap_or_else(|| "127.0.0.1:3000".into());
    let timeout_ms = args
        .value("--timeout-ms")
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(UPSTREAM_TIMEOUT_MS);
    let listen = args.listen_addr(8080);
    let use_async = args.flag("--async");
    let up = Upstream::parse(&upstream, args.value("--ca").as_deref())?;
    let origin = up.origin.clone();

    let mut lp = Loop::new()?;
    let agent = Agent::new(AgentOptions {
        max_queued_per_host: MAX_QUEUED,
        ..AgentOptions::default()
    });
    let server = http::create_server(&mut lp, move |_lp: &mut Loop, req: Request, res| {
        let forward = match upstream_request(&up, timeout_ms, &req) {
            Ok(forward) => forward,
            Err(e) => return res.status(400).end(format!("cannot forward: {e}\n")),
        };
        // A handle on the one pool of upstream connections.
        let agent = agent.clone();
        if use_async {
            return forward_async(forward, agent, req, res);
        }
        // The handler returns now; `res` lives on in the callbacks and is answered later.
        req.collect(MAX_BODY, move |lp, body| {
            let forward = match body {
                Ok(body) if body.is_empty() => forward,
                Ok(body) => forward.body(body),
                Err(e) => return res.status(413).end(format!("{e}\n")),
            };
            let forward = forward.agent(&agent);
            let answer = res.clone(); // a handle on the same exchange
            if let Err(e) = http::request(lp, forward, move |_lp, result| reply(&answer, result)) {
                res.status(400).end(format!("cannot forward: {e}\n"));
            }
        });
    });
    server.listen(&mut lp, &listen, move |_lp, addr| {
        println!("proxy listening on http://{addr}, forwarding to {origin}");
    })?;
    lp.run()
}
