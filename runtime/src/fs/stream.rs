//! `ReadStream`: a file read chunk by chunk on the pool, delivered on the loop, with
//! backpressure (Node's `fs.createReadStream`).

use std::cell::RefCell;
use std::fs as stdfs;
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;

use super::{read_chunk, request, FsError};
use crate::Loop;

/// Chunk size of a [`ReadStream`] unless set: 64 KiB, Node's `highWaterMark` for fs streams.
pub const DEFAULT_STREAM_CHUNK: usize = 64 * 1024;

/// Options of [`ReadStream::open`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadStreamOptions {
    /// Bytes read per request (Node's `highWaterMark`); at least 1. Default
    /// [`DEFAULT_STREAM_CHUNK`].
    pub chunk_size: usize,
    /// First byte to read (Node's `start`). Default 0.
    pub start: u64,
    /// Last byte to read, **inclusive** as Node's `end`. Default: to the end of the file.
    pub end: Option<u64>,
}

impl Default for ReadStreamOptions {
    fn default() -> Self {
        ReadStreamOptions {
            chunk_size: DEFAULT_STREAM_CHUNK,
            start: 0,
            end: None,
        }
    }
}

type DataCallback = Box<dyn FnMut(&mut Loop, &ReadStream, Bytes)>;
type EventCallback = Box<dyn FnOnce(&mut Loop, &ReadStream)>;
type ErrorCallback = Box<dyn FnOnce(&mut Loop, &ReadStream, FsError)>;

/// Where the stream is. Exactly one pool request is in flight in `Opening` and `Reading`.
enum Stage {
    Opening,
    /// Open, no request in flight (paused, or between a chunk and the next read).
    Idle(Arc<stdfs::File>),
    Reading(Arc<stdfs::File>),
    /// Ended, failed or destroyed; `close` has run (or runs when the request in flight returns).
    Closed,
}

struct State {
    stage: Stage,
    path: Arc<Path>,
    chunk_size: usize,
    position: u64,
    /// Bytes still to read before `end` (`u64::MAX` without an end).
    remaining: u64,
    paused: bool,
    destroyed: bool,
    bytes_read: u64,
    on_data: Option<DataCallback>,
    on_end: Option<EventCallback>,
    on_error: Option<ErrorCallback>,
    on_close: Option<EventCallback>,
}

/// A readable file stream (Node's `fs.createReadStream(path).on('data', ..)`).
///
/// # Guarantees
/// - At most one read request is in flight, so the stream holds at most one chunk
///   (`chunk_size` bytes) at a time whatever the file's size: memory is bounded by the chunk
///   size plus what the `on_data` callback keeps.
/// - [`pause`](ReadStream::pause) stops before the next read (the one in flight still
///   delivers its chunk, as Node's); [`resume`](ReadStream::resume) reads on.
/// - Events in Node's order: `data`*, then `end`, then `close`; or `error`, then `close`.
///   `close` runs once the file is closed (on the pool).
/// - A stream keeps the loop alive while a request is in flight; a paused stream does not.
///
/// The open runs on the pool, so `on_end`/`on_error`/`on_close` registered right after
/// [`open`](ReadStream::open) (before the loop runs again) never miss an event.
#[derive(Clone)]
pub struct ReadStream(Rc<RefCell<State>>);

impl ReadStream {
    /// Opens `path` and starts reading; each chunk goes to `on_data`.
    ///
    /// # Errors
    /// Only when the thread pool cannot start; a failed open reaches `on_error`.
    pub fn open(
        lp: &mut Loop,
        path: impl AsRef<Path>,
        options: ReadStreamOptions,
        on_data: impl FnMut(&mut Loop, &ReadStream, Bytes) + 'static,
    ) -> io::Result<ReadStream> {
        let path: Arc<Path> = Arc::from(path.as_ref());
        let remaining = match options.end {
            Some(end) if end < options.start => 0,
            Some(end) => end - options.start + 1,
            None => u64::MAX,
        };
        let stream = ReadStream(Rc::new(RefCell::new(State {
            stage: Stage::Opening,
            path: path.clone(),
            chunk_size: options.chunk_size.max(1),
            position: options.start,
            remaining,
            paused: false,
            destroyed: false,
            bytes_read: 0,
            on_data: Some(Box::new(on_data)),
            on_end: None,
            on_error: None,
            on_close: None,
        })));
        let this = stream.clone();
        request(
            lp,
            "open",
            move || {
                stdfs::File::open(&path)
                    .map(Arc::new)
                    .map_err(|e| FsError::new("open", Some(&path), e))
            },
            move |lp, opened| match opened {
                Ok(file) => {
                    this.0.borrow_mut().stage = Stage::Idle(file);
                    this.read_on(lp);
                }
                Err(e) => this.fail(lp, e),
            },
        )?;
        Ok(stream)
    }

    /// Called once after the last chunk (Node's `'end'`).
    pub fn on_end(&self, callback: impl FnOnce(&mut Loop, &ReadStream) + 'static) {
        self.0.borrow_mut().on_end = Some(Box::new(callback));
    }

    /// Called once if opening or reading fails (Node's `'error'`); the stream then closes.
    pub fn on_error(&self, callback: impl FnOnce(&mut Loop, &ReadStream, FsError) + 'static) {
        self.0.borrow_mut().on_error = Some(Box::new(callback));
    }

    /// Called once when the file is closed, after `end`, `error` or `destroy` (Node's `'close'`).
    pub fn on_close(&self, callback: impl FnOnce(&mut Loop, &ReadStream) + 'static) {
        self.0.borrow_mut().on_close = Some(Box::new(callback));
    }

