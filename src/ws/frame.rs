//! WebSocket frame layer (RFC 6455 §5): server-side streaming decoder and
//! frame encoders.
//!
//! Decoding is zero-copy where possible: the payload is split off the front
//! of the caller's `BytesMut`, unmasked in place and frozen into `Bytes`.
//!
//! Length encoding: RFC 6455 §5.2 says the *sender* MUST use the minimal
//! number of bytes for the payload length, but does not tell the receiver to
//! fail the connection otherwise. The Autobahn testsuite has no case for it
//! (crossbario/autobahn-testsuite#108 is an open request) and common servers
//! (e.g. tungstenite) accept such frames, so by default the decoder accepts
//! non-minimal encodings; [`FrameDecoder::set_reject_non_minimal_length`]
//! turns on strict rejection (close 1002). A 64-bit length with the most
//! significant bit set is always rejected (1002). The encoders here always
//! emit minimal lengths.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Close code 1000: normal closure.
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code 1001: going away (server shutdown).
pub const CLOSE_GOING_AWAY: u16 = 1001;
/// Close code 1002: protocol error.
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Close code 1007: invalid frame payload data (e.g. bad UTF-8).
pub const CLOSE_INVALID_PAYLOAD: u16 = 1007;
/// Close code 1009: message too big.
pub const CLOSE_TOO_BIG: u16 = 1009;

/// Maximum payload length of a control frame (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Largest possible frame header: 2 + 8 (length) + 4 (mask).
pub const MAX_HEADER_LEN: usize = 14;

/// A protocol violation: the connection must be failed by sending a Close
/// frame with `code` (and optionally `reason`) and closing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseReason {
    /// Close status code to send (1002, 1007, 1009, ...).
    pub code: u16,
    /// Short human readable description (ASCII, < 123 bytes).
    pub reason: &'static str,
}

impl CloseReason {
    pub(super) const fn protocol(reason: &'static str) -> Self {
        CloseReason {
            code: CLOSE_PROTOCOL_ERROR,
            reason,
        }
    }
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.reason, self.code)
    }
}

impl std::error::Error for CloseReason {}

/// Frame opcode (§5.2). Reserved opcodes are rejected by the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpCode {
    /// 0x0: continuation of a fragmented message.
    Continuation,
    /// 0x1: text data frame.
    Text,
    /// 0x2: binary data frame.
    Binary,
    /// 0x8: connection close.
    Close,
    /// 0x9: ping.
    Ping,
    /// 0xA: pong.
    Pong,
}

impl OpCode {
    /// Parses the 4-bit opcode; `None` for reserved values.
    pub fn from_u8(v: u8) -> Option<OpCode> {
        Some(match v {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// The 4-bit wire value.
    pub fn as_u8(self) -> u8 {
        match self {
            OpCode::Continuation => 0x0,
            OpCode::Text => 0x1,
            OpCode::Binary => 0x2,
            OpCode::Close => 0x8,
            OpCode::Ping => 0x9,
            OpCode::Pong => 0xA,
        }
    }

    /// `true` for Close, Ping and Pong.
    pub fn is_control(self) -> bool {
        matches!(self, OpCode::Close | OpCode::Ping | OpCode::Pong)
    }
}

/// Decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN bit: last fragment of a message.
    pub fin: bool,
    /// RSV1 bit (false after successful decoding unless permessage-deflate was negotiated:
    /// then it marks the first frame of a compressed message).
    pub rsv1: bool,
    /// RSV2 bit (always false after successful decoding).
    pub rsv2: bool,
    /// RSV3 bit (always false after successful decoding).
    pub rsv3: bool,
    /// Frame opcode.
    pub opcode: OpCode,
    /// MASK bit (always true for decoded client frames).
    pub masked: bool,
    /// Masking key, if `masked`.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes.
    pub payload_len: u64,
}

/// A complete decoded frame with its payload already unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The frame header (as received, including the mask key).
    pub header: FrameHeader,
    /// Unmasked payload.
    pub payload: Bytes,
}

/// Streaming decoder for client-to-server frames.
///
/// Call [`FrameDecoder::decode`] whenever new bytes were appended to the
/// buffer. Header bytes are consumed as soon as the header is complete;
/// payload bytes are consumed when the whole payload is present. After an
/// error the decoder is poisoned and keeps returning that error without
/// consuming anything.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_payload: u64,
    reject_non_minimal: bool,
    /// RSV1 is allowed (permessage-deflate negotiated; the message layer checks where).
    allow_rsv1: bool,
    /// Header already consumed from the buffer, waiting for its payload.
    pending: Option<FrameHeader>,
    /// How many leading payload bytes of the pending frame (still in the
    /// buffer) have already been unmasked in place.
    unmasked: usize,
    error: Option<CloseReason>,
}

