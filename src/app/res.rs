//! The app-layer response (Express's `res`): `status`, `set`, `json`, `send`, `redirect`,
//! cookies, weak ETags with 304, `send_file`.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

use oneloop_runtime::{Loop, LoopHandle};
use serde::Serialize;
use smallvec::SmallVec;

use crate::http;

/// What an injected request got back (see [`App::inject`](super::App::inject)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InjectResponse {
    /// Status code.
    pub status: u16,
    /// Header fields as set by the app (no Date, Connection or Content-Length).
    pub headers: Vec<(String, String)>,
    /// Body bytes (empty for HEAD, 204 and 304).
    pub body: Vec<u8>,
    /// Whether the response was finished.
    pub finished: bool,
}

impl InjectResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    ///
    /// # Errors
    /// If the body is not JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
}

pub(crate) enum Target {
    Http(http::Response),
    Inject(Rc<RefCell<InjectResponse>>),
}

type FinishHook = Box<dyn FnOnce(u16, usize)>;

/// A transformer or observer of the body a handler sends, installed by middleware with
/// [`Res::on_body`] before it calls `next` (compression, logging, digests).
///
/// Hooks stack: the one installed last sits closest to the handler and sees the body first,
/// then hands its output down to the one installed before it, and the first one installed
/// hands to the connection (as Express middleware that patch `res.write`/`res.end`: the
/// latest patch runs first). A hook sees the body as the handler sends it: one buffered
/// piece ([`Res::send`], [`Res::json`], [`Res::send_bytes`], [`Res::end`]; the ETag is
/// computed on it before any hook runs) or streamed pieces ([`Res::write`]) then the end.
///
/// No hook installed costs nothing: the response then takes the same path it always did.
pub trait BodyHook {
    /// Called once, when the first piece of the body reaches this hook, before the head goes
    /// out: status and headers can be read and changed through `res`. `buffered_len` is
    /// `Some(len)` when the whole body arrives at once (a buffered send), `None` when it
    /// streams. Return false to step aside: the body then passes by untouched and this hook
    /// is not called again.
    fn start(&mut self, res: &Res, buffered_len: Option<usize>) -> bool;

    /// A streamed piece. Hand what should go on down to `down` (now, or later) and return
    /// what `down.write` returned (false: output backed up, wait for [`Res::on_drain`]).
    fn write(&mut self, chunk: &[u8], down: &BodySink) -> bool {
        down.write(chunk)
    }

    /// The end of the body, with its last piece (the whole body when buffered). `down` must
    /// be ended exactly once, now or later (from a thread-pool completion, for example): the
    /// response is finished only then, and its `on_finish` hooks run then.
    fn end(&mut self, last: &[u8], down: BodySink) {
        down.end(last)
    }
}

/// Where a [`BodyHook`] sends its output: the hook installed before it, or the connection.
pub struct BodySink {
    res: Res,
    /// Delivers to the hooks `[..level]`, then the connection.
    level: usize,
}

impl BodySink {
    /// The response (headers, status, loop handle).
    pub fn res(&self) -> &Res {
        &self.res
    }

    /// Passes a piece of the body on (sending the head first if it has not gone).
    pub fn write(&self, chunk: &[u8]) -> bool {
        self.res.write_at(self.level, chunk)
    }

    /// Passes the last piece on and finishes the response.
    pub fn end(self, last: &[u8]) {
        self.res.end_at(self.level, last)
    }

    /// Gives up (the transform failed): an unsent head becomes a plain 500, otherwise the
    /// connection is destroyed so the client sees the body cut short.
    pub fn abort(self) {
        self.res.abort();
    }
}

enum HookState {
    /// No body piece reached it yet.
    Waiting,
    Active,
    /// Its `start` returned false.
    Bypassed,
}

struct HookSlot {
    hook: Box<dyn BodyHook>,
    state: HookState,
}

