//! The app-layer request: the HTTP request plus route params, parsed query and parsed body.

use std::any::Any;
use std::cell::OnceCell;
use std::rc::Rc;
use std::time::Instant;

use bytes::Bytes;
use oneloop_runtime::{Loop, LoopHandle};

use super::path::{parse_query, split_target};
use crate::http;

/// A parsed request body (set by the body-parser middleware; `Body::None` without one).
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// No body parser ran (Express: `req.body` is undefined).
    None,
    /// `application/json`, parsed.
    Json(serde_json::Value),
    /// `application/x-www-form-urlencoded`, decoded, repeated keys kept.
    Form(Vec<(String, String)>),
    /// `text/*`, as UTF-8.
    Text(String),
    /// Any type, raw bytes.
    Raw(Bytes),
}

/// A request built in-process by [`App::inject`](super::App::inject) (Fastify's `inject`).
#[derive(Debug, Clone, Default)]
pub struct InjectRequest {
    /// Method, e.g. `"GET"`.
    pub method: String,
    /// Target: path and optional query, e.g. `/api/products?x=1`.
    pub url: String,
    /// Header fields.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Bytes,
}

impl InjectRequest {
    /// A request with no headers and no body.
    pub fn new(method: &str, url: &str) -> InjectRequest {
        InjectRequest {
            method: method.to_string(),
            url: url.to_string(),
            ..InjectRequest::default()
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> InjectRequest {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Sets a JSON body and its content type.
    pub fn json(mut self, value: &serde_json::Value) -> InjectRequest {
        self.body = Bytes::from(value.to_string());
        self.header("content-type", "application/json")
    }

    /// Sets a raw body.
    pub fn body(mut self, body: impl Into<Bytes>) -> InjectRequest {
        self.body = body.into();
        self
    }
}

/// A route parameter's percent-decoded value.
pub(crate) enum ParamValue {
    /// Needed no decoding: this byte range of the request path.
    Path(usize, usize),
    /// Decoded.
    Owned(String),
}

/// Values of any type, at most one per type: what middleware leaves for later middleware and
/// the handler (an authenticated user, a parsed token, a start time). Empty costs nothing; the
/// first insert allocates.
#[derive(Default)]
pub struct Locals {
    values: Vec<Box<dyn Any>>,
}

impl Locals {
    /// Stores `value`, replacing (and returning) the value of its type stored before.
    pub fn insert<T: 'static>(&mut self, value: T) -> Option<T> {
        let old = self.remove::<T>();
        self.values.push(Box::new(value));
        old
    }

    /// The value of type `T`, if one was stored.
    pub fn get<T: 'static>(&self) -> Option<&T> {
        self.values.iter().find_map(|v| v.downcast_ref::<T>())
    }

    /// The value of type `T`, mutably.
    pub fn get_mut<T: 'static>(&mut self) -> Option<&mut T> {
        self.values.iter_mut().find_map(|v| v.downcast_mut::<T>())
    }

    /// Takes the value of type `T` out.
    pub fn remove<T: 'static>(&mut self) -> Option<T> {
        let at = self.values.iter().position(|v| v.is::<T>())?;
        self.values.swap_remove(at).downcast::<T>().ok().map(|b| *b)
    }
}

impl std::fmt::Debug for Locals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Locals({} values)", self.values.len())
    }
}

/// 9 random bytes as 12 base64url characters; a clock-derived value if the OS has no
/// randomness to give (ids stay unique per start, just guessable).
pub(crate) fn random_id_prefix() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 9];
    if getrandom::getrandom(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        bytes.copy_from_slice(&nanos.to_le_bytes()[..9]);
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) enum Source {
    Http(http::Request),
    Inject(InjectRequest),
}

/// The request a handler or middleware sees (Express's `req`).
pub struct Req {
    pub(crate) source: Source,
    /// Route parameters: names shared with the app, values borrowed from the path where
    /// they need no decoding (set by the chain when the route matched).
    pub(crate) params: Vec<(Rc<str>, ParamValue)>,
    /// `params` as owned pairs, built on the first [`Req::params`] call.
    params_owned: OnceCell<Vec<(String, String)>>,
    query: OnceCell<Vec<(String, String)>>,
    /// The parsed body (see the body parsers in [`body`](super::body)).
    pub body: Body,
    /// Per-request data for later middleware and the handler, one value per type (Express's
    /// `res.locals` / `req.user`): `req.locals.insert(User { .. })`, then
    /// `req.locals.get::<User>()`.
    pub locals: Locals,
    /// The app's random prefix for request ids.
    id_prefix: Rc<str>,
    /// [`Req::request_id`], made on first use.
    request_id: OnceCell<String>,
    /// A per-request id (`req-N`, Fastify's `reqId`), for logs.
    pub id: u64,
    pub(crate) handle: LoopHandle,
    pub(crate) body_taken: bool,
    /// The matched route's pattern (set by the chain before any middleware runs).
    pub(crate) route: Option<Rc<str>>,
    /// [`Req::start_time`], read on first use.
    started: OnceCell<Instant>,
}

