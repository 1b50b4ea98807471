//! Typed helpers for the commands the stores need: each encodes its command, sends it through
//! [`Redis::cmd`] and turns the reply into a Rust value (RESP2 and RESP3 replies alike).

use bytes::Bytes;
use oneloop_runtime::Loop;

use super::client::{CmdOptions, Redis};
use super::resp::Reply;
use super::RedisError;

/// A `SET` expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expiry {
    /// `EX seconds`.
    Seconds(u64),
    /// `PX milliseconds`.
    Millis(u64),
    /// `KEEPTTL`: keep the key's current TTL.
    KeepTtl,
}

/// A `SET` condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    /// `NX`: only if the key does not exist.
    IfMissing,
    /// `XX`: only if the key exists.
    IfExists,
}

/// Options of [`Redis::set`]; the default is a plain `SET key value`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// `EX`/`PX`/`KEEPTTL`.
    pub expiry: Option<Expiry>,
    /// `NX`/`XX`.
    pub condition: Option<Condition>,
}

impl SetOptions {
    /// `EX seconds`.
    pub fn ex(seconds: u64) -> SetOptions {
        SetOptions {
            expiry: Some(Expiry::Seconds(seconds)),
            condition: None,
        }
    }

    /// `PX milliseconds`.
    pub fn px(ms: u64) -> SetOptions {
        SetOptions {
            expiry: Some(Expiry::Millis(ms)),
            condition: None,
        }
    }

    /// Adds `NX`.
    pub fn nx(mut self) -> SetOptions {
        self.condition = Some(Condition::IfMissing);
        self
    }

    /// Adds `XX`.
    pub fn xx(mut self) -> SetOptions {
        self.condition = Some(Condition::IfExists);
        self
    }
}

/// The answer of [`Redis::pttl`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist (`-2`).
    Missing,
    /// The key exists without an expiry (`-1`).
    Persistent,
    /// Milliseconds left.
    Millis(u64),
}

/// A Lua script for [`Redis::evalsha`]: its source and SHA-1, computed once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    source: Bytes,
    sha1: String,
}

impl Script {
    /// A script from its Lua source.
    pub fn new(source: impl Into<Bytes>) -> Script {
        let source = source.into();
        let sha1 = sha1_smol::Sha1::from(&source[..]).digest().to_string();
        Script { source, sha1 }
    }

    /// The hex SHA-1 Redis knows the script by.
    pub fn sha1(&self) -> &str {
        &self.sha1
    }
}

fn unexpected(what: &str, reply: &Reply) -> RedisError {
    RedisError::UnexpectedReply(format!("{what}: {reply:?}"))
}

fn to_int(reply: Reply, what: &str) -> Result<i64, RedisError> {
    match reply {
        Reply::Int(n) => Ok(n),
        other => Err(unexpected(what, &other)),
    }
}

fn to_opt_bytes(reply: Reply, what: &str) -> Result<Option<Bytes>, RedisError> {
    match reply {
        Reply::Nil => Ok(None),
        Reply::Bulk(b) | Reply::Simple(b) => Ok(Some(b)),
        Reply::Verbatim { text, .. } => Ok(Some(text)),
        other => Err(unexpected(what, &other)),
    }
}

impl Redis {
    /// `GET key`: the value, or `None` if the key does not exist.
    pub fn get(
        &self,
        lp: &mut Loop,
        key: impl AsRef<[u8]>,
        callback: impl FnOnce(&mut Loop, Result<Option<Bytes>, RedisError>) + 'static,
    ) {
        self.cmd(lp, &[b"GET", key.as_ref()], move |lp, r| {
            callback(lp, r.and_then(|r| to_opt_bytes(r, "GET")))
        });
    }

    /// `SET key value [EX s|PX ms|KEEPTTL] [NX|XX]`: `true` if the value was set, `false` if
    /// `NX`/`XX` prevented it.
    pub fn set(
        &self,
        lp: &mut Loop,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        options: SetOptions,
        callback: impl FnOnce(&mut Loop, Result<bool, RedisError>) + 'static,
    ) {
        let mut args: Vec<&[u8]> = vec![b"SET", key.as_ref(), value.as_ref()];
        let number;
        match options.expiry {
            Some(Expiry::Seconds(s)) => {
                number = s.to_string();
                args.extend([&b"EX"[..], number.as_bytes()]);
            }
            Some(Expiry::Millis(ms)) => {
                number = ms.to_string();
                args.extend([&b"PX"[..], number.as_bytes()]);
            }
            Some(Expiry::KeepTtl) => args.push(b"KEEPTTL"),
            None => {}
        }
        match options.condition {
            Some(Condition::IfMissing) => args.push(b"NX"),
            Some(Condition::IfExists) => args.push(b"XX"),
            None => {}
        }
        self.cmd(lp, &args, move |lp, r| {
            let r = r.and_then(|reply| match reply {
                ref ok if ok.is_ok() => Ok(true),
                Reply::Nil => Ok(false),
                other => Err(unexpected("SET", &other)),
            });
            callback(lp, r)
        });
    }

