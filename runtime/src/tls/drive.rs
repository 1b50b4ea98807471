//! The rustls cycle driven by the socket's reads and writes: `read_tls` →
//! `process_new_packets` → send what rustls wants to send → deliver plaintext.

use std::io::{self, Read, Write};
use std::net::SocketAddr;

use bytes::Bytes;

use super::layer::{Phase, TlsLayer};
use super::{TlsConnectOptions, TlsError, TlsInfo, TlsServerOptions};
use crate::handle::TcpId;
use crate::tcp::socket::{Chunk, WriteSide, CORK_WRITE_THROUGH};
use crate::tcp::SocketOptions;
use crate::Loop;

/// Plaintext is encrypted and queued in pieces of this size, so one large `write` does not
/// hold three full copies (plaintext, rustls' records, the queued ciphertext) at once.
const SEAL_PIECE: usize = 64 * 1024;
/// Size of the loop's shared plaintext buffer (decrypted bytes on their way to `on_data`):
/// a TLS record holds at most 16 KiB, and rustls hands out what it has in one go.
const PLAIN_BUFFER_SIZE: usize = 32 * 1024;
/// The shared ciphertext scratch buffer is given back to the allocator above this size.
const OUT_BUFFER_KEEP: usize = 256 * 1024;
/// A socket keeps its cork buffer between corks up to this capacity: enough for the usual
/// response head and small body, so an idle TLS connection holds at most this much of it
/// (a burst's larger buffer is freed at uncork).
const CORK_BUFFER_KEEP: usize = 4 * 1024;

/// The answer to a plain HTTP request on a TLS port (the connection closes after it).
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
Content-Type: text/plain\r\n\
Content-Length: 62\r\n\
Connection: close\r\n\
\r\n\
This port speaks HTTPS: a plain HTTP request was sent to it.\r\n";

impl Loop {
    /// Opens a TLS connection to `addr` (Node's `tls.connect`): TCP connect, then the
    /// handshake; `on_connect` runs once the handshake has completed (Node's
    /// `'secureConnect'`). Writes made earlier are sent after it. A failed handshake (an
    /// untrusted, expired or wrong-host certificate, an alert) goes to the socket's
    /// `on_error` with a [`TlsError`] inside, then `on_close`.
    ///
    /// # Errors
    /// When no socket could be created, or rustls refused the configuration.
    #[track_caller]
    pub fn tls_connect(
        &mut self,
        addr: SocketAddr,
        tls: TlsConnectOptions,
        options: SocketOptions,
        on_connect: impl FnMut(&mut Loop, TcpId) + 'static,
    ) -> io::Result<TcpId> {
        let conn = rustls::ClientConnection::new(tls.config, tls.server_name)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let id = self.tcp_connect(addr, options, on_connect)?;
        self.tls_attach(id, conn.into(), tls.handshake_timeout_ms);
        // The ClientHello waits in the queue until the TCP connect completes.
        self.tls_send_pending(id);
        Ok(id)
    }

    /// Makes an accepted socket a TLS server socket (its listener hears of it once the
    /// handshake completes).
    pub(crate) fn tls_accept(&mut self, id: TcpId, tls: &TlsServerOptions) {
        match rustls::ServerConnection::new(tls.config.clone()) {
            Ok(conn) => self.tls_attach(id, conn.into(), tls.handshake_timeout_ms),
            Err(e) => self.socket_fail(id, TlsError::Protocol(e).into_io()),
        }
    }

    fn tls_attach(&mut self, id: TcpId, mut conn: rustls::Connection, timeout_ms: u64) {
        // We empty rustls' outgoing buffer after every call and count bytes ourselves.
        conn.set_buffer_limit(None);
        let Some(s) = self.net.socket_mut(id) else {
            return;
        };
        s.tls = Some(Box::new(TlsLayer::new(conn, timeout_ms)));
        if timeout_ms > 0 {
            let timer = self.set_timeout(timeout_ms, move |lp| lp.tls_handshake_timed_out(id));
            let _ = self.unref(timer); // the socket keeps the loop alive, not its timer
            match self.net.socket_mut(id).and_then(|s| s.tls.as_mut()) {
                Some(tls) => tls.phase = Phase::Handshaking { timer: Some(timer) },
                None => {
                    let _ = self.clear_timeout(timer);
                }
            }
        }
    }

    fn tls_handshake_timed_out(&mut self, id: TcpId) {
        let Some(tls) = self.net.socket_mut(id).and_then(|s| s.tls.as_mut()) else {
            return;
        };
        if let Phase::Handshaking { timer } = &mut tls.phase {
            *timer = None; // it fired: nothing to clear
            let ms = tls.handshake_timeout_ms;
            self.socket_fail(id, TlsError::HandshakeTimeout { ms }.into_io());
        }
    }

