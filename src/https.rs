//! HTTPS: the HTTP server over TLS (Node's `https` module).
//!
//! An HTTPS server is an [`http::Server`](crate::http::Server) whose listening socket speaks
//! TLS: the same handler, limits, keep-alive, upgrade hook (`wss://`) and graceful close. See
//! docs/tls.md.
//!
//! ```no_run
//! use oneloop::{https, tls::ServerTls};
//! use oneloop::runtime::Loop;
//! let mut lp = Loop::new()?;
//! let tls = ServerTls::from_pem_files("cert.pem", "key.pem")?.build()?;
//! let server = https::create_server(&mut lp, tls, |_lp, _req, res| res.end("Hello, TLS!"));
//! server.listen(&mut lp, "127.0.0.1:3443", |_lp, addr| println!("https://{addr}"))?;
//! lp.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use oneloop_runtime::{Loop, TlsServerOptions};

use crate::http::{create_server_with, Request, Response, Server, ServerConfig};

/// Creates an HTTPS server with Node's defaults (Node's `https.createServer(options,
/// handler)`): [`Server::listen`] and [`Server::listen_path`] then speak TLS.
pub fn create_server(
    lp: &mut Loop,
    tls: TlsServerOptions,
    handler: impl FnMut(&mut Loop, Request, Response) + 'static,
) -> Server {
    create_server_with_config(lp, tls, ServerConfig::default(), handler)
}

/// As [`create_server`], with explicit limits and timeouts.
pub fn create_server_with_config(
    lp: &mut Loop,
    tls: TlsServerOptions,
    mut config: ServerConfig,
    handler: impl FnMut(&mut Loop, Request, Response) + 'static,
) -> Server {
    config.listen.tls = Some(tls);
    create_server_with(lp, config, handler)
}
