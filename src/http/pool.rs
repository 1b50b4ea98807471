//! A server-wide pool of empty `Vec`s: request field lists and response header lists go back
//! here when an exchange ends and come out for the next one, so a keep-alive request allocates
//! neither and an idle connection holds neither.

use std::cell::RefCell;

/// Most `Vec`s a pool keeps; more are freed.
const MAX_POOLED: usize = 64;
/// Largest capacity a pooled `Vec` may keep; larger ones are freed (a request with many
/// fields must not pin its list for the server's lifetime).
const MAX_CAPACITY: usize = 32;

/// Empty `Vec`s with their allocations, for reuse.
///
/// Invariant: every pooled `Vec` is empty, with a capacity in `1..=MAX_CAPACITY`, and the pool
/// holds at most `MAX_POOLED` of them.
pub(crate) struct VecPool<T> {
    free: RefCell<Vec<Vec<T>>>,
}

impl<T> VecPool<T> {
    pub(crate) fn new() -> VecPool<T> {
        VecPool {
            free: RefCell::new(Vec::new()),
        }
    }

    /// An empty `Vec`: one given back earlier (with its capacity) if any, else a new one
    /// (which allocates nothing until used).
    pub(crate) fn take(&self) -> Vec<T> {
        self.free
            .try_borrow_mut()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default()
    }

    /// Clears `v` and keeps it for a later [`take`](Self::take), unless it never allocated, is
    /// larger than `MAX_CAPACITY`, or the pool is full; then it is dropped.
    pub(crate) fn give(&self, mut v: Vec<T>) {
        if v.capacity() == 0 || v.capacity() > MAX_CAPACITY {
            return;
        }
        v.clear();
        if let Ok(mut free) = self.free.try_borrow_mut() {
            if free.len() < MAX_POOLED {
                free.push(v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vec_given_back_comes_out_empty_with_its_capacity() {
        let pool = VecPool::new();
        let mut v: Vec<u32> = Vec::with_capacity(8);
        v.extend([1, 2, 3]);
        let ptr = v.as_ptr();
        pool.give(v);
        let again = pool.take();
        assert!(again.is_empty());
        assert_eq!((again.capacity(), again.as_ptr()), (8, ptr));
        assert_eq!(pool.take().capacity(), 0, "the pool is empty again");
    }

    #[test]
    fn unallocated_large_and_surplus_vecs_are_not_kept() {
        let pool = VecPool::new();
        pool.give(Vec::<u8>::new());
        pool.give(Vec::<u8>::with_capacity(MAX_CAPACITY + 1));
        assert_eq!(pool.take().capacity(), 0);
        for _ in 0..MAX_POOLED + 5 {
            pool.give(Vec::<u8>::with_capacity(1));
        }
        let kept = std::iter::from_fn(|| Some(pool.take()))
            .take_while(|v| v.capacity() > 0)
            .count();
        assert_eq!(kept, MAX_POOLED);
    }
}