impl FrameDecoder {
    /// Creates a decoder that rejects data frames whose payload exceeds
    /// `max_payload` bytes with close code 1009.
    pub fn new(max_payload: usize) -> Self {
        FrameDecoder {
            max_payload: max_payload as u64,
            reject_non_minimal: false,
            allow_rsv1: false,
            pending: None,
            unmasked: 0,
            error: None,
        }
    }

    /// Changes the data-frame payload limit (affects headers not yet parsed).
    pub fn set_max_payload(&mut self, max_payload: usize) {
        self.max_payload = max_payload as u64;
    }

    /// If `true`, non-minimal payload length encodings fail with 1002
    /// (default `false`, see the module docs).
    pub fn set_reject_non_minimal_length(&mut self, reject: bool) {
        self.reject_non_minimal = reject;
    }

    /// Accepts frames with RSV1 set (permessage-deflate negotiated); RSV2/RSV3 still fail
    /// with 1002. Where RSV1 may appear (first frame of a data message only) is the message
    /// layer's check.
    pub fn set_allow_rsv1(&mut self, allow: bool) {
        self.allow_rsv1 = allow;
    }

    /// The error this decoder failed with, if any.
    pub fn error(&self) -> Option<CloseReason> {
        self.error
    }

    fn fail(&mut self, e: CloseReason) -> CloseReason {
        self.error = Some(e);
        e
    }

    /// Parses (and consumes) the next frame header if it is complete, and
    /// returns it; the payload stays in `buf`. Repeated calls return the same
    /// pending header until [`FrameDecoder::decode`] takes the frame.
    pub fn poll_header(&mut self, buf: &mut BytesMut) -> Result<Option<FrameHeader>, CloseReason> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if let Some(h) = self.pending {
            return Ok(Some(h));
        }
        match parse_header(
            buf,
            self.max_payload,
            self.reject_non_minimal,
            self.allow_rsv1,
        ) {
            Ok(None) => Ok(None),
            Ok(Some((h, len))) => {
                buf.advance(len);
                self.pending = Some(h);
                self.unmasked = 0;
                Ok(Some(h))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Unmasks (in place) whatever part of the pending frame's payload has
    /// arrived and returns it; empty if no header is pending. Lets callers
    /// inspect a large payload before it is complete (fail-fast UTF-8).
    pub fn partial_payload<'b>(&mut self, buf: &'b mut BytesMut) -> &'b [u8] {
        let Some(h) = self.pending else { return &[] };
        let avail = (h.payload_len.min(buf.len() as u64)) as usize;
        if let (Some(mask), Some(region)) = (h.mask, buf.get_mut(self.unmasked..avail)) {
            apply_mask(region, mask, self.unmasked);
        }
        self.unmasked = self.unmasked.max(avail);
        buf.get(..avail).unwrap_or(&[])
    }

    /// Decodes the next complete frame from the front of `buf`.
    ///
    /// Returns `Ok(None)` if more bytes are needed (a complete header may
    /// have been consumed already). Violations yield the close code to send.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, CloseReason> {
        let Some(h) = self.poll_header(buf)? else {
            return Ok(None);
        };
        if (buf.len() as u64) < h.payload_len {
            return Ok(None);
        }
        // payload_len <= buf.len() so it fits in usize.
        let len = h.payload_len as usize;
        let mut payload = buf.split_to(len);
        if let (Some(mask), Some(region)) = (h.mask, payload.get_mut(self.unmasked..)) {
            apply_mask(region, mask, self.unmasked);
        }
        self.pending = None;
        self.unmasked = 0;
        Ok(Some(Frame {
            header: h,
            payload: payload.freeze(),
        }))
    }
}

