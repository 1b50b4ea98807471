//! `multipart/form-data` uploads (multer's shape): a streaming parser with limits; text fields
//! collected, files streamed to a directory on the thread pool as they arrive.
//!
//! ```no_run
//! use oneloop::app::multipart::{multipart, Multipart, MultipartOptions};
//! use oneloop::app::{App, AppError};
//!
//! let mut app = App::new();
//! app.use_mw_at("/products/upload", multipart(MultipartOptions::default()));
//! app.post("/products/upload", |req, res| {
//!     let form = req.locals.get::<Multipart>().ok_or(AppError::new(400, "a form is expected"))?;
//!     let image = form.file("image").ok_or(AppError::new(400, "no image"))?;
//!     res.json(&serde_json::json!({ "saved": image.path, "bytes": image.size }));
//!     Ok(())
//! });
//! ```
//!
//! The parser is a state machine over the body's chunks (no whole-body buffer): between parts
//! it holds at most one part's header block (`max_header_bytes`) and, inside a part, at most one
//! boundary's length of look-behind. File bytes go to a [`std::fs::File`] through thread-pool
//! jobs, one write in flight per file, in order; at most `max_pending_bytes` may wait for the
//! disk (past it the upload fails with 503: the client sends faster than the disk writes).
//!
//! Failures: a body that is not `multipart/form-data` with a boundary goes on untouched (the
//! next middleware decides); a broken form (no boundary line, a part without
//! `Content-Disposition: form-data; name=..`, a body that ends inside a part) is 400; past a
//! limit 413 (multer's `LIMIT_*` errors, with its message); the files already written are
//! removed on any failure, and when the client goes away mid-upload. Files of a form that
//! parsed are left for the handler to move or delete (as multer leaves them).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::rc::Rc;

use bytes::{Buf, Bytes, BytesMut};
use oneloop_runtime::Loop;

use super::req::Source;
use super::{AppError, Middleware, Next, Req, Res};

/// Limits (multer's `limits`; multer has no bound on most of them, we do).
#[derive(Clone, Copy, Debug)]
pub struct MultipartLimits {
    /// Longest field name. Default 100 bytes (multer's).
    pub field_name_size: usize,
    /// Longest text field value. Default 1 MiB (multer's).
    pub field_size: usize,
    /// Most text fields. Default 1,000.
    pub fields: usize,
    /// Largest file. Default 10 MiB.
    pub file_size: u64,
    /// Most files. Default 10.
    pub files: usize,
    /// Most parts, fields and files together. Default 1,010.
    pub parts: usize,
    /// Largest header block of one part. Default 16 KiB.
    pub max_header_bytes: usize,
    /// File bytes that may wait for the disk. Default 8 MiB.
    pub max_pending_bytes: usize,
}

impl Default for MultipartLimits {
    fn default() -> Self {
        MultipartLimits {
            field_name_size: 100,
            field_size: 1 << 20,
            fields: 1_000,
            file_size: 10 << 20,
            files: 10,
            parts: 1_010,
            max_header_bytes: 16 * 1024,
            max_pending_bytes: 8 << 20,
        }
    }
}

/// Options of [`multipart`].
#[derive(Clone, Debug)]
pub struct MultipartOptions {
    /// Where files go, each under a random name. Default `<temp dir>/oneloop-uploads`
    /// (created when missing).
    pub dest: PathBuf,
    /// Default [`MultipartLimits::default`].
    pub limits: MultipartLimits,
}

impl Default for MultipartOptions {
    fn default() -> Self {
        MultipartOptions {
            dest: std::env::temp_dir().join("oneloop-uploads"),
            limits: MultipartLimits::default(),
        }
    }
}

/// A stored file (multer's `req.file`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UploadedFile {
    /// The form field's name.
    pub field: String,
    /// The name the client gave (`originalname`), as sent; never used as a path.
    pub filename: String,
    /// The part's `Content-Type` (default `application/octet-stream`).
    pub content_type: String,
    /// Where it is stored.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// A parsed form: put in `req.locals` by [`multipart`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Multipart {
    /// Text fields in order (repeated names kept).
    pub fields: Vec<(String, String)>,
    /// Files in order.
    pub files: Vec<UploadedFile>,
}

impl Multipart {
    /// The first text field named `name`.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first file of field `name`.
    pub fn file(&self, name: &str) -> Option<&UploadedFile> {
        self.files.iter().find(|f| f.field == name)
    }
}

