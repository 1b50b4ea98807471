//! Sessions in express-session's shape: a signed session-id cookie (`connect.sid`, the value
//! `s:<id>.<HMAC>`), the session's data in a [`SessionStore`] (in memory by default, bounded),
//! `req.session()` to read and write it, `regenerate`, `destroy`, rolling expiry.
//!
//! ```
//! use oneloop::app::cookies::CookieSecrets;
//! use oneloop::app::session::{session, SessionOptions};
//! use oneloop::app::{App, AppError};
//!
//! let mut app = App::new();
//! app.use_mw(session(SessionOptions::new(CookieSecrets::new(["keyboard cat"]))));
//! app.post("/login", |req, res| {
//!     let s = req.session().ok_or(AppError::internal("no session middleware"))?;
//!     s.regenerate(); // a new id at login: no session fixation
//!     s.set("user", "ada");
//!     res.send("welcome");
//!     Ok(())
//! });
//! app.get("/views", |req, res| {
//!     let s = req.session().expect("session middleware");
//!     let views = s.get::<u64>("views").unwrap_or(0) + 1;
//!     s.set("views", views);
//!     res.send(format!("{views} views"));
//! });
//! ```
//!
//! # When things happen (express-session's rules)
//! - The cookie is set on a response when the session is new and was modified (or
//!   `save_uninitialized`), or when an existing session is `rolling`, or has a max-age and was
//!   modified. It is set as soon as that becomes true, so a handler must touch the session
//!   before the response's head goes out (before `res.write` of a streamed body).
//! - The data is saved to the store when the response finishes, if it was modified (or
//!   `resave`, or new and `save_uninitialized`); an unmodified existing session is touched
//!   (its expiry pushed back) instead.
//! - The store is asked once per request that carries a valid signed id; a cookie whose
//!   signature does not verify, or whose id the store does not know, starts a new session.
//!
//! # Bounds
//! [`MemoryStore`] holds at most `max_sessions` (default 10,000) and drops the least recently
//! used past that; every session expires after its cookie's max-age, or `default_ttl_ms`
//! (default 24 h) when the cookie has none (express-session's MemoryStore keeps those forever:
//! the leak this bound closes). A session's data is a JSON object: its size is what handlers
//! put in it.
//!
//! # Differences from express-session
//! - Defaults `resave: false` and `save_uninitialized: false` (express-session's deprecated
//!   defaults are `true`; its docs recommend `false` for both).
//! - A store callback that fails makes the request fail with 500 through the error
//!   middleware (as `next(err)` does there).
//! - What a store gets is the data plus express-session's `cookie` object (`originalMaxAge`,
//!   `expires`, `httpOnly`, `path`, ...), the JSON express-session saves, so a store shared
//!   with it (`RedisSessionStore` and connect-redis) is readable by both; `cookie` is
//!   therefore a reserved key (it is dropped when a session is loaded and rebuilt at each save).
//! - Saving happens as the response finishes rather than before it is sent: with the in-memory
//!   store the two are the same; an asynchronous store (Redis) may let a client's next request
//!   overtake the save by a moment.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::cookies::{CookieOptions, CookieSecrets};
use super::{AppError, Middleware, Next, Req, Res};

/// A session's data: a JSON object.
pub type SessionData = serde_json::Map<String, serde_json::Value>;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(pub String);

/// Called once when a store operation is done.
pub type StoreCallback<T> = Box<dyn FnOnce(Result<T, StoreError>)>;

/// Where sessions live (express-session's store interface). Callback style so that a store on
/// the network (Redis) can answer later; the callback runs on the loop thread.
pub trait SessionStore {
    /// The data of session `sid`, or `None` when unknown or expired.
    fn get(&self, sid: &str, done: StoreCallback<Option<SessionData>>);
    /// Stores `data` for `sid`, to expire `ttl_ms` from now.
    fn set(&self, sid: &str, data: &SessionData, ttl_ms: u64, done: StoreCallback<()>);
    /// Pushes the expiry of `sid` back to `ttl_ms` from now.
    fn touch(&self, sid: &str, ttl_ms: u64, done: StoreCallback<()>);
    /// Forgets `sid`.
    fn destroy(&self, sid: &str, done: StoreCallback<()>);
}

