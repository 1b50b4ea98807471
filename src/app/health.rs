//! Health endpoints: `/healthz` (alive) and `/readyz` (wants traffic), as Kubernetes probes and
//! load balancers call them.
//!
//! ```no_run
//! use oneloop::app::{health, App};
//! use oneloop::health::Readiness;
//! let ready = Readiness::new();
//! let mut app = App::new();
//! health::install(&mut app, &ready);           // GET /healthz, GET /readyz
//! let r = ready.clone();
//! app.listen(3000, move || r.set_ready())?;    // /readyz: 503 until here, 200 after
//! # Ok::<(), std::io::Error>(())
//! ```
//! Pass the same [`Readiness`] to [`crate::shutdown::ShutdownOptions::readiness`] and `/readyz`
//! answers 503 from the first SIGTERM on, while in-flight requests finish.

use crate::health::{Readiness, ReadyState};

use super::{App, Req, Res};

/// `GET /healthz`: 200 `{"status":"ok"}` whenever the loop answers at all (liveness).
pub fn healthz() -> impl Fn(&mut Req, &mut Res) + 'static {
    |_req, res| {
        res.set_static("cache-control", "no-store");
        res.set_static("content-type", "application/json");
        res.send_bytes(br#"{"status":"ok"}"#);
    }
}

/// `GET /readyz`: 200 `{"status":"ready"}` while serving; 503 `{"status":"starting"}` before
/// [`Readiness::set_ready`] and 503 `{"status":"draining"}` from the first shutdown signal on.
pub fn readyz(readiness: &Readiness) -> impl Fn(&mut Req, &mut Res) + 'static {
    let readiness = readiness.clone();
    move |_req, res| {
        let state = readiness.state();
        let code = if state == ReadyState::Ready { 200 } else { 503 };
        res.set_static("cache-control", "no-store");
        res.status(code)
            .json(&serde_json::json!({ "status": state.name() }));
    }
}

/// Registers `GET /healthz` and `GET /readyz` on `app`.
pub fn install(app: &mut App, readiness: &Readiness) {
    app.get("/healthz", healthz());
    app.get("/readyz", readyz(readiness));
}
