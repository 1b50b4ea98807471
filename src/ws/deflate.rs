//! permessage-deflate (RFC 7692): offer negotiation, and the raw-deflate compressor and
//! bounded decompressor behind compressed messages.
//!
//! # Negotiation (server side, §7.1)
//! [`negotiate`] reads every `Sec-WebSocket-Extensions` offer in order and accepts the first
//! `permessage-deflate` offer whose parameters it understands and can honour; anything else
//! (an unknown or repeated parameter, a value out of 8..=15, `server_max_window_bits=8`, which
//! zlib's deflate cannot produce) declines that offer, and when no offer is acceptable the
//! handshake succeeds without the extension (never a failed handshake).
//!
//! # Bounds
//! - [`Inflater::inflate`] never holds more than `limit + 1` output bytes of a message: the
//!   output buffer grows in steps of at most [`INFLATE_STEP`] and the message fails with
//!   1009 as soon as its inflated size passes `limit` (`max_payload`), so a small "bomb" costs
//!   at most `max_payload` + one step, never what it would inflate to.
//! - A compressor/decompressor's state is allocated lazily: shared mode keeps none per
//!   connection (see docs/ws.md "Compression" for measured per-connection memory).

use std::cell::RefCell;
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::frame::{self, CloseReason, OpCode, CLOSE_INVALID_PAYLOAD, CLOSE_TOO_BIG};

/// The four bytes a sync flush ends with; the sender strips them, the receiver appends them
/// (§7.2.1, §7.2.2).
const SYNC_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// Output grows by at most this many bytes per inflate step (bounds the overshoot past the
/// limit).
pub const INFLATE_STEP: usize = 64 * 1024;

/// Extension name.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// How an endpoint compresses (uWebSockets' `CompressOptions`, reduced to its three modes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CompressionMode {
    /// No compression: offers of permessage-deflate are declined (the default, as `ws`
    /// servers and uWS).
    #[default]
    Off,
    /// No context takeover in either direction: every message is its own deflate stream, so a
    /// publish is compressed once and the same frame bytes go to every subscriber that
    /// negotiated the same window size; a connection keeps no compression state between
    /// messages (uWS's `SHARED_COMPRESSOR | SHARED_DECOMPRESSOR`).
    Shared,
    /// A sliding window per connection in each direction (context takeover, unless the client
    /// asks for none): better ratios on small similar messages, at a memory cost per
    /// connection (docs/ws.md) and one compression per subscriber on publish
    /// (uWS's `DEDICATED_COMPRESSOR | DEDICATED_DECOMPRESSOR`).
    Dedicated,
}

/// What a handshake agreed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The server resets its compressor after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after each message (the server's decompressor can be
    /// dropped between messages).
    pub client_no_context_takeover: bool,
    /// The server's LZ77 window (9..=15), announced when the client asked for a limit.
    pub server_max_window_bits: u8,
    /// Whether the client asked for `server_max_window_bits` (the response must echo it).
    server_window_requested: bool,
}

impl Negotiated {
    /// The `Sec-WebSocket-Extensions` response value.
    pub fn response(&self) -> String {
        let mut s = String::from(PERMESSAGE_DEFLATE);
        if self.server_no_context_takeover {
            s.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            s.push_str("; client_no_context_takeover");
        }
        if self.server_window_requested {
            s.push_str(&format!(
                "; server_max_window_bits={}",
                self.server_max_window_bits
            ));
        }
        s
    }
}

#[derive(Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `client_max_window_bits` present, with or without a value.
    client_max_window_bits: bool,
}

fn window_bits(v: Option<&str>) -> Option<u8> {
    let v = v?;
    if v.is_empty() || v.len() > 2 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse::<u8>().ok().filter(|b| (8..=15).contains(b))
}

/// Parses one offer's parameters (`name[=value]`, values possibly quoted); `None` if any is
/// unknown, repeated or invalid (§7.1: decline the offer).
fn parse_offer<'a>(params: impl Iterator<Item = &'a str>) -> Option<Offer> {
    let mut o = Offer::default();
    let mut client_bits_seen = false;
    for p in params {
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (p.trim(), None),
        };
        match name.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() && !o.server_no_context_takeover => {
                o.server_no_context_takeover = true;
            }
            "client_no_context_takeover" if value.is_none() && !o.client_no_context_takeover => {
                o.client_no_context_takeover = true;
            }
            "server_max_window_bits" if o.server_max_window_bits.is_none() => {
                o.server_max_window_bits = Some(window_bits(value)?);
            }
            "client_max_window_bits" if !client_bits_seen => {
                client_bits_seen = true;
                if value.is_some() {
                    window_bits(value)?;
                }
                o.client_max_window_bits = true;
            }
            _ => return None,
        }
    }
    Some(o)
}

