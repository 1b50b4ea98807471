//! Running one request through the middleware chain.
//!
//! The chain is a small state machine driven by [`drive`]. User code gets `&mut Req`/`&mut Res`
//! taken out of the chain for the duration of the call, plus a [`Next`]. Calling `next.call()`
//! *during* that call only records the signal (a trampoline: no recursion, no double borrow);
//! the driver acts on it when the call returns. Calling it *later* (from a timer, a
//! thread-pool completion, a body callback) drives the chain from there.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;

use oneloop_runtime::Loop;

use super::error::AppError;
use super::req::{InjectRequest, Req, Source};
use super::res::{InjectResponse, Res, Target};
use super::router::Match;
use super::{under_prefix, AppInner, ErrorMiddleware, Handler, Middleware};
use crate::http;

enum Outcome {
    Found(usize),
    MethodNotAllowed(Vec<String>),
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

pub(crate) struct Chain {
    app: Rc<RefCell<AppInner>>,
    req: Option<Req>,
    res: Option<Res>,
    path: String,
    outcome: Outcome,
    step: Step,
    error: Option<AppError>,
    running: bool,
    signal: Option<Signal>,
}

/// Moves a request on to the next middleware or handler (Express's `next`).
///
/// Consumed by use, so it cannot be called twice.
pub struct Next {
    chain: Rc<RefCell<Chain>>,
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
        let running = {
            let mut c = self.chain.borrow_mut();
            if c.running {
                c.signal = Some(s);
                true
            } else {
                apply_signal(&mut c, s);
                false
            }
        };
        if !running {
            drive(&self.chain);
        }
    }

    /// Runs `f` on the request while no user code holds it (for body parsers finishing
    /// asynchronously).
    pub(crate) fn with_req<R>(&self, f: impl FnOnce(&mut Req) -> R) -> Option<R> {
        self.chain.borrow_mut().req.as_mut().map(f)
    }
}

fn apply_signal(c: &mut Chain, s: Signal) {
    match s {
        Signal::Next => {}
        Signal::Error(e) => {
            let from = match c.step {
                Step::ErrLayer(i) => i,
                _ => 0,
            };
            c.error = Some(e);
            c.step = Step::ErrLayer(from);
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
    let etag = app.borrow().etag;
    let handle = lp.handle();
    let res = Res::new(Target::Http(res), is_head, inm, etag, handle.clone());
    let id = next_id(app);
    let req = Req::new(Source::Http(req), id, handle);
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
    let etag = app.borrow().etag;
    let handle = lp.handle();
    let res = Res::new(
        Target::Inject(Rc::clone(&out)),
        is_head,
        inm,
        etag,
        handle.clone(),
    );
    let id = next_id(app);
    let req = Req::new(Source::Inject(request), id, handle);
    start(app, req, res);
    out
}

fn next_id(app: &Rc<RefCell<AppInner>>) -> u64 {
    let inner = app.borrow();
    let id = inner.next_id.get() + 1;
    inner.next_id.set(id);
    id
}

fn start(app: &Rc<RefCell<AppInner>>, mut req: Req, res: Res) {
    let path = req.path().to_string();
    let outcome = {
        let inner = app.borrow();
        match inner.trie.lookup(req.method(), &path) {
            Match::Found { value, params } => {
                req.params = params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.into_owned()))
                    .collect();
                Outcome::Found(*value)
            }
            Match::MethodNotAllowed { allowed } => {
                Outcome::MethodNotAllowed(allowed.iter().map(|m| m.to_string()).collect())
            }
            Match::BadParam { .. } => Outcome::BadParam,
            Match::NotFound => Outcome::NotFound,
        }
    };
    let chain = Rc::new(RefCell::new(Chain {
        app: Rc::clone(app),
        req: Some(req),
        res: Some(res),
        path,
        outcome,
        step: Step::Layer(0),
        error: None,
        running: false,
        signal: None,
    }));
    drive(&chain);
}

enum Action {
    Mw(Middleware),
    Handler(Handler),
    ErrMw(ErrorMiddleware, AppError),
    Default,
    FinalError(AppError),
}