/// A bounded in-memory store: at most `max_sessions`, least recently used dropped first,
/// each expiring after its TTL. One per loop (it is not `Send`); a cluster's workers each
/// have their own (a shared store such as Redis implements [`SessionStore`] too).
pub struct MemoryStore {
    inner: RefCell<Lru>,
}

struct Entry {
    data: SessionData,
    expires_at_ms: u64,
    /// Its key in `Lru::recency`.
    used: u64,
}

#[derive(Default)]
struct Lru {
    entries: HashMap<String, Entry>,
    /// Use order: the first key is the least recently used.
    recency: BTreeMap<u64, String>,
    clock: u64,
    max: usize,
}

impl Lru {
    fn touch(&mut self, sid: &str) {
        self.clock += 1;
        let clock = self.clock;
        if let Some(e) = self.entries.get_mut(sid) {
            self.recency.remove(&e.used);
            e.used = clock;
            self.recency.insert(clock, sid.to_owned());
        }
    }

    fn remove(&mut self, sid: &str) {
        if let Some(e) = self.entries.remove(sid) {
            self.recency.remove(&e.used);
        }
    }
}

impl MemoryStore {
    /// At most `max_sessions` (at least 1).
    pub fn new(max_sessions: usize) -> MemoryStore {
        MemoryStore {
            inner: RefCell::new(Lru {
                max: max_sessions.max(1),
                ..Lru::default()
            }),
        }
    }

    /// Sessions held now (expired ones not yet dropped included).
    pub fn len(&self) -> usize {
        self.inner.borrow().entries.len()
    }

    /// Whether it holds no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

impl SessionStore for MemoryStore {
    fn get(&self, sid: &str, done: StoreCallback<Option<SessionData>>) {
        let found = {
            let mut lru = self.inner.borrow_mut();
            match lru.entries.get(sid) {
                Some(e) if e.expires_at_ms <= Self::now_ms() => {
                    lru.remove(sid);
                    None
                }
                Some(e) => {
                    let data = e.data.clone();
                    lru.touch(sid);
                    Some(data)
                }
                None => None,
            }
        };
        done(Ok(found));
    }

    fn set(&self, sid: &str, data: &SessionData, ttl_ms: u64, done: StoreCallback<()>) {
        {
            let mut lru = self.inner.borrow_mut();
            let expires_at_ms = Self::now_ms().saturating_add(ttl_ms);
            match lru.entries.get_mut(sid) {
                Some(e) => {
                    e.data = data.clone();
                    e.expires_at_ms = expires_at_ms;
                }
                None => {
                    while lru.entries.len() >= lru.max {
                        let Some((_, oldest)) = lru.recency.pop_first() else {
                            break;
                        };
                        lru.entries.remove(&oldest);
                    }
                    lru.entries.insert(
                        sid.to_owned(),
                        Entry {
                            data: data.clone(),
                            expires_at_ms,
                            used: 0,
                        },
                    );
                }
            }
            lru.touch(sid);
        }
        done(Ok(()));
    }

    fn touch(&self, sid: &str, ttl_ms: u64, done: StoreCallback<()>) {
        {
            let mut lru = self.inner.borrow_mut();
            let now = Self::now_ms();
            if let Some(e) = lru.entries.get_mut(sid) {
                e.expires_at_ms = now.saturating_add(ttl_ms);
            }
            lru.touch(sid);
        }
        done(Ok(()));
    }

