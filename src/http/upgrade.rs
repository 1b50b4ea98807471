//! Refusing an upgrade after the socket was handed over: one HTTP answer, then a bounded wait
//! for the peer's FIN.

use std::time::SystemTime;

use bytes::BytesMut;
use oneloop_runtime::{Loop, TcpId};

use super::date::DateCache;
use super::encode::{write_content_length, write_head_end, write_header, write_status_line};
use super::parse::Version;
use super::status::reason_phrase;

/// How long a refused upgrade's socket waits for the peer's FIN after ours before it is
/// destroyed (the HTTP server's closing linger with its default keep-alive timeout).
pub const REFUSAL_LINGER_MS: u64 = 1_000;

/// Answers a handed-over upgrade request with `status` (plus `extra_headers`, `Date`,
/// `Connection: close` and `body` as text/plain when not empty), sends FIN, and destroys the
/// socket if the peer has not closed its side [`REFUSAL_LINGER_MS`] later. Input arriving
/// meanwhile is discarded. The WebSocket endpoint (400/426) and the app (CONNECT without a
/// route) both refuse through here, so a client that holds its side open cannot keep the
/// socket.
pub fn refuse_upgrade(
    lp: &mut Loop,
    id: TcpId,
    status: u16,
    extra_headers: &[(&str, &str)],
    body: &str,
) {
    let mut date = DateCache::new();
    date.update(SystemTime::now());
    let mut out = BytesMut::with_capacity(160 + body.len());
    write_status_line(&mut out, Version::Http11, status, reason_phrase(status));
    write_header(&mut out, "Date", date.as_bytes());
    for (name, value) in extra_headers {
        write_header(&mut out, name, value.as_bytes());
    }
    if !body.is_empty() {
        write_header(&mut out, "Content-Type", b"text/plain");
    }
    write_header(&mut out, "Connection", b"close");
    write_content_length(&mut out, body.len() as u64);
    write_head_end(&mut out);
    out.extend_from_slice(body.as_bytes());
    let _ = lp.tcp_write_bytes(id, out.freeze());
    let _ = lp.tcp_end(id);
    // Whatever the peer still sends is read and dropped (unread input would turn our close
    // into an RST that can destroy the answer in flight).
    let _ = lp.tcp_on_data(id, |_lp, _id, _data| {});
    let _ = lp.tcp_resume(id);
    let timer = lp.set_timeout(REFUSAL_LINGER_MS, move |lp| {
        let _ = lp.tcp_destroy(id);
    });
    // The socket keeps the loop alive while it is open, not the timer.
    let _ = lp.unref(timer);
    let _ = lp.tcp_on_close(id, move |lp, _id, _had_error| {
        let _ = lp.clear_timeout(timer);
    });
}
