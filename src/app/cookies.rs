//! Cookies as Express reads and writes them: `req.cookies()` is cookie-parser's `req.cookies`
//! (the `cookie` package's parser), [`CookieSecrets::signed_cookies`] its `req.signedCookies`
//! (cookie-signature's HMAC-SHA256, secret rotation), and [`Res::cookie_with`] Express's
//! `res.cookie(name, value, options)`.
//!
//! ```
//! use oneloop::app::cookies::{CookieOptions, CookieSecrets, SameSite};
//! use oneloop::app::{App, InjectRequest};
//! use oneloop::runtime::Loop;
//!
//! // The first secret signs; every one of them verifies (rotate by putting the new one first).
//! let secrets = CookieSecrets::new(["new secret", "old secret"]);
//! let mut app = App::new();
//! let s = secrets.clone();
//! app.post("/login", move |_req, res| {
//!     let options = CookieOptions {
//!         signed: Some(s.clone()),
//!         http_only: true,
//!         same_site: Some(SameSite::Lax),
//!         max_age_ms: Some(3_600_000),
//!         ..CookieOptions::default()
//!     };
//!     res.cookie_with("user", "ada", &options).send("ok");
//! });
//! let s = secrets.clone();
//! app.get("/me", move |req, res| {
//!     let signed = s.signed_cookies(req);
//!     match signed.get("user") {
//!         Some(Some(user)) => res.send(user),         // verified
//!         Some(None) => res.status(400).send("tampered"), // cookie-parser's `false`
//!         None => res.status(401).send("who?"),
//!     }
//! });
//! let mut lp = Loop::new()?;
//! let cookie = secrets.sign("ada");
//! let got = app.inject(&mut lp, InjectRequest::new("GET", "/me").header("cookie", &format!("user={cookie}")))?;
//! assert_eq!(got.body, b"ada");
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Bounds: the parser reads only the `Cookie` header the HTTP layer already bounded (16 KiB head);
//! it never fails: malformed pairs are skipped or kept raw exactly as the `cookie` package does.
//! tests/app_cookies_diff.rs compares all of it with Express 5 + cookie-parser 1.4.7.

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::path::percent_decode;
use super::{Req, Res};
use crate::http::date::DateCache;

/// The cookies of a request, in header order, first occurrence of a name only (as the `cookie`
/// package keeps).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cookies {
    pairs: Vec<(String, String)>,
}

impl Cookies {
    /// Parses a `Cookie` header value exactly as the `cookie` package (0.7) does: pairs split
    /// on `;`, name and value trimmed of spaces and tabs, one pair of surrounding double quotes
    /// dropped, the value percent-decoded (kept raw if that fails), the first pair of a name
    /// kept. A pair without `=` is skipped.
    pub fn parse(header: &str) -> Cookies {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for piece in header.split(';') {
            let Some((name, value)) = piece.split_once('=') else {
                continue;
            };
            let name = name.trim_matches([' ', '\t']);
            if pairs.iter().any(|(n, _)| n == name) {
                continue;
            }
            let mut value = value.trim_matches([' ', '\t']);
            if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') {
                value = &value[1..value.len() - 1];
            }
            let decoded = match value.contains('%') {
                true => percent_decode(value).map_or_else(|| value.to_owned(), |c| c.into_owned()),
                false => value.to_owned(),
            };
            pairs.push((name.to_owned(), decoded));
        }
        Cookies { pairs }
    }

    /// The value of cookie `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of a `j:` JSON cookie, parsed, when it parses to something truthy
    /// (cookie-parser's `JSONCookie`: `j:0`, `j:false`, `j:null` and `j:""` stay strings).
    pub fn get_json(&self, name: &str) -> Option<serde_json::Value> {
        json_cookie(self.get(name)?)
    }

    /// Every cookie, in header order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// As JSON, the way cookie-parser leaves `req.cookies` (`j:` values parsed).
    pub fn to_json(&self) -> serde_json::Value {
        let map = self
            .pairs
            .iter()
            .map(|(n, v)| {
                let value = json_cookie(v).unwrap_or_else(|| serde_json::Value::from(v.as_str()));
                (n.clone(), value)
            })
            .collect();
        serde_json::Value::Object(map)
    }
}

/// cookie-parser's `JSONCookie`: the value after `j:`, if it is JSON and truthy.
fn json_cookie(value: &str) -> Option<serde_json::Value> {
    let parsed: serde_json::Value = serde_json::from_str(value.strip_prefix("j:")?).ok()?;
    let truthy = match &parsed {
        serde_json::Value::Null | serde_json::Value::Bool(false) => false,
        serde_json::Value::Number(n) => n.as_f64() != Some(0.0),
        serde_json::Value::String(s) => !s.is_empty(),
        _ => true,
    };
    truthy.then_some(parsed)
}