    /// `DEL key [key ...]`: how many keys were removed.
    pub fn del<K: AsRef<[u8]>>(
        &self,
        lp: &mut Loop,
        keys: &[K],
        callback: impl FnOnce(&mut Loop, Result<i64, RedisError>) + 'static,
    ) {
        let mut args: Vec<&[u8]> = vec![b"DEL"];
        args.extend(keys.iter().map(|k| k.as_ref()));
        self.cmd(lp, &args, move |lp, r| {
            callback(lp, r.and_then(|r| to_int(r, "DEL")))
        });
    }

    /// `INCR key`: the new value.
    pub fn incr(
        &self,
        lp: &mut Loop,
        key: impl AsRef<[u8]>,
        callback: impl FnOnce(&mut Loop, Result<i64, RedisError>) + 'static,
    ) {
        self.cmd(lp, &[b"INCR", key.as_ref()], move |lp, r| {
            callback(lp, r.and_then(|r| to_int(r, "INCR")))
        });
    }

    /// `PEXPIRE key ms`: `true` if the timeout was set (the key exists).
    pub fn pexpire(
        &self,
        lp: &mut Loop,
        key: impl AsRef<[u8]>,
        ms: u64,
        callback: impl FnOnce(&mut Loop, Result<bool, RedisError>) + 'static,
    ) {
        let ms = ms.to_string();
        self.cmd(
            lp,
            &[b"PEXPIRE", key.as_ref(), ms.as_bytes()],
            move |lp, r| callback(lp, r.and_then(|r| to_int(r, "PEXPIRE")).map(|n| n == 1)),
        );
    }

    /// `PTTL key`.
    pub fn pttl(
        &self,
        lp: &mut Loop,
        key: impl AsRef<[u8]>,
        callback: impl FnOnce(&mut Loop, Result<Ttl, RedisError>) + 'static,
    ) {
        self.cmd(lp, &[b"PTTL", key.as_ref()], move |lp, r| {
            let r = r.and_then(|r| to_int(r, "PTTL")).map(|n| match n {
                -2 => Ttl::Missing,
                n if n < 0 => Ttl::Persistent,
                n => Ttl::Millis(n as u64),
            });
            callback(lp, r)
        });
    }

    /// `MGET key [key ...]`: one `Option` per key, in order.
    pub fn mget<K: AsRef<[u8]>>(
        &self,
        lp: &mut Loop,
        keys: &[K],
        callback: impl FnOnce(&mut Loop, Result<Vec<Option<Bytes>>, RedisError>) + 'static,
    ) {
        let mut args: Vec<&[u8]> = vec![b"MGET"];
        args.extend(keys.iter().map(|k| k.as_ref()));
        self.cmd(lp, &args, move |lp, r| {
            let r = r.and_then(|reply| match reply {
                Reply::Array(items) => items
                    .into_iter()
                    .map(|i| to_opt_bytes(i, "MGET element"))
                    .collect(),
                other => Err(unexpected("MGET", &other)),
            });
            callback(lp, r)
        });
    }

    /// `HGET key field`.
    pub fn hget(
        &self,
        lp: &mut Loop,
        key: impl AsRef<[u8]>,
        field: impl AsRef<[u8]>,
        callback: impl FnOnce(&mut Loop, Result<Option<Bytes>, RedisError>) + 'static,
    ) {
        self.cmd(
            lp,
            &[b"HGET", key.as_ref(), field.as_ref()],
            move |lp, r| callback(lp, r.and_then(|r| to_opt_bytes(r, "HGET"))),
        );
    }

    /// `HSET key field value [field value ...]`: how many fields were added (not updated).
    pub fn hset<F: AsRef<[u8]>, V: AsRef<[u8]>>(
        &self,
        lp: &mut Loop,
        key: impl AsRef<[u8]>,
        fields: &[(F, V)],
        callback: impl FnOnce(&mut Loop, Result<i64, RedisError>) + 'static,
    ) {
        let mut args: Vec<&[u8]> = vec![b"HSET", key.as_ref()];
        for (f, v) in fields {
            args.push(f.as_ref());
            args.push(v.as_ref());
        }
        self.cmd(lp, &args, move |lp, r| {
            callback(lp, r.and_then(|r| to_int(r, "HSET")))
        });
    }