/// Picks the first acceptable `permessage-deflate` offer among `header_values` (every
/// `Sec-WebSocket-Extensions` field, in order). `None` when `mode` is off or nothing is
/// acceptable: the handshake then goes on without the extension.
///
/// Shared mode always answers `server_no_context_takeover; client_no_context_takeover` (a
/// server may add both to any offer, §7.1.1); dedicated mode keeps context takeover unless
/// the client asked otherwise. `server_max_window_bits=N` is honoured for N in 9..=15 (the
/// compressor then uses N); N = 8 declines the offer (zlib deflates with at least 9 bits).
/// `client_max_window_bits` is never answered: the decompressor always uses a 15-bit window,
/// which inflates any window the client uses.
pub fn negotiate<'a>(
    header_values: impl IntoIterator<Item = &'a [u8]>,
    mode: CompressionMode,
) -> Option<Negotiated> {
    if mode == CompressionMode::Off {
        return None;
    }
    for value in header_values {
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        // Offers are comma separated; quoted values never contain commas here (window bits).
        for offer in value.split(',') {
            let mut parts = offer.split(';');
            let name = parts.next().unwrap_or("").trim();
            if !name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
                continue;
            }
            let Some(o) = parse_offer(parts) else {
                continue;
            };
            let _ = o.client_max_window_bits;
            if o.server_max_window_bits == Some(8) {
                continue;
            }
            let shared = mode == CompressionMode::Shared;
            return Some(Negotiated {
                server_no_context_takeover: shared || o.server_no_context_takeover,
                client_no_context_takeover: shared || o.client_no_context_takeover,
                server_max_window_bits: o.server_max_window_bits.unwrap_or(15),
                server_window_requested: o.server_max_window_bits.is_some(),
            });
        }
    }
    None
}

// -- compression --------------------------------------------------------------------------------

/// Raw deflate of whole messages (§7.2.1): sync flush, the trailing `00 00 ff ff` removed.
pub struct Deflater {
    inner: Compress,
    window_bits: u8,
    no_context_takeover: bool,
}

impl Deflater {
    /// A compressor with a `window_bits` (9..=15, clamped) window; `no_context_takeover`
    /// resets it after every message.
    pub fn new(window_bits: u8, no_context_takeover: bool) -> Deflater {
        let window_bits = window_bits.clamp(9, 15);
        Deflater {
            inner: Compress::new_with_window_bits(Compression::default(), false, window_bits),
            window_bits,
            no_context_takeover,
        }
    }

    /// The window size in bits.
    pub fn window_bits(&self) -> u8 {
        self.window_bits
    }

    /// Compresses one message's payload.
    pub fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out: Vec<u8> = Vec::with_capacity(data.len() / 2 + 64);
        let start_in = self.inner.total_in();
        loop {
            let consumed = (self.inner.total_in() - start_in) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(1024));
            }
            let before_out = out.len();
            let res = self.inner.compress_vec(
                data.get(consumed..).unwrap_or(&[]),
                &mut out,
                FlushCompress::Sync,
            );
            if res.is_err() {
                break; // cannot happen with valid state; the output so far is still a stream
            }
            let consumed_now = (self.inner.total_in() - start_in) as usize;
            // Done when all input is in and the flush did not fill the buffer.
            if consumed_now >= data.len() && out.len() < out.capacity() {
                break;
            }
            if consumed_now == consumed && out.len() == before_out && out.len() < out.capacity() {
                break;
            }
        }
        if out.ends_with(&SYNC_TAIL) {
            out.truncate(out.len() - SYNC_TAIL.len());
        }
        if self.no_context_takeover {
            self.inner.reset();
        }
        out
    }
}

/// The compressors of a shared-mode endpoint, one per window size in use (allocated on first
/// use), reset after every message: a publish compresses once for all its subscribers.
#[derive(Clone, Default)]
pub struct SharedDeflaters(Rc<RefCell<Vec<Deflater>>>);

impl SharedDeflaters {
    /// Compresses `data` as a stream of its own with a `window_bits` window.
    pub fn compress(&self, data: &[u8], window_bits: u8) -> Vec<u8> {
        let mut all = self.0.borrow_mut();
        let pos = match all.iter().position(|d| d.window_bits == window_bits) {
            Some(p) => p,
            None => {
                all.push(Deflater::new(window_bits, true));
                all.len() - 1
            }
        };
        match all.get_mut(pos) {
            Some(d) => d.compress(data),
            None => Deflater::new(window_bits, true).compress(data),
        }
    }
}

