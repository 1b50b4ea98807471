//! A tiny blocking WebSocket client over `std::net::TcpStream` and a server thread for the
//! ws_* tests. Every read has a timeout; every server loop stops itself after 20 s.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use bytes::BytesMut;
use oneloop::app::App;
use oneloop::http::ServerConfig;
use oneloop::runtime::Loop;
use oneloop::ws::frame::{encode_masked_frame, OpCode};

pub const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
pub const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
pub const MASK: [u8; 4] = [0x12, 0x34, 0x56, 0x78];

/// Starts `build()`'s app on its own thread and loop; returns its address.
pub fn serve(build: impl FnOnce() -> App + Send + 'static) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let app = build();
        let mut lp = Loop::new().unwrap();
        let server = app
            .listen_on(&mut lp, "127.0.0.1:0", ServerConfig::default(), |_, _| {})
            .unwrap();
        tx.send(server.local_addr().unwrap()).unwrap();
        // Watchdog: no test needs the server for more than 20 s.
        lp.set_timeout(20_000, |lp| lp.stop());
        lp.run().unwrap();
    });
    rx.recv_timeout(Duration::from_secs(5)).unwrap()
}

pub fn upgrade_request(path: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n{extra}\r\n"
    )
}

pub fn good_request(path: &str) -> String {
    upgrade_request(
        path,
        &format!("Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n"),
    )
}

/// A masked client frame.
pub fn frame(fin: bool, op: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    encode_masked_frame(&mut b, fin, op, MASK, payload);
    b.to_vec()
}

/// A frame from raw first byte (FIN/RSV/opcode) with a masked payload.
pub fn raw_frame(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = frame(true, OpCode::Binary, payload);
    v[0] = b0;
    v
}

#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    /// RSV1: a compressed message (only when permessage-deflate was negotiated).
    pub rsv1: bool,
    pub op: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn close_code(&self) -> Option<u16> {
        (self.op == 8 && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

pub struct Client {
    pub s: TcpStream,
    buf: Vec<u8>,
    /// permessage-deflate negotiated: RSV1 allowed on server frames.
    pub deflate: bool,
}

impl Client {
    /// Connects and sends `request`; returns the client and the response head.
    pub fn raw(addr: SocketAddr, request: &[u8]) -> (Client, String) {
        let s = TcpStream::connect(addr).unwrap();
        // Longer than the server's 5 s keep-alive timeout: a test that reads a kept-alive
        // answer to its end waits for that timeout to close the connection.
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        let mut c = Client {
            s,
            buf: Vec::new(),
            deflate: false,
        };
        c.s.write_all(request).unwrap();
        let head = c.read_head();
        c.deflate = head
            .to_ascii_lowercase()
            .contains("sec-websocket-extensions: permessage-deflate");
        (c, head)
    }

    /// Connects to `path` and completes the handshake (asserts 101 and the accept key).
    pub fn connect(addr: SocketAddr, path: &str) -> Client {
        let (c, head) = Client::raw(addr, good_request(path).as_bytes());
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        assert!(
            head.contains(&format!("Sec-WebSocket-Accept: {ACCEPT}")),
            "{head}"
        );
        c
    }

    fn read_head(&mut self) -> String {
        loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..p + 4]).to_string();
                self.buf.drain(..p + 4);
                return head;
            }
            let n = self.fill();
            assert!(n > 0, "EOF before the response head");
        }
    }

    fn fill(&mut self) -> usize {
        let mut tmp = [0u8; 64 * 1024];
        let n = self.s.read(&mut tmp).expect("read (timed out?)");
        self.buf.extend_from_slice(&tmp[..n]);
        n
    }

    /// Reads the rest of the stream until EOF (the body of an HTTP error response).
    pub fn read_to_end(&mut self) -> Vec<u8> {
        while self.fill() > 0 {}
        std::mem::take(&mut self.buf)
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    pub fn send_frame(&mut self, fin: bool, op: OpCode, payload: &[u8]) {
        self.send(&frame(fin, op, payload));
    }

    pub fn send_text(&mut self, s: &str) {
        self.send_frame(true, OpCode::Text, s.as_bytes());
    }

    /// Reads one server frame (asserting it is unmasked and has no RSV bits).
    pub fn read_frame(&mut self) -> Frame {
        self.try_read_frame().expect("a frame, got EOF")
    }

    /// One frame, or `None` on a clean EOF at a frame boundary.
    pub fn try_read_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some((f, used)) = parse(&self.buf, self.deflate) {
                self.buf.drain(..used);
                return Some(f);
            }
            if self.fill() == 0 {
                assert!(self.buf.is_empty(), "EOF inside a frame");
                return None;
            }
        }
    }

    /// Reads a text frame and returns its text.
    pub fn read_text(&mut self) -> String {
        let f = self.read_frame();
        assert_eq!((f.fin, f.op), (true, 1), "{f:?}");
        String::from_utf8(f.payload).unwrap()
    }

    /// Expects a Close frame with `code`, then EOF; returns the reason.
    pub fn expect_close(&mut self, code: u16) -> String {
        let f = self.read_frame();
        assert_eq!(f.op, 8, "expected close, got {f:?}");
        assert_eq!(f.close_code(), Some(code), "{f:?}");
        let reason = String::from_utf8(f.payload[2..].to_vec()).unwrap();
        self.expect_eof();
        reason
    }

    pub fn expect_eof(&mut self) {
        assert_eq!(self.try_read_frame(), None, "expected EOF");
    }
}

fn parse(b: &[u8], deflate: bool) -> Option<(Frame, usize)> {
    let (&b0, &b1) = (b.first()?, b.get(1)?);
    let rsv_mask = if deflate { 0x30 } else { 0x70 };
    assert_eq!(b0 & rsv_mask, 0, "server set RSV bits");
    assert_eq!(b1 & 0x80, 0, "server frames are never masked");
    let (len, mut pos) = match b1 & 0x7f {
        126 => (
            u16::from_be_bytes(b.get(2..4)?.try_into().unwrap()) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(b.get(2..10)?.try_into().unwrap()) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = b.get(pos..pos + len)?.to_vec();
    pos += len;
    Some((
        Frame {
            fin: b0 & 0x80 != 0,
            rsv1: b0 & 0x40 != 0,
            op: b0 & 0x0f,
            payload,
        },
        pos,
    ))
}
