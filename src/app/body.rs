//! Body parsers, opt-in middleware as in Express (`express.json()` and friends).
//!
//! Each parses only requests whose Content-Type matches (others pass through untouched, or get
//! 415 with [`BodyOptions::require_type`]), refuses bodies over `limit` with 413 (100 KiB by
//! default, Express's `100kb`), and sets [`Req::body`](super::Req::body).

use std::rc::Rc;

use bytes::Bytes;

use super::error::AppError;
use super::path::parse_query;
use super::req::{Body, Req, Source};
use super::{Middleware, Next};
use crate::http::BodyError;

/// Default body limit: 100 KiB, as Express.
pub const DEFAULT_LIMIT: usize = 100 * 1024;

/// Options shared by the body parsers.
#[derive(Clone, Copy, Debug)]
pub struct BodyOptions {
    /// Largest body accepted; larger answers 413.
    pub limit: usize,
    /// Answer 415 when a request with a body has another content type (default: pass it on).
    pub require_type: bool,
}

impl Default for BodyOptions {
    fn default() -> Self {
        BodyOptions {
            limit: DEFAULT_LIMIT,
            require_type: false,
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Json,
    Form,
    Text,
    Raw,
}

impl Kind {
    fn matches(self, content_type: &str) -> bool {
        match self {
            Kind::Json => content_type == "application/json" || content_type.ends_with("+json"),
            Kind::Form => content_type == "application/x-www-form-urlencoded",
            Kind::Text => content_type.starts_with("text/"),
            Kind::Raw => true,
        }
    }

    fn parse(self, bytes: Bytes) -> Result<Body, AppError> {
        match self {
            Kind::Json => {
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    return Err(AppError::new(400, "empty JSON body"));
                }
                serde_json::from_slice(&bytes)
                    .map(Body::Json)
                    .map_err(|e| AppError::new(400, format!("invalid JSON: {e}")))
            }
            Kind::Form => {
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| AppError::new(400, "form body is not UTF-8"))?;
                Ok(Body::Form(parse_query(text)))
            }
            Kind::Text => String::from_utf8(bytes.to_vec())
                .map(Body::Text)
                .map_err(|_| AppError::new(400, "text body is not UTF-8")),
            Kind::Raw => Ok(Body::Raw(bytes)),
        }
    }
}

/// Parses `application/json` (and `*+json`) into `Body::Json`; malformed JSON answers 400.
pub fn json() -> Middleware {
    json_with(BodyOptions::default())
}

/// [`json`] with options.
pub fn json_with(options: BodyOptions) -> Middleware {
    parser(Kind::Json, options)
}

/// Parses `application/x-www-form-urlencoded` into `Body::Form`.
pub fn urlencoded() -> Middleware {
    parser(Kind::Form, BodyOptions::default())
}

/// Reads `text/*` into `Body::Text`.
pub fn text() -> Middleware {
    parser(Kind::Text, BodyOptions::default())
}

/// Reads any body into `Body::Raw`.
pub fn raw() -> Middleware {
    parser(Kind::Raw, BodyOptions::default())
}

fn has_body(req: &Req) -> bool {
    if let Source::Inject(r) = &req.source {
        return !r.body.is_empty();
    }
    req.header("transfer-encoding").is_some()
        || req
            .header("content-length")
            .is_some_and(|v| v.trim() != "0")
}

fn parser(kind: Kind, options: BodyOptions) -> Middleware {
    Rc::new(move |req: &mut Req, _res, next: Next| {
        if req.body_taken || !has_body(req) {
            return next.call();
        }
        let ct = req.content_type().unwrap_or_default();
        if !kind.matches(&ct) {
            if options.require_type {
                return next.error(AppError::new(
                    415,
                    format!("unsupported content type {ct:?}"),
                ));
            }
            return next.call();
        }
        if let Some(len) = req
            .header("content-length")
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            if len > options.limit as u64 {
                return next.error(AppError::new(413, "request entity too large"));
            }
        }
        req.body_taken = true;
        match &req.source {
            Source::Inject(r) => {
                if r.body.len() > options.limit {
                    return next.error(AppError::new(413, "request entity too large"));
                }
                match kind.parse(r.body.clone()) {
                    Ok(body) => {
                        req.body = body;
                        next.call()
                    }
                    Err(e) => next.error(e),
                }
            }
            Source::Http(r) => r.collect(options.limit, move |_lp, result| match result {
                Ok(bytes) => match kind.parse(bytes) {
                    Ok(body) => {
                        next.with_req(|req| req.body = body);
                        next.call()
                    }
                    Err(e) => next.error(e),
                },
                Err(BodyError::TooLarge) => {
                    next.error(AppError::new(413, "request entity too large"))
                }
                Err(BodyError::Aborted) => next.error(AppError::new(400, "request aborted")),
                Err(e @ BodyError::Overloaded) => {
                    next.error(AppError::new(e.status(), "server busy"))
                }
            }),
        }
    })
}