/// What the parser reports.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Part {
        name: String,
        filename: Option<String>,
        content_type: Option<String>,
    },
    Data(Bytes),
    PartEnd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first boundary line (preamble, discarded).
    Preamble,
    /// Just after a boundary: `--` ends the form, CRLF starts a part.
    AfterBoundary,
    Headers,
    Body,
    /// After the closing boundary: the epilogue is ignored.
    Done,
}

/// The streaming parser (no I/O). Invariant: `buf` never holds more than the header limit
/// (in `Headers`) or one delimiter's length (elsewhere) once `feed` returns.
pub(crate) struct Parser {
    /// `\r\n--<boundary>`.
    delimiter: Vec<u8>,
    state: State,
    buf: BytesMut,
    max_header_bytes: usize,
}

/// Why a form is refused: the status (400 or 413) and multer's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartError {
    /// 400, 413 or 503.
    pub status: u16,
    /// What went wrong.
    pub message: &'static str,
}

const fn err(status: u16, message: &'static str) -> MultipartError {
    MultipartError { status, message }
}

impl Parser {
    pub(crate) fn new(boundary: &str, max_header_bytes: usize) -> Parser {
        let mut buf = BytesMut::new();
        // A virtual CRLF: the first boundary line needs none before it.
        buf.extend_from_slice(b"\r\n");
        Parser {
            delimiter: format!("\r\n--{boundary}").into_bytes(),
            state: State::Preamble,
            buf,
            max_header_bytes,
        }
    }

    /// Parses `chunk`, reporting each event to `on`; an error from `on` stops the parse.
    pub(crate) fn feed(
        &mut self,
        chunk: &[u8],
        on: &mut dyn FnMut(Event) -> Result<(), MultipartError>,
    ) -> Result<(), MultipartError> {
        if self.state == State::Done {
            return Ok(());
        }
        self.buf.extend_from_slice(chunk);
        loop {
            match self.state {
                State::Preamble => match find(&self.buf, &self.delimiter) {
                    Some(i) => {
                        self.buf.advance(i + self.delimiter.len());
                        self.state = State::AfterBoundary;
                    }
                    None => {
                        let keep = self.delimiter.len() - 1;
                        let drop = self.buf.len().saturating_sub(keep);
                        self.buf.advance(drop);
                        return Ok(());
                    }
                },
                State::AfterBoundary => {
                    // Transport padding (spaces, tabs) may follow the boundary.
                    let pad = self
                        .buf
                        .iter()
                        .take_while(|b| **b == b' ' || **b == b'\t')
                        .count();
                    if self.buf.len() < pad + 2 {
                        if pad > 256 {
                            return Err(err(400, "Malformed part boundary"));
                        }
                        return Ok(());
                    }
                    match &self.buf[pad..pad + 2] {
                        b"--" => {
                            self.state = State::Done;
                            self.buf.clear();
                            return Ok(());
                        }
                        b"\r\n" => {
                            self.buf.advance(pad + 2);
                            self.state = State::Headers;
                        }
                        _ => return Err(err(400, "Malformed part boundary")),
                    }
                }
                State::Headers => {
                    let end = match self.buf.starts_with(b"\r\n") {
                        true => Some((0, 2)),
                        false => find(&self.buf, b"\r\n\r\n").map(|i| (i, i + 4)),
                    };
                    let Some((head_end, body_start)) = end else {
                        if self.buf.len() > self.max_header_bytes {
                            return Err(err(413, "Part header too large"));
                        }
                        return Ok(());
                    };
                    if head_end > self.max_header_bytes {
                        return Err(err(413, "Part header too large"));
                    }
                    let head = self.buf.split_to(body_start);
                    on(parse_part_head(&head[..head_end])?)?;
                    self.state = State::Body;
                }
                State::Body => match find(&self.buf, &self.delimiter) {
                    Some(i) => {
                        let data = self.buf.split_to(i).freeze();
                        if !data.is_empty() {
                            on(Event::Data(data))?;
                        }
                        self.buf.advance(self.delimiter.len());
                        on(Event::PartEnd)?;
                        self.state = State::AfterBoundary;
                    }
                    None => {
                        let safe = self.buf.len().saturating_sub(self.delimiter.len() - 1);
                        if safe > 0 {
                            on(Event::Data(self.buf.split_to(safe).freeze()))?;
                        }
                        return Ok(());
                    }
                },
                State::Done => return Ok(()),
            }
        }
    }