/// Parses a header from the front of `buf` without consuming it. Returns the
/// header and its encoded length, or `None` if incomplete. Checks that can be
/// made from the first two bytes fail before the rest has arrived.
fn parse_header(
    buf: &[u8],
    max_payload: u64,
    reject_non_minimal: bool,
    allow_rsv1: bool,
) -> Result<Option<(FrameHeader, usize)>, CloseReason> {
    let (b0, b1) = match buf {
        [b0, b1, ..] => (*b0, *b1),
        _ => return Ok(None),
    };
    let fin = b0 & 0x80 != 0;
    let (rsv1, rsv2, rsv3) = (b0 & 0x40 != 0, b0 & 0x20 != 0, b0 & 0x10 != 0);
    if (rsv1 && !allow_rsv1) || rsv2 || rsv3 {
        return Err(CloseReason::protocol("reserved bits set"));
    }
    let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(CloseReason::protocol("reserved opcode"))?;
    let masked = b1 & 0x80 != 0;
    if !masked {
        return Err(CloseReason::protocol("client frame not masked"));
    }
    let len7 = b1 & 0x7F;
    if opcode.is_control() {
        if !fin {
            return Err(CloseReason::protocol("fragmented control frame"));
        }
        if len7 as usize > MAX_CONTROL_PAYLOAD {
            return Err(CloseReason::protocol("control frame payload too long"));
        }
    }
    let (payload_len, mut pos) = match len7 {
        126 => match buf.get(2..4) {
            Some(&[a, b]) => {
                let n = u16::from_be_bytes([a, b]) as u64;
                if reject_non_minimal && n < 126 {
                    return Err(CloseReason::protocol("non-minimal length"));
                }
                (n, 4)
            }
            _ => return Ok(None),
        },
        127 => match buf.get(2..10) {
            Some(s) => {
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                let n = u64::from_be_bytes(a);
                if n >> 63 != 0 {
                    return Err(CloseReason::protocol("64-bit length has MSB set"));
                }
                if reject_non_minimal && n <= 0xFFFF {
                    return Err(CloseReason::protocol("non-minimal length"));
                }
                (n, 10)
            }
            None => return Ok(None),
        },
        n => (n as u64, 2),
    };
    if !opcode.is_control() && payload_len > max_payload {
        return Err(CloseReason {
            code: CLOSE_TOO_BIG,
            reason: "frame too big",
        });
    }
    let mask = match buf.get(pos..pos + 4) {
        Some(&[a, b, c, d]) => [a, b, c, d],
        _ => return Ok(None),
    };
    pos += 4;
    Ok(Some((
        FrameHeader {
            fin,
            rsv1,
            rsv2,
            rsv3,
            opcode,
            masked,
            mask: Some(mask),
            payload_len,
        },
        pos,
    )))
}

/// XORs `data` with `mask`, where `data[0]` is payload byte number `offset`.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4], offset: usize) {
    let mut m = mask;
    m.rotate_left(offset % 4);
    let word = u64::from_ne_bytes([m[0], m[1], m[2], m[3], m[0], m[1], m[2], m[3]]);
    let mut chunks = data.chunks_exact_mut(8);
    for c in &mut chunks {
        let mut a = [0u8; 8];
        a.copy_from_slice(c);
        c.copy_from_slice(&(u64::from_ne_bytes(a) ^ word).to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= m[i % 4];
    }
}

/// Encoded length of a frame header for `payload_len`, unmasked or masked.
pub fn header_len(payload_len: u64, masked: bool) -> usize {
    let base = match payload_len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    };
    if masked {
        base + 4
    } else {
        base
    }
}

fn put_header(
    out: &mut BytesMut,
    fin: bool,
    opcode: OpCode,
    payload_len: u64,
    mask: Option<[u8; 4]>,
) {
    put_header_bits(out, if fin { 0x80 } else { 0 }, opcode, payload_len, mask);
}

