//! Command-line helpers the examples share (not part of the library): `--name value` options
//! with an environment-variable fallback, and the listen address from `--host`/`HOST` and
//! `--port`/`PORT`.
#![allow(dead_code)] // each example uses what it needs

use std::env;

/// The process arguments.
pub struct Args(Vec<String>);

impl Args {
    /// Reads `std::env::args()`.
    pub fn from_env() -> Args {
        Args(env::args().collect())
    }

    /// The value after `--name`, if given.
    pub fn value(&self, name: &str) -> Option<String> {
        let i = self.0.iter().position(|a| a == name)?;
        self.0.get(i + 1).cloned()
    }

    /// The value after `--name`, else the environment variable `var`.
    pub fn value_or_env(&self, name: &str, var: &str) -> Option<String> {
        self.value(name).or_else(|| env::var(var).ok())
    }

    /// Whether `--name` is present.
    pub fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|a| a == name)
    }

    /// `--host` or `HOST` (default 127.0.0.1).
    pub fn host(&self) -> String {
        self.value_or_env("--host", "HOST")
            .unwrap_or_else(|| "127.0.0.1".into())
    }

    /// `--port` or `PORT`, else `default`.
    pub fn port(&self, default: u16) -> String {
        self.value_or_env("--port", "PORT")
            .unwrap_or_else(|| default.to_string())
    }

    /// `--backlog N` (a positive listen backlog), if given; an error for anything else.
    pub fn backlog(&self) -> std::io::Result<Option<i32>> {
        match self.value("--backlog").map(|v| v.parse::<i32>()) {
            Some(Ok(n)) if n > 0 => Ok(Some(n)),
            Some(_) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "--backlog wants a positive number",
            )),
            None => Ok(None),
        }
    }

    /// `host:port` from [`Args::host`] and [`Args::port`].
    pub fn listen_addr(&self, default_port: u16) -> String {
        format!("{}:{}", self.host(), self.port(default_port))
    }
}

pub mod hello_routes;