struct Core {
    target: Target,
    is_head: bool,
    if_none_match: Option<String>,
    etag: bool,
    /// Two inline (the metrics middleware's and the access log's: no allocation for the list).
    finish_hooks: RefCell<SmallVec<[FinishHook; 2]>>,
    /// The app's JSON scratch buffer (see `AppInner::json_scratch`).
    json_scratch: Rc<Cell<Vec<u8>>>,
    handle: LoopHandle,
    /// Set on the core [`Core::drop`] makes to answer 500: it never makes another.
    panic_reply: bool,
    /// Body bytes sent by [`Res::write`] so far (what `on_finish` hooks report with the end).
    streamed: Cell<usize>,
    /// Body hooks, in installation order (see [`BodyHook`]); empty (no allocation) unless
    /// middleware installed one.
    body_hooks: RefCell<Vec<Rc<RefCell<HookSlot>>>>,
    /// The handler ended the body (a hook may still be working on it).
    ended: Cell<bool>,
}

/// A panic unwinding through the last clone of an unfinished response (a handler's timer,
/// thread-pool completion or body callback panicked while holding it, or the `Next` holding
/// it): the panic is attributable to this request, so it is answered 500, from the next tick,
/// outside the unwinding (which a loop with an uncaught-panic hook stops; without a hook the
/// loop is gone and nothing is sent). Dropping an unfinished response without a panic stays
/// as it was (the connection's timeouts end it, as in Node).
impl Drop for Core {
    fn drop(&mut self) {
        if self.panic_reply || !std::thread::panicking() {
            return;
        }
        let target = match &self.target {
            Target::Http(r) => Target::Http(r.clone()),
            Target::Inject(r) => Target::Inject(Rc::clone(r)),
        };
        let res = Res {
            core: Rc::new(Core {
                target,
                is_head: self.is_head,
                if_none_match: None,
                etag: false,
                finish_hooks: RefCell::new(std::mem::take(self.finish_hooks.get_mut())),
                json_scratch: Rc::clone(&self.json_scratch),
                handle: self.handle.clone(),
                panic_reply: true,
                streamed: Cell::new(self.streamed.get()),
                body_hooks: RefCell::new(Vec::new()),
                ended: Cell::new(false),
            }),
        };
        self.handle.next_tick(move |_lp| res.answer_panic());
    }
}

/// The response a handler or middleware writes (Express's `res`). Cloning it is cheap and
/// every clone names the same response, so it can be finished later from a timer or a
/// thread-pool completion.
#[derive(Clone)]
pub struct Res {
    core: Rc<Core>,
}

/// Largest scratch buffer [`Res::json`] keeps for the next response.
const JSON_BUF_KEEP: usize = 64 * 1024;

fn no_body_status(status: u16) -> bool {
    (100..200).contains(&status) || status == 204 || status == 304
}

/// Weak ETag of a body: length plus a 64-bit FNV-1a hash (Express uses a SHA-1 prefix; only
/// equality matters to clients).
pub(crate) fn weak_etag(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for &b in body {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    // `W/"{len:x}-{h:016x}"`, written by hand: `format!` costs a reallocation and the
    // formatting machinery on every response.
    let len = body.len() as u64;
    let len_digits = (64 - len.leading_zeros()).div_ceil(4).max(1);
    let mut tag = String::with_capacity(3 + len_digits as usize + 1 + 16 + 1);
    tag.push_str("W/\"");
    push_hex(&mut tag, len, len_digits);
    tag.push('-');
    push_hex(&mut tag, h, 16);
    tag.push('"');
    tag
}

/// Appends the low `digits` hex digits of `v` (lowercase, zero-padded).
fn push_hex(out: &mut String, v: u64, digits: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for i in (0..digits).rev() {
        out.push(HEX[((v >> (i * 4)) & 0xf) as usize] as char);
    }
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison, `*` matches all).
pub(crate) fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    fn strip(t: &str) -> &str {
        t.trim().trim_start_matches("W/")
    }
    let want = strip(etag);
    if_none_match
        .split(',')
        .any(|t| t.trim() == "*" || strip(t) == want)
}