    fn destroy(&self, sid: &str, done: StoreCallback<()>) {
        self.inner.borrow_mut().remove(sid);
        done(Ok(()));
    }
}

/// express-session's options; [`SessionOptions::new`] gives its defaults (with
/// `resave`/`save_uninitialized` false, see the module docs).
#[derive(Clone)]
pub struct SessionOptions {
    /// The cookie's name. Default `connect.sid`.
    pub name: String,
    /// Signs the session-id cookie; the first signs, all verify (rotation).
    pub secrets: CookieSecrets,
    /// The cookie's attributes. Default: path `/`, `HttpOnly`, no max-age (a browser-session
    /// cookie). `signed` is ignored: the id is always signed with `secrets`.
    pub cookie: CookieOptions,
    /// Where sessions live. Default a [`MemoryStore`] of 10,000 sessions.
    pub store: Rc<dyn SessionStore>,
    /// Store TTL of a session whose cookie has no max-age. Default 24 h.
    pub default_ttl_ms: u64,
    /// Reset the cookie's expiry on every response. Default false.
    pub rolling: bool,
    /// Save unmodified sessions back to the store. Default false.
    pub resave: bool,
    /// Save (and set the cookie of) new sessions nothing was written to. Default false.
    pub save_uninitialized: bool,
}

impl SessionOptions {
    /// The defaults with `secrets`.
    pub fn new(secrets: CookieSecrets) -> SessionOptions {
        SessionOptions {
            name: "connect.sid".into(),
            secrets,
            cookie: CookieOptions {
                http_only: true,
                ..CookieOptions::default()
            },
            store: Rc::new(MemoryStore::new(10_000)),
            default_ttl_ms: 24 * 60 * 60 * 1000,
            rolling: false,
            resave: false,
            save_uninitialized: false,
        }
    }

    fn ttl_ms(&self) -> u64 {
        self.cookie.max_age_ms.unwrap_or(self.default_ttl_ms)
    }
}

struct State {
    sid: String,
    /// The id the request's cookie carried (verified), if any.
    cookie_sid: Option<String>,
    data: SessionData,
    modified: bool,
    destroyed: bool,
    cookie_set: bool,
}

/// A request's session (express-session's `req.session`). Cheap to clone; get it with
/// [`Req::session`].
#[derive(Clone)]
pub struct Session {
    state: Rc<RefCell<State>>,
    options: Rc<SessionOptions>,
    res: Res,
}

impl Session {
    /// The session id (express-session's `req.sessionID`).
    pub fn id(&self) -> String {
        self.state.borrow().sid.clone()
    }

    /// The value at `key`, if it is there and deserializes as `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let state = self.state.borrow();
        serde_json::from_value(state.data.get(key)?.clone()).ok()
    }

    /// Sets `key` (a value that does not serialize is logged and not stored, and so is the
    /// reserved key `cookie`: see the module docs).
    pub fn set(&self, key: &str, value: impl Serialize) {
        if key == "cookie" {
            return log::warn!("session: `cookie` is reserved (express-session's cookie object)");
        }
        match serde_json::to_value(value) {
            Ok(v) => {
                self.state.borrow_mut().data.insert(key.to_owned(), v);
                self.modified();
            }
            Err(e) => log::warn!("session: value for {key:?} does not serialize: {e}"),
        }
    }

    /// Removes `key`.
    pub fn remove(&self, key: &str) {
        if self.state.borrow_mut().data.remove(key).is_some() {
            self.modified();
        }
    }

    /// All the data, as JSON.
    pub fn data(&self) -> SessionData {
        self.state.borrow().data.clone()
    }

    /// A new id with empty data; the old session is destroyed in the store (express-session's
    /// `req.session.regenerate`, done at login against session fixation).
    pub fn regenerate(&self) {
        let Some(fresh) = new_session_id() else {
            log::error!("session: no randomness from the OS for a new id; destroying instead");
            return self.destroy();
        };
        let old = {
            let mut s = self.state.borrow_mut();
            let old = std::mem::replace(&mut s.sid, fresh);
            s.data.clear();
            s.destroyed = false;
            if std::mem::take(&mut s.cookie_set) {
                self.res.unset_cookie(&self.options.name); // the old id's cookie
            }
            old
        };
        self.options.store.destroy(&old, Box::new(|_| {}));
        self.modified();
    }

    /// Forgets the session: destroyed in the store now, nothing saved or set at the end
    /// (express-session's `req.session.destroy`).
    pub fn destroy(&self) {
        let (sid, cookie_set) = {
            let mut s = self.state.borrow_mut();
            s.destroyed = true;
            s.data.clear();
            (s.sid.clone(), std::mem::take(&mut s.cookie_set))
        };
        if cookie_set {
            self.res.unset_cookie(&self.options.name); // no cookie for a destroyed session
        }
        self.options.store.destroy(&sid, Box::new(|_| {}));
    }

    fn modified(&self) {
        self.state.borrow_mut().modified = true;
        self.set_cookie_if_due();
    }

