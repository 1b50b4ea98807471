//! Handles: small `Copy` ids into generational slabs.
//!
//! Every long-lived object the loop owns (a timer, a TCP socket, a server, a signal watcher, a
//! thread-pool request) lives in a [`GenSlab`] slot. Users hold a [`Key`] wrapped in a typed id
//! (`TimerId`, `TcpId`, ...). Each slot carries a generation that is bumped whenever the slot is
//! freed, so an id that outlived its object is *stale*: looking it up fails with
//! [`HandleError::Stale`] and can never reach the object that reused the slot.
//!
//! Immediates are the exception: they run in queue order, so they live in a ring buffer and an
//! [`ImmediateId`] is their sequence number, which is never reused (stale forever once the
//! immediate ran or was cleared).

use std::fmt;

/// Index plus generation. The building block of every typed id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Key {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

impl Key {
    /// The slot index, used as the mio `Token` for I/O handles.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// Why an id could not be used.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum HandleError {
    /// The object this id named is gone (fired, cleared, closed); its slot may hold another now.
    Stale,
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandleError::Stale => f.write_str("stale handle: the object this id named is gone"),
        }
    }
}

impl std::error::Error for HandleError {}

struct Slot<T> {
    gen: u32,
    value: Option<T>,
}

/// A slab whose keys carry a generation.
///
/// # Guarantees
/// - `insert` reuses freed slots (no growth in steady state) and never hands out a key equal to
///   one handed out before for the same slot: the generation differs.
/// - `get`/`get_mut`/`remove` with a stale key return `None` and touch nothing.
pub(crate) struct GenSlab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for GenSlab<T> {
    fn default() -> Self {
        GenSlab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> GenSlab<T> {
    /// Inserts the value `make` builds from the key it will have (for values that name
    /// themselves, such as a task's waker).
    pub(crate) fn insert_with(&mut self, make: impl FnOnce(Key) -> T) -> Key {
        self.insert_mut(make).0
    }

    pub(crate) fn insert(&mut self, value: T) -> Key {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.value = Some(value);
            Key {
                index,
                gen: slot.gen,
            }
        } else {
            let index = self.slots.len() as u32;
            self.slots.push(Slot {
                gen: 0,
                value: Some(value),
            });
            Key { index, gen: 0 }
        }
    }

    /// [`GenSlab::insert`], returning the stored value too (no second lookup). The value is
    /// built by `make` (from the key it will have) once its slot is known, so the compiler can
    /// write it straight into the slot: a value built first on the caller's stack with narrow
    /// field stores and then copied in 16-byte loads stalls store forwarding
    /// (docs/benchmarks.md, "Issue #23, third pass").
    #[inline]
    pub(crate) fn insert_mut(&mut self, make: impl FnOnce(Key) -> T) -> (Key, &mut T) {
        self.len += 1;
        let (index, gen) = match self.free.pop() {
            Some(index) => (index, self.slots[index as usize].gen),
            None => {
                self.slots.push(Slot {
                    gen: 0,
                    value: None,
                });
                (self.slots.len() as u32 - 1, 0)
            }
        };
        let value = &mut self.slots[index as usize].value;
        match value {
            // Nothing to drop before the write.
            None => {
                let key = Key { index, gen };
                (key, value.insert(make(key)))
            }
            Some(_) => unreachable!("a free slot holds no value"),
        }
    }

    pub(crate) fn get(&self, key: Key) -> Option<&T> {
        match self.slots.get(key.index as usize) {
            Some(slot) if slot.gen == key.gen => slot.value.as_ref(),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        match self.slots.get_mut(key.index as usize) {
            Some(slot) if slot.gen == key.gen => slot.value.as_mut(),
            _ => None,
        }
    }

    /// The live key stored at `index`, if any (used to map a mio token back to a handle).
    pub(crate) fn key_at(&self, index: usize) -> Option<Key> {
        match self.slots.get(index) {
            Some(slot) if slot.value.is_some() => Some(Key {
                index: index as u32,
                gen: slot.gen,
            }),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, key: Key) -> Option<T> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.gen != key.gen || slot.value.is_none() {
            return None;
        }
        let value = slot.value.take();
        // Bump the generation so every outstanding copy of `key` becomes stale.
        slot.gen = slot.gen.wrapping_add(1);
        self.free.push(key.index);
        self.len -= 1;
        value
    }

    /// [`GenSlab::remove`] that drops the value where it lies instead of moving it out, and
    /// returns what `read` takes from it first. For hot paths that only need a field or two of
    /// a value they just wrote narrow fields of: moving the whole value out reads it back in
    /// wide loads that stall store forwarding.
    #[inline]
    pub(crate) fn remove_in_place<R>(&mut self, key: Key, read: impl FnOnce(&T) -> R) -> Option<R> {
        let slot = self.slots.get_mut(key.index as usize)?;
        if slot.gen != key.gen {
            return None;
        }
        let out = read(slot.value.as_ref()?);
        slot.value = None;
        // Bump the generation so every outstanding copy of `key` becomes stale.
        slot.gen = slot.gen.wrapping_add(1);
        self.free.push(key.index);
        self.len -= 1;
        Some(out)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn keys(&self) -> impl Iterator<Item = Key> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.value.as_ref().map(|_| Key {
                index: i as u32,
                gen: s.gen,
            })
        })
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub struct $name(pub(crate) Key);
    };
}

