//! Files: `send_file` and the `static_files` middleware. Every file system call runs on the
//! loop's thread pool, never on the loop thread: one pool job finds the file and its metadata
//! (and reads it, when it is at most [`READ_WHOLE_MAX`] bytes); a larger body is streamed with
//! [`fs::ReadStream`](oneloop_runtime::fs::ReadStream) in [`STREAM_CHUNK`] pieces with
//! backpressure (the stream pauses while the connection's output is backed up), so a download
//! holds at most one chunk plus the connection's output buffer in memory, whatever the file's
//! size and however slowly the client reads. A client that goes away stops the stream and
//! closes the file.
//!
//! Conditional requests: `If-None-Match` against a weak ETag built from size and mtime, and
//! `If-Modified-Since` compared with the exact `Last-Modified` value we sent (clients echo it
//! back). Ranges: one `bytes=a-b`, `bytes=a-` or `bytes=-n` range answers 206 with
//! `Content-Range`; an unsatisfiable one answers 416; several ranges get the whole file (200).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use oneloop_runtime::fs::{ReadStream, ReadStreamOptions};
use oneloop_runtime::Loop;
use std::rc::Rc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::path::percent_decode;
use super::req::Req;
use super::res::{mime_for, Res};
use super::{AppError, Middleware, Next};
use crate::http::date::DateCache;

/// Bodies up to this size are read by the job that finds the file: one pool hop in all.
pub const READ_WHOLE_MAX: u64 = 64 * 1024;

/// A larger body is streamed in pieces of this size (Node's `fs.createReadStream`
/// `highWaterMark`, 64 KiB).
pub const STREAM_CHUNK: usize = 64 * 1024;

/// Options for [`static_files_with`].
#[derive(Clone, Debug)]
pub struct StaticOptions {
    /// `Cache-Control: public, max-age=N` when set.
    pub max_age_secs: Option<u64>,
    /// Serve `index.html` for a directory (default true).
    pub index: bool,
}

impl Default for StaticOptions {
    fn default() -> Self {
        StaticOptions {
            max_age_secs: None,
            index: true,
        }
    }
}

/// What the request asks for, captured before the work goes to the pool.
#[derive(Clone)]
struct Conditions {
    if_none_match: Option<String>,
    if_modified_since: Option<String>,
    range: Option<String>,
}

enum Outcome {
    Missing,
    NotModified {
        etag: String,
        last_modified: String,
    },
    Unsatisfiable {
        size: u64,
    },
    Body {
        /// The bytes, or `None` for a body to stream from `path`.
        body: Option<Vec<u8>>,
        path: PathBuf,
        size: u64,
        range: Option<(u64, u64)>,
        etag: String,
        last_modified: String,
        /// From the extension of the file actually read (`index.html` for a directory).
        content_type: &'static str,
    },
    Failed(String),
}

fn http_date(t: SystemTime) -> String {
    let mut cache = DateCache::new();
    cache.update(t);
    String::from_utf8_lossy(cache.as_bytes()).into_owned()
}

/// Parses one `bytes=` range against `size`: `Ok(None)` = no usable range header (serve all),
/// `Err(())` = unsatisfiable.
fn parse_range(header: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 || size == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end: u64 = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1))
        };
        if start >= size || start > end {
            return Err(());
        }
        (start, end)
    };
    Ok(Some(range))
}