/// Secrets for signed cookies (cookie-parser's `cookieParser([secret, ...])`): the first
/// signs, every one verifies, so a new secret goes first and the old one stays until the
/// cookies it signed have expired. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CookieSecrets(Rc<[String]>);

impl CookieSecrets {
    /// Secrets, the signing one first. An empty list signs nothing: `sign` returns the value
    /// as it is and no cookie verifies.
    pub fn new<S: Into<String>>(secrets: impl IntoIterator<Item = S>) -> CookieSecrets {
        CookieSecrets(secrets.into_iter().map(Into::into).collect())
    }

    /// `s:` + cookie-signature's `sign(value, first secret)`: the value, `.`, and its
    /// HMAC-SHA256 in base64 without padding. What `res.cookie(.., {signed: true})` stores.
    pub fn sign(&self, value: &str) -> String {
        match self.0.first() {
            Some(secret) => format!("s:{value}.{}", mac(value, secret)),
            None => value.to_owned(),
        }
    }

    /// cookie-parser's `signedCookie(str, secrets)` for a value that starts with `s:`:
    /// `Some(Some(value))` verified by one of the secrets, `Some(None)` not verified (its
    /// `false`); `None` for a value that is not signed.
    pub fn unsign(&self, cookie: &str) -> Option<Option<String>> {
        let signed = cookie.strip_prefix("s:")?;
        let verified = signed.rfind('.').and_then(|dot| {
            let (value, sig) = (&signed[..dot], &signed[dot + 1..]);
            self.0
                .iter()
                .any(|secret| verify(value, sig, secret))
                .then(|| value.to_owned())
        });
        Some(verified)
    }

    /// cookie-parser's `req.signedCookies`: every `s:` cookie of `req`, verified or not.
    pub fn signed_cookies(&self, req: &Req) -> SignedCookies {
        let mut out = SignedCookies::default();
        if self.0.is_empty() {
            return out;
        }
        for (name, value) in req.cookies().iter() {
            if let Some(result) = self.unsign(value) {
                out.pairs.push((name.to_owned(), result));
            }
        }
        out
    }

    /// cookie-parser's `req.cookies` when it has secrets: the cookies that are not signed.
    pub fn unsigned_cookies(&self, req: &Req) -> Cookies {
        let mut cookies = req.cookies();
        if !self.0.is_empty() {
            cookies.pairs.retain(|(_, v)| !v.starts_with("s:"));
        }
        cookies
    }
}

/// Signed cookies: name → `Some(value)` when verified, `None` when not (cookie-parser's
/// `false`: tampered, signed with an unknown secret, or malformed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignedCookies {
    pairs: Vec<(String, Option<String>)>,
}

impl SignedCookies {
    /// `None`: no signed cookie of that name; `Some(None)`: present but not verified.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_deref())
    }

    /// As JSON, as cookie-parser leaves `req.signedCookies` (`false` for unverified, `j:`
    /// values parsed).
    pub fn to_json(&self) -> serde_json::Value {
        let map = self
            .pairs
            .iter()
            .map(|(n, v)| {
                let value = match v {
                    None => serde_json::Value::Bool(false),
                    Some(v) => {
                        json_cookie(v).unwrap_or_else(|| serde_json::Value::from(v.as_str()))
                    }
                };
                (n.clone(), value)
            })
            .collect();
        serde_json::Value::Object(map)
    }
}

fn mac(value: &str, secret: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    m.update(value.as_bytes());
    STANDARD_NO_PAD.encode(m.finalize().into_bytes())
}

/// Whether `sig` is `value`'s signature under `secret`, compared in constant time (as
/// cookie-signature compares digests, not strings).
fn verify(value: &str, sig: &str, secret: &str) -> bool {
    let Ok(sig) = STANDARD_NO_PAD.decode(sig) else {
        return false;
    };
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    m.update(value.as_bytes());
    m.verify_slice(&sig).is_ok()
}

/// `SameSite` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=None` (browsers require `Secure` with it).
    None,
}

/// Express's `res.cookie` options. [`Default`]: path `/`, nothing else.
#[derive(Clone, Debug)]
pub struct CookieOptions {
    /// `Max-Age` (and `Expires` = now + it), in milliseconds as Express takes it.
    pub max_age_ms: Option<u64>,
    /// `Expires`, when `max_age_ms` is not set.
    pub expires: Option<SystemTime>,
    /// `Domain`.
    pub domain: Option<String>,
    /// `Path`; default `/`.
    pub path: String,
    /// `Secure`.
    pub secure: bool,
    /// `HttpOnly`.
    pub http_only: bool,
    /// `SameSite`.
    pub same_site: Option<SameSite>,
    /// `Partitioned` (CHIPS).
    pub partitioned: bool,
    /// Sign the value with these secrets' first (`signed: true`, with cookie-parser's
    /// secret).
    pub signed: Option<CookieSecrets>,
}