typed_id!(
    /// A timer from [`Loop::set_timeout`](crate::Loop::set_timeout) or
    /// [`Loop::set_interval`](crate::Loop::set_interval).
    TimerId
);
/// An immediate from [`Loop::set_immediate`](crate::Loop::set_immediate): its sequence number,
/// never reused, so an id that ran or was cleared stays stale forever.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ImmediateId(pub(crate) u64);
typed_id!(
    /// A thread-pool request from [`Loop::queue_work`](crate::Loop::queue_work).
    WorkId
);
typed_id!(
    /// A signal watcher from [`Loop::on_signal`](crate::Loop::on_signal).
    SignalId
);
typed_id!(
    /// A stream socket, accepted or connected: TCP, or a Unix domain socket (a pipe from
    /// [`Loop::pipe_connect`](crate::Loop::pipe_connect) or a pipe server, or a child
    /// process's stdio). One id type for both, as Node's one `net.Socket` class: every
    /// `tcp_*` socket operation works on either.
    TcpId
);
typed_id!(
    /// A listening server: TCP ([`Loop::tcp_listen`](crate::Loop::tcp_listen)) or a Unix
    /// domain socket ([`Loop::pipe_listen`](crate::Loop::pipe_listen)).
    ServerId
);
typed_id!(
    /// An async handle or channel, from [`AsyncHandle::id`](crate::AsyncHandle::id) or
    /// [`Loop::channel`](crate::Loop::channel).
    AsyncId
);
typed_id!(
    /// A UDP socket from [`Loop::udp_bind`](crate::Loop::udp_bind).
    UdpId
);

typed_id!(
    /// A child process from [`Loop::spawn`](crate::Loop::spawn).
    ProcessId
);

impl TcpId {
    /// A number that identifies this connection while it lives (its slot index); for logs.
    pub fn index(self) -> usize {
        self.0.index()
    }
}

/// Any handle that can be ref'd and unref'd (Node's `ref()`/`unref()`/`hasRef()`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Handle {
    /// A timer or interval.
    Timer(TimerId),
    /// An immediate.
    Immediate(ImmediateId),
    /// A signal watcher.
    Signal(SignalId),
    /// A TCP connection.
    Tcp(TcpId),
    /// A TCP server.
    Server(ServerId),
    /// An async handle or channel.
    Async(AsyncId),
    /// A UDP socket.
    Udp(UdpId),
    /// A child process (ref'd: keeps the loop alive until it exits).
    Process(ProcessId),
}

macro_rules! into_handle {
    ($($id:ident => $variant:ident),*) => {$(
        impl From<$id> for Handle {
            fn from(id: $id) -> Handle {
                Handle::$variant(id)
            }
        }
    )*};
}
into_handle!(TimerId => Timer, ImmediateId => Immediate, SignalId => Signal, TcpId => Tcp, ServerId => Server, ProcessId => Process);
into_handle!(AsyncId => Async, UdpId => Udp);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_key_never_reaches_the_value_that_reused_its_slot() {
        let mut slab = GenSlab::default();
        let a = slab.insert("a");
        assert_eq!(slab.remove(a), Some("a"));
        let b = slab.insert("b");
        assert_eq!(a.index, b.index, "slot is reused");
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.remove(a), None);
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.len(), 1);
    }
}
