//! Message layer (RFC 6455 §5.4-5.6): reassembles fragmented messages on
//! top of [`FrameDecoder`], validates text as UTF-8 (fail-fast, including
//! partially received frames) and parses Close frames.

use bytes::{Bytes, BytesMut};

use super::deflate::Incoming;
use super::frame::{CloseReason, FrameDecoder, OpCode, CLOSE_INVALID_PAYLOAD, CLOSE_TOO_BIG};
use super::utf8::Utf8Validator;

/// A complete message or control frame received from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A text message; the bytes are guaranteed to be valid UTF-8.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping (answer with a pong carrying the same payload).
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// A close frame: `None` if it had no payload, else code and reason.
    /// After this event the assembler consumes no more input.
    Close(Option<(u16, String)>),
}

/// `true` for close codes a peer may send (§7.4): 1000-1003, 1007-1014
/// (1012 Service Restart, 1013 Try Again Later, 1014 Bad Gateway are in
/// IANA's registry) and the registered/private ranges 3000-4999. 1004-1006,
/// 1015 and other codes below 3000 are rejected.
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

const INVALID_UTF8: CloseReason = CloseReason {
    code: CLOSE_INVALID_PAYLOAD,
    reason: "invalid UTF-8 in text message",
};

const TOO_BIG: CloseReason = CloseReason {
    code: CLOSE_TOO_BIG,
    reason: "message too big",
};

/// Turns a stream of client frames into [`Event`]s.
///
/// Call [`MessageAssembler::next_event`] in a loop after appending received
/// bytes to the buffer, until it returns `Ok(None)` (need more bytes) or an
/// error (send a Close with the given code and close the connection). Errors
/// are sticky.
#[derive(Debug)]
pub struct MessageAssembler {
    decoder: FrameDecoder,
    max_message: usize,
    /// Opcode (Text/Binary) of the fragmented message being assembled.
    open: Option<OpCode>,
    assembled: BytesMut,
    utf8: Utf8Validator,
    /// Bytes of the pending frame's payload already fed to `utf8`.
    fed: usize,
    closed: bool,
    error: Option<CloseReason>,
    /// permessage-deflate state, when negotiated.
    inflate: Option<Incoming>,
    /// The open message is compressed (its first frame had RSV1).
    compressed: bool,
    /// The inflated compressed message so far (capacity never above `max_message + 1`).
    inflated: Vec<u8>,
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Incoming")
    }
}

impl MessageAssembler {
    /// Creates an assembler accepting frames up to `max_frame` payload bytes
    /// and messages up to `max_message` bytes in total (both -> 1009).
    pub fn new(max_frame: usize, max_message: usize) -> Self {
        MessageAssembler {
            decoder: FrameDecoder::new(max_frame),
            max_message,
            open: None,
            assembled: BytesMut::new(),
            utf8: Utf8Validator::new(),
            fed: 0,
            closed: false,
            error: None,
            inflate: None,
            compressed: false,
            inflated: Vec::new(),
        }
    }

    /// Turns on permessage-deflate: data messages whose first frame has RSV1 are inflated
    /// (bounded by `max_message` after inflation, 1009 past it). `client_no_context_takeover`
    /// lets the decompressor go between messages.
    pub fn enable_inflate(&mut self, client_no_context_takeover: bool) {
        self.decoder.set_allow_rsv1(true);
        self.inflate = Some(Incoming::new(client_no_context_takeover));
    }

    /// Whether a decompressor is held between messages (dedicated mode with context takeover).
    pub fn holds_inflater(&self) -> bool {
        self.inflate.as_ref().is_some_and(Incoming::has_state)
    }

    /// Access to the underlying frame decoder (e.g. to make length checks
    /// strict).
    pub fn decoder_mut(&mut self) -> &mut FrameDecoder {
        &mut self.decoder
    }

    /// Bytes of a fragmented message buffered so far (never above
    /// `max_message`; for a compressed message, its inflated bytes).
    pub fn buffered_len(&self) -> usize {
        self.assembled.len() + self.inflated.len()
    }

    /// Capacity held for the message being received (fragments, or the inflated
    /// compressed message): never above `max_message + 1` for a compressed one.
    pub fn buffered_capacity(&self) -> usize {
        self.assembled.capacity() + self.inflated.capacity()
    }