/// How one connection compresses what it sends.
pub(crate) enum Outgoing {
    /// Nothing negotiated: plain frames.
    Plain,
    /// Shared mode: the endpoint's compressors, this connection's window size.
    Shared {
        deflaters: SharedDeflaters,
        window_bits: u8,
    },
    /// Dedicated mode: the connection's own compressor (created on first use).
    Dedicated {
        deflater: Option<Box<Deflater>>,
        window_bits: u8,
        no_context_takeover: bool,
    },
}

/// A compressed message frame (FIN, RSV1 set).
pub fn compressed_frame(opcode: OpCode, compressed: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(
        frame::header_len(compressed.len() as u64, false) + compressed.len(),
    );
    frame::encode_frame_rsv1(&mut out, opcode, compressed);
    out.freeze()
}

impl Outgoing {
    /// The frame to send `payload` as, compressed, or `None` to send it plain (nothing
    /// negotiated, shorter than `threshold`, or in shared mode not smaller compressed).
    pub(crate) fn frame(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        threshold: usize,
    ) -> Option<Bytes> {
        if payload.len() < threshold {
            return None;
        }
        match self {
            Outgoing::Plain => None,
            Outgoing::Shared {
                deflaters,
                window_bits,
            } => {
                let c = deflaters.compress(payload, *window_bits);
                (c.len() < payload.len()).then(|| compressed_frame(opcode, &c))
            }
            Outgoing::Dedicated {
                deflater,
                window_bits,
                no_context_takeover,
            } => {
                let d = deflater.get_or_insert_with(|| {
                    Box::new(Deflater::new(*window_bits, *no_context_takeover))
                });
                Some(compressed_frame(opcode, &d.compress(payload)))
            }
        }
    }

    /// For a publish: the shared compressors and window size, if this connection's frames can
    /// be shared with others of the same window size.
    pub(crate) fn shared_key(&self) -> Option<(&SharedDeflaters, u8)> {
        match self {
            Outgoing::Shared {
                deflaters,
                window_bits,
            } => Some((deflaters, *window_bits)),
            _ => None,
        }
    }
}

/// The frames of one publish: the plain frame and one compressed frame per window size,
/// each built at most once and shared (reference counted) by every subscriber that takes it.
pub(crate) struct PublishFrames<'m> {
    opcode: OpCode,
    payload: &'m [u8],
    plain: Option<Bytes>,
    /// Per window size (index bits - 9): `Some(None)` = compression did not pay, send plain.
    shared: [Option<Option<Bytes>>; 7],
}

impl<'m> PublishFrames<'m> {
    pub(crate) fn new(opcode: OpCode, payload: &'m [u8]) -> Self {
        PublishFrames {
            opcode,
            payload,
            plain: None,
            shared: Default::default(),
        }
    }

    pub(crate) fn plain(&mut self) -> Bytes {
        let (opcode, payload) = (self.opcode, self.payload);
        self.plain
            .get_or_insert_with(|| {
                let mut out = BytesMut::new();
                frame::encode_frame(&mut out, true, opcode, payload);
                out.freeze()
            })
            .clone()
    }

    /// The frame for a subscriber with `outgoing` and `threshold`.
    pub(crate) fn frame_for(&mut self, outgoing: &mut Outgoing, threshold: usize) -> Bytes {
        if self.payload.len() < threshold {
            return self.plain();
        }
        if let Some((deflaters, bits)) = outgoing.shared_key() {
            let slot = usize::from(bits.clamp(9, 15) - 9);
            if let Some(cell) = self.shared.get_mut(slot) {
                let (opcode, payload) = (self.opcode, self.payload);
                let f = cell.get_or_insert_with(|| {
                    let c = deflaters.compress(payload, bits);
                    (c.len() < payload.len()).then(|| compressed_frame(opcode, &c))
                });
                if let Some(f) = f {
                    return f.clone();
                }
            }
            return self.plain();
        }
        match outgoing.frame(self.opcode, self.payload, threshold) {
            Some(f) => f,
            None => self.plain(),
        }
    }
}

// -- decompression ------------------------------------------------------------------------------

const INFLATE_ERROR: CloseReason = CloseReason {
    code: CLOSE_INVALID_PAYLOAD,
    reason: "invalid compressed data",
};

