//! Running one request through the middleware chain.
//!
//! The chain is a small state machine driven by [`drive`]. User code gets `&mut Req`/`&mut Res`
//! borrowed from the chain for the duration of the call, plus a [`Next`]. Calling `next.call()`
//! *during* that call only records the signal (a trampoline: no recursion, no double borrow);
//! the driver acts on it when the call returns. Calling it *later* (from a timer, a
//! thread-pool completion, a body callback) drives the chain from there.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use oneloop_runtime::Loop;

use super::error::AppError;
use super::req::{InjectRequest, ParamValue, Req, Source};
use super::res::{InjectResponse, Res, Target};
use super::router::Match;
use super::{under_prefix, AppInner, ErrorMiddleware, Handler, Middleware};
use crate::http;

enum Outcome {
    Found(usize),
    /// The `Allow` value: the allowed methods, joined with `, `.
    MethodNotAllowed(String),
    BadParam,
    NotFound,
}

#[derive(Clone, Copy)]
enum Step {
    Layer(usize),
    RouteMw(usize),
    Handler,
    ErrLayer(usize),
    Done,
}

enum Signal {
    Next,
    Error(AppError),
}

/// The request and response while no user code holds them.
struct Parts {
    req: Req,
    res: Res,
}

/// One request's way through the chain. The request and response sit in their own `RefCell`
/// (borrowed by the driver for the duration of a user call, so they are never moved in and
/// out), and the driver's state is in `Cell`s, so a `Next` signalled during that call only
/// touches the state.
pub(crate) struct Chain {
    app: Rc<RefCell<AppInner>>,
    parts: RefCell<Parts>,
    outcome: Outcome,
    step: Cell<Step>,
    error: RefCell<Option<AppError>>,
    running: Cell<bool>,
    signal: Cell<Option<Signal>>,
}

/// Moves a request on to the next middleware or handler (Express's `next`).
///
/// Consumed by use, so it cannot be called twice.
pub struct Next {
    chain: Rc<Chain>,
}

impl Next {
    /// Goes on to the next middleware / the handler (or, in error middleware, passes the
    /// error on). May be called now or later.
    pub fn call(self) {
        self.signal(Signal::Next);
    }

    /// Skips to error middleware with `err` (Express's `next(err)`).
    pub fn error(self, err: impl Into<AppError>) {
        self.signal(Signal::Error(err.into()));
    }

    fn signal(self, s: Signal) {
        if self.chain.running.get() {
            self.chain.signal.set(Some(s));
        } else {
            apply_signal(&self.chain, s);
            drive(&self.chain);
        }
    }

    /// Runs `f` on the request while no user code holds it (for body parsers finishing
    /// asynchronously).
    pub(crate) fn with_req<R>(&self, f: impl FnOnce(&mut Req) -> R) -> Option<R> {
        let mut parts = self.chain.parts.try_borrow_mut().ok()?;
        Some(f(&mut parts.req))
    }
}

fn apply_signal(c: &Chain, s: Signal) {
    match s {
        Signal::Next => {}
        Signal::Error(e) => {
            let from = match c.step.get() {
                Step::ErrLayer(i) => i,
                _ => 0,
            };
            *c.error.borrow_mut() = Some(e);
            c.step.set(Step::ErrLayer(from));
        }
    }
}

pub(crate) fn start_http(
    lp: &mut Loop,
    app: &Rc<RefCell<AppInner>>,
    req: http::Request,
    res: http::Response,
) {
    let is_head = req.method() == "HEAD";
    let inm = req.header("if-none-match").map(str::to_owned);
    let (etag, scratch) = {
        let inner = app.borrow();
        (inner.etag, Rc::clone(&inner.json_scratch))
    };
    let handle = lp.handle();
    let res = Res::new(
        Target::Http(res),
        is_head,
        inm,
        etag,
        scratch,
        handle.clone(),
    );
    let (id, prefix) = next_id(app);
    let req = Req::new(Source::Http(req), id, prefix, handle);
    start(app, req, res);
}

pub(crate) fn start_inject(
    lp: &mut Loop,
    app: &Rc<RefCell<AppInner>>,
    request: InjectRequest,
) -> Rc<RefCell<InjectResponse>> {
    let out = Rc::new(RefCell::new(InjectResponse {
        status: 200,
        ..InjectResponse::default()
    }));
    let is_head = request.method == "HEAD";
    let inm = request
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("if-none-match"))
        .map(|(_, v)| v.clone());
    let (etag, scratch) = {
        let inner = app.borrow();
        (inner.etag, Rc::clone(&inner.json_scratch))
    };
    let handle = lp.handle();
    let res = Res::new(
        Target::Inject(Rc::clone(&out)),
        is_head,
        inm,
        etag,
        scratch,
        handle.clone(),
    );
    let (id, prefix) = next_id(app);
    let req = Req::new(Source::Inject(request), id, prefix, handle);
    start(app, req, res);
    out
}

