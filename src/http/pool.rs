//! A server-wide pool of empty buffers: request field lists, response header lists and output
//! buffers go back here when an exchange ends and come out for the next one, so a keep-alive
//! request allocates none of them and an idle connection holds none of them.

use std::cell::RefCell;

use bytes::BytesMut;

/// Most buffers a pool keeps; more are freed.
const MAX_POOLED: usize = 64;

/// A buffer that can be emptied and reused: `Vec` and `BytesMut`.
pub(crate) trait Reusable: Default {
    /// How many items (bytes, entries) it holds room for.
    fn capacity(&self) -> usize;
    /// Empties it, keeping the allocation.
    fn clear(&mut self);
}

impl<T> Reusable for Vec<T> {
    fn capacity(&self) -> usize {
        Vec::capacity(self)
    }
    fn clear(&mut self) {
        Vec::clear(self);
    }
}

impl Reusable for BytesMut {
    fn capacity(&self) -> usize {
        BytesMut::capacity(self)
    }
    fn clear(&mut self) {
        BytesMut::clear(self);
    }
}

/// Empty buffers with their allocations, for reuse.
///
/// Invariant: every pooled buffer is empty, with a capacity in `1..=max_capacity`, and the pool
/// holds at most `MAX_POOLED` of them.
pub(crate) struct Pool<C> {
    free: RefCell<Vec<C>>,
    /// Larger buffers are freed, not kept: one big request or response must not pin its
    /// memory for the server's lifetime.
    max_capacity: usize,
}

/// A pool of `Vec`s (field and header lists).
pub(crate) type VecPool<T> = Pool<Vec<T>>;

impl<C: Reusable> Pool<C> {
    /// An empty pool whose buffers keep at most `max_capacity` items of room.
    pub(crate) fn new(max_capacity: usize) -> Pool<C> {
        Pool {
            free: RefCell::new(Vec::new()),
            max_capacity,
        }
    }

    /// An empty buffer: one given back earlier (with its capacity) if any, else a new one
    /// (which allocates nothing until used).
    #[inline]
    pub(crate) fn take(&self) -> C {
        self.free
            .try_borrow_mut()
            .ok()
            .and_then(|mut free| free.pop())
            .unwrap_or_default()
    }

    /// Clears `v` and keeps it for a later [`take`](Self::take), unless it never allocated, is
    /// larger than `max_capacity`, or the pool is full; then it is dropped.
    #[inline]
    pub(crate) fn give(&self, mut v: C) {
        if v.capacity() == 0 || v.capacity() > self.max_capacity {
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

/// Boxed values kept for reuse, so a value that lives only while something is in progress (a
/// connection's exchange) costs an idle holder one pointer, not its size, and its allocation
/// is not repeated for each use.
///
/// Invariant: at most `MAX_POOLED` boxes are kept; the caller empties a box of anything that
/// could own other state (callbacks) before giving it back.
pub(crate) struct BoxPool<T> {
    free: RefCell<Vec<Box<T>>>,
}

impl<T> BoxPool<T> {
    pub(crate) fn new() -> BoxPool<T> {
        BoxPool {
            free: RefCell::new(Vec::new()),
        }
    }

    /// A box given back earlier, still holding its last value (for the caller to refill in
    /// place), or `None` when the pool is empty.
    #[inline]
    pub(crate) fn take(&self) -> Option<Box<T>> {
        self.free
            .try_borrow_mut()
            .ok()
            .and_then(|mut free| free.pop())
    }

    #[inline]
    pub(crate) fn give(&self, b: Box<T>) {
        if let Ok(mut free) = self.free.try_borrow_mut() {
            if free.len() < MAX_POOLED {
                free.push(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_CAPACITY: usize = 32;

    #[test]
    fn a_vec_given_back_comes_out_empty_with_its_capacity() {
        let pool = VecPool::new(MAX_CAPACITY);
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
        let pool = VecPool::new(MAX_CAPACITY);
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

    #[test]
    fn a_box_given_back_is_reused_for_the_next_value() {
        let pool: BoxPool<[u64; 4]> = BoxPool::new();
        assert!(pool.take().is_none(), "empty at first");
        let b = Box::new([1; 4]);
        let ptr: *const [u64; 4] = &*b;
        pool.give(b);
        let again = pool.take().expect("the box given back");
        assert_eq!(
            *again, [1; 4],
            "it still holds its last value, to refill in place"
        );
        assert!(std::ptr::eq(&*again, ptr), "the same allocation");
        assert!(pool.take().is_none(), "the pool is empty again");
    }

    #[test]
    fn a_bytes_buffer_comes_back_empty_with_its_allocation() {
        let pool: Pool<BytesMut> = Pool::new(1024);
        let mut b = BytesMut::with_capacity(200);
        b.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        let ptr = b.as_ptr();
        pool.give(b);
        let again = pool.take();
        assert!(again.is_empty());
        assert!(again.capacity() >= 200);
        assert_eq!(again.as_ptr(), ptr);
        pool.give(BytesMut::with_capacity(4096));
        assert_eq!(
            pool.take().capacity(),
            0,
            "over max_capacity: freed, not kept"
        );
    }
}
