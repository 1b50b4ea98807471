//! The Express-shaped application layer: routing (a segment trie, see [`router`]) and path and
//! query helpers ([`path`]).

pub mod path;
pub mod router;