    /// The body ended: fine only after the closing boundary.
    pub(crate) fn finish(&self) -> Result<(), MultipartError> {
        match self.state {
            State::Done => Ok(()),
            _ => Err(err(400, "Unexpected end of form")),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(haystack, needle)
}

/// A part's header block: `Content-Disposition: form-data; name=".."[; filename=".."]` and an
/// optional `Content-Type`.
fn parse_part_head(head: &[u8]) -> Result<Event, MultipartError> {
    let head = std::str::from_utf8(head).map_err(|_| err(400, "Malformed part header"))?;
    let (mut name, mut filename, mut content_type) = (None, None, None);
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        let (field, value) = line
            .split_once(':')
            .ok_or(err(400, "Malformed part header"))?;
        let value = value.trim();
        if field.trim().eq_ignore_ascii_case("content-disposition") {
            let mut params = split_params(value);
            let kind = params.next().unwrap_or_default();
            if !kind.eq_ignore_ascii_case("form-data") {
                return Err(err(400, "Malformed part header"));
            }
            for param in params {
                let Some((k, v)) = param.split_once('=') else {
                    continue;
                };
                let v = html5_unescape(&unquote(v.trim()));
                match k.trim().to_ascii_lowercase().as_str() {
                    "name" => name = Some(v),
                    "filename" if filename.is_none() => filename = Some(v),
                    "filename*" => filename = ext_value(&v).or(filename),
                    _ => {}
                }
            }
        } else if field.trim().eq_ignore_ascii_case("content-type") {
            content_type = Some(value.to_owned());
        }
    }
    let name = name.ok_or(err(400, "Malformed part header"))?;
    Ok(Event::Part {
        name,
        filename,
        content_type,
    })
}

/// `;`-separated parameters, quotes respected.
fn split_params(v: &str) -> impl Iterator<Item = String> + '_ {
    let mut out = Vec::new();
    let (mut cur, mut quoted, mut escaped) = (String::new(), false, false);
    for c in v.chars() {
        match c {
            _ if escaped => {
                cur.push(c);
                escaped = false;
            }
            '\\' if quoted => {
                cur.push(c);
                escaped = true;
            }
            '"' => {
                cur.push(c);
                quoted = !quoted;
            }
            ';' if !quoted => out.push(std::mem::take(&mut cur).trim().to_owned()),
            _ => cur.push(c),
        }
    }
    out.push(cur.trim().to_owned());
    out.into_iter()
}

fn unquote(v: &str) -> String {
    match v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => inner.replace("\\\"", "\"").replace("\\\\", "\\"),
        None => v.to_owned(),
    }
}

/// The escapes HTML's form encoding puts in quoted names (`"` as `%22`, CR as `%0D`, LF as
/// `%0A`), undone as browsers and busboy (multer's parser) do; any other `%` stays.
fn html5_unescape(v: &str) -> String {
    if !v.contains('%') {
        return v.to_owned();
    }
    v.replace("%22", "\"")
        .replace("%0D", "\r")
        .replace("%0A", "\n")
}

/// RFC 5987 `UTF-8''percent%20encoded`.
fn ext_value(v: &str) -> Option<String> {
    let (charset, rest) = v.split_once('\'')?;
    let (_lang, encoded) = rest.split_once('\'')?;
    if !charset.eq_ignore_ascii_case("utf-8") {
        return None;
    }
    super::path::percent_decode(encoded).map(|c| c.into_owned())
}

/// The boundary of a `multipart/form-data` content type (1 to 70 characters).
fn boundary_of(content_type: &str) -> Option<String> {
    let mut params = split_params(content_type);
    let kind = params.next()?;
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("boundary")
                .then(|| unquote(v.trim()))
        })
        .find(|b| (1..=70).contains(&b.len()))
}

/// A file being written: chunks wait in `pending` while one write is in flight.
struct Sink {
    file: UploadedFile,
    /// Taken out while a write job has it.
    handle: Option<std::fs::File>,
    pending: VecDeque<Bytes>,
    busy: bool,
    ended: bool,
}

/// One upload in progress.
struct Upload {
    parser: Parser,
    limits: MultipartLimits,
    dest: PathBuf,
    form: Multipart,
    /// The part being read: a field's name and value so far, or a file's index in `sinks`.
    current: Option<Current>,
    sinks: Vec<Sink>,
    pending_bytes: usize,
    parts: usize,
    body_ended: bool,
    /// Set once: a failure, an abort, or the hand-over of the form.
    over: bool,
    next: Option<Next>,
}