/// The request's number in this app, and the app's request-id prefix.
fn next_id(app: &Rc<RefCell<AppInner>>) -> (u64, Rc<str>) {
    let inner = app.borrow();
    let id = inner.next_id.get() + 1;
    inner.next_id.set(id);
    (id, Rc::clone(&inner.id_prefix))
}

/// The byte range of `sub` within `path`, if `sub` is a slice of it.
fn span_in(path: &str, sub: &str) -> Option<(usize, usize)> {
    let start = (sub.as_ptr() as usize).checked_sub(path.as_ptr() as usize)?;
    let end = start.checked_add(sub.len())?;
    let within = path.get(start..end)?;
    (within.as_ptr() == sub.as_ptr()).then_some((start, end))
}

fn start(app: &Rc<RefCell<AppInner>>, mut req: Req, res: Res) {
    let mut params = Vec::new();
    let outcome = {
        let inner = app.borrow();
        let path = req.path();
        match inner.trie.lookup(req.method(), path) {
            Match::Found { value, params: p } => {
                if !p.is_empty() {
                    params.reserve_exact(p.len());
                    for (name, v) in p.iter() {
                        let value = match v {
                            Cow::Borrowed(raw) => match span_in(path, raw) {
                                Some((start, end)) => ParamValue::Path(start, end),
                                None => ParamValue::Owned(raw.to_string()),
                            },
                            Cow::Owned(decoded) => ParamValue::Owned(decoded),
                        };
                        params.push((inner.param_name(name), value));
                    }
                }
                Outcome::Found(*value)
            }
            Match::MethodNotAllowed { allowed } => Outcome::MethodNotAllowed(allowed.join(", ")),
            Match::BadParam { .. } => Outcome::BadParam,
            Match::NotFound => Outcome::NotFound,
        }
    };
    req.params = params;
    let chain = Rc::new(Chain {
        app: Rc::clone(app),
        parts: RefCell::new(Parts { req, res }),
        outcome,
        step: Cell::new(Step::Layer(0)),
        error: RefCell::new(None),
        running: Cell::new(false),
        signal: Cell::new(None),
    });
    drive(&chain);
}

enum Action {
    Mw(Middleware),
    Handler(Handler),
    ErrMw(ErrorMiddleware, AppError),
    /// The automatic answer to an OPTIONS request for a path with routes.
    AutoOptions(String),
    /// No route answers: the error goes to the error middleware, with `Allow` set first
    /// when the path has routes for other methods.
    Fail(AppError, Option<String>),
    FinalError(AppError),
}

/// Picks the next thing to run for `req` and advances `step` past it.
fn next_action(c: &Chain, req: &Req) -> Option<Action> {
    // The path is only needed (and only read) for layers mounted under a prefix.
    let covers = |prefix: &str| prefix.is_empty() || under_prefix(req.path(), prefix);
    let inner = c.app.borrow();
    loop {
        match c.step.get() {
            Step::Layer(i) => {
                let found = inner.layers[i.min(inner.layers.len())..]
                    .iter()
                    .position(|l| covers(&l.prefix));
                match found {
                    Some(off) => {
                        c.step.set(Step::Layer(i + off + 1));
                        return Some(Action::Mw(Rc::clone(&inner.layers[i + off].mw)));
                    }
                    None => c.step.set(Step::RouteMw(0)),
                }
            }
            Step::RouteMw(i) => match c.outcome {
                Outcome::Found(r) => match inner.routes[r].middleware.get(i) {
                    Some(mw) => {
                        c.step.set(Step::RouteMw(i + 1));
                        return Some(Action::Mw(Rc::clone(mw)));
                    }
                    None => c.step.set(Step::Handler),
                },
                _ => c.step.set(Step::Handler),
            },
            Step::Handler => {
                c.step.set(Step::Done);
                return Some(match &c.outcome {
                    Outcome::Found(r) => Action::Handler(Rc::clone(&inner.routes[*r].handler)),
                    Outcome::BadParam => Action::Fail(AppError::new(400, "bad parameter"), None),
                    Outcome::MethodNotAllowed(allow) if req.method() == "OPTIONS" => {
                        Action::AutoOptions(allow.clone())
                    }
                    Outcome::MethodNotAllowed(allow) => Action::Fail(
                        AppError::new(405, "Method Not Allowed"),
                        Some(allow.clone()),
                    ),
                    Outcome::NotFound => match &inner.not_found {
                        Some(h) => Action::Handler(Rc::clone(h)),
                        None => {
                            let msg = format!("Cannot {} {}", req.method(), req.path());
                            Action::Fail(AppError::new(404, msg), None)
                        }
                    },
                });
            }
            Step::ErrLayer(i) => {
                let err = c
                    .error
                    .borrow()
                    .clone()
                    .unwrap_or_else(|| AppError::internal("unknown"));
                let found = inner.err_layers[i.min(inner.err_layers.len())..]
                    .iter()
                    .position(|l| covers(&l.prefix));
                match found {
                    Some(off) => {
                        c.step.set(Step::ErrLayer(i + off + 1));
                        return Some(Action::ErrMw(Rc::clone(&inner.err_layers[i + off].mw), err));
                    }
                    None => {
                        c.step.set(Step::Done);
                        return Some(Action::FinalError(err));
                    }
                }
            }
            Step::Done => return None,
        }
    }
}