impl Req {
    pub(crate) fn new(source: Source, id: u64, id_prefix: Rc<str>, handle: LoopHandle) -> Req {
        Req {
            id_prefix,
            request_id: OnceCell::new(),
            source,
            params: Vec::new(),
            params_owned: OnceCell::new(),
            query: OnceCell::new(),
            locals: Locals::default(),
            body: Body::None,
            id,
            handle,
            body_taken: false,
            route: None,
            started: OnceCell::new(),
        }
    }

    /// When the first middleware that times this request asked: the clock is read once per
    /// request however many middleware measure its duration (the metrics middleware and the
    /// access log both do). Put the timing middleware first, so this is the chain's start.
    pub fn start_time(&self) -> Instant {
        *self.started.get_or_init(Instant::now)
    }

    /// An id for this request that is unique across workers and restarts: the client's
    /// `X-Request-Id` when it is a sane one (1 to 128 characters of `A-Z a-z 0-9 - _ . : /`,
    /// as a proxy such as nginx's `$request_id` sends), else `<app prefix>-<n>` where the
    /// prefix is 12 random base64url characters chosen when the [`App`](super::App) was made
    /// (one per worker, new at every start) and n counts this app's requests.
    pub fn request_id(&self) -> &str {
        self.request_id.get_or_init(|| {
            let sane = |v: &&str| {
                (1..=128).contains(&v.len())
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b))
            };
            match self.header("x-request-id").filter(sane) {
                Some(incoming) => incoming.to_owned(),
                None => format!("{}-{}", self.id_prefix, self.id),
            }
        })
    }

    /// Runs `f` with the loop as soon as the current callback returns (a `next_tick`: before
    /// any other callback, timer or I/O), for what needs `&mut Loop` from a handler: the HTTP
    /// client, `Hub::publish`, timers with handles.
    pub fn with_loop(&self, f: impl FnOnce(&mut Loop) + 'static) {
        self.handle.next_tick(f);
    }

    /// The JSON body (parsed by [`body::json`](super::body::json)) as a `T`: Express's
    /// `req.body` with its shape checked. 400 when there is no JSON body or it does not fit.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, super::AppError> {
        let Body::Json(value) = &self.body else {
            return Err(super::AppError::new(400, "expected a JSON body"));
        };
        T::deserialize(value).map_err(|e| super::AppError::new(400, format!("invalid body: {e}")))
    }

    /// The method.
    pub fn method(&self) -> &str {
        match &self.source {
            Source::Http(r) => r.method(),
            Source::Inject(r) => &r.method,
        }
    }

    /// The path without the query string (still percent-encoded).
    pub fn path(&self) -> &str {
        match &self.source {
            Source::Http(r) => r.path(),
            Source::Inject(r) => split_target(&r.url).0,
        }
    }

    /// The request target as received: path and query (pino-http's `req.url`).
    pub fn url(&self) -> &str {
        match &self.source {
            Source::Http(r) => r.target(),
            Source::Inject(r) => &r.url,
        }
    }

    /// The pattern of the route that matched, as registered (`/api/products/:id`), for
    /// metric labels and logs (Fastify's `request.routeOptions.url`); `None` when no route
    /// matched (404, 405). Known from the first middleware on.
    pub fn route(&self) -> Option<&str> {
        self.route.as_deref()
    }

    /// [`Req::route`] as a shared string (cheap to keep past the request).
    pub fn route_shared(&self) -> Option<Rc<str>> {
        self.route.clone()
    }

    /// The raw query string, without `?`.
    pub fn query_string(&self) -> Option<&str> {
        match &self.source {
            Source::Http(r) => r.query(),
            Source::Inject(r) => split_target(&r.url).1,
        }
    }

    /// A route parameter, percent-decoded (`/users/:id` -> `req.param("id")`).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| **n == *name)
            .map(|(_, v)| self.param_value(v))
    }

    /// All route parameters in pattern order.
    pub fn params(&self) -> &[(String, String)] {
        self.params_owned.get_or_init(|| {
            self.params
                .iter()
                .map(|(n, v)| (n.to_string(), self.param_value(v).to_string()))
                .collect()
        })
    }

    fn param_value<'a>(&'a self, v: &'a ParamValue) -> &'a str {
        match v {
            ParamValue::Path(start, end) => self.path().get(*start..*end).unwrap_or(""),
            ParamValue::Owned(s) => s,
        }
    }

    /// The first query value for `key` (percent-decoded, `+` as space).
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query_all()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every query pair in order; repeated keys are kept (`a=1&a=3`).
    pub fn query_all(&self) -> &[(String, String)] {
        self.query
            .get_or_init(|| self.query_string().map(parse_query).unwrap_or_default())
    }

    /// A header value (case-insensitive name), if valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        match &self.source {
            Source::Http(r) => r.header(name),
            Source::Inject(r) => r
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str()),
        }
    }

    /// The media type of the body, lowercased, without parameters (`application/json`).
    pub fn content_type(&self) -> Option<String> {
        self.header("content-type").map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// The loop handle, to arm timers or queue thread-pool work from a handler.
    pub fn loop_handle(&self) -> &LoopHandle {
        &self.handle
    }

    /// The underlying HTTP request (absent for injected requests).
    pub fn http(&self) -> Option<&http::Request> {
        match &self.source {
            Source::Http(r) => Some(r),
            Source::Inject(_) => None,
        }
    }
}
