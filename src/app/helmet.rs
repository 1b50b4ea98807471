//! Security headers, as the `helmet` npm package (8.x) sets them: the same 12 headers with the
//! same default values, each configurable or turned off.
//!
//! ```no_run
//! use oneloop::app::{helmet, App};
//! let mut app = App::new();
//! app.use_mw(helmet::helmet()); // helmet's defaults
//! let strict = helmet::HelmetOptions {
//!     content_security_policy: Some(
//!         helmet::Csp::default().directive("script-src", ["'self'", "https://cdn.example"]),
//!     ),
//!     x_frame_options: Some(helmet::FrameOptions::Deny),
//!     ..helmet::HelmetOptions::default()
//! };
//! app.use_mw(helmet::helmet_with(strict).expect("a valid policy"));
//! ```
//!
//! | header | default (helmet 8) | option |
//! |---|---|---|
//! | Content-Security-Policy | `default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' https: 'unsafe-inline';upgrade-insecure-requests` | `content_security_policy` ([`Csp`]) |
//! | Cross-Origin-Embedder-Policy | off | `cross_origin_embedder_policy` |
//! | Cross-Origin-Opener-Policy | `same-origin` | `cross_origin_opener_policy` |
//! | Cross-Origin-Resource-Policy | `same-origin` | `cross_origin_resource_policy` |
//! | Origin-Agent-Cluster | `?1` | `origin_agent_cluster` |
//! | Referrer-Policy | `no-referrer` | `referrer_policy` |
//! | Strict-Transport-Security | `max-age=31536000; includeSubDomains` | `strict_transport_security` ([`Hsts`]) |
//! | X-Content-Type-Options | `nosniff` | `x_content_type_options` |
//! | X-DNS-Prefetch-Control | `off` | `x_dns_prefetch_control` |
//! | X-Download-Options | `noopen` | `x_download_options` |
//! | X-Frame-Options | `SAMEORIGIN` | `x_frame_options` |
//! | X-Permitted-Cross-Domain-Policies | `none` | `x_permitted_cross_domain_policies` |
//! | X-XSS-Protection | `0` | `x_xss_protection` |
//!
//! helmet also removes `X-Powered-By`, which oneloop never sets. The values are computed once,
//! when the middleware is made; a policy helmet would refuse (a directive value with `;` or
//! `,`, an unquoted keyword such as `self`, no `default-src`, a bad directive name) is refused
//! by [`helmet_with`] with helmet's message. tests/app_security_diff.rs compares the headers
//! with the real package under Express 5.

use std::fmt;
use std::rc::Rc;

use super::{Middleware, Next, Req, Res};

/// A Content-Security-Policy: directives in order, each a name and its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Csp {
    directives: Vec<(String, Vec<String>)>,
    /// Send `Content-Security-Policy-Report-Only` instead (helmet's `reportOnly`).
    pub report_only: bool,
}

impl Default for Csp {
    /// helmet's default directives (`useDefaults: true`).
    fn default() -> Csp {
        let d = |name: &str, values: &[&str]| {
            (
                name.to_owned(),
                values.iter().map(|v| (*v).to_owned()).collect(),
            )
        };
        Csp {
            directives: vec![
                d("default-src", &["'self'"]),
                d("base-uri", &["'self'"]),
                d("font-src", &["'self'", "https:", "data:"]),
                d("form-action", &["'self'"]),
                d("frame-ancestors", &["'self'"]),
                d("img-src", &["'self'", "data:"]),
                d("object-src", &["'none'"]),
                d("script-src", &["'self'"]),
                d("script-src-attr", &["'none'"]),
                d("style-src", &["'self'", "https:", "'unsafe-inline'"]),
                d("upgrade-insecure-requests", &[]),
            ],
            report_only: false,
        }
    }
}

impl Csp {
    /// No directives (helmet's `useDefaults: false`); add at least `default-src`.
    pub fn empty() -> Csp {
        Csp {
            directives: Vec::new(),
            report_only: false,
        }
    }

    /// Sets directive `name` to `values` (replacing it where it is, or adding it at the end,
    /// as helmet merges user directives into the defaults). No values: a bare directive such
    /// as `upgrade-insecure-requests`.
    pub fn directive<S: Into<String>>(
        mut self,
        name: &str,
        values: impl IntoIterator<Item = S>,
    ) -> Csp {
        let values: Vec<String> = values.into_iter().map(Into::into).collect();
        match self.directives.iter_mut().find(|(n, _)| n == name) {
            Some(entry) => entry.1 = values,
            None => self.directives.push((name.to_owned(), values)),
        }
        self
    }

    /// Drops directive `name` (helmet's `null` value).
    pub fn without(mut self, name: &str) -> Csp {
        self.directives.retain(|(n, _)| n != name);
        self
    }

