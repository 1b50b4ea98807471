//! The client as a future: `http::request_async(req).await` (Node's `await fetch(..)` shape over
//! `http.request`).
//!
//! The request starts when the future is first polled (through `task::with_loop`, right after
//! the task's poll returns) and the task resumes in a microtask after the response callback.
//! Dropping the future before the answer aborts the request ([`RequestHandle::abort`]): its
//! socket is closed or given back to the agent's queue, and no callback runs.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use oneloop_runtime::task::with_loop;

use super::{request, Agent, ClientError, ClientRequest, ClientResponse, RequestHandle};

type Outcome = Result<ClientResponse, ClientError>;

#[derive(Default)]
struct Shared {
    outcome: RefCell<Option<Outcome>>,
    waker: RefCell<Option<Waker>>,
    handle: RefCell<Option<RequestHandle>>,
    dropped: Cell<bool>,
}

impl Shared {
    fn complete(&self, outcome: Outcome) {
        *self.outcome.borrow_mut() = Some(outcome);
        self.handle.borrow_mut().take();
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

/// Starts the request (on first poll).
type Start = Box<dyn FnOnce(&Rc<Shared>)>;

/// The future of [`request_async`].
pub struct ResponseFuture {
    shared: Rc<Shared>,
    start: Option<Start>,
}

/// Sends `req` ([`request`]) and completes with the whole response or why there is none. An
/// invalid request ([`ClientError::InvalidHeader`]) completes at once with that error.
///
/// # Panics
/// When polled outside a oneloop task (no loop on this thread).
pub fn request_async<A: Into<Option<Agent>> + Clone + 'static>(
    req: ClientRequest<A>,
) -> ResponseFuture {
    ResponseFuture {
        shared: Rc::new(Shared::default()),
        start: Some(Box::new(move |shared: &Rc<Shared>| {
            let shared = Rc::clone(shared);
            with_loop(move |lp| {
                if shared.dropped.get() {
                    return;
                }
                let done = Rc::clone(&shared);
                match request(lp, req, move |_lp, outcome| done.complete(outcome)) {
                    Ok(handle) => {
                        if shared.outcome.borrow().is_none() {
                            *shared.handle.borrow_mut() = Some(handle);
                        }
                    }
                    Err(e) => shared.complete(Err(e)),
                }
            });
        })),
    }
}

impl Future for ResponseFuture {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        if let Some(start) = self.start.take() {
            start(&self.shared);
        }
        if let Some(outcome) = self.shared.outcome.borrow_mut().take() {
            return Poll::Ready(outcome);
        }
        *self.shared.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl Drop for ResponseFuture {
    fn drop(&mut self) {
        self.shared.dropped.set(true);
        if let Some(handle) = self.shared.handle.borrow_mut().take() {
            with_loop(move |lp| handle.abort(lp));
        }
    }
}