const INFLATED_TOO_BIG: CloseReason = CloseReason {
    code: CLOSE_TOO_BIG,
    reason: "message too big after inflation",
};

/// Raw inflate with a 15-bit window (inflates whatever window the client uses).
pub struct Inflater {
    inner: Decompress,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater::new()
    }
}

impl Inflater {
    /// A decompressor with a 32 KiB window.
    pub fn new() -> Inflater {
        Inflater {
            inner: Decompress::new_with_window_bits(false, 15),
        }
    }

    /// Inflates `input` (part of one message) and appends it to `out`; fails with 1009 once
    /// `out` would pass `limit` bytes, 1007 on corrupt data. `out` grows geometrically but its
    /// capacity never passes `limit + 1` (exact reservations), whatever the input inflates to.
    pub fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), CloseReason> {
        let mut consumed = 0usize;
        loop {
            let rest = input.get(consumed..).unwrap_or(&[]);
            if out.len() >= out.capacity() {
                // Double (at least one step), capped one byte past the limit.
                let cap = limit.saturating_add(1);
                let want = out
                    .capacity()
                    .saturating_mul(2)
                    .max(out.len() + INFLATE_STEP.min(4096));
                let new_cap = want.min(cap);
                if new_cap <= out.len() {
                    return Err(INFLATED_TOO_BIG);
                }
                out.reserve_exact(new_cap - out.len());
            }
            let room = out.capacity() - out.len();
            let (in0, out0) = (self.inner.total_in(), self.inner.total_out());
            let status = self
                .inner
                .decompress_vec(rest, out, FlushDecompress::Sync)
                .map_err(|_| INFLATE_ERROR)?;
            let used = (self.inner.total_in() - in0) as usize;
            let produced = (self.inner.total_out() - out0) as usize;
            consumed += used;
            if out.len() > limit {
                return Err(INFLATED_TOO_BIG);
            }
            let all_in = consumed >= input.len();
            if status == Status::StreamEnd {
                // A final block (BFINAL=1): a fresh stream for whatever follows.
                self.inner.reset(false);
                if all_in {
                    return Ok(());
                }
                continue;
            }
            if produced < room {
                if all_in {
                    return Ok(());
                }
                if used == 0 && produced == 0 {
                    // No progress with room to spare: corrupt.
                    return Err(INFLATE_ERROR);
                }
            }
        }
    }

    /// Ends a message: inflates the implied `00 00 ff ff` tail (§7.2.2).
    pub fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), CloseReason> {
        self.inflate(&SYNC_TAIL, out, limit)
    }

    /// Forgets the window (no context takeover).
    pub fn reset(&mut self) {
        self.inner.reset(false);
    }
}

/// Receive-side state of a connection that negotiated permessage-deflate.
pub(crate) struct Incoming {
    inflater: Option<Box<Inflater>>,
    /// The client resets its window after each message: drop the inflater between messages.
    no_context_takeover: bool,
}

impl Incoming {
    pub(crate) fn new(no_context_takeover: bool) -> Incoming {
        Incoming {
            inflater: None,
            no_context_takeover,
        }
    }