impl Default for CookieOptions {
    fn default() -> CookieOptions {
        CookieOptions {
            max_age_ms: None,
            expires: None,
            domain: None,
            path: "/".into(),
            secure: false,
            http_only: false,
            same_site: None,
            partitioned: false,
            signed: None,
        }
    }
}

/// Express's `res.cookie` value: signed if asked, then `encodeURIComponent`-encoded, with the
/// attributes in the `cookie` package's order. `None` for a name that is not a token or a
/// domain/path with `;` or a control character (the package throws there).
pub fn serialize(name: &str, value: &str, o: &CookieOptions, now: SystemTime) -> Option<String> {
    let token = |s: &str| !s.is_empty() && s.bytes().all(crate::http::parse::is_tchar);
    let attr_ok = |s: &str| s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b';');
    if !token(name) || !attr_ok(&o.path) || o.domain.as_deref().is_some_and(|d| !attr_ok(d)) {
        return None;
    }
    let value = match &o.signed {
        Some(secrets) => secrets.sign(value),
        None => value.to_owned(),
    };
    let mut out = format!("{name}={}", encode_uri_component(&value));
    let expires = match o.max_age_ms {
        Some(ms) => {
            out.push_str(&format!("; Max-Age={}", ms / 1000));
            Some(now + Duration::from_millis(ms))
        }
        None => o.expires,
    };
    if let Some(domain) = &o.domain {
        out.push_str("; Domain=");
        out.push_str(domain);
    }
    out.push_str("; Path=");
    out.push_str(&o.path);
    if let Some(at) = expires {
        let mut date = DateCache::new();
        date.update(at);
        out.push_str("; Expires=");
        out.push_str(std::str::from_utf8(date.as_bytes()).unwrap_or_default());
    }
    if o.http_only {
        out.push_str("; HttpOnly");
    }
    if o.secure {
        out.push_str("; Secure");
    }
    if o.partitioned {
        out.push_str("; Partitioned");
    }
    if let Some(same_site) = o.same_site {
        out.push_str(match same_site {
            SameSite::Strict => "; SameSite=Strict",
            SameSite::Lax => "; SameSite=Lax",
            SameSite::None => "; SameSite=None",
        });
    }
    Some(out)
}

/// JavaScript's `encodeURIComponent`: everything but `A-Z a-z 0-9 - _ . ! ~ * ' ( )` as UTF-8
/// percent escapes.
fn encode_uri_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Req {
    /// The request's cookies (cookie-parser's `req.cookies` without a secret): parsed from the
    /// `Cookie` header on each call.
    pub fn cookies(&self) -> Cookies {
        self.header("cookie")
            .map(Cookies::parse)
            .unwrap_or_default()
    }
}

impl Res {
    /// Takes back the `Set-Cookie` fields this response set for cookie `name` (before the head
    /// is sent).
    pub fn unset_cookie(&self, name: &str) -> &Self {
        let is_it = |n: &str, v: &[u8]| {
            n.eq_ignore_ascii_case("set-cookie")
                && v.strip_prefix(name.as_bytes())
                    .is_some_and(|rest| rest.first() == Some(&b'='))
        };
        self.retain_headers(|n, v| !is_it(n, v));
        self
    }

    /// Sets a cookie as Express's `res.cookie(name, value, options)` does (see
    /// [`serialize`]); an invalid name, path or domain is logged and nothing is set.
    pub fn cookie_with(&self, name: &str, value: &str, options: &CookieOptions) -> &Self {
        match serialize(name, value, options, SystemTime::now()) {
            Some(header) => self.append("set-cookie", &header),
            None => {
                log::warn!("res.cookie_with refused cookie {name:?}: bad name, path or domain");
                self
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_cookie_package() {
        let c = Cookies::parse(r#" a = "quoted" ;b=%E2%82%AC; a=2; novalue; bad=%E0%A4%A; =e"#);
        assert_eq!(c.get("a"), Some("quoted"));
        assert_eq!(c.get("b"), Some("€"));
        assert_eq!(c.get("bad"), Some("%E0%A4%A"));
        assert_eq!(c.get(""), Some("e"));
        assert_eq!(c.get("novalue"), None);
    }

    #[test]
    fn signs_like_cookie_signature_and_rotates_secrets() {
        // node -e "console.log(require('cookie-signature').sign('ada','k'))"
        let s = CookieSecrets::new(["k"]);
        let signed = s.sign("ada");
        assert!(signed.starts_with("s:ada."));
        assert_eq!(s.unsign(&signed), Some(Some("ada".into())));
        let rotated = CookieSecrets::new(["new", "k"]);
        assert_eq!(rotated.unsign(&signed), Some(Some("ada".into())));
        assert_eq!(CookieSecrets::new(["other"]).unsign(&signed), Some(None));
        assert_eq!(s.unsign("s:ada.AAAA"), Some(None));
        assert_eq!(s.unsign("s:nodot"), Some(None));
        assert_eq!(s.unsign("plain"), None);
    }
}