enum Current {
    Field(String, Vec<u8>),
    File(usize),
}

type Shared = Rc<RefCell<Upload>>;

/// The `multipart/form-data` middleware (multer's `upload.any()`): puts a [`Multipart`] in
/// `req.locals`. Requests of any other type go on untouched.
pub fn multipart(options: MultipartOptions) -> Middleware {
    Rc::new(move |req: &mut Req, res: &mut Res, next: Next| {
        if req.body_taken {
            return next.call();
        }
        let Some(boundary) = req.header("content-type").and_then(boundary_of) else {
            if req
                .header("content-type")
                .is_some_and(|t| t.to_ascii_lowercase().starts_with("multipart/form-data"))
            {
                return next.error(AppError::new(400, "Multipart: Boundary not found"));
            }
            return next.call();
        };
        req.body_taken = true;
        let up: Shared = Rc::new(RefCell::new(Upload {
            parser: Parser::new(&boundary, options.limits.max_header_bytes),
            limits: options.limits,
            dest: options.dest.clone(),
            form: Multipart::default(),
            current: None,
            sinks: Vec::new(),
            pending_bytes: 0,
            parts: 0,
            body_ended: false,
            over: false,
            next: Some(next),
        }));
        let u = Rc::clone(&up);
        res.on_abort(move |lp| fail(lp, &u, None));
        match &req.source {
            Source::Inject(r) => {
                let body = r.body.clone();
                req.with_loop(move |lp| {
                    feed(lp, &up, &body);
                    end(lp, &up);
                });
            }
            Source::Http(r) => {
                let u = Rc::clone(&up);
                r.on_data(move |lp, chunk| feed(lp, &u, chunk));
                r.on_end(move |lp| end(lp, &up));
            }
        }
    })
}

fn feed(lp: &mut Loop, up: &Shared, chunk: &[u8]) {
    let result = {
        let mut guard = up.borrow_mut();
        let u = &mut *guard;
        if u.over {
            return;
        }
        let Upload {
            parser,
            limits,
            dest,
            form,
            current,
            sinks,
            pending_bytes,
            parts,
            ..
        } = u;
        let mut started = Vec::new();
        let r = parser.feed(chunk, &mut |event| {
            on_event(
                event,
                limits,
                dest,
                form,
                current,
                sinks,
                pending_bytes,
                parts,
                &mut started,
            )
        });
        drop(guard);
        for i in started {
            open_sink(lp, up, i);
        }
        r
    };
    match result {
        Ok(()) => pump_all(lp, up),
        Err(e) => fail(lp, up, Some(e)),
    }
}

#[allow(clippy::too_many_arguments)]
fn on_event(
    event: Event,
    limits: &MultipartLimits,
    dest: &std::path::Path,
    form: &mut Multipart,
    current: &mut Option<Current>,
    sinks: &mut Vec<Sink>,
    pending_bytes: &mut usize,
    parts: &mut usize,
    started: &mut Vec<usize>,
) -> Result<(), MultipartError> {
    match event {
        Event::Part {
            name,
            filename,
            content_type,
        } => {
            *parts += 1;
            if *parts > limits.parts {
                return Err(err(413, "Too many parts"));
            }
            if name.len() > limits.field_name_size {
                return Err(err(413, "Field name too long"));
            }
            match filename {
                None => {
                    if form.fields.len() >= limits.fields {
                        return Err(err(413, "Too many fields"));
                    }
                    *current = Some(Current::Field(name, Vec::new()));
                }
                Some(filename) => {
                    if sinks.len() >= limits.files {
                        return Err(err(413, "Too many files"));
                    }
                    let path = dest.join(random_name());
                    sinks.push(Sink {
                        file: UploadedFile {
                            field: name,
                            filename,
                            content_type: content_type
                                .unwrap_or_else(|| "application/octet-stream".into()),
                            path,
                            size: 0,
                        },
                        handle: None,
                        pending: VecDeque::new(),
                        busy: true, // until the file is open
                        ended: false,
                    });
                    started.push(sinks.len() - 1);
                    *current = Some(Current::File(sinks.len() - 1));
                }
            }
        }
        Event::Data(bytes) => match current {
            Some(Current::Field(_, value)) => {
                if value.len() + bytes.len() > limits.field_size {
                    return Err(err(413, "Field value too long"));
                }
                value.extend_from_slice(&bytes);
            }
            Some(Current::File(i)) => {
                let sink = &mut sinks[*i];
                sink.file.size += bytes.len() as u64;
                if sink.file.size > limits.file_size {
                    return Err(err(413, "File too large"));
                }
                *pending_bytes += bytes.len();
                if *pending_bytes > limits.max_pending_bytes {
                    return Err(err(503, "Upload faster than the disk"));
                }
                sink.pending.push_back(bytes);
            }
            None => {}
        },
        Event::PartEnd => match current.take() {
            Some(Current::Field(name, value)) => {
                form.fields
                    .push((name, String::from_utf8_lossy(&value).into_owned()));
            }
            Some(Current::File(i)) => sinks[i].ended = true,
            None => {}
        },
    }
    Ok(())
}