fn load(path: &Path, index: bool, cond: &Conditions) -> Outcome {
    let mut path = path.to_path_buf();
    let mut meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(_) => return Outcome::Missing,
    };
    if meta.is_dir() {
        if !index {
            return Outcome::Missing;
        }
        path.push("index.html");
        meta = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m,
            _ => return Outcome::Missing,
        };
    }
    let size = meta.len();
    let mtime = meta.modified().unwrap_or(UNIX_EPOCH);
    let secs = mtime
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let etag = format!("W/\"{size:x}-{secs:x}\"");
    let last_modified = http_date(mtime);
    let not_modified = match (&cond.if_none_match, &cond.if_modified_since) {
        (Some(inm), _) => super::res::etag_matches(inm, &etag),
        (None, Some(ims)) => ims.trim() == last_modified,
        _ => false,
    };
    if not_modified {
        return Outcome::NotModified {
            etag,
            last_modified,
        };
    }
    let range = match cond.range.as_deref().map(|r| parse_range(r, size)) {
        Some(Err(())) => return Outcome::Unsatisfiable { size },
        Some(Ok(r)) => r,
        None => None,
    };
    let (start, len) = match range {
        Some((a, b)) => (a, b - a + 1),
        None => (0, size),
    };
    let read = || -> std::io::Result<Option<Vec<u8>>> {
        if len > READ_WHOLE_MAX {
            return Ok(None);
        }
        let mut f = File::open(&path)?;
        f.seek(SeekFrom::Start(start))?;
        let mut body = Vec::with_capacity(len as usize);
        f.take(len).read_to_end(&mut body)?;
        Ok(Some(body))
    };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let content_type = mime_for(ext);
    match read() {
        Ok(body) => Outcome::Body {
            body,
            path,
            size,
            range,
            etag,
            last_modified,
            content_type,
        },
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

fn conditions(req: &Req) -> Conditions {
    Conditions {
        if_none_match: req.header("if-none-match").map(str::to_owned),
        if_modified_since: req.header("if-modified-since").map(str::to_owned),
        range: req.header("range").map(str::to_owned),
    }
}

/// Sends the file at `path` (Express's `res.sendFile`), reading it on the thread pool; a
/// missing file answers 404, a failed read 500.
pub fn send_file(req: &Req, res: &Res, path: impl AsRef<Path>) {
    serve(req, res, path.as_ref().to_path_buf(), true, None, None);
}

fn serve(
    req: &Req,
    res: &Res,
    path: PathBuf,
    index: bool,
    max_age: Option<u64>,
    on_missing: Option<Next>,
) {
    let cond = conditions(req);
    let res = res.clone();
    // Everything that touches the disk (is it a directory? which file? its metadata) happens
    // in the pool job; the loop thread only answers with the outcome.
    res.loop_handle().clone().queue_work(
        move || load(&path, index, &cond),
        move |lp, outcome| {
            let outcome = outcome.unwrap_or_else(|e| Outcome::Failed(e.to_string()));
            respond(lp, &res, outcome, max_age, on_missing);
        },
    );
}

/// `Cache-Control` for a response the file layer itself serves (200, 206, 304); never on a
/// fall-through or an error, which belong to whoever answers them.
fn set_cache_control(res: &Res, max_age: Option<u64>) {
    if let Some(secs) = max_age {
        res.set("cache-control", &format!("public, max-age={secs}"));
    }
}

fn respond(
    lp: &mut Loop,
    res: &Res,
    outcome: Outcome,
    max_age: Option<u64>,
    on_missing: Option<Next>,
) {
    match outcome {
        Outcome::Missing => match on_missing {
            Some(next) => next.call(),
            None => {
                res.status(404);
                res.send_text("Not Found");
            }
        },
        Outcome::NotModified {
            etag,
            last_modified,
        } => {
            set_cache_control(res, max_age);
            res.set("etag", &etag).set("last-modified", &last_modified);
            res.status(304).end();
        }
        Outcome::Unsatisfiable { size } => {
            res.set("content-range", &format!("bytes */{size}"));
            res.status(416).send_text("Range Not Satisfiable");
        }
        Outcome::Body {
            body,
            path,
            size,
            range,
            etag,
            last_modified,
            content_type,
        } => {
            set_cache_control(res, max_age);
            res.set_static("content-type", content_type)
                .set_static("accept-ranges", "bytes")
                .set("etag", &etag)
                .set("last-modified", &last_modified);
            if let Some((a, b)) = range {
                res.status(206)
                    .set("content-range", &format!("bytes {a}-{b}/{size}"));
            }
            match body {
                Some(body) => res.finish(&body),
                None => {
                    let (start, end) = range.unwrap_or((0, size - 1));
                    res.set("content-length", &(end - start + 1).to_string());
                    stream(lp, res, path, start, end);
                }
            }
        }
        Outcome::Failed(e) => match on_missing {
            Some(next) => next.error(AppError::internal(e)),
            None => {
                log::error!("send_file: {e}");
                res.status(500).send_text("Internal Server Error");
            }
        },
    }
}

/// Sends bytes `start..=end` of the file at `path` as the body of `res` (whose head is set,
/// `Content-Length` included), one [`STREAM_CHUNK`] at a time: the stream pauses whenever
/// `res.write` reports backed-up output and resumes on drain. A HEAD response sends no body.
/// A client that goes away destroys the stream (the file closes); a read error once the head
/// is out can only cut the response short, so the connection is closed (as Node's `send`).
fn stream(lp: &mut Loop, res: &Res, path: PathBuf, start: u64, end: u64) {
    if res.finished() {
        return;
    }
    if res.is_head() {
        res.end();
        return;
    }
    let options = ReadStreamOptions {
        chunk_size: STREAM_CHUNK,
        start,
        end: Some(end),
    };
    let r = res.clone();
    let on_data = move |lp: &mut Loop, stream: &ReadStream, chunk: bytes::Bytes| {
        if r.write(&chunk) {
            return;
        }
        if r.finished() {
            stream.destroy(lp); // the client went away
            return;
        }
        stream.pause();
        let stream = stream.clone();
        r.on_drain(move |lp| stream.resume(lp));
    };
    let opened = ReadStream::open(lp, &path, options, on_data);
    let stream = match opened {
        Ok(stream) => stream,
        Err(e) => {
            log::error!("send_file: {}: {e}", path.display());
            res.abort();
            return;
        }
    };
    let r = res.clone();
    stream.on_end(move |_lp, _stream| r.end());
    let r = res.clone();
    stream.on_error(move |_lp, _stream, e| {
        log::error!("send_file: {e}");
        r.abort();
    });
}

/// Serves files under `root` (Express's `express.static`).
pub fn static_files(root: impl Into<PathBuf>) -> Middleware {
    static_files_with(root, StaticOptions::default())
}

/// Serves files under `root`: GET and HEAD only; `index.html` for directories; dotfiles are
/// not served (404 via `next`); any `..` segment, even percent-encoded, answers 403; missing
/// files fall through to the next middleware.
pub fn static_files_with(root: impl Into<PathBuf>, options: StaticOptions) -> Middleware {
    let root: PathBuf = root.into();
    Rc::new(move |req: &mut Req, res: &mut Res, next: Next| {
        if req.method() != "GET" && req.method() != "HEAD" {
            return next.call();
        }
        let Some(decoded) = percent_decode(req.path()) else {
            return next.error(AppError::new(400, "bad path encoding"));
        };
        let mut path = root.clone();
        for seg in decoded.split('/') {
            if seg.is_empty() || seg == "." {
                continue;
            }
            if seg == ".." || seg.contains('\\') || seg.contains('\0') {
                return next.error(AppError::new(403, "Forbidden"));
            }
            if seg.starts_with('.') {
                return next.call();
            }
            path.push(seg);
        }
        serve(
            req,
            res,
            path,
            options.index,
            options.max_age_secs,
            Some(next),
        );
    })
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_parse_like_rfc_9110() {
        assert_eq!(parse_range("bytes=0-4", 10), Ok(Some((0, 4))));
        assert_eq!(parse_range("bytes=5-", 10), Ok(Some((5, 9))));
        assert_eq!(parse_range("bytes=-3", 10), Ok(Some((7, 9))));
        assert_eq!(parse_range("bytes=0-100", 10), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=10-", 10), Err(()));
        assert_eq!(parse_range("bytes=5-2", 10), Err(()));
        assert_eq!(parse_range("bytes=0-1,3-4", 10), Ok(None));
        assert_eq!(parse_range("items=0-1", 10), Ok(None));
    }
}