/// The MIME type for a short name (`json`, `html`) or a file extension.
pub fn mime_for(name: &str) -> &'static str {
    match name.trim_start_matches('.').to_ascii_lowercase().as_str() {
        "json" => "application/json; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "txt" | "text" => "text/plain; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "xml" => "application/xml",
        "md" => "text/markdown; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "form" | "urlencoded" => "application/x-www-form-urlencoded",
        _ => "application/octet-stream",
    }
}

impl Res {
    pub(crate) fn new(
        target: Target,
        is_head: bool,
        if_none_match: Option<String>,
        etag: bool,
        json_scratch: Rc<Cell<Vec<u8>>>,
        handle: LoopHandle,
    ) -> Res {
        Res {
            core: Rc::new(Core {
                target,
                is_head,
                if_none_match,
                etag,
                finish_hooks: RefCell::new(SmallVec::new()),
                json_scratch,
                handle,
                panic_reply: false,
                streamed: Cell::new(0),
                body_hooks: RefCell::new(Vec::new()),
                ended: Cell::new(false),
            }),
        }
    }

    /// The 500 for a panic attributable to this response (see `Core`'s `Drop`). A response
    /// whose head already went out cannot change its status; it is left as is (Node leaves
    /// such a response open too).
    fn answer_panic(&self) {
        let head_sent = match &self.core.target {
            Target::Http(r) => r.headers_sent(),
            Target::Inject(_) => false,
        };
        if self.finished() || head_sent {
            return;
        }
        log::error!("a callback holding an open response panicked: answering 500");
        self.status(500)
            .set_static("content-type", "text/plain; charset=utf-8");
        self.send_bytes(b"Internal Server Error");
    }

    /// Sets the status code (`res.status(404)`); chainable.
    pub fn status(&self, code: u16) -> &Self {
        match &self.core.target {
            Target::Http(r) => {
                r.status(code);
            }
            Target::Inject(r) => {
                let mut r = r.borrow_mut();
                if !r.finished {
                    r.status = code;
                }
            }
        }
        self
    }

    /// The status code so far.
    pub fn status_code(&self) -> u16 {
        match &self.core.target {
            Target::Http(r) => r.status_code(),
            Target::Inject(r) => r.borrow().status,
        }
    }

    /// Sets a header (Express's `res.set`); chainable. Invalid names/values are refused and
    /// logged (header injection guard).
    pub fn set(&self, name: &str, value: &str) -> &Self {
        let value_ok = http::encode::validate_header_value(value.as_bytes());
        let name_ok = http::encode::validate_header_name(name);
        if !(value_ok && name_ok) {
            log::warn!("res.set refused an invalid header {name:?}");
            return self;
        }
        match &self.core.target {
            Target::Http(r) => {
                r.set_header(name.to_string(), value.as_bytes().to_vec());
            }
            Target::Inject(r) => {
                let mut r = r.borrow_mut();
                r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                r.headers.push((name.to_string(), value.to_string()));
            }
        }
        self
    }

    /// Sets a header from `'static` strings without allocating; chainable.
    pub fn set_static(&self, name: &'static str, value: &'static str) -> &Self {
        match &self.core.target {
            Target::Http(r) => {
                r.set_header(Cow::Borrowed(name), Cow::Borrowed(value.as_bytes()));
            }
            Target::Inject(_) => {
                self.set(name, value);
            }
        }
        self
    }

    /// Appends a header without replacing (for `Set-Cookie`).
    pub fn append(&self, name: &str, value: &str) -> &Self {
        match &self.core.target {
            Target::Http(r) => {
                if let Err(e) = r.append_header(name.to_string(), value.as_bytes().to_vec()) {
                    log::warn!("res.append refused {name:?}: {e}");
                }
            }
            Target::Inject(r) => {
                if http::encode::validate_header_value(value.as_bytes()) {
                    r.borrow_mut()
                        .headers
                        .push((name.to_string(), value.to_string()));
                }
            }
        }
        self
    }

