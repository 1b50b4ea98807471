//! A Redis client on the loop (work in progress: the RESP codec).

pub mod resp;