    /// The header value, or helmet's error for a policy it would refuse.
    fn header_value(&self) -> Result<String, HelmetError> {
        const SHOULD_BE_QUOTED: [&str; 9] = [
            "none",
            "self",
            "strict-dynamic",
            "report-sample",
            "inline-speculation-rules",
            "unsafe-inline",
            "unsafe-eval",
            "unsafe-hashes",
            "wasm-unsafe-eval",
        ];
        let err = |m: String| Err(HelmetError(m));
        if self.directives.is_empty() {
            return err("Content-Security-Policy has no directives".into());
        }
        if !self.directives.iter().any(|(n, _)| n == "default-src") {
            return err("Content-Security-Policy needs a default-src but none was provided".into());
        }
        let mut out = String::new();
        for (name, values) in &self.directives {
            let name_ok = name.starts_with(|c: char| c.is_ascii_lowercase())
                && !name.ends_with('-')
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !name_ok {
                return err(format!(
                    "Content-Security-Policy received an invalid directive name {name:?}"
                ));
            }
            if !out.is_empty() {
                out.push(';');
            }
            out.push_str(name);
            for value in values {
                if value.contains([';', ',']) || value.chars().any(|c| c.is_ascii_control()) {
                    return err(format!(
                        "Content-Security-Policy received an invalid directive value for {name:?}"
                    ));
                }
                let unquoted_keyword = SHOULD_BE_QUOTED.contains(&value.as_str())
                    || ["nonce-", "sha256-", "sha384-", "sha512-"]
                        .iter()
                        .any(|p| value.starts_with(p));
                if unquoted_keyword {
                    return err(format!(
                        "Content-Security-Policy received an invalid directive value for \
                         {name:?}. {value:?} should be quoted"
                    ));
                }
                out.push(' ');
                out.push_str(value);
            }
        }
        Ok(out)
    }
}

/// Strict-Transport-Security settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hsts {
    /// `max-age` in seconds. Default 31,536,000 (365 days).
    pub max_age: u64,
    /// Default true.
    pub include_sub_domains: bool,
    /// Default false.
    pub preload: bool,
}

impl Default for Hsts {
    fn default() -> Hsts {
        Hsts {
            max_age: 365 * 24 * 60 * 60,
            include_sub_domains: true,
            preload: false,
        }
    }
}

impl Hsts {
    fn header_value(&self) -> String {
        let mut v = format!("max-age={}", self.max_age);
        if self.include_sub_domains {
            v.push_str("; includeSubDomains");
        }
        if self.preload {
            v.push_str("; preload");
        }
        v
    }
}

/// X-Frame-Options actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameOptions {
    /// `SAMEORIGIN` (default).
    SameOrigin,
    /// `DENY`.
    Deny,
}

/// helmet's options; [`Default`] is helmet's defaults. `None` (or `false`) turns a header off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelmetOptions {
    /// Default [`Csp::default`], helmet's directives.
    pub content_security_policy: Option<Csp>,
    /// `require-corp`, `credentialless` or `unsafe-none`; off by default (as helmet 8).
    pub cross_origin_embedder_policy: Option<String>,
    /// `same-origin` (default), `same-origin-allow-popups`, `unsafe-none`.
    pub cross_origin_opener_policy: Option<String>,
    /// `same-origin` (default), `same-site`, `cross-origin`.
    pub cross_origin_resource_policy: Option<String>,
    /// `Origin-Agent-Cluster: ?1`. Default on.
    pub origin_agent_cluster: bool,
    /// Policies, sent comma-separated. Default `["no-referrer"]`.
    pub referrer_policy: Option<Vec<String>>,
    /// Default [`Hsts::default`]: `max-age=31536000; includeSubDomains`.
    pub strict_transport_security: Option<Hsts>,
    /// `nosniff`. Default on.
    pub x_content_type_options: bool,
    /// `Some(false)` sends `off` (default), `Some(true)` sends `on`.
    pub x_dns_prefetch_control: Option<bool>,
    /// `noopen`. Default on.
    pub x_download_options: bool,
    /// Default [`FrameOptions::SameOrigin`].
    pub x_frame_options: Option<FrameOptions>,
    /// `none` (default), `master-only`, `by-content-type`, `all`.
    pub x_permitted_cross_domain_policies: Option<String>,
    /// `X-XSS-Protection: 0` (turns the legacy, exploitable filter off). Default on.
    pub x_xss_protection: bool,
}

impl Default for HelmetOptions {
    fn default() -> HelmetOptions {
        HelmetOptions {
            content_security_policy: Some(Csp::default()),
            cross_origin_embedder_policy: None,
            cross_origin_opener_policy: Some("same-origin".into()),
            cross_origin_resource_policy: Some("same-origin".into()),
            origin_agent_cluster: true,
            referrer_policy: Some(vec!["no-referrer".into()]),
            strict_transport_security: Some(Hsts::default()),
            x_content_type_options: true,
            x_dns_prefetch_control: Some(false),
            x_download_options: true,
            x_frame_options: Some(FrameOptions::SameOrigin),
            x_permitted_cross_domain_policies: Some("none".into()),
            x_xss_protection: true,
        }
    }
}

/// A setting helmet would refuse, with helmet's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HelmetError(String);

impl fmt::Display for HelmetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HelmetError {}

/// The middleware with helmet's defaults (`app.use(helmet())`).
pub fn helmet() -> Middleware {
    helmet_with(HelmetOptions::default()).expect("helmet's defaults are valid")
}