/// 16 random bytes as hex (multer's file names).
fn random_name() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Creates file `i` on the pool (and the directory when missing).
fn open_sink(lp: &mut Loop, up: &Shared, i: usize) {
    let path = up.borrow().sinks[i].file.path.clone();
    let u = Rc::clone(up);
    let queued = lp.queue_work(
        move || -> std::io::Result<std::fs::File> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
        },
        move |lp, opened| match opened {
            Ok(Ok(file)) if u.borrow().over => {
                // The upload failed while the file was being created: `fail` may have tried
                // to remove it before it existed.
                drop(file);
                let path = u.borrow().sinks[i].file.path.clone();
                let _ = lp.queue_work(move || std::fs::remove_file(path), |_lp, _| {});
            }
            Ok(Ok(file)) => {
                {
                    let mut up = u.borrow_mut();
                    let sink = &mut up.sinks[i];
                    sink.handle = Some(file);
                    sink.busy = false;
                }
                pump_all(lp, &u);
            }
            Ok(Err(e)) => {
                log::error!("multipart: cannot create an upload file: {e}");
                fail(lp, &u, Some(err(500, "Cannot store the upload")));
            }
            Err(_) => fail(lp, &u, Some(err(500, "Cannot store the upload"))),
        },
    );
    if queued.is_err() {
        fail(lp, up, Some(err(503, "Thread pool unavailable")));
    }
}

/// Starts a write for every file that has bytes waiting and none in flight; hands the form
/// over when the body ended and every file is written.
fn pump_all(lp: &mut Loop, up: &Shared) {
    let jobs: Vec<(usize, std::fs::File, Vec<Bytes>)> = {
        let mut u = up.borrow_mut();
        if u.over {
            return;
        }
        let mut jobs = Vec::new();
        for (i, sink) in u.sinks.iter_mut().enumerate() {
            if sink.busy || sink.pending.is_empty() {
                continue;
            }
            let Some(file) = sink.handle.take() else {
                continue;
            };
            sink.busy = true;
            jobs.push((i, file, sink.pending.drain(..).collect()));
        }
        jobs
    };
    for (i, mut file, chunks) in jobs {
        let n: usize = chunks.iter().map(Bytes::len).sum();
        let u = Rc::clone(up);
        let queued = lp.queue_work(
            move || {
                let r = chunks.iter().try_for_each(|c| file.write_all(c));
                (file, r)
            },
            move |lp, done| {
                match done {
                    Ok((file, Ok(()))) => {
                        let mut up = u.borrow_mut();
                        up.pending_bytes -= n;
                        let sink = &mut up.sinks[i];
                        sink.handle = Some(file);
                        sink.busy = false;
                    }
                    Ok((_, Err(e))) => {
                        log::error!("multipart: writing an upload failed: {e}");
                        return fail(lp, &u, Some(err(500, "Cannot store the upload")));
                    }
                    Err(_) => return fail(lp, &u, Some(err(500, "Cannot store the upload"))),
                }
                pump_all(lp, &u);
            },
        );
        if queued.is_err() {
            return fail(lp, up, Some(err(503, "Thread pool unavailable")));
        }
    }
    maybe_done(up);
}

/// The body ended: the form must be complete.
fn end(lp: &mut Loop, up: &Shared) {
    let finished = {
        let mut u = up.borrow_mut();
        if u.over {
            return;
        }
        u.body_ended = true;
        u.parser.finish()
    };
    match finished {
        Ok(()) => pump_all(lp, up),
        Err(e) => fail(lp, up, Some(e)),
    }
}

