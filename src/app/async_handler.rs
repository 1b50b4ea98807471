//! Async route handlers: `app.get_async("/x", |req, res| async move { .. })`.
//!
//! The closure gets the request by reference (read params, query, body now) and a clone of the
//! response (answer whenever the future gets there); it returns a future run as a task on the
//! loop ([`oneloop_runtime::task::spawn`]), polled at once up to its first pending `.await`, as
//! Express 5 calls an `async` handler. When the future returns `Err`, the error goes to the error
//! middleware, exactly as Express 5 routes a rejected promise to `next(err)`; `Ok(())` ends the
//! chain (the handler must have answered, or arranged to).
//!
//! # Differences from a synchronous handler
//! - A panic inside the future happens in a task, not inside the handler call: it follows the
//!   loop's uncaught-panic policy (`Loop::on_uncaught_panic`), and the request gets no automatic
//!   500 (a synchronous handler's panic is answered 500). Return `Err` instead.
//! - The task is detached: a client that disconnects does not cancel it.

use std::future::Future;
use std::rc::Rc;

use super::{AppError, Middleware, Req, Res};

/// Wraps an async handler as route middleware (see the [module documentation](self)); use it
/// through `App::get_async` and friends, or in a route's middleware list.
pub fn async_handler<F, Fut>(f: F) -> Middleware
where
    F: Fn(&mut Req, Res) -> Fut + 'static,
    Fut: Future<Output = Result<(), AppError>> + 'static,
{
    Rc::new(move |req, res, next| {
        let future = f(req, res.clone());
        oneloop_runtime::task::spawn(async move {
            if let Err(e) = future.await {
                next.error(e);
            }
        })
        .detach();
    })
}