/// The middleware with `options`.
///
/// # Errors
/// A value helmet refuses: see [`HelmetError`]'s messages.
pub fn helmet_with(options: HelmetOptions) -> Result<Middleware, HelmetError> {
    let headers = header_list(&options)?;
    Ok(Rc::new(move |_req: &mut Req, res: &mut Res, next: Next| {
        for (name, value) in headers.iter() {
            res.set(name, value);
        }
        next.call();
    }))
}

/// The headers `options` sets, in helmet's order, checked once.
fn header_list(o: &HelmetOptions) -> Result<Vec<(&'static str, String)>, HelmetError> {
    let one_of = |header: &str, value: &str, allowed: &[&str]| {
        if allowed.contains(&value) {
            Ok(value.to_owned())
        } else {
            Err(HelmetError(format!("{header} does not support {value:?}")))
        }
    };
    let mut h: Vec<(&'static str, String)> = Vec::new();
    if let Some(csp) = &o.content_security_policy {
        let name = match csp.report_only {
            true => "content-security-policy-report-only",
            false => "content-security-policy",
        };
        h.push((name, csp.header_value()?));
    }
    if let Some(p) = &o.cross_origin_embedder_policy {
        let allowed = ["require-corp", "credentialless", "unsafe-none"];
        h.push((
            "cross-origin-embedder-policy",
            one_of("Cross-Origin-Embedder-Policy", p, &allowed)?,
        ));
    }
    if let Some(p) = &o.cross_origin_opener_policy {
        let allowed = ["same-origin", "same-origin-allow-popups", "unsafe-none"];
        h.push((
            "cross-origin-opener-policy",
            one_of("Cross-Origin-Opener-Policy", p, &allowed)?,
        ));
    }
    if let Some(p) = &o.cross_origin_resource_policy {
        let allowed = ["same-origin", "same-site", "cross-origin"];
        h.push((
            "cross-origin-resource-policy",
            one_of("Cross-Origin-Resource-Policy", p, &allowed)?,
        ));
    }
    if o.origin_agent_cluster {
        h.push(("origin-agent-cluster", "?1".into()));
    }
    if let Some(policies) = &o.referrer_policy {
        let allowed = [
            "no-referrer",
            "no-referrer-when-downgrade",
            "same-origin",
            "origin",
            "strict-origin",
            "origin-when-cross-origin",
            "strict-origin-when-cross-origin",
            "unsafe-url",
            "",
        ];
        if policies.is_empty() {
            return Err(HelmetError(
                "Referrer-Policy received no policy tokens".into(),
            ));
        }
        for p in policies {
            one_of("Referrer-Policy", p, &allowed)?;
        }
        h.push(("referrer-policy", policies.join(",")));
    }
    if let Some(hsts) = &o.strict_transport_security {
        h.push(("strict-transport-security", hsts.header_value()));
    }
    if o.x_content_type_options {
        h.push(("x-content-type-options", "nosniff".into()));
    }
    if let Some(allow) = o.x_dns_prefetch_control {
        let v = if allow { "on" } else { "off" };
        h.push(("x-dns-prefetch-control", v.into()));
    }
    if o.x_download_options {
        h.push(("x-download-options", "noopen".into()));
    }
    if let Some(action) = o.x_frame_options {
        let v = match action {
            FrameOptions::SameOrigin => "SAMEORIGIN",
            FrameOptions::Deny => "DENY",
        };
        h.push(("x-frame-options", v.into()));
    }
    if let Some(p) = &o.x_permitted_cross_domain_policies {
        let allowed = ["none", "master-only", "by-content-type", "all"];
        h.push((
            "x-permitted-cross-domain-policies",
            one_of("X-Permitted-Cross-Domain-Policies", p, &allowed)?,
        ));
    }
    if o.x_xss_protection {
        h.push(("x-xss-protection", "0".into()));
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_headers_are_helmets() {
        let h = header_list(&HelmetOptions::default()).unwrap();
        assert_eq!(h.len(), 12);
        assert_eq!(
            h[0].1,
            "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';\
             frame-ancestors 'self';img-src 'self' data:;object-src 'none';script-src 'self';\
             script-src-attr 'none';style-src 'self' https: 'unsafe-inline';\
             upgrade-insecure-requests"
        );
    }

    #[test]
    fn refuses_what_helmet_refuses() {
        let bad = [
            Csp::default().directive("script-src", ["self"]),
            Csp::default().directive("script-src", ["a;b"]),
            Csp::default().directive("img-src", ["a,b"]),
            Csp::default().without("default-src"),
            Csp::default().directive("Bad_Name", ["x"]),
            Csp::empty(),
        ];
        for csp in bad {
            let options = HelmetOptions {
                content_security_policy: Some(csp.clone()),
                ..HelmetOptions::default()
            };
            assert!(helmet_with(options).is_err(), "{csp:?}");
        }
        let options = HelmetOptions {
            referrer_policy: Some(vec!["sometimes".into()]),
            ..HelmetOptions::default()
        };
        assert!(helmet_with(options).is_err());
    }
}