    /// The raw stream ended (FIN) before the handshake completed.
    pub(crate) fn tls_closed_during_handshake(&mut self, id: TcpId) {
        self.socket_fail(id, TlsError::ClosedDuringHandshake.into_io());
    }

    /// What the TLS socket `id` negotiated; `None` for a plaintext socket or a stale id.
    pub fn tls_info(&self, id: TcpId) -> Option<TlsInfo> {
        let tls = self.net.socket(id)?.tls.as_ref()?;
        let conn = &tls.conn;
        let protocol = conn.protocol_version().map(|v| match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
            rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
            _ => "unknown",
        });
        let server_name = match conn {
            rustls::Connection::Server(c) => c.server_name().map(str::to_owned),
            rustls::Connection::Client(_) => None,
        };
        Some(TlsInfo {
            protocol,
            cipher: conn
                .negotiated_cipher_suite()
                .map(|c| format!("{:?}", c.suite())),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            server_name,
            resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
            established: !tls.is_handshaking(),
        })
    }

    /// Whether `id` is a TLS socket.
    pub fn tls_is_encrypted(&self, id: TcpId) -> bool {
        self.net.socket(id).is_some_and(|s| s.tls.is_some())
    }

    /// The certificate chain the peer presented (DER, leaf first): the server's, on a client
    /// socket; the client's, when the server asked for one.
    pub fn tls_peer_certificates(&self, id: TcpId) -> Option<Vec<Vec<u8>>> {
        let tls = self.net.socket(id)?.tls.as_ref()?;
        let certs = tls.conn.peer_certificates()?;
        Some(certs.iter().map(|c| c.as_ref().to_vec()).collect())
    }

    // -- reading --------------------------------------------------------------------------------

    /// Delivers what waited while the socket was paused (stashed ciphertext, plaintext held by
    /// rustls). Returns whether reading may go on.
    pub(crate) fn tls_receive_stashed(&mut self, id: TcpId) -> bool {
        let Some(s) = self.net.socket_mut(id) else {
            return false;
        };
        if s.paused || s.read_ended {
            return true; // the read loop stops on its own
        }
        let Some(tls) = s.tls.as_mut() else {
            return true;
        };
        if !std::mem::replace(&mut tls.resume_pending, false) {
            return true;
        }
        let stash = std::mem::take(&mut tls.stash);
        self.tls_receive(id, &stash)
    }

    /// Feeds ciphertext to rustls and emits the plaintext. Returns whether reading may go on
    /// (false: paused, ended, failed or closed).
    pub(crate) fn tls_receive(&mut self, id: TcpId, mut cipher: &[u8]) -> bool {
        let Some(tls) = self.net.socket_mut(id).and_then(|s| s.tls.as_mut()) else {
            return false;
        };
        match tls.phase {
            Phase::Refused => return true, // discarded until the peer closes
            Phase::Handshaking { .. }
                if !tls.any_input
                    && tls.is_server()
                    && cipher.first().is_some_and(u8::is_ascii_uppercase) =>
            {
                self.tls_refuse_plain_http(id);
                return false;
            }
            _ => {}
        }
        if !cipher.is_empty() {
            tls.any_input = true;
        }
        let mut plain = std::mem::take(&mut self.net.tls_plain);
        if plain.len() < PLAIN_BUFFER_SIZE {
            plain.resize(PLAIN_BUFFER_SIZE, 0);
        }
        let go_on = self.tls_receive_with(id, &mut cipher, &mut plain);
        self.net.tls_plain = plain;
        go_on
    }

    fn tls_receive_with(&mut self, id: TcpId, cipher: &mut &[u8], plain: &mut [u8]) -> bool {
        loop {
            let Some(s) = self.net.socket_mut(id) else {
                return false;
            };
            let paused = s.paused;
            let Some(tls) = s.tls.as_mut() else {
                return false;
            };
            if paused {
                tls.stash.extend_from_slice(cipher);
                tls.resume_pending = true;
                return false;
            }
            let mut took = 0;
            if !cipher.is_empty() {
                match tls.conn.read_tls(cipher) {
                    Ok(n) => took = n,
                    Err(e) => {
                        // Only "received plaintext buffer full", which draining below prevents.
                        self.socket_fail(id, e);
                        return false;
                    }
                }
            }
            let state = match tls.conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    // rustls queued an alert for the peer: send it, then close.
                    self.tls_send_pending(id);
                    self.socket_fail(id, TlsError::Protocol(e).into_io());
                    return false;
                }
            };
            let mut unread = state.plaintext_bytes_to_read();
            let peer_closed = state.peer_has_closed();
            let completed = tls.is_handshaking() && !tls.conn.is_handshaking();
            self.tls_send_pending(id);
            if completed {
                self.tls_handshake_done(id);
            }
            while unread > 0 {
                let Some(s) = self.net.socket_mut(id) else {
                    return false;
                };
                let paused = s.paused;
                let Some(tls) = s.tls.as_mut() else {
                    return false;
                };
                if paused {
                    tls.resume_pending = true; // the rest stays in rustls until resume
                    break;
                }
                let n = match tls.conn.reader().read(plain) {
                    Ok(n) if n > 0 => n,
                    _ => break,
                };
                unread = unread.saturating_sub(n);
                self.socket_emit_data(id, &plain[..n]);
            }
            if peer_closed && unread == 0 {
                // close_notify: the peer's stream ended. What follows on the wire is ignored.
                if let Some(s) = self.net.socket_mut(id) {
                    if !s.read_ended {
                        s.read_ended = true;
                        self.socket_on_eof(id);
                    }
                }
                return false;
            }
            if cipher.is_empty() {
                return self.net.socket(id).is_some_and(|s| !s.paused);
            }
            if took == 0 && unread == 0 && !completed {
                // rustls took nothing and produced nothing: cannot happen with a conforming
                // rustls, but an endless loop is worse than a closed connection.
                let e = io::Error::new(io::ErrorKind::InvalidData, "tls: input not consumed");
                self.socket_fail(id, e);
                return false;
            }
        }
    }

    /// Answers a plain HTTP request on the TLS port with a readable 400 and closes.
    fn tls_refuse_plain_http(&mut self, id: TcpId) {
        if let Some(tls) = self.net.socket_mut(id).and_then(|s| s.tls.as_mut()) {
            if let Phase::Handshaking { timer: Some(t) } = tls.phase {
                let _ = self.clear_timeout(t);
            }
            if let Some(tls) = self.net.socket_mut(id).and_then(|s| s.tls.as_mut()) {
                tls.phase = Phase::Refused;
            }
        }
        let server = self.net.socket(id).and_then(|s| s.server);
        if let Some(server) = server {
            self.server_report_tls_error(server, id, &TlsError::PlainHttp.into_io());
        }
        let _ = self.socket_send(id, Chunk::Borrowed(PLAIN_HTTP_ANSWER));
        let Some(s) = self.net.socket_mut(id) else {
            return;
        };
        s.write_side = WriteSide::Ending;
        if s.queue.is_empty() {
            self.socket_shutdown_write(id);
        }
        // The peer's FIN (or anything more it sends, discarded) closes the socket; the idle
        // handshake timer is gone, so bound the wait with a short destroy timer.
        let timer = self.set_timeout(1_000, move |lp| {
            let _ = lp.tcp_destroy(id);
        });
        let _ = self.unref(timer);
    }

    fn tls_handshake_done(&mut self, id: TcpId) {
        let Some(s) = self.net.socket_mut(id) else {
            return;
        };
        let Some(tls) = s.tls.as_mut() else {
            return;
        };
        let timer = tls.handshake_timer();
        tls.phase = Phase::Established;
        let early = std::mem::take(&mut tls.early);
        s.queued -= std::mem::replace(&mut tls.early_bytes, 0);
        let accepted_by = if tls.is_server() { s.server } else { None };
        let ending = s.write_side == WriteSide::Ending;
        if let Some(t) = timer {
            let _ = self.clear_timeout(t);
        }
        // Writes made during the handshake go first, then the FIN if `end` came meanwhile.
        for chunk in early {
            self.tls_seal(id, &chunk);
        }
        if ending {
            self.tls_close_notify(id);
            if self.net.socket(id).is_some_and(|s| s.queue.is_empty()) {
                self.socket_shutdown_write(id);
            }
        }
        // A drain owed for the early plaintext follows when the queue empties (socket_flush),
        // or now if the kernel took it all at once (no writable edge will come).
        if let Some(s) = self.net.socket_mut(id) {
            if s.need_drain && s.queue.is_empty() {
                s.need_drain = false;
                self.socket_defer_drain(id);
            }
        }
        match accepted_by {
            Some(server) => self.server_emit_connection(server, id),
            None => self.socket_emit_connect(id),
        }
    }

    // -- writing --------------------------------------------------------------------------------

    /// `tcp_write` on a TLS socket. Returns whether the socket is below its high-water mark.
    pub(crate) fn tls_write(&mut self, id: TcpId, data: &[u8]) -> bool {
        let Some(s) = self.net.socket_mut(id) else {
            return false;
        };
        let Some(tls) = s.tls.as_mut() else {
            return false;
        };
        if data.is_empty() {
            return s.queued < s.options.high_water_mark;
        }
        match tls.phase {
            Phase::Handshaking { .. } => {
                tls.early.push_back(Bytes::copy_from_slice(data));
                tls.early_bytes += data.len();
                s.queued += data.len();
                let below = s.queued < s.options.high_water_mark;
                if !below {
                    s.need_drain = true;
                }
                return below;
            }
            Phase::Refused => return false,
            Phase::Established => {}
        }
        if s.corked > 0 {
            tls.corked.extend_from_slice(data);
            if tls.corked.len() < CORK_WRITE_THROUGH {
                return s.queued < s.options.high_water_mark;
            }
            self.tls_seal_held_back(id);
            return self
                .net
                .socket(id)
                .is_some_and(|s| s.queued < s.options.high_water_mark);
        }
        self.tls_seal(id, data)
    }

    /// Encrypts what a corked socket held back (the outermost `tcp_uncork`).
    pub(crate) fn tls_seal_corked(&mut self, id: TcpId) {
        let drain_due = self
            .net
            .socket_mut(id)
            .is_some_and(|s| std::mem::replace(&mut s.need_drain, false));
        self.tls_seal_held_back(id);
        let Some(s) = self.net.socket_mut(id) else {
            return;
        };
        if !s.queue.is_empty() {
            s.need_drain = drain_due || s.queued >= s.options.high_water_mark;
        } else if drain_due {
            self.socket_defer_drain(id);
        }
    }

    fn tls_seal_held_back(&mut self, id: TcpId) {
        let Some(tls) = self.net.socket_mut(id).and_then(|s| s.tls.as_mut()) else {
            return;
        };
        if tls.corked.is_empty() {
            return;
        }
        let held = std::mem::take(&mut tls.corked);
        self.tls_seal(id, &held);
        // Keep the buffer's capacity for the next cork, unless a burst made it large.
        if let Some(tls) = self.net.socket_mut(id).and_then(|s| s.tls.as_mut()) {
            if held.capacity() <= CORK_BUFFER_KEEP && tls.corked.is_empty() {
                let mut held = held;
                held.clear();
                tls.corked = held;
            }
        }
    }

    /// `tcp_end` on a TLS socket: held-back plaintext, then close_notify. (During the
    /// handshake nothing goes out yet: `tls_handshake_done` finishes the job.)
    pub(crate) fn tls_end(&mut self, id: TcpId) {
        let Some(tls) = self.net.socket_mut(id).and_then(|s| s.tls.as_mut()) else {
            return;
        };
        if !tls.is_established() {
            return;
        }
        self.tls_seal_held_back(id);
        self.tls_close_notify(id);
    }

    fn tls_close_notify(&mut self, id: TcpId) {
        if let Some(tls) = self.net.socket_mut(id).and_then(|s| s.tls.as_mut()) {
            tls.conn.send_close_notify();
        }
        self.tls_send_pending(id);
    }

    /// Encrypts `data` and sends the ciphertext. Returns whether the socket is below its
    /// high-water mark.
    fn tls_seal(&mut self, id: TcpId, data: &[u8]) -> bool {
        let mut below = true;
        for piece in data.chunks(SEAL_PIECE) {
            let Some(tls) = self.net.socket_mut(id).and_then(|s| s.tls.as_mut()) else {
                return false;
            };
            if let Err(e) = tls.conn.writer().write_all(piece) {
                self.socket_fail(id, e);
                return false;
            }
            below = self.tls_send_pending(id);
        }
        below
    }

    /// Moves everything rustls wants to send into the socket's write path. Returns whether
    /// the socket is below its high-water mark.
    pub(crate) fn tls_send_pending(&mut self, id: TcpId) -> bool {
        let mut out = std::mem::take(&mut self.net.tls_out);
        out.clear();
        if let Some(tls) = self.net.socket_mut(id).and_then(|s| s.tls.as_mut()) {
            while tls.conn.wants_write() {
                // Writing into a Vec cannot fail.
                if tls.conn.write_tls(&mut out).is_err() {
                    break;
                }
            }
        }
        let below = match out.is_empty() {
            true => self
                .net
                .socket(id)
                .is_some_and(|s| s.queued < s.options.high_water_mark),
            false => self.socket_send(id, Chunk::Borrowed(&out)).unwrap_or(false),
        };
        if out.capacity() <= OUT_BUFFER_KEEP {
            self.net.tls_out = out;
        }
        below
    }
}

impl TlsLayer {
    fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Established)
    }
}