    /// `SCAN cursor [MATCH pattern] [COUNT n]`: the next cursor (0 when done) and a batch of
    /// keys.
    pub fn scan(
        &self,
        lp: &mut Loop,
        cursor: u64,
        pattern: Option<&str>,
        count: Option<u32>,
        callback: impl FnOnce(&mut Loop, Result<(u64, Vec<Bytes>), RedisError>) + 'static,
    ) {
        let cursor = cursor.to_string();
        let count = count.map(|c| c.to_string());
        let mut args: Vec<&[u8]> = vec![b"SCAN", cursor.as_bytes()];
        if let Some(p) = pattern {
            args.extend([&b"MATCH"[..], p.as_bytes()]);
        }
        if let Some(c) = &count {
            args.extend([&b"COUNT"[..], c.as_bytes()]);
        }
        self.cmd(lp, &args, move |lp, r| {
            let r = r.and_then(|reply| {
                let bad = || unexpected("SCAN", &reply);
                let [next, keys] = reply.as_slice().ok_or_else(bad)? else {
                    return Err(bad());
                };
                let next = next
                    .as_bytes()
                    .and_then(|b| std::str::from_utf8(b).ok()?.parse().ok())
                    .ok_or_else(bad)?;
                let keys = keys
                    .as_slice()
                    .ok_or_else(bad)?
                    .iter()
                    .map(|k| k.as_bytes().cloned().ok_or_else(bad))
                    .collect::<Result<_, _>>()?;
                Ok((next, keys))
            });
            callback(lp, r)
        });
    }

    /// `PUBLISH channel message`: how many subscribers received it.
    pub fn publish(
        &self,
        lp: &mut Loop,
        channel: impl AsRef<[u8]>,
        message: impl AsRef<[u8]>,
        callback: impl FnOnce(&mut Loop, Result<i64, RedisError>) + 'static,
    ) {
        self.cmd(
            lp,
            &[b"PUBLISH", channel.as_ref(), message.as_ref()],
            move |lp, r| callback(lp, r.and_then(|r| to_int(r, "PUBLISH"))),
        );
    }

    /// `EVALSHA sha numkeys keys.. args..`, falling back to `EVAL` with the source when the
    /// server does not have the script cached (`NOSCRIPT`), as ioredis' `defineCommand`
    /// does; the `EVAL` loads it for next time.
    pub fn evalsha<K: AsRef<[u8]>, A: AsRef<[u8]>>(
        &self,
        lp: &mut Loop,
        script: &Script,
        keys: &[K],
        args: &[A],
        callback: impl FnOnce(&mut Loop, Result<Reply, RedisError>) + 'static,
    ) {
        self.evalsha_with(lp, script, keys, args, CmdOptions::default(), callback);
    }

    /// [`Redis::evalsha`] with per-command options; a timeout applies to the `EVALSHA` and,
    /// after a `NOSCRIPT`, again to the `EVAL`.
    pub fn evalsha_with<K: AsRef<[u8]>, A: AsRef<[u8]>>(
        &self,
        lp: &mut Loop,
        script: &Script,
        keys: &[K],
        args: &[A],
        options: CmdOptions,
        callback: impl FnOnce(&mut Loop, Result<Reply, RedisError>) + 'static,
    ) {
        let numkeys = keys.len().to_string();
        let mut rest: Vec<Bytes> = vec![Bytes::from(numkeys)];
        rest.extend(keys.iter().map(|k| Bytes::copy_from_slice(k.as_ref())));
        rest.extend(args.iter().map(|a| Bytes::copy_from_slice(a.as_ref())));
        let mut cmd: Vec<Bytes> = vec![
            Bytes::from_static(b"EVALSHA"),
            Bytes::from(script.sha1.clone()),
        ];
        cmd.extend(rest.iter().cloned());
        let (redis, source) = (self.clone(), script.source.clone());
        self.cmd_with(lp, &cmd, options, move |lp, r| match r {
            Err(RedisError::Server(msg)) if msg.starts_with("NOSCRIPT") => {
                let mut eval: Vec<Bytes> = vec![Bytes::from_static(b"EVAL"), source];
                eval.extend(rest);
                redis.cmd_with(lp, &eval, options, callback);
            }
            other => callback(lp, other),
        });
    }
}