    /// `true` once a Close frame has been returned.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Returns the next event decoded from the front of `buf`, `Ok(None)` if
    /// more input is needed (or a Close was already returned), or the close
    /// code to fail the connection with.
    pub fn next_event(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, CloseReason> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.closed {
            return Ok(None);
        }
        let r = self.step(buf);
        if let Err(e) = r {
            self.error = Some(e);
        }
        r
    }

    fn step(&mut self, buf: &mut BytesMut) -> Result<Option<Event>, CloseReason> {
        loop {
            let Some(h) = self.decoder.poll_header(buf)? else {
                return Ok(None);
            };
            // Sequencing and size checks, as soon as the header is known.
            if h.rsv1 && !matches!(h.opcode, OpCode::Text | OpCode::Binary) {
                return Err(CloseReason::protocol(
                    "RSV1 on a continuation or control frame",
                ));
            }
            let is_text = match h.opcode {
                OpCode::Continuation => {
                    let Some(op) = self.open else {
                        return Err(CloseReason::protocol("continuation without a message"));
                    };
                    if !self.compressed
                        && self.assembled.len() as u64 + h.payload_len > self.max_message as u64
                    {
                        return Err(TOO_BIG);
                    }
                    op == OpCode::Text
                }
                OpCode::Text | OpCode::Binary => {
                    if self.open.is_some() {
                        return Err(CloseReason::protocol("new message inside a fragmented one"));
                    }
                    if h.payload_len > self.max_message as u64 {
                        return Err(TOO_BIG);
                    }
                    self.compressed = h.rsv1;
                    h.opcode == OpCode::Text
                }
                OpCode::Close | OpCode::Ping | OpCode::Pong => false,
            };
            let data_frame = matches!(
                h.opcode,
                OpCode::Text | OpCode::Binary | OpCode::Continuation
            );
            if data_frame && self.compressed {
                let Some(frame) = self.decoder.decode(buf)? else {
                    return Ok(None);
                };
                if let Some(event) = self.inflate_frame(h.opcode, h.fin, is_text, &frame.payload)? {
                    return Ok(Some(event));
                }
                continue;
            }
            if is_text {
                // Fail fast on the part of the payload received so far.
                let avail = self.decoder.partial_payload(buf);
                if let Some(new) = avail.get(self.fed..) {
                    self.utf8.feed(new).map_err(|_| INVALID_UTF8)?;
                    self.fed = avail.len();
                }
            }
            let Some(frame) = self.decoder.decode(buf)? else {
                return Ok(None);
            };
            let fed = std::mem::take(&mut self.fed);
            let payload = frame.payload;
            if is_text {
                self.utf8
                    .feed(payload.get(fed..).unwrap_or(&[]))
                    .map_err(|_| INVALID_UTF8)?;
                if h.fin {
                    self.utf8.finish().map_err(|_| INVALID_UTF8)?;
                }
            }
            match h.opcode {
                OpCode::Text | OpCode::Binary if h.fin => {
                    return Ok(Some(data_event(h.opcode, payload)));
                }
                OpCode::Text | OpCode::Binary => {
                    self.open = Some(h.opcode);
                    self.assembled.extend_from_slice(&payload);
                }
                OpCode::Continuation => {
                    self.assembled.extend_from_slice(&payload);
                    if h.fin {
                        let op = self.open.take().unwrap_or(OpCode::Binary);
                        let data = self.assembled.split().freeze();
                        return Ok(Some(data_event(op, data)));
                    }
                }
                OpCode::Ping => return Ok(Some(Event::Ping(payload))),
                OpCode::Pong => return Ok(Some(Event::Pong(payload))),
                OpCode::Close => {
                    let ev = parse_close(&payload)?;
                    self.closed = true;
                    return Ok(Some(ev));
                }
            }
        }
    }
}

impl MessageAssembler {
    /// One frame of a compressed message: inflate it onto the message (bounded by
    /// `max_message`), validate text as it comes, and return the message at FIN.
    fn inflate_frame(
        &mut self,
        opcode: OpCode,
        fin: bool,
        is_text: bool,
        payload: &[u8],
    ) -> Result<Option<Event>, CloseReason> {
        if opcode != OpCode::Continuation {
            self.open = Some(opcode);
        }
        let before = self.inflated.len();
        let Some(inflate) = self.inflate.as_mut() else {
            return Err(CloseReason::protocol("RSV1 without permessage-deflate"));
        };
        inflate.inflate(payload, fin, &mut self.inflated, self.max_message)?;
        if is_text {
            self.utf8
                .feed(self.inflated.get(before..).unwrap_or(&[]))
                .map_err(|_| INVALID_UTF8)?;
            if fin {
                self.utf8.finish().map_err(|_| INVALID_UTF8)?;
            }
        }
        if !fin {
            return Ok(None);
        }
        self.compressed = false;
        let op = self.open.take().unwrap_or(OpCode::Binary);
        let data = Bytes::from(std::mem::take(&mut self.inflated));
        Ok(Some(data_event(op, data)))
    }
}