    /// Stops reading after the request in flight, if any (Node's `pause()`).
    pub fn pause(&self) {
        self.0.borrow_mut().paused = true;
    }

    /// Reads on after [`pause`](ReadStream::pause) (Node's `resume()`).
    pub fn resume(&self, lp: &mut Loop) {
        self.0.borrow_mut().paused = false;
        self.read_on(lp);
    }

    /// Whether the stream is paused.
    pub fn is_paused(&self) -> bool {
        self.0.borrow().paused
    }

    /// Bytes delivered to `on_data` so far (Node's `bytesRead`).
    pub fn bytes_read(&self) -> u64 {
        self.0.borrow().bytes_read
    }

    /// The path being read.
    pub fn path(&self) -> Arc<Path> {
        self.0.borrow().path.clone()
    }

    /// Stops the stream: no more `data` or `end`; the file is closed and `close` follows
    /// (Node's `destroy()`). Idempotent.
    pub fn destroy(&self, lp: &mut Loop) {
        let mut st = self.0.borrow_mut();
        st.destroyed = true;
        match std::mem::replace(&mut st.stage, Stage::Closed) {
            Stage::Idle(file) => {
                drop(st);
                self.close_file(lp, file);
            }
            // Opening or Reading: the completion sees `destroyed` and closes.
            other => st.stage = other,
        }
    }

    /// Issues the next read if the stream is open, idle, flowing and not at its end.
    fn read_on(&self, lp: &mut Loop) {
        let mut st = self.0.borrow_mut();
        if st.destroyed {
            if let Stage::Idle(_) = st.stage {
                drop(st);
                return self.destroy(lp);
            }
            return;
        }
        if st.paused {
            return;
        }
        let Stage::Idle(file) = &st.stage else {
            return;
        };
        let file = file.clone();
        if st.remaining == 0 {
            drop(st);
            return self.end(lp);
        }
        let len = (st.chunk_size as u64).min(st.remaining) as usize;
        let position = st.position;
        st.stage = Stage::Reading(file.clone());
        drop(st);
        let this = self.clone();
        let worker_file = file.clone();
        let queued = request(
            lp,
            "read",
            move || read_chunk(&worker_file, len, Some(position)),
            move |lp, chunk| this.on_chunk(lp, file, chunk),
        );
        if let Err(e) = queued {
            self.0.borrow_mut().stage = Stage::Closed;
            self.emit_error(lp, FsError::new("read", None, e));
            self.emit_close(lp);
        }
    }

    fn on_chunk(&self, lp: &mut Loop, file: Arc<stdfs::File>, chunk: Result<Vec<u8>, FsError>) {
        let destroyed = {
            let mut st = self.0.borrow_mut();
            st.stage = Stage::Idle(file.clone());
            st.destroyed
        };
        if destroyed {
            return self.destroy(lp);
        }
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => return self.fail(lp, e),
        };
        if chunk.is_empty() {
            return self.end(lp);
        }
        let callback = {
            let mut st = self.0.borrow_mut();
            st.position += chunk.len() as u64;
            st.remaining = st.remaining.saturating_sub(chunk.len() as u64);
            st.bytes_read += chunk.len() as u64;
            st.on_data.take()
        };
        if let Some(mut callback) = callback {
            callback(lp, self, Bytes::from(chunk));
            let mut st = self.0.borrow_mut();
            if st.on_data.is_none() {
                st.on_data = Some(callback);
            }
        }
        self.read_on(lp);
    }

    fn end(&self, lp: &mut Loop) {
        let file = match std::mem::replace(&mut self.0.borrow_mut().stage, Stage::Closed) {
            Stage::Idle(file) | Stage::Reading(file) => Some(file),
            Stage::Opening | Stage::Closed => None,
        };
        let on_end = self.0.borrow_mut().on_end.take();
        if let Some(on_end) = on_end {
            on_end(lp, self);
        }
        match file {
            Some(file) => self.close_file(lp, file),
            None => self.emit_close(lp),
        }
    }

    fn fail(&self, lp: &mut Loop, error: FsError) {
        let file = match std::mem::replace(&mut self.0.borrow_mut().stage, Stage::Closed) {
            Stage::Idle(file) | Stage::Reading(file) => Some(file),
            Stage::Opening | Stage::Closed => None,
        };
        self.emit_error(lp, error);
        match file {
            Some(file) => self.close_file(lp, file),
            None => self.emit_close(lp),
        }
    }

    fn emit_error(&self, lp: &mut Loop, error: FsError) {
        let on_error = self.0.borrow_mut().on_error.take();
        match on_error {
            Some(on_error) => on_error(lp, self, error),
            None => log::warn!("fs read stream: unhandled error: {error}"),
        }
    }

    /// Closes the file on the pool (the loop thread never makes the `close(2)` call), then
    /// emits `close`.
    fn close_file(&self, lp: &mut Loop, file: Arc<stdfs::File>) {
        let this = self.clone();
        let queued = request(
            lp,
            "close",
            move || {
                drop(file);
                Ok(())
            },
            move |lp, _closed: Result<(), FsError>| this.emit_close(lp),
        );
        if queued.is_err() {
            self.emit_close(lp);
        }
    }

    fn emit_close(&self, lp: &mut Loop) {
        let on_close = {
            let mut st = self.0.borrow_mut();
            st.on_data = None;
            st.on_end = None;
            st.on_error = None;
            st.on_close.take()
        };
        if let Some(on_close) = on_close {
            on_close(lp, self);
        }
    }
}