    /// express-session's `shouldSetCookie`, applied as soon as it holds.
    fn set_cookie_if_due(&self) {
        let (due, sid) = {
            let s = self.state.borrow();
            let o = &self.options;
            let new = s.cookie_sid.as_deref() != Some(s.sid.as_str());
            let due = !s.destroyed
                && !s.cookie_set
                && match new {
                    true => o.save_uninitialized || s.modified,
                    false => o.rolling || (o.cookie.max_age_ms.is_some() && s.modified),
                };
            (due, s.sid.clone())
        };
        if due {
            // express-session's cookie carries Expires (now + max-age), not Max-Age.
            let mut cookie = self.options.cookie.clone();
            cookie.signed = Some(self.options.secrets.clone());
            if let Some(ms) = cookie.max_age_ms.take() {
                cookie.expires =
                    Some(std::time::SystemTime::now() + std::time::Duration::from_millis(ms));
            }
            self.res.cookie_with(&self.options.name, &sid, &cookie);
            self.state.borrow_mut().cookie_set = true;
        }
    }
}

/// At the end of the response: save, touch, or nothing (express-session's
/// `shouldSave`/`shouldTouch`). Takes the session's parts, not the [`Session`]: the response
/// holds this hook, and a `Session` holds the response.
fn finish(state: &RefCell<State>, o: &SessionOptions) {
    let s = state.borrow();
    if s.destroyed {
        return;
    }
    let new = s.cookie_sid.as_deref() != Some(s.sid.as_str());
    let save = match new {
        true => o.save_uninitialized || s.modified,
        false => s.modified || o.resave,
    };
    let log_failure = |what: &'static str| -> StoreCallback<()> {
        Box::new(move |r: Result<(), StoreError>| {
            if let Err(e) = r {
                log::error!("session store {what} failed: {}", e.0);
            }
        })
    };
    if save {
        let mut stored = s.data.clone();
        stored.insert("cookie".into(), stored_cookie(&o.cookie));
        o.store.set(&s.sid, &stored, o.ttl_ms(), log_failure("set"));
    } else if !new {
        o.store.touch(&s.sid, o.ttl_ms(), log_failure("touch"));
    }
}

/// express-session's `Cookie#toJSON` for `cookie`, as it would be saved now: the object every
/// stored session carries under `cookie` (so a store shared with express-session, such as
/// connect-redis, holds JSON both sides read). Keys in express-session's order; the ones it
/// leaves `undefined` are left out.
fn stored_cookie(cookie: &CookieOptions) -> serde_json::Value {
    use serde_json::Value;
    let mut m = serde_json::Map::new();
    m.insert(
        "originalMaxAge".into(),
        cookie.max_age_ms.map_or(Value::Null, Value::from),
    );
    if cookie.partitioned {
        m.insert("partitioned".into(), Value::Bool(true));
    }
    let expires = cookie.max_age_ms.map(|ms| {
        let at = std::time::SystemTime::now() + std::time::Duration::from_millis(ms);
        Value::String(iso_8601(at))
    });
    m.insert("expires".into(), expires.unwrap_or(Value::Null));
    if cookie.secure {
        m.insert("secure".into(), Value::Bool(true));
    }
    m.insert("httpOnly".into(), Value::Bool(cookie.http_only));
    if let Some(domain) = &cookie.domain {
        m.insert("domain".into(), Value::String(domain.clone()));
    }
    m.insert("path".into(), Value::String(cookie.path.clone()));
    if let Some(same_site) = cookie.same_site {
        let v = match same_site {
            super::cookies::SameSite::Strict => "strict",
            super::cookies::SameSite::Lax => "lax",
            super::cookies::SameSite::None => "none",
        };
        m.insert("sameSite".into(), Value::String(v.into()));
    }
    Value::Object(m)
}

