//! Sessions through the public API: the in-memory store's bounds (LRU cap, TTL), a store that
//! answers later (as one over the network does), a store that fails, and cookies that are
//! tampered with or belong to a destroyed session.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use oneloop::app::cookies::CookieSecrets;
use oneloop::app::session::{
    session, MemoryStore, SessionData, SessionOptions, SessionStore, StoreCallback, StoreError,
};
use oneloop::app::{App, AppError, InjectRequest, InjectResponse};
use oneloop::runtime::{Loop, LoopHandle};

fn data(n: u64) -> SessionData {
    let mut d = SessionData::new();
    d.insert("n".into(), n.into());
    d
}

/// Reads `sid` from `store`, which must answer synchronously.
fn read(store: &MemoryStore, sid: &str) -> Option<SessionData> {
    let out = Rc::new(RefCell::new(None));
    let o = Rc::clone(&out);
    store.get(sid, Box::new(move |r| *o.borrow_mut() = r.unwrap()));
    out.take()
}

#[test]
fn the_memory_store_keeps_at_most_its_cap_dropping_the_least_recently_used() {
    let store = MemoryStore::new(100);
    for i in 0..100u64 {
        store.set(&format!("s{i}"), &data(i), 60_000, Box::new(|r| r.unwrap()));
    }
    // s0 is used again: s1 becomes the least recently used.
    assert_eq!(read(&store, "s0"), Some(data(0)));
    for i in 100..150u64 {
        store.set(&format!("s{i}"), &data(i), 60_000, Box::new(|r| r.unwrap()));
    }
    assert_eq!(store.len(), 100);
    assert_eq!(read(&store, "s0"), Some(data(0)), "recently used: kept");
    assert_eq!(read(&store, "s1"), None, "least recently used: dropped");
    assert_eq!(read(&store, "s149"), Some(data(149)));
}

#[test]
fn the_memory_store_forgets_expired_sessions() {
    let store = MemoryStore::new(10);
    store.set("short", &data(1), 1, Box::new(|r| r.unwrap()));
    store.set("long", &data(2), 60_000, Box::new(|r| r.unwrap()));
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(read(&store, "short"), None);
    assert_eq!(read(&store, "long"), Some(data(2)));
    assert_eq!(store.len(), 1, "the expired one was dropped when read");
}

/// A store that answers on a later loop turn (a timer), as one over the network does, or
/// fails every read.
struct SlowStore {
    inner: Rc<MemoryStore>,
    handle: LoopHandle,
    fail: bool,
}

impl SessionStore for SlowStore {
    fn get(&self, sid: &str, done: StoreCallback<Option<SessionData>>) {
        let (inner, sid, fail) = (Rc::clone(&self.inner), sid.to_owned(), self.fail);
        self.handle.set_timeout(5, move |_lp| {
            if fail {
                return done(Err(StoreError("connection refused".into())));
            }
            inner.get(&sid, done);
        });
    }
    fn set(&self, sid: &str, data: &SessionData, ttl_ms: u64, done: StoreCallback<()>) {
        self.inner.set(sid, data, ttl_ms, done)
    }
    fn touch(&self, sid: &str, ttl_ms: u64, done: StoreCallback<()>) {
        self.inner.touch(sid, ttl_ms, done)
    }
    fn destroy(&self, sid: &str, done: StoreCallback<()>) {
        self.inner.destroy(sid, done)
    }
}

fn counter_app(store: Rc<dyn SessionStore>) -> App {
    let mut options = SessionOptions::new(CookieSecrets::new(["k"]));
    options.store = store;
    let mut app = App::new();
    app.use_mw(session(options));
    app.get("/inc", |req, res| {
        let s = req.session().ok_or(AppError::internal("no session"))?;
        let n = s.get::<u64>("n").unwrap_or(0) + 1;
        s.set("n", n);
        res.send(n.to_string());
        Ok(())
    });
    app.use_error(|err, _req, res, _next| {
        res.status(err.status)
            .send(format!("error: {}", err.message));
    });
    app
}

fn cookie_of(r: &InjectResponse) -> String {
    let set = r.header("set-cookie").expect("a session cookie");
    set.split(';').next().unwrap().to_owned()
}

#[test]
fn a_store_that_answers_later_still_gives_the_handler_its_session() {
    let mut lp = Loop::new().unwrap();
    let store = Rc::new(SlowStore {
        inner: Rc::new(MemoryStore::new(10)),
        handle: lp.handle(),
        fail: false,
    });
    let app = counter_app(store);
    let first = app
        .inject(&mut lp, InjectRequest::new("GET", "/inc"))
        .unwrap();
    assert_eq!(first.text(), "1");
    let cookie = cookie_of(&first);
    let second = app
        .inject(
            &mut lp,
            InjectRequest::new("GET", "/inc").header("cookie", &cookie),
        )
        .unwrap();
    assert_eq!(second.text(), "2", "read back through the slow store");
}

#[test]
fn a_failing_store_answers_500_through_the_error_middleware() {
    let mut lp = Loop::new().unwrap();
    let ok = Rc::new(MemoryStore::new(10));
    let app = counter_app(Rc::clone(&ok) as Rc<dyn SessionStore>);
    let cookie = cookie_of(
        &app.inject(&mut lp, InjectRequest::new("GET", "/inc"))
            .unwrap(),
    );
    let failing = counter_app(Rc::new(SlowStore {
        inner: ok,
        handle: lp.handle(),
        fail: true,
    }));
    let r = failing
        .inject(
            &mut lp,
            InjectRequest::new("GET", "/inc").header("cookie", &cookie),
        )
        .unwrap();
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("session store: connection refused"),
        "{}",
        r.text()
    );
}

#[test]
fn tampered_or_foreign_cookies_start_a_new_session() {
    let mut lp = Loop::new().unwrap();
    let app = counter_app(Rc::new(MemoryStore::new(10)));
    let cookie = cookie_of(
        &app.inject(&mut lp, InjectRequest::new("GET", "/inc"))
            .unwrap(),
    );
    let good = app
        .inject(
            &mut lp,
            InjectRequest::new("GET", "/inc").header("cookie", &cookie),
        )
        .unwrap();
    assert_eq!(good.text(), "2");
    let forged = [
        cookie.replacen("s%3A", "s%3AX", 1),
        "connect.sid=s%3Aunsigned".to_owned(),
        "connect.sid=plainvalue".to_owned(),
        format!(
            "connect.sid={}",
            CookieSecrets::new(["other"]).sign("someid")
        ),
        "connect.sid=%ZZ%".to_owned(),
        format!("connect.sid={}", "A".repeat(8_000)),
    ];
    for c in forged {
        let r = app
            .inject(
                &mut lp,
                InjectRequest::new("GET", "/inc").header("cookie", &c),
            )
            .unwrap();
        assert_eq!((r.status, r.text()), (200, "1".to_owned()), "{c:.60}");
    }
}
