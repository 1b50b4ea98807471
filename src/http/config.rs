//! Server settings, fixed when the server is created. Defaults are Node 20's.

use oneloop_runtime::ListenOptions;

/// Default [`ServerConfig::max_buffered_body_bytes`]: 256 MiB, sixteen 16 MiB uploads (the
/// largest `examples/hello.rs` echoes) in memory at once.
pub const DEFAULT_MAX_BUFFERED_BODY_BYTES: u64 = 256 << 20;

/// Limits and timeouts of an HTTP server ([`create_server_with`](super::create_server_with)).
///
/// Every limit answers with a status and closes the connection when the framing can no longer be
/// trusted; see docs/http.md for the table.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest request head (request line + fields) in bytes; larger answers 431 (Node 16 KiB).
    pub max_header_size: usize,
    /// Most header fields per request; more answers 431 (Node 2000).
    pub max_headers_count: usize,
    /// Longest request line; longer answers 414.
    pub max_request_line: usize,
    /// Largest request body; a larger Content-Length (or chunked total) answers 413. `None`: no
    /// limit (Node's default; the app layer's body parsers set their own).
    pub max_body_size: Option<u64>,
    /// Request body bytes the server holds in memory at once, all connections together: what
    /// [`Request::collect`](super::Request::collect) (and so the app layer's body parsers)
    /// has buffered and not yet handed to its callback. A request whose declared length does
    /// not fit in what is left, or whose body outgrows it, gets
    /// [`BodyError::Overloaded`](super::BodyError::Overloaded) (503) and its connection is
    /// closed instead of the process growing. `None`: no budget. Default 256 MiB (Node has
    /// none: it buffers nothing itself).
    pub max_buffered_body_bytes: Option<u64>,
    /// Time allowed to receive a request head, from its first byte (or from accept for a new
    /// connection): 408 after (Node `headersTimeout`, 60 s).
    pub headers_timeout_ms: u64,
    /// Time allowed to receive a whole request, head and body: 408 after (Node
    /// `requestTimeout`, 300 s).
    pub request_timeout_ms: u64,
    /// How long an idle keep-alive connection is kept, advertised as `Keep-Alive: timeout=N`
    /// (Node `keepAliveTimeout`, 5 s).
    pub keep_alive_timeout_ms: u64,
    /// Close a connection whose queued response bytes made no progress for this long (a client
    /// that never reads); re-armed as long as bytes still leave. Node has no default for this;
    /// ours is 60 s.
    pub send_timeout_ms: u64,
    /// How often deadlines are checked (Node `connectionsCheckingInterval` is 30 s; we check
    /// every second so timeouts are accurate to about a second).
    pub check_interval_ms: u64,
    /// Requests served per connection before it is closed (`Connection: close` on the last);
    /// 0 = unlimited (Node `maxRequestsPerSocket`).
    pub max_requests_per_socket: u32,
    /// Pipelined input buffered while a response is owed; reading pauses above it. Also the
    /// amount of serialized response bytes after which `Response::write` returns false.
    pub max_pipeline_buffer: usize,
    /// Unread request body the server discards after a response before it gives up and
    /// closes the connection instead.
    pub max_drain_bytes: u64,
    /// Send `100 Continue` automatically when a request expects it (Node's behaviour without a
    /// `checkContinue` listener). When false the handler calls
    /// [`Response::write_continue`](super::Response::write_continue).
    pub auto_continue: bool,
    /// Answer 400 to HTTP/1.1 requests without a Host field (Node `requireHostHeader`).
    pub require_host: bool,
    /// Options for the listening socket (backlog, `reuse_port`, `max_connections`).
    pub listen: ListenOptions,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_header_size: 16 * 1024,
            max_headers_count: 2000,
            max_request_line: 8 * 1024,
            max_body_size: None,
            max_buffered_body_bytes: Some(DEFAULT_MAX_BUFFERED_BODY_BYTES),
            headers_timeout_ms: 60_000,
            request_timeout_ms: 300_000,
            keep_alive_timeout_ms: 5_000,
            send_timeout_ms: 60_000,
            check_interval_ms: 1_000,
            max_requests_per_socket: 0,
            max_pipeline_buffer: 64 * 1024,
            max_drain_bytes: 256 * 1024,
            auto_continue: true,
            require_host: true,
            listen: ListenOptions::default(),
        }
    }
}