    /// Inflates one frame's payload of a compressed message into `out`; `fin` ends it.
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        fin: bool,
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), CloseReason> {
        let inf = self.inflater.get_or_insert_with(Box::default);
        inf.inflate(input, out, limit)?;
        if fin {
            inf.finish(out, limit)?;
            if self.no_context_takeover {
                self.inflater = None;
            }
        }
        Ok(())
    }

    /// Whether a decompressor is allocated (between messages: only with context takeover).
    pub(crate) fn has_state(&self) -> bool {
        self.inflater.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neg(v: &str, mode: CompressionMode) -> Option<String> {
        negotiate([v.as_bytes()], mode).map(|n| n.response())
    }

    #[test]
    fn off_declines_every_offer() {
        assert_eq!(neg("permessage-deflate", CompressionMode::Off), None);
    }

    #[test]
    fn each_parameter_is_accepted_and_answered() {
        use CompressionMode::*;
        assert_eq!(
            neg("permessage-deflate", Dedicated).unwrap(),
            "permessage-deflate"
        );
        assert_eq!(
            neg("permessage-deflate", Shared).unwrap(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        );
        assert_eq!(
            neg("permessage-deflate; server_no_context_takeover", Dedicated).unwrap(),
            "permessage-deflate; server_no_context_takeover"
        );
        assert_eq!(
            neg("permessage-deflate; client_no_context_takeover", Dedicated).unwrap(),
            "permessage-deflate; client_no_context_takeover"
        );
        assert_eq!(
            neg("permessage-deflate; server_max_window_bits=10", Dedicated).unwrap(),
            "permessage-deflate; server_max_window_bits=10"
        );
        assert_eq!(
            neg(
                "permessage-deflate; server_max_window_bits=\"12\"",
                Dedicated
            )
            .unwrap(),
            "permessage-deflate; server_max_window_bits=12"
        );
        assert_eq!(
            neg("permessage-deflate; client_max_window_bits", Dedicated).unwrap(),
            "permessage-deflate"
        );
        assert_eq!(
            neg("permessage-deflate; client_max_window_bits=8", Dedicated).unwrap(),
            "permessage-deflate"
        );
    }

    #[test]
    fn unsupported_offers_are_declined_and_the_next_one_taken() {
        use CompressionMode::*;
        for bad in [
            "permessage-deflate; server_max_window_bits=8",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=abc",
            "permessage-deflate; client_max_window_bits=16",
            "permessage-deflate; client_max_window_bits=0x9",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; unknown_param",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(neg(bad, Dedicated), None, "{bad}");
            assert_eq!(neg(bad, Shared), None, "{bad}");
        }
        // Several offers in one header, and across fields: the first acceptable one wins.
        assert_eq!(
            neg(
                "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=9, permessage-deflate",
                Dedicated
            )
            .unwrap(),
            "permessage-deflate; server_max_window_bits=9"
        );
        let n = negotiate(
            [
                &b"foo, permessage-deflate; bogus"[..],
                b"permessage-deflate; client_no_context_takeover",
            ],
            Dedicated,
        )
        .unwrap();
        assert!(n.client_no_context_takeover && !n.server_no_context_takeover);
    }

    #[test]
    fn round_trip_with_and_without_context_takeover() {
        for nct in [false, true] {
            let mut d = Deflater::new(15, nct);
            let mut inc = Incoming::new(nct);
            // 2 KiB of JSON with varied words: compresses somewhat on its own, and to almost
            // nothing when the previous copy is in the window.
            let mut seed = 7u32;
            let mut msg = Vec::new();
            while msg.len() < 2048 {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                msg.extend_from_slice(
                    format!("{{\"id\":{},\"w\":\"{:x}\"}},", seed >> 16, seed).as_bytes(),
                );
            }
            let mut sizes = Vec::new();
            for _ in 0..5 {
                let c = d.compress(&msg);
                sizes.push(c.len());
                let mut out = Vec::new();
                inc.inflate(&c, true, &mut out, 1 << 20).unwrap();
                assert_eq!(&out[..], &msg[..]);
                assert_eq!(inc.has_state(), !nct);
            }
            if nct {
                assert!(sizes.iter().all(|&s| s == sizes[0]));
            } else {
                assert!(sizes[1] < sizes[0] / 4, "{sizes:?}");
            }
        }
    }

    #[test]
    fn a_bomb_fails_at_the_limit_without_growing_past_it() {
        let zeros = vec![0u8; 8 << 20];
        let c = Deflater::new(15, true).compress(&zeros);
        assert!(c.len() < 16 * 1024, "{}", c.len());
        let mut out = Vec::new();
        let e = Inflater::new().inflate(&c, &mut out, 1 << 20).unwrap_err();
        assert_eq!(e.code, 1009);
        assert!(
            out.capacity() <= (1 << 20) + INFLATE_STEP + 1,
            "{}",
            out.capacity()
        );
    }

    #[test]
    fn corrupt_data_is_1007() {
        let mut out = Vec::new();
        let e = Inflater::new()
            .inflate(&[0xff; 32], &mut out, 1 << 20)
            .unwrap_err();
        assert_eq!(e.code, 1007);
    }

    #[test]
    fn rfc_7692_hello_examples_inflate() {
        // §7.2.3.1: "Hello" compressed, and §7.2.3.2 with context takeover.
        let mut inc = Incoming::new(false);
        let mut out = Vec::new();
        inc.inflate(
            &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
            true,
            &mut out,
            100,
        )
        .unwrap();
        assert_eq!(&out[..], b"Hello");
        let mut out = Vec::new();
        inc.inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], true, &mut out, 100)
            .unwrap();
        assert_eq!(&out[..], b"Hello");
        // §7.2.3.4: a block with BFINAL=1 followed by nothing.
        let mut out = Vec::new();
        Incoming::new(true)
            .inflate(
                &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00],
                true,
                &mut out,
                100,
            )
            .unwrap();
        assert_eq!(&out[..], b"Hello");
    }
}
