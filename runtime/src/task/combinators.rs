//! `Promise.all`, `Promise.race`, `Promise.allSettled`, `Promise.any`, with V8's ordering: each
//! input gets one reaction (`then`) at the call, in input order, so each input counts one
//! microtask after it settles; the result settles inside the reaction that decides it, and an
//! `await` on the result resumes one microtask after that.

use std::cell::RefCell;
use std::convert::Infallible;
use std::fmt::{self, Debug};
use std::rc::Rc;

use crate::task::promise::{Promise, Resolver};

/// The rejection of [`any`] when every input rejected (JavaScript's `AggregateError`): the
/// reasons in input order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggregateError<E>(pub Vec<E>);

impl<E: Debug> fmt::Display for AggregateError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "All promises were rejected: {:?}", self.0)
    }
}

impl<E: Debug> std::error::Error for AggregateError<E> {}

/// Results gathered in input order: `fill` returns them all once the last slot is filled.
struct Gather<X> {
    items: Vec<Option<X>>,
    left: usize,
}

impl<X> Gather<X> {
    fn new(n: usize) -> Rc<RefCell<Gather<X>>> {
        Rc::new(RefCell::new(Gather {
            items: (0..n).map(|_| None).collect(),
            left: n,
        }))
    }

    fn fill(&mut self, i: usize, x: X) -> Option<Vec<X>> {
        self.items[i] = Some(x);
        self.left -= 1;
        (self.left == 0).then(|| self.items.iter_mut().filter_map(Option::take).collect())
    }
}

/// `Promise.all`: fulfils with every value in input order once all fulfilled; rejects with the
/// first rejection (in settling order). An empty list fulfils at once.
pub fn all<T, E>(inputs: Vec<Promise<T, E>>) -> Promise<Vec<T>, E>
where
    T: Clone + 'static,
    E: Clone + Debug + 'static,
{
    let (out, resolver) = Promise::<Vec<T>, E>::pending();
    let n = inputs.len();
    if n == 0 {
        resolver.resolve(Vec::new());
        return out;
    }
    let values = Gather::<T>::new(n);
    for (i, p) in inputs.iter().enumerate() {
        let values = Rc::clone(&values);
        let resolver: Resolver<Vec<T>, E> = resolver.clone();
        p.on_settled::<(), Infallible>(move |_lp, r| {
            match r {
                Ok(v) => {
                    let all = values.borrow_mut().fill(i, v);
                    if let Some(all) = all {
                        resolver.resolve(all);
                    }
                }
                Err(e) => {
                    resolver.reject(e);
                }
            }
            Ok(())
        });
    }
    out
}

/// `Promise.race`: settles like the first input to settle. An empty list stays pending forever.
pub fn race<T, E>(inputs: Vec<Promise<T, E>>) -> Promise<T, E>
where
    T: Clone + 'static,
    E: Clone + Debug + 'static,
{
    let (out, resolver) = Promise::<T, E>::pending();
    for p in &inputs {
        let resolver = resolver.clone();
        p.on_settled::<(), Infallible>(move |_lp, r| {
            resolver.settle(r);
            Ok(())
        });
    }
    out
}

/// `Promise.allSettled`: fulfils with every result in input order once all settled (never
/// rejects). An empty list fulfils at once.
pub fn all_settled<T, E>(inputs: Vec<Promise<T, E>>) -> Promise<Vec<Result<T, E>>, Infallible>
where
    T: Clone + 'static,
    E: Clone + Debug + 'static,
{
    let (out, resolver) = Promise::<Vec<Result<T, E>>, Infallible>::pending();
    let n = inputs.len();
    if n == 0 {
        resolver.resolve(Vec::new());
        return out;
    }
    let results = Gather::<Result<T, E>>::new(n);
    for (i, p) in inputs.iter().enumerate() {
        let results = Rc::clone(&results);
        let resolver = resolver.clone();
        p.on_settled::<(), Infallible>(move |_lp, r| {
            let all = results.borrow_mut().fill(i, r);
            if let Some(all) = all {
                resolver.resolve(all);
            }
            Ok(())
        });
    }
    out
}

/// `Promise.any`: fulfils like the first input to fulfil; rejects with every reason (input
/// order) once all rejected. An empty list rejects at once.
pub fn any<T, E>(inputs: Vec<Promise<T, E>>) -> Promise<T, AggregateError<E>>
where
    T: Clone + 'static,
    E: Clone + Debug + 'static,
{
    let (out, resolver) = Promise::<T, AggregateError<E>>::pending();
    let n = inputs.len();
    if n == 0 {
        resolver.reject(AggregateError(Vec::new()));
        return out;
    }
    let reasons = Gather::<E>::new(n);
    for (i, p) in inputs.iter().enumerate() {
        let reasons = Rc::clone(&reasons);
        let resolver = resolver.clone();
        p.on_settled::<(), Infallible>(move |_lp, r| {
            match r {
                Ok(v) => {
                    resolver.resolve(v);
                }
                Err(e) => {
                    let all = reasons.borrow_mut().fill(i, e);
                    if let Some(all) = all {
                        resolver.reject(AggregateError(all));
                    }
                }
            }
            Ok(())
        });
    }
    out
}