/// `flags`: FIN (0x80) and RSV1 (0x40) bits of the first byte.
fn put_header_bits(
    out: &mut BytesMut,
    flags: u8,
    opcode: OpCode,
    payload_len: u64,
    mask: Option<[u8; 4]>,
) {
    out.reserve(header_len(payload_len, mask.is_some()));
    out.put_u8((flags & 0xC0) | opcode.as_u8());
    let mbit = if mask.is_some() { 0x80 } else { 0 };
    match payload_len {
        0..=125 => out.put_u8(mbit | payload_len as u8),
        126..=0xFFFF => {
            out.put_u8(mbit | 126);
            out.put_u16(payload_len as u16);
        }
        _ => {
            out.put_u8(mbit | 127);
            // Keep the MSB clear as required by §5.2.
            out.put_u64(payload_len & (u64::MAX >> 1));
        }
    }
    if let Some(m) = mask {
        out.put_slice(&m);
    }
}

/// Writes an unmasked (server-to-client) frame header with a minimal length
/// encoding; the caller appends (or separately writes) `payload_len` bytes of
/// payload. Lengths above 2^63-1 are truncated to 63 bits.
pub fn encode_frame_header(out: &mut BytesMut, fin: bool, opcode: OpCode, payload_len: u64) {
    put_header(out, fin, opcode, payload_len, None);
}

/// Writes a complete unmasked (server-to-client) frame.
pub fn encode_frame(out: &mut BytesMut, fin: bool, opcode: OpCode, payload: &[u8]) {
    out.reserve(header_len(payload.len() as u64, false) + payload.len());
    put_header(out, fin, opcode, payload.len() as u64, None);
    out.put_slice(payload);
}

/// Writes a complete unmasked frame of a compressed message (FIN and RSV1 set,
/// permessage-deflate): `payload` is the already compressed message.
pub fn encode_frame_rsv1(out: &mut BytesMut, opcode: OpCode, payload: &[u8]) {
    out.reserve(header_len(payload.len() as u64, false) + payload.len());
    put_header_bits(out, 0xC0, opcode, payload.len() as u64, None);
    out.put_slice(payload);
}

/// Writes a masked client frame with explicit FIN/RSV1 flags (0x80, 0x40); used by tests and
/// client code to send compressed messages.
pub fn encode_masked_frame_flags(
    out: &mut BytesMut,
    flags: u8,
    opcode: OpCode,
    mask: [u8; 4],
    payload: &[u8],
) {
    out.reserve(header_len(payload.len() as u64, true) + payload.len());
    put_header_bits(out, flags, opcode, payload.len() as u64, Some(mask));
    let start = out.len();
    out.put_slice(payload);
    if let Some(region) = out.get_mut(start..) {
        apply_mask(region, mask, 0);
    }
}

/// Writes a complete masked (client-to-server) frame; used by tests and
/// client code.
pub fn encode_masked_frame(
    out: &mut BytesMut,
    fin: bool,
    opcode: OpCode,
    mask: [u8; 4],
    payload: &[u8],
) {
    out.reserve(header_len(payload.len() as u64, true) + payload.len());
    put_header(out, fin, opcode, payload.len() as u64, Some(mask));
    let start = out.len();
    out.put_slice(payload);
    if let Some(region) = out.get_mut(start..) {
        apply_mask(region, mask, 0);
    }
}