    /// A header set so far.
    pub fn get(&self, name: &str) -> Option<String> {
        match &self.core.target {
            Target::Http(r) => r.get_header(name),
            Target::Inject(r) => r
                .borrow()
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone()),
        }
    }

    /// Whether a header named `name` is set (without copying its value, unlike [`Res::get`]).
    fn has(&self, name: &str) -> bool {
        match &self.core.target {
            Target::Http(r) => r.has_header(name),
            Target::Inject(r) => r
                .borrow()
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name)),
        }
    }

    /// Sets Content-Type from a short name or extension (`json`, `html`, `.png`) or a full
    /// type (`text/csv`); chainable.
    pub fn type_(&self, t: &str) -> &Self {
        if t.contains('/') {
            self.set("content-type", t)
        } else {
            self.set_static("content-type", mime_for(t))
        }
    }

    /// Sends `value` as JSON (`application/json; charset=utf-8`).
    pub fn json<T: Serialize + ?Sized>(&self, value: &T) {
        // Serialize into the app's scratch buffer (taken out while in use, so a nested `json`
        // from a finish hook simply gets a fresh one): no allocation per response.
        let mut buf = self.core.json_scratch.take();
        buf.clear();
        match serde_json::to_writer(&mut buf, value) {
            Ok(()) => {
                if !self.has("content-type") {
                    self.set_static("content-type", "application/json; charset=utf-8");
                }
                self.send_bytes(&buf);
            }
            Err(e) => {
                log::error!("res.json: serialization failed: {e}");
                self.status(500).send_text("Internal Server Error");
            }
        }
        if buf.capacity() <= JSON_BUF_KEEP {
            buf.clear();
            self.core.json_scratch.set(buf);
        }
    }

    /// Sends a body (Express's `res.send`): a `&str` defaults to `text/html; charset=utf-8`
    /// as in Express; use [`Res::send_text`] for text/plain.
    pub fn send(&self, body: impl AsRef<str>) {
        if !self.has("content-type") {
            self.set_static("content-type", "text/html; charset=utf-8");
        }
        self.send_bytes(body.as_ref().as_bytes());
    }

    /// Sends text/plain.
    pub fn send_text(&self, body: impl AsRef<str>) {
        if !self.has("content-type") {
            self.set_static("content-type", "text/plain; charset=utf-8");
        }
        self.send_bytes(body.as_ref().as_bytes());
    }

    /// Sends bytes (`application/octet-stream` unless a type is set), with a weak ETag and a
    /// 304 when the request's `If-None-Match` matches (GET/HEAD, 2xx).
    pub fn send_bytes(&self, body: &[u8]) {
        if !self.has("content-type") {
            self.set_static("content-type", "application/octet-stream");
        }
        let status = self.status_code();
        if self.core.etag && (200..300).contains(&status) && !self.has("etag") {
            let tag = weak_etag(body);
            let fresh = self
                .core
                .if_none_match
                .as_deref()
                .is_some_and(|inm| etag_matches(inm, &tag));
            self.set_etag(tag);
            if fresh {
                self.status(304);
                self.finish(&[]);
                return;
            }
        }
        self.finish(body);
    }

    /// Sets the ETag computed by [`Res::send_bytes`] (valid by construction), handing the
    /// string over instead of copying name and value as [`Res::set`] does.
    fn set_etag(&self, tag: String) {
        match &self.core.target {
            Target::Http(r) => {
                r.set_header("etag", tag);
            }
            Target::Inject(_) => {
                self.set("etag", &tag);
            }
        }
    }

    /// Sends the status with its reason phrase as a text/plain body (`res.sendStatus(404)`).
    pub fn send_status(&self, code: u16) {
        self.status(code);
        self.send_text(http::status::reason_phrase(code));
    }

    /// Redirects with 302 (`res.redirect(url)`), body `Found. Redirecting to <url>`.
    pub fn redirect(&self, url: &str) {
        self.redirect_with(302, url);
    }

    /// Redirects with a given status (301, 303, 307, 308 ...).
    pub fn redirect_with(&self, status: u16, url: &str) {
        self.status(status).set("location", url);
        let phrase = http::status::reason_phrase(status);
        self.send_text(format!("{phrase}. Redirecting to {url}"));
    }

    /// Sets a cookie (`Set-Cookie: name=value; Path=/` plus `attrs`, e.g. `"HttpOnly"`).
    /// `name` and `value` must not contain `;`, `,`, whitespace or control characters.
    pub fn cookie(&self, name: &str, value: &str, attrs: &[&str]) -> &Self {
        let bad = |s: &str| {
            s.bytes()
                .any(|b| b <= b' ' || b == b';' || b == b',' || b == 0x7f)
        };
        if name.is_empty() || bad(name) || bad(value) {
            log::warn!("res.cookie refused an invalid cookie {name:?}");
            return self;
        }
        let mut v = format!("{name}={value}; Path=/");
        for a in attrs {
            v.push_str("; ");
            v.push_str(a);
        }
        self.append("set-cookie", &v)
    }

    /// Clears a cookie (expires it in the past).
    pub fn clear_cookie(&self, name: &str) -> &Self {
        self.cookie(name, "", &["Expires=Thu, 01 Jan 1970 00:00:00 GMT"])
    }

    /// Writes a piece of the body and sends the head first if it has not gone yet (Node's
    /// `res.write`): with a `content-length` set the body is that long, otherwise chunked.
    /// Returns false when the connection's output is backed up (wait for [`Res::on_drain`])
    /// or gone ([`Res::finished`] is then true). A HEAD response sends no body bytes. Finish
    /// with [`Res::end`].
    pub fn write(&self, chunk: &[u8]) -> bool {
        if self.finished() {
            return false;
        }
        let hooks = self.core.body_hooks.borrow().len();
        if hooks == 0 {
            return self.raw_write(chunk);
        }
        self.write_at(hooks, chunk)
    }

    /// Installs a body hook (see [`BodyHook`]): it sees the body this response sends from
    /// now on, before the hooks installed earlier.
    pub fn on_body(&self, hook: impl BodyHook + 'static) {
        self.core
            .body_hooks
            .borrow_mut()
            .push(Rc::new(RefCell::new(HookSlot {
                hook: Box::new(hook),
                state: HookState::Waiting,
            })));
    }

    /// The active hook below `level` (starting any that wait on the way), or `None` for the
    /// connection. `buffered_len` is what a waiting hook's `start` is told.
    fn hook_below(
        &self,
        level: usize,
        buffered_len: Option<usize>,
    ) -> Option<(usize, Rc<RefCell<HookSlot>>)> {
        let mut i = level;
        while i > 0 {
            i -= 1;
            let slot = Rc::clone(&self.core.body_hooks.borrow()[i]);
            let active = {
                let mut s = slot.borrow_mut();
                if let HookState::Waiting = s.state {
                    s.state = if s.hook.start(self, buffered_len) {
                        HookState::Active
                    } else {
                        HookState::Bypassed
                    };
                }
                matches!(s.state, HookState::Active)
            };
            if active {
                return Some((i, slot));
            }
        }
        None
    }

    /// Writes `chunk` to the hooks below `level`, then the connection.
    fn write_at(&self, level: usize, chunk: &[u8]) -> bool {
        match self.hook_below(level, None) {
            Some((i, slot)) => {
                let down = BodySink {
                    res: self.clone(),
                    level: i,
                };
                let ok = slot.borrow_mut().hook.write(chunk, &down);
                ok
            }
            None => self.raw_write(chunk),
        }
    }

    /// Ends the body through the hooks below `level`, then the connection.
    fn end_at(&self, level: usize, last: &[u8]) {
        match self.hook_below(level, Some(last.len())) {
            Some((i, slot)) => {
                let down = BodySink {
                    res: self.clone(),
                    level: i,
                };
                slot.borrow_mut().hook.end(last, down);
            }
            None => self.raw_finish(last),
        }
    }

    /// Writes a piece of the body to the connection (after the hooks).
    fn raw_write(&self, chunk: &[u8]) -> bool {
        if self.target_finished() {
            return false;
        }
        if !self.core.is_head {
            self.core
                .streamed
                .set(self.core.streamed.get() + chunk.len());
        }
        match &self.core.target {
            Target::Http(r) => r.write(chunk),
            Target::Inject(r) => {
                if !self.core.is_head {
                    r.borrow_mut().body.extend_from_slice(chunk);
                }
                true
            }
        }
    }

    /// Calls `callback` once output backed up by a [`Res::write`] that returned false has
    /// drained (Node's `'drain'`). Never called if the connection closes first.
    pub fn on_drain(&self, callback: impl FnMut(&mut Loop) + 'static) {
        match &self.core.target {
            Target::Http(r) => r.on_drain(callback),
            Target::Inject(_) => {} // an injected response never backs up
        }
    }

    /// Calls `callback` once if the connection goes (the client left, a timeout) before this
    /// response finished: the moment to give up upstream work done for it (Node's
    /// `res.on('close')` with `!res.writableFinished`). Never called for an injected request.
    pub fn on_abort(&self, callback: impl FnOnce(&mut Loop) + 'static) {
        if let Target::Http(r) = &self.core.target {
            r.on_abort(callback);
        }
    }

    /// Whether the request was HEAD (the response carries no body).
    pub(crate) fn is_head(&self) -> bool {
        self.core.is_head
    }

    /// Gives up on a response whose head may be out (its body's source failed): an unsent
    /// head becomes a 500; otherwise the connection is destroyed, so the client sees the body
    /// cut short (Node's `res.destroy()`).
    pub(crate) fn abort(&self) {
        let head_sent = match &self.core.target {
            Target::Http(r) => r.headers_sent(),
            Target::Inject(_) => false,
        };
        if !head_sent {
            self.status(500)
                .set_static("content-type", "text/plain; charset=utf-8");
            self.remove_content_length();
            // An error body goes straight out, past any body hook (which may be the part
            // that failed).
            self.remove("content-encoding");
            self.core.ended.set(true);
            self.raw_finish(b"Internal Server Error");
            return;
        }
        if let Target::Http(r) = &self.core.target {
            r.destroy();
        }
    }

    /// Keeps only the header fields `keep` accepts (name, value), while the head is unsent.
    pub(crate) fn retain_headers(&self, mut keep: impl FnMut(&str, &[u8]) -> bool) {
        match &self.core.target {
            Target::Http(r) => {
                r.retain_headers(keep);
            }
            Target::Inject(r) => r
                .borrow_mut()
                .headers
                .retain(|(n, v)| keep(n, v.as_bytes())),
        }
    }

    /// Drops a `content-length` set for a body that will not be sent.
    fn remove_content_length(&self) {
        self.remove("content-length");
    }

    /// Removes a header (Express's `res.removeHeader`); chainable.
    pub fn remove(&self, name: &str) -> &Self {
        match &self.core.target {
            Target::Http(r) => {
                r.remove_header(name);
            }
            Target::Inject(r) => {
                let mut r = r.borrow_mut();
                r.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            }
        }
        self
    }

    /// Ends the response with no body (or the status's empty body).
    pub fn end(&self) {
        self.finish(&[]);
    }

    /// Whether the response has been finished: ended by the handler (a body hook may still
    /// be working on it, as a compression on the thread pool) or closed.
    pub fn finished(&self) -> bool {
        self.core.ended.get() || self.target_finished()
    }

    /// Whether the connection side of the response is finished.
    fn target_finished(&self) -> bool {
        match &self.core.target {
            Target::Http(r) => r.finished(),
            Target::Inject(r) => r.borrow().finished,
        }
    }

    /// Calls `hook(status, body_len)` when the response finishes (Express's `'finish'`).
    pub fn on_finish(&self, hook: impl FnOnce(u16, usize) + 'static) {
        self.core.finish_hooks.borrow_mut().push(Box::new(hook));
    }

    /// Sends a file, read on the thread pool (Express's `res.sendFile`); see
    /// [`files`](super::files) for conditional requests and ranges.
    pub fn send_file(&self, req: &super::Req, path: impl AsRef<std::path::Path>) {
        super::files::send_file(req, self, path);
    }

    /// The loop handle, to arm timers or queue thread-pool work.
    pub fn loop_handle(&self) -> &LoopHandle {
        &self.core.handle
    }

    /// Ends the body with its last piece, through the body hooks if any.
    pub(crate) fn finish(&self, body: &[u8]) {
        if self.finished() {
            return;
        }
        self.core.ended.set(true);
        let hooks = self.core.body_hooks.borrow().len();
        if hooks == 0 {
            return self.raw_finish(body);
        }
        self.end_at(hooks, body);
    }

    /// Writes the body's last piece to the connection and finishes; runs finish hooks.
    fn raw_finish(&self, body: &[u8]) {
        if self.target_finished() {
            return;
        }
        let status = self.status_code();
        // The HTTP layer itself drops the body of HEAD/204/304 (keeping Content-Length for
        // HEAD); an injected response mirrors what would reach the wire.
        let wire_body = if self.core.is_head || no_body_status(status) {
            &[][..]
        } else {
            body
        };
        match &self.core.target {
            Target::Http(r) => r.end(body),
            Target::Inject(r) => {
                let body = wire_body;
                let mut r = r.borrow_mut();
                r.body.extend_from_slice(body);
                r.finished = true;
            }
        }
        if !self.core.finish_hooks.borrow().is_empty() {
            self.run_finish_hooks(status, self.core.streamed.get() + wire_body.len());
        }
    }

    /// Out of line: keeps [`Res::raw_finish`] small for responses without hooks.
    #[inline(never)]
    fn run_finish_hooks(&self, status: u16, sent: usize) {
        let mut list = self.core.finish_hooks.borrow_mut();
        // One hook (the metrics middleware's, say): popped, no iterator over the taken list.
        // Either way the list is left empty before any hook runs.
        if list.len() == 1 {
            let hook = list.pop();
            drop(list);
            if let Some(hook) = hook {
                hook(status, sent);
            }
            return;
        }
        let hooks = std::mem::take(&mut *list);
        drop(list);
        for hook in hooks {
            hook(status, sent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_etag_matches_the_formatted_form() {
        for len in [0usize, 1, 15, 16, 17, 255, 256, 4095, 4096, 70_000] {
            let body = vec![b'x'; len];
            let mut h: u64 = 0xcbf29ce484222325;
            for &b in &body {
                h ^= b as u64;
                h = h.wrapping_mul(0x100000001b3);
            }
            let want = format!("W/\"{:x}-{:016x}\"", body.len(), h);
            let got = weak_etag(&body);
            assert_eq!(got, want);
            assert_eq!(got.capacity(), got.len());
        }
    }

    #[test]
    fn etag_matching() {
        let tag = weak_etag(b"hi");
        assert!(etag_matches(&tag, &tag));
        assert!(etag_matches("*", &tag));
        assert!(etag_matches(&format!("\"x\", {}", &tag[2..]), &tag));
        assert!(etag_matches(&format!(" W/W/{}", &tag[2..]), &tag));
        assert!(!etag_matches("W/\"1-0\"", &tag));
    }
}