/// Hands the form to the request and goes on, once the body ended and every file is written
/// and closed.
fn maybe_done(up: &Shared) {
    let (form, next) = {
        let mut u = up.borrow_mut();
        let written = u
            .sinks
            .iter()
            .all(|s| s.ended && !s.busy && s.pending.is_empty());
        if u.over || !u.body_ended || !written {
            return;
        }
        u.over = true;
        for sink in &mut u.sinks {
            sink.handle = None; // closed here: the handler may move the file
        }
        let files = u.sinks.iter().map(|s| s.file.clone()).collect();
        let mut form = std::mem::take(&mut u.form);
        form.files = files;
        (form, u.next.take())
    };
    if let Some(next) = next {
        next.with_req(|req| {
            req.locals.insert(form);
        });
        next.call();
    }
}

/// Gives up: removes the files written so far (on the pool) and, for an error (not a client
/// that left), fails the request with it.
fn fail(lp: &mut Loop, up: &Shared, error: Option<MultipartError>) {
    let (paths, next) = {
        let mut u = up.borrow_mut();
        if u.over {
            return;
        }
        u.over = true;
        let paths: Vec<PathBuf> = u.sinks.iter().map(|s| s.file.path.clone()).collect();
        (paths, u.next.take())
    };
    if !paths.is_empty() {
        // A write still in flight holds its file open; removing the name is fine on Unix.
        let _ = lp.queue_work(
            move || {
                for p in paths {
                    let _ = std::fs::remove_file(p);
                }
            },
            |_lp, _| {},
        );
    }
    if let (Some(e), Some(next)) = (error, next) {
        next.error(AppError::new(e.status, format!("Multipart: {}", e.message)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(body: &[u8], boundary: &str, split: usize) -> Result<Vec<Event>, MultipartError> {
        let mut p = Parser::new(boundary, 1024);
        let mut events = Vec::new();
        for chunk in body.chunks(split.max(1)) {
            p.feed(chunk, &mut |e| {
                events.push(e);
                Ok(())
            })?;
        }
        p.finish()?;
        // Merge adjacent data events: splits may cut data anywhere.
        let mut merged: Vec<Event> = Vec::new();
        for e in events {
            match (merged.last_mut(), e) {
                (Some(Event::Data(a)), Event::Data(b)) => {
                    let mut joined = a.to_vec();
                    joined.extend_from_slice(&b);
                    *a = Bytes::from(joined);
                }
                (_, e) => merged.push(e),
            }
        }
        Ok(merged)
    }

    const FORM: &[u8] = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nHello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"img\"; filename=\"a;b.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--Xy\r\n\r\n--XyZ--\r\nepilogue";

    #[test]
    fn every_split_of_a_form_parses_the_same() {
        let whole = parse_all(FORM, "XyZ", FORM.len()).unwrap();
        assert_eq!(whole.len(), 6);
        assert_eq!(
            whole[3],
            Event::Part {
                name: "img".into(),
                filename: Some("a;b.png".into()),
                content_type: Some("image/png".into())
            }
        );
        assert_eq!(
            whole[4],
            Event::Data(Bytes::from_static(b"\x89PNG\r\n--Xy\r\n"))
        );
        for split in 1..FORM.len() {
            assert_eq!(
                parse_all(FORM, "XyZ", split).unwrap(),
                whole,
                "split {split}"
            );
        }
    }

    #[test]
    fn broken_forms_are_errors_not_panics() {
        let cases: [&[u8]; 6] = [
            b"",
            b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nno end",
            b"--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--",
            b"--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--XyZ--",
            b"--XyZgarbage",
            b"--XyZ\r\nbroken header line\r\n\r\nx\r\n--XyZ--",
        ];
        for body in cases {
            for split in [1, 3, 1000] {
                assert!(
                    parse_all(body, "XyZ", split).is_err(),
                    "{:?}",
                    String::from_utf8_lossy(body)
                );
            }
        }
        let huge_header = [b"--XyZ\r\nX: ".as_slice(), &[b'a'; 2000]].concat();
        assert_eq!(parse_all(&huge_header, "XyZ", 100).unwrap_err().status, 413);
    }

    #[test]
    fn boundaries_are_read_from_the_content_type() {
        assert_eq!(
            boundary_of("multipart/form-data; boundary=abc").as_deref(),
            Some("abc")
        );
        assert_eq!(
            boundary_of("Multipart/Form-Data; charset=x; boundary=\"a b;c\"").as_deref(),
            Some("a b;c")
        );
        assert_eq!(boundary_of("multipart/form-data"), None);
        assert_eq!(
            boundary_of(&format!("multipart/form-data; boundary={}", "x".repeat(71))),
            None
        );
        assert_eq!(boundary_of("application/json"), None);
    }
}