/// Picks the next thing to run and advances `step` past it.
fn next_action(c: &mut Chain) -> Option<Action> {
    let app = Rc::clone(&c.app);
    let inner = app.borrow();
    loop {
        match c.step {
            Step::Layer(i) => {
                let found = inner.layers[i.min(inner.layers.len())..]
                    .iter()
                    .position(|l| under_prefix(&c.path, &l.prefix));
                match found {
                    Some(off) => {
                        c.step = Step::Layer(i + off + 1);
                        return Some(Action::Mw(Rc::clone(&inner.layers[i + off].mw)));
                    }
                    None => c.step = Step::RouteMw(0),
                }
            }
            Step::RouteMw(i) => match c.outcome {
                Outcome::Found(r) => match inner.routes[r].middleware.get(i) {
                    Some(mw) => {
                        c.step = Step::RouteMw(i + 1);
                        return Some(Action::Mw(Rc::clone(mw)));
                    }
                    None => c.step = Step::Handler,
                },
                _ => c.step = Step::Handler,
            },
            Step::Handler => {
                c.step = Step::Done;
                return Some(match c.outcome {
                    Outcome::Found(r) => Action::Handler(Rc::clone(&inner.routes[r].handler)),
                    Outcome::BadParam => Action::FinalError(AppError::new(400, "bad parameter")),
                    _ => Action::Default,
                });
            }
            Step::ErrLayer(i) => {
                let err = c
                    .error
                    .clone()
                    .unwrap_or_else(|| AppError::internal("unknown"));
                let found = inner.err_layers[i.min(inner.err_layers.len())..]
                    .iter()
                    .position(|l| under_prefix(&c.path, &l.prefix));
                match found {
                    Some(off) => {
                        c.step = Step::ErrLayer(i + off + 1);
                        return Some(Action::ErrMw(Rc::clone(&inner.err_layers[i + off].mw), err));
                    }
                    None => {
                        c.step = Step::Done;
                        return Some(Action::FinalError(err));
                    }
                }
            }
            Step::Done => return None,
        }
    }
}

/// Runs the chain until it finishes or user code returns without calling `next`.
fn drive(chain: &Rc<RefCell<Chain>>) {
    loop {
        let (action, mut req, mut res) = {
            let mut c = chain.borrow_mut();
            let Some(action) = next_action(&mut c) else {
                return;
            };
            let (Some(req), Some(res)) = (c.req.take(), c.res.take()) else {
                return; // user code holds them: a `next` called twice
            };
            c.running = true;
            c.signal = None;
            (action, req, res)
        };
        let next = || Next {
            chain: Rc::clone(chain),
        };
        let result = catch_unwind(AssertUnwindSafe(|| match &action {
            Action::Mw(mw) => mw(&mut req, &mut res, next()),
            Action::Handler(h) => h(&mut req, &mut res),
            Action::ErrMw(mw, err) => mw(err, &mut req, &mut res, next()),
            Action::Default => {
                let c = chain.borrow();
                answer_default(&c.outcome, &req, &res);
            }
            Action::FinalError(err) => final_error(err, &req, &res),
        }));
        let mut c = chain.borrow_mut();
        c.req = Some(req);
        c.res = Some(res);
        c.running = false;
        let signal = match result {
            Ok(()) => c.signal.take(),
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
            Some(s) => apply_signal(&mut c, s),
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

/// 404, 405 with Allow, or the automatic OPTIONS answer.
fn answer_default(outcome: &Outcome, req: &Req, res: &Res) {
    if res.finished() {
        return;
    }
    match outcome {
        Outcome::MethodNotAllowed(allowed) => {
            let allow = allowed.join(", ");
            if req.method() == "OPTIONS" {
                res.status(200).set("allow", &allow);
                res.send_text(&allow);
            } else {
                res.status(405).set("allow", &allow);
                send_error_body(req, res, 405, "Method Not Allowed");
            }
        }
        _ => {
            let msg = format!("Cannot {} {}", req.method(), req.path());
            res.status(404);
            send_error_body(req, res, 404, &msg);
        }
    }
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