/// Runs the chain until it finishes or user code returns without calling `next`.
fn drive(chain: &Rc<Chain>) {
    loop {
        // Held by user code: a `next` called twice.
        let Ok(mut parts) = chain.parts.try_borrow_mut() else {
            return;
        };
        let Parts { req, res } = &mut *parts;
        let Some(action) = next_action(chain, req) else {
            return;
        };
        chain.running.set(true);
        chain.signal.set(None);
        let next = || Next {
            chain: Rc::clone(chain),
        };
        let result = catch_unwind(AssertUnwindSafe(|| match &action {
            Action::Mw(mw) => mw(req, res, next()),
            Action::Handler(h) => {
                if let Err(e) = h(req, res) {
                    chain.signal.set(Some(Signal::Error(e)));
                }
            }
            Action::ErrMw(mw, err) => mw(err, req, res, next()),
            Action::AutoOptions(allow) => {
                res.status(200).set("allow", allow);
                res.send_text(allow);
            }
            Action::Fail(err, allow) => {
                if let Some(allow) = allow {
                    res.set("allow", allow);
                }
                chain.signal.set(Some(Signal::Error(err.clone())));
            }
            Action::FinalError(err) => final_error(err, req, res),
        }));
        drop(parts);
        chain.running.set(false);
        let signal = match result {
            Ok(()) => chain.signal.take(),
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "panic".into());
                log::error!("handler panicked: {msg}");
                Some(Signal::Error(AppError::internal(format!("panic: {msg}"))))
            }
        };
        match signal {
            Some(s) => apply_signal(chain, s),
            None => return,
        }
    }
}

fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_page(message: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>{}</pre>\n</body>\n</html>\n",
        escape_html(message)
    )
}

fn wants_json(req: &Req) -> bool {
    req.content_type().is_some_and(|t| t.ends_with("json"))
        || req
            .header("accept")
            .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

fn send_error_body(req: &Req, res: &Res, status: u16, message: &str) {
    if wants_json(req) {
        res.set_static("content-type", "application/json; charset=utf-8");
        let body = serde_json::json!({
            "statusCode": status,
            "error": http::status::reason_phrase(status),
            "message": message,
        });
        res.send_bytes(body.to_string().as_bytes());
    } else {
        res.set_static("content-security-policy", "default-src 'none'");
        res.set_static("x-content-type-options", "nosniff");
        res.set_static("content-type", "text/html; charset=utf-8");
        res.send_bytes(html_page(message).as_bytes());
    }
}

/// The final handler (Express's finalhandler, production mode): the error's status, its
/// message only when exposed, the full error in the log.
fn final_error(err: &AppError, req: &Req, res: &Res) {
    if err.status >= 500 {
        log::error!(
            "{} {} -> {}: {}",
            req.method(),
            req.path(),
            err.status,
            err.message
        );
    } else {
        log::debug!(
            "{} {} -> {}: {}",
            req.method(),
            req.path(),
            err.status,
            err.message
        );
    }
    if res.finished() {
        return;
    }
    let message = if err.expose {
        err.message.clone()
    } else {
        http::status::reason_phrase(err.status).to_string()
    };
    res.status(err.status);
    send_error_body(req, res, err.status, &message);
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use oneloop_runtime::Loop;

    use crate::app::{App, InjectRequest};

    /// `param` and `params` see the decoded values, in pattern order, whether they were
    /// borrowed from the path or decoded.
    #[test]
    fn params_borrowed_and_decoded() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let mut app = App::new();
        for pattern in ["/u/:id/f/*rest", "/r/:from-:to", "/p{/:page}"] {
            let seen = Rc::clone(&seen);
            app.get(pattern, move |req, res| {
                let names: Vec<&str> = req.params().iter().map(|(n, _)| n.as_str()).collect();
                let singles: Vec<Option<&str>> = names.iter().map(|n| req.param(n)).collect();
                let pairs = req.params().to_vec();
                assert_eq!(
                    singles,
                    pairs
                        .iter()
                        .map(|(_, v)| Some(v.as_str()))
                        .collect::<Vec<_>>()
                );
                assert_eq!(req.param("nope"), None);
                seen.borrow_mut().push(pairs);
                res.end();
            });
        }
        let mut lp = Loop::new().unwrap();
        for url in [
            "/u/a%20b/f/x/y%2Fz.txt?q=1",
            "/u/42/f/plain",
            "/r/ab-c%41",
            "/p",
            "/p/7/",
        ] {
            let r = app.inject(&mut lp, InjectRequest::new("GET", url)).unwrap();
            assert_eq!(r.status, 200, "{url}");
        }
        let owned = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        assert_eq!(
            *seen.borrow(),
            vec![
                owned(&[("id", "a b"), ("rest", "x/y/z.txt")]),
                owned(&[("id", "42"), ("rest", "plain")]),
                owned(&[("from", "ab"), ("to", "cA")]),
                owned(&[]),
                owned(&[("page", "7")]),
            ]
        );
    }
}