/// JavaScript's `Date#toISOString`: `2026-12-05T14:08:58.123Z`.
fn iso_8601(t: std::time::SystemTime) -> String {
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let (secs, ms) = (d.as_secs(), d.subsec_millis());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, for days since 1970-01-01 (never negative here).
    let z = days as i64 + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// 24 random bytes, base64url (uid-safe's `uid(24)`, express-session's ids): 32 characters.
/// `None` if the OS gives no randomness (then no safe id can be made).
fn new_session_id() -> Option<String> {
    let mut bytes = [0u8; 24];
    getrandom::getrandom(&mut bytes).ok()?;
    Some(URL_SAFE_NO_PAD.encode(bytes))
}

/// The session middleware (express-session's `session(options)`).
pub fn session(options: SessionOptions) -> Middleware {
    let options = Rc::new(options);
    Rc::new(move |req: &mut Req, res: &mut Res, next: Next| {
        if req.locals.get::<Session>().is_some() {
            return next.call(); // an earlier session middleware took this request
        }
        let cookie_sid = req
            .cookies()
            .get(&options.name)
            .and_then(|v| options.secrets.unsign(v))
            .flatten();
        let Some(sid) = cookie_sid.clone() else {
            return match attach(req, res, &options, None, None) {
                Ok(()) => next.call(),
                Err(e) => next.error(e),
            };
        };
        // The store may answer now (in memory) or later (over the network): `Now` until this
        // call returns, then the callback finds `Later` and attaches through `next`.
        let answer: Rc<RefCell<Answer>> = Rc::new(RefCell::new(Answer::Waiting));
        let (slot, res2, options2) = (Rc::clone(&answer), res.clone(), Rc::clone(&options));
        let late_next: Rc<RefCell<Option<Next>>> = Rc::default();
        let late = Rc::clone(&late_next);
        let key = sid.clone();
        options.store.get(
            &key,
            Box::new(move |found| {
                let mut a = slot.borrow_mut();
                if matches!(*a, Answer::Waiting) {
                    *a = Answer::Now(found);
                    return;
                }
                drop(a);
                let Some(next) = late.borrow_mut().take() else {
                    return;
                };
                let attached = match found {
                    Ok(data) => next
                        .with_req(|req| attach(req, &res2, &options2, Some(sid), data))
                        .unwrap_or_else(|| Err(AppError::internal("session: request busy"))),
                    Err(e) => Err(AppError::internal(format!("session store: {}", e.0))),
                };
                match attached {
                    Ok(()) => next.call(),
                    Err(e) => next.error(e),
                }
            }),
        );
        let now = std::mem::replace(&mut *answer.borrow_mut(), Answer::Later);
        match now {
            Answer::Now(Ok(data)) => match attach(req, res, &options, cookie_sid, data) {
                Ok(()) => next.call(),
                Err(e) => next.error(e),
            },
            Answer::Now(Err(e)) => {
                next.error(AppError::internal(format!("session store: {}", e.0)))
            }
            _ => *late_next.borrow_mut() = Some(next),
        }
    })
}

/// What the store said, while the middleware call is still on the stack.
enum Answer {
    Waiting,
    Now(Result<Option<SessionData>, StoreError>),
    Later,
}

/// Attaches the session (the stored one, or a new one) to `req` and arranges its save.
fn attach(
    req: &mut Req,
    res: &Res,
    options: &Rc<SessionOptions>,
    cookie_sid: Option<String>,
    stored: Option<SessionData>,
) -> Result<(), AppError> {
    let (sid, data) = match (cookie_sid.clone(), stored) {
        (Some(sid), Some(mut data)) => {
            data.remove("cookie"); // express-session's cookie object, rebuilt at each save
            (sid, data)
        }
        _ => match new_session_id() {
            Some(sid) => (sid, SessionData::new()),
            None => return Err(AppError::internal("no randomness for a session id")),
        },
    };
    let session = Session {
        state: Rc::new(RefCell::new(State {
            sid,
            cookie_sid,
            data,
            modified: false,
            destroyed: false,
            cookie_set: false,
        })),
        options: Rc::clone(options),
        res: res.clone(),
    };
    session.set_cookie_if_due();
    let (state, options) = (Rc::clone(&session.state), Rc::clone(&session.options));
    res.on_finish(move |_status, _len| finish(&state, &options));
    req.locals.insert(session);
    Ok(())
}

impl Req {
    /// The session the [`session`] middleware attached (express-session's `req.session`).
    pub fn session(&self) -> Option<Session> {
        self.locals.get::<Session>().cloned()
    }
}