/// Writes an unmasked Close frame with `code` and `reason`. The reason is
/// truncated (at a UTF-8 character boundary) to fit the 125-byte control
/// payload limit.
pub fn encode_close(out: &mut BytesMut, code: u16, reason: &str) {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = reason.get(..end).unwrap_or("");
    put_header(out, true, OpCode::Close, 2 + reason.len() as u64, None);
    out.put_u16(code);
    out.put_slice(reason.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(dec: &mut FrameDecoder, buf: &mut BytesMut) -> Result<Vec<Frame>, CloseReason> {
        let mut v = Vec::new();
        while let Some(f) = dec.decode(buf)? {
            v.push(f);
        }
        Ok(v)
    }

    fn err_code(bytes: &[u8]) -> Option<u16> {
        let mut dec = FrameDecoder::new(1 << 20);
        let mut buf = BytesMut::from(bytes);
        decode_all(&mut dec, &mut buf).err().map(|e| e.code)
    }

    #[test]
    fn rfc_single_frame_masked_hello_decodes() {
        // RFC 6455 §5.7
        let mut buf = BytesMut::from(
            &[
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
            ][..],
        );
        let mut dec = FrameDecoder::new(1024);
        let f = dec.decode(&mut buf).unwrap().unwrap();
        assert!(f.header.fin);
        assert_eq!(f.header.opcode, OpCode::Text);
        assert_eq!(f.header.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(&f.payload[..], b"Hello");
        assert!(buf.is_empty());
    }

    #[test]
    fn rfc_unmasked_examples_are_what_the_encoder_writes() {
        let mut out = BytesMut::new();
        encode_frame(&mut out, true, OpCode::Text, b"Hello");
        assert_eq!(&out[..], &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        out.clear();
        encode_frame(&mut out, false, OpCode::Text, b"Hel");
        encode_frame(&mut out, true, OpCode::Continuation, b"lo");
        assert_eq!(
            &out[..],
            &[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]
        );
        out.clear();
        encode_frame(&mut out, true, OpCode::Ping, b"Hello");
        assert_eq!(&out[..], &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
        out.clear();
        encode_frame_header(&mut out, true, OpCode::Binary, 256);
        assert_eq!(&out[..], &[0x82, 0x7E, 0x01, 0x00]);
        out.clear();
        encode_frame_header(&mut out, true, OpCode::Binary, 65536);
        assert_eq!(&out[..], &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]);
    }

    #[test]
    fn rfc_masked_encoder_matches_the_rfc_bytes() {
        let mut out = BytesMut::new();
        encode_masked_frame(
            &mut out,
            true,
            OpCode::Text,
            [0x37, 0xfa, 0x21, 0x3d],
            b"Hello",
        );
        assert_eq!(
            &out[..],
            &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
    }

    #[test]
    fn lengths_use_7_16_and_64_bit_encodings_and_round_trip() {
        for (len, hdr) in [
            (0usize, 2usize),
            (125, 2),
            (126, 4),
            (256, 4),
            (65535, 4),
            (65536, 10),
            (70000, 10),
        ] {
            assert_eq!(header_len(len as u64, false), hdr);
            let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let mut buf = BytesMut::new();
            encode_masked_frame(&mut buf, true, OpCode::Binary, [1, 2, 3, 4], &payload);
            assert_eq!(buf.len(), hdr + 4 + len);
            let mut dec = FrameDecoder::new(1 << 20);
            let f = dec.decode(&mut buf).unwrap().unwrap();
            assert_eq!(f.header.payload_len, len as u64);
            assert_eq!(&f.payload[..], &payload[..]);
            let mut out = BytesMut::new();
            encode_frame(&mut out, true, OpCode::Binary, &payload);
            assert_eq!(out.len(), hdr + len);
        }
    }

    #[test]
    fn non_minimal_length_is_accepted_by_default_and_rejected_when_strict() {
        // "Hi" with a 16-bit length, and with a 64-bit length.
        let m = [0u8; 4];
        let f16 = [&[0x81u8, 0xFE, 0, 2][..], &m, b"Hi"].concat();
        let f64 = [&[0x81u8, 0xFF, 0, 0, 0, 0, 0, 0, 0, 2][..], &m, b"Hi"].concat();
        for bytes in [&f16, &f64] {
            let mut dec = FrameDecoder::new(100);
            let mut buf = BytesMut::from(&bytes[..]);
            assert_eq!(&dec.decode(&mut buf).unwrap().unwrap().payload[..], b"Hi");
            let mut dec = FrameDecoder::new(100);
            dec.set_reject_non_minimal_length(true);
            let mut buf = BytesMut::from(&bytes[..]);
            assert_eq!(dec.decode(&mut buf).unwrap_err().code, 1002);
        }
    }

    #[test]
    fn every_frame_violation_maps_to_its_close_code() {
        let m = [9u8, 8, 7, 6];
        // unmasked client frame
        assert_eq!(err_code(&[0x81, 0x02, b'h', b'i']), Some(1002));
        // RSV1, RSV2, RSV3
        for rsv in [0x40u8, 0x20, 0x10] {
            assert_eq!(err_code(&[0x81 | rsv, 0x80, 1, 2, 3, 4]), Some(1002));
        }
        // reserved opcodes
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                err_code(&[0x80 | op, 0x80, 1, 2, 3, 4]),
                Some(1002),
                "op {op}"
            );
        }
        // control payload > 125 (7-bit 126 marker, and 16-bit encoded)
        let mut big = BytesMut::new();
        encode_masked_frame(&mut big, true, OpCode::Ping, m, &[0u8; 126]);
        assert_eq!(err_code(&big), Some(1002));
        // fragmented control frames
        for op in [OpCode::Close, OpCode::Ping, OpCode::Pong] {
            let mut b = BytesMut::new();
            encode_masked_frame(&mut b, false, op, m, b"");
            assert_eq!(err_code(&b), Some(1002));
        }
        // 64-bit length with the MSB set
        assert_eq!(
            err_code(&[0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1]),
            Some(1002)
        );
        // too big
        let mut dec = FrameDecoder::new(10);
        let mut b = BytesMut::new();
        encode_masked_frame(&mut b, true, OpCode::Binary, m, &[0u8; 11]);
        assert_eq!(dec.decode(&mut b).unwrap_err().code, 1009);
        // ...but a frame of exactly max_payload is fine
        let mut dec = FrameDecoder::new(10);
        let mut b = BytesMut::new();
        encode_masked_frame(&mut b, true, OpCode::Binary, m, &[0u8; 10]);
        assert!(dec.decode(&mut b).unwrap().is_some());
    }

    #[test]
    fn violations_are_reported_from_the_first_two_bytes() {
        let mut dec = FrameDecoder::new(100);
        let mut b = BytesMut::from(&[0x81u8, 0x05][..]);
        assert_eq!(dec.decode(&mut b).unwrap_err().code, 1002);
        // poisoned: same error again, nothing consumed
        assert_eq!(dec.decode(&mut b).unwrap_err().code, 1002);
        assert_eq!(b.len(), 2);
        // oversize reported as soon as the extended length is known
        let mut dec = FrameDecoder::new(100);
        let mut b = BytesMut::from(&[0x82u8, 0xFE, 0x10, 0x00][..]);
        assert_eq!(dec.decode(&mut b).unwrap_err().code, 1009);
    }

    #[test]
    fn hundred_frames_in_one_buffer_all_decode() {
        let mut buf = BytesMut::new();
        for i in 0..100u32 {
            let p = vec![i as u8; (i * 13 % 300) as usize];
            encode_masked_frame(&mut buf, true, OpCode::Binary, i.to_be_bytes(), &p);
        }
        let mut dec = FrameDecoder::new(1 << 16);
        let frames = decode_all(&mut dec, &mut buf).unwrap();
        assert_eq!(frames.len(), 100);
        for (i, f) in frames.iter().enumerate() {
            assert_eq!(f.payload.len(), i * 13 % 300);
            assert!(f.payload.iter().all(|&b| b == i as u8));
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn byte_by_byte_feeding_yields_identical_frames() {
        let mut all = BytesMut::new();
        for (i, len) in [0usize, 1, 125, 126, 300, 70000].iter().enumerate() {
            let p: Vec<u8> = (0..*len).map(|j| (j + i) as u8).collect();
            encode_masked_frame(
                &mut all,
                i % 2 == 0,
                OpCode::Binary,
                [i as u8, 0xAA, 0x55, 3],
                &p,
            );
        }
        let mut dec = FrameDecoder::new(1 << 20);
        let expect = decode_all(&mut dec, &mut all.clone()).unwrap();
        let mut dec = FrameDecoder::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in all.iter() {
            buf.put_u8(*b);
            // exercise partial unmasking as well
            let _ = dec.partial_payload(&mut buf);
            got.extend(decode_all(&mut dec, &mut buf).unwrap());
        }
        assert_eq!(got, expect);
    }

    #[test]
    fn apply_mask_with_offsets_matches_a_naive_xor() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let data: Vec<u8> = (0..50u8).collect();
        let naive: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        for split in 0..data.len() {
            let mut d = data.clone();
            let (a, b) = d.split_at_mut(split);
            apply_mask(a, mask, 0);
            apply_mask(b, mask, split);
            assert_eq!(d, naive);
        }
    }

    #[test]
    fn close_encoder_truncates_long_reasons_at_char_boundary() {
        let mut out = BytesMut::new();
        let reason = "é".repeat(100);
        encode_close(&mut out, 1000, &reason);
        assert_eq!(out[1] as usize, out.len() - 2);
        assert!(out.len() - 2 <= 125);
        assert!(std::str::from_utf8(&out[4..]).is_ok());
    }
}