fn data_event(op: OpCode, data: Bytes) -> Event {
    if op == OpCode::Text {
        Event::Text(data)
    } else {
        Event::Binary(data)
    }
}

fn parse_close(payload: &[u8]) -> Result<Event, CloseReason> {
    match payload {
        [] => Ok(Event::Close(None)),
        [_] => Err(CloseReason::protocol("close payload of length 1")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            if !is_valid_close_code(code) {
                return Err(CloseReason::protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| INVALID_UTF8)?;
            Ok(Event::Close(Some((code, reason.to_owned()))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::encode_masked_frame;
    use super::*;
    use bytes::BufMut;

    const M: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn frame(fin: bool, op: OpCode, payload: &[u8]) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode_masked_frame(&mut b, fin, op, M, payload);
        b.to_vec()
    }

    /// Runs the whole input at once; returns events and the final error.
    fn run(input: &[u8], max_frame: usize, max_msg: usize) -> (Vec<Event>, Option<u16>) {
        let mut a = MessageAssembler::new(max_frame, max_msg);
        let mut buf = BytesMut::from(input);
        drain(&mut a, &mut buf)
    }

    fn drain(a: &mut MessageAssembler, buf: &mut BytesMut) -> (Vec<Event>, Option<u16>) {
        let mut evs = Vec::new();
        loop {
            match a.next_event(buf) {
                Ok(Some(e)) => evs.push(e),
                Ok(None) => return (evs, None),
                Err(e) => return (evs, Some(e.code)),
            }
        }
    }

    /// Feeds the input in chunks of the given sizes (cycled).
    fn run_chunked(
        input: &[u8],
        sizes: &[usize],
        max_frame: usize,
        max_msg: usize,
    ) -> (Vec<Event>, Option<u16>) {
        let mut a = MessageAssembler::new(max_frame, max_msg);
        let mut buf = BytesMut::new();
        let mut evs = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < input.len() {
            let n = sizes[i % sizes.len()].max(1).min(input.len() - pos);
            i += 1;
            buf.put_slice(&input[pos..pos + n]);
            pos += n;
            let (e, err) = drain(&mut a, &mut buf);
            evs.extend(e);
            if err.is_some() {
                return (evs, err);
            }
        }
        (evs, None)
    }

    fn text(s: &str) -> Event {
        Event::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn err_of(input: &[u8]) -> Option<u16> {
        run(input, 1 << 20, 1 << 20).1
    }

    #[test]
    fn rfc_single_masked_hello_is_a_text_event() {
        let input = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        assert_eq!(run(&input, 1024, 1024), (vec![text("Hello")], None));
    }

    #[test]
    fn rfc_fragmented_hel_lo_reassembles_to_hello() {
        let input = [
            frame(false, OpCode::Text, b"Hel"),
            frame(true, OpCode::Continuation, b"lo"),
        ]
        .concat();
        assert_eq!(run(&input, 1024, 1024), (vec![text("Hello")], None));
    }

    #[test]
    fn rfc_ping_and_pong_are_reported_with_their_payload() {
        let input = [
            frame(true, OpCode::Ping, b"Hello"),
            frame(true, OpCode::Pong, b"Hello"),
        ]
        .concat();
        let (evs, err) = run(&input, 1024, 1024);
        assert_eq!(err, None);
        assert_eq!(
            evs,
            vec![
                Event::Ping(Bytes::from_static(b"Hello")),
                Event::Pong(Bytes::from_static(b"Hello"))
            ]
        );
    }

    #[test]
    fn rfc_256_byte_and_64_kib_binary_messages_decode() {
        for len in [256usize, 65536] {
            let p: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let input = frame(true, OpCode::Binary, &p);
            assert_eq!(input[1] & 0x7f, if len == 256 { 126 } else { 127 });
            assert_eq!(
                run(&input, 1 << 20, 1 << 20),
                (vec![Event::Binary(p.into())], None)
            );
        }
    }

    #[test]
    fn one_mib_message_across_many_fragments_including_empty_ones() {
        let total = 1 << 20;
        let p: Vec<u8> = (0..total).map(|i| (i * 31 % 256) as u8).collect();
        let mut input = frame(false, OpCode::Binary, b"");
        let mut pos = 0;
        let mut k = 0;
        while pos < total {
            let n = [0usize, 1, 7, 1000, 4096, 65536, 0, 125][k % 8].min(total - pos);
            k += 1;
            input.extend(frame(false, OpCode::Continuation, &p[pos..pos + n]));
            pos += n;
        }
        input.extend(frame(true, OpCode::Continuation, b""));
        assert!(k > 100);
        let (evs, err) = run(&input, 1 << 16, 1 << 20);
        assert_eq!(err, None);
        assert_eq!(evs, vec![Event::Binary(p.into())]);
        // one byte more than max_message fails with 1009
        let mut over = input.clone();
        over.truncate(over.len() - 6);
        over.extend(frame(true, OpCode::Continuation, b"x"));
        assert_eq!(run(&over, 1 << 16, 1 << 20).1, Some(1009));
    }

    #[test]
    fn empty_messages_and_empty_fragments_are_fine() {
        let input = [
            frame(true, OpCode::Text, b""),
            frame(true, OpCode::Binary, b""),
            frame(false, OpCode::Text, b""),
            frame(false, OpCode::Continuation, b""),
            frame(true, OpCode::Continuation, b""),
        ]
        .concat();
        let (evs, err) = run(&input, 10, 10);
        assert_eq!(err, None);
        assert_eq!(evs, vec![text(""), Event::Binary(Bytes::new()), text("")]);
    }

    #[test]
    fn ping_inside_a_fragmented_message_is_delivered_first() {
        let input = [
            frame(false, OpCode::Text, b"frag1 "),
            frame(true, OpCode::Ping, b"p"),
            frame(false, OpCode::Continuation, b"frag2 "),
            frame(true, OpCode::Pong, b""),
            frame(true, OpCode::Continuation, b"frag3"),
        ]
        .concat();
        let (evs, err) = run(&input, 1024, 1024);
        assert_eq!(err, None);
        assert_eq!(
            evs,
            vec![
                Event::Ping(Bytes::from_static(b"p")),
                Event::Pong(Bytes::new()),
                text("frag1 frag2 frag3")
            ]
        );
    }

    #[test]
    fn utf8_split_across_fragments_at_every_byte_is_accepted() {
        let s = "κόσμε-€-𝄞";
        let b = s.as_bytes();
        for i in 0..=b.len() {
            for j in i..=b.len() {
                let input = [
                    frame(false, OpCode::Text, &b[..i]),
                    frame(false, OpCode::Continuation, &b[i..j]),
                    frame(true, OpCode::Continuation, &b[j..]),
                ]
                .concat();
                assert_eq!(run(&input, 1024, 1024), (vec![text(s)], None), "{i} {j}");
            }
        }
    }

    #[test]
    fn invalid_utf8_fails_fast_on_the_first_bad_fragment() {
        // Autobahn 6.4.1 style: first fragment valid, second makes it invalid,
        // third never needs to arrive.
        let input = [
            frame(false, OpCode::Text, "κόσμε".as_bytes()),
            frame(false, OpCode::Continuation, b"\xf4\x90\x80\x80"),
        ]
        .concat();
        assert_eq!(run(&input, 1024, 1024).1, Some(1007));
        // ...and within a partially received frame (Autobahn 6.4.3/6.4.4).
        let mut a = MessageAssembler::new(1024, 1024);
        let whole = frame(true, OpCode::Text, b"abc\xf4\x90\x80\x80 and more text");
        let mut buf = BytesMut::from(&whole[..6 + 5]); // header + "abc\xf4\x90"
        assert_eq!(a.next_event(&mut buf).unwrap_err().code, 1007);
        // truncated sequence at the end of the message
        let input = [
            frame(false, OpCode::Text, b"ab"),
            frame(true, OpCode::Continuation, b"\xe2\x82"),
        ]
        .concat();
        assert_eq!(run(&input, 1024, 1024).1, Some(1007));
    }

    #[test]
    fn close_frames_are_parsed_and_validated() {
        assert_eq!(
            run(&frame(true, OpCode::Close, b""), 10, 10),
            (vec![Event::Close(None)], None)
        );
        let mut p = 1000u16.to_be_bytes().to_vec();
        p.extend_from_slice("bye ☺".as_bytes());
        assert_eq!(
            run(&frame(true, OpCode::Close, &p), 10, 10).0,
            vec![Event::Close(Some((1000, "bye ☺".to_owned())))]
        );
        for code in [
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999,
            4000, 4999,
        ] {
            let (evs, err) = run(&frame(true, OpCode::Close, &code.to_be_bytes()), 10, 10);
            assert_eq!(
                (evs, err),
                (vec![Event::Close(Some((code, String::new())))], None)
            );
        }
        for code in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert_eq!(
                err_of(&frame(true, OpCode::Close, &code.to_be_bytes())),
                Some(1002),
                "{code}"
            );
        }
        // length 1
        assert_eq!(err_of(&frame(true, OpCode::Close, b"\x03")), Some(1002));
        // reason not UTF-8
        assert_eq!(
            err_of(&frame(true, OpCode::Close, b"\x03\xe8\xce\xba\xff")),
            Some(1007)
        );
    }

    #[test]
    fn input_after_close_is_not_consumed() {
        let input = [
            frame(true, OpCode::Close, b""),
            frame(true, OpCode::Text, b"late"),
        ]
        .concat();
        let mut a = MessageAssembler::new(10, 10);
        let mut buf = BytesMut::from(&input[..]);
        assert_eq!(a.next_event(&mut buf), Ok(Some(Event::Close(None))));
        assert!(a.is_closed());
        assert_eq!(a.next_event(&mut buf), Ok(None));
        assert_eq!(buf.len(), 10);
    }

    #[test]
    fn every_message_violation_maps_to_its_close_code() {
        use OpCode::*;
        let cases: Vec<(Vec<u8>, u16)> = vec![
            // continuation without a started message
            (frame(true, Continuation, b"x"), 1002),
            (frame(false, Continuation, b"x"), 1002),
            // finished message, then continuation
            (
                [frame(true, Text, b"a"), frame(true, Continuation, b"b")].concat(),
                1002,
            ),
            // new data frame while a fragmented one is open
            (
                [frame(false, Text, b"a"), frame(true, Text, b"b")].concat(),
                1002,
            ),
            (
                [frame(false, Binary, b"a"), frame(false, Binary, b"b")].concat(),
                1002,
            ),
            (
                [frame(false, Text, b"a"), frame(true, Binary, b"b")].concat(),
                1002,
            ),
            // invalid UTF-8, single frame and per fragment
            (
                frame(
                    true,
                    Text,
                    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
                ),
                1007,
            ),
            (
                [
                    frame(false, Text, b"ok"),
                    frame(true, Continuation, b"\xc0\xaf"),
                ]
                .concat(),
                1007,
            ),
            // frame-level violations surface unchanged
            (vec![0x81, 0x02, b'h', b'i'], 1002),
            (frame(false, Ping, b""), 1002),
            (frame(true, Ping, &[0u8; 126]), 1002),
        ];
        for (input, code) in cases {
            assert_eq!(err_of(&input), Some(code), "{input:02x?}");
        }
        // message too big: single frame, and accumulated across fragments
        assert_eq!(run(&frame(true, Binary, &[0; 11]), 100, 10).1, Some(1009));
        assert_eq!(run(&frame(true, Binary, &[0; 11]), 10, 100).1, Some(1009));
        let two = [
            frame(false, Text, b"12345"),
            frame(true, Continuation, b"678901"),
        ]
        .concat();
        assert_eq!(run(&two, 100, 10).1, Some(1009));
        assert_eq!(run(&two, 100, 11).1, None);
    }

    #[test]
    fn errors_are_sticky() {
        let mut a = MessageAssembler::new(10, 10);
        let mut buf = BytesMut::from(&frame(true, OpCode::Continuation, b"")[..]);
        assert_eq!(a.next_event(&mut buf).unwrap_err().code, 1002);
        buf.extend_from_slice(&frame(true, OpCode::Text, b"ok"));
        assert_eq!(a.next_event(&mut buf).unwrap_err().code, 1002);
    }

    fn mixed_stream() -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..100usize {
            let s = format!("message {i} κόσμε {}", "x".repeat(i * 3));
            match i % 5 {
                0 => v.extend(frame(true, OpCode::Text, s.as_bytes())),
                1 => v.extend(frame(true, OpCode::Binary, &vec![i as u8; i * 7])),
                2 => {
                    let b = s.as_bytes();
                    let cut = 10 + i % 3; // splits inside "κόσμε" sometimes
                    v.extend(frame(false, OpCode::Text, &b[..cut]));
                    v.extend(frame(true, OpCode::Ping, b"ping"));
                    v.extend(frame(false, OpCode::Continuation, b""));
                    v.extend(frame(true, OpCode::Continuation, &b[cut..]));
                }
                3 => v.extend(frame(true, OpCode::Ping, &[i as u8; 125])),
                _ => v.extend(frame(true, OpCode::Pong, b"")),
            }
        }
        v.extend(frame(true, OpCode::Close, b"\x03\xe8done"));
        v
    }

    #[test]
    fn hundred_frames_in_one_buffer_yield_all_events() {
        let (evs, err) = run(&mixed_stream(), 4096, 4096);
        assert_eq!(err, None);
        assert_eq!(evs.len(), 100 + 20 + 1);
        assert_eq!(evs.last(), Some(&Event::Close(Some((1000, "done".into())))));
        assert_eq!(evs.first(), Some(&text("message 0 κόσμε ")));
    }

    #[test]
    fn byte_by_byte_feeding_yields_identical_events() {
        let input = mixed_stream();
        let whole = run(&input, 4096, 4096);
        assert_eq!(run_chunked(&input, &[1], 4096, 4096), whole);
        assert_eq!(run_chunked(&input, &[3, 1, 7, 64, 2], 4096, 4096), whole);
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    fn random_input(r: &mut Rng) -> Vec<u8> {
        let mut v = Vec::new();
        match r.below(4) {
            // pure random bytes
            0 => (0..r.below(64)).for_each(|_| v.push(r.next() as u8)),
            // valid-ish frames, then mutated
            _ => {
                let ops = [
                    OpCode::Text,
                    OpCode::Binary,
                    OpCode::Continuation,
                    OpCode::Ping,
                    OpCode::Pong,
                    OpCode::Close,
                ];
                for _ in 0..r.below(8) {
                    let op = ops[r.below(ops.len())];
                    let len = [0, 1, 2, 5, 125, 126, 300][r.below(7)];
                    let payload: Vec<u8> = (0..len)
                        .map(|_| {
                            if r.below(4) == 0 {
                                r.next() as u8
                            } else {
                                b'a' + r.below(26) as u8
                            }
                        })
                        .collect();
                    let mut b = BytesMut::new();
                    encode_masked_frame(
                        &mut b,
                        r.below(3) != 0,
                        op,
                        (r.next() as u32).to_be_bytes(),
                        &payload,
                    );
                    v.extend_from_slice(&b);
                }
                for _ in 0..r.below(4) {
                    if !v.is_empty() {
                        let i = r.below(v.len());
                        v[i] = r.next() as u8;
                    }
                }
                if r.below(4) == 0 {
                    v.truncate(r.below(v.len() + 1));
                }
            }
        }
        v
    }

    #[test]
    fn fuzz_random_and_mutated_input_never_panics_and_is_chunking_independent() {
        let mut r = Rng(0x9E37_79B9_7F4A_7C15);
        let (max_frame, max_msg) = (200usize, 400usize);
        for case in 0..20_000 {
            let input = random_input(&mut r);
            let (evs, err) = run(&input, max_frame, max_msg);
            for e in &evs {
                match e {
                    Event::Text(b) => {
                        assert!(std::str::from_utf8(b).is_ok());
                        assert!(b.len() <= max_msg);
                    }
                    Event::Binary(b) => assert!(b.len() <= max_msg),
                    Event::Ping(b) | Event::Pong(b) => assert!(b.len() <= 125),
                    Event::Close(Some((c, _))) => assert!(is_valid_close_code(*c)),
                    Event::Close(None) => {}
                }
            }
            if let Some(code) = err {
                assert!([1002, 1007, 1009].contains(&code));
            }
            // Every event needs at least a 6-byte masked frame.
            assert!(evs.len() * 6 <= input.len());
            // Same result whatever the chunking.
            let sizes = [1 + r.below(5), 1 + r.below(40), 1 + r.below(3)];
            assert_eq!(
                run_chunked(&input, &sizes, max_frame, max_msg),
                (evs, err),
                "case {case}"
            );
            // Bounded consumption and buffering.
            let mut a = MessageAssembler::new(max_frame, max_msg);
            let mut buf = BytesMut::from(&input[..]);
            let mut calls = 0;
            while let Ok(Some(_)) = a.next_event(&mut buf) {
                calls += 1;
                assert!(calls <= input.len());
            }
            assert!(buf.len() <= input.len());
            assert!(a.buffered_len() <= max_msg);
        }
    }
}
