//! An echo client written with async/await (`task::tcp_connect`, `TcpStream::read/write/end`).
//!
//! `cargo run -p oneloop-runtime --example async_echo_client [HOST:PORT]`
//!
//! With an address, it talks to that echo server (try
//! `node -e "require('net').createServer(s => s.pipe(s)).listen(7000)"` and `127.0.0.1:7000`);
//! without one, it starts a callback echo server on a free loopback port of the same loop, so
//! both styles run side by side on one thread.

use std::cell::Cell;
use std::net::SocketAddr;
use std::rc::Rc;

use oneloop_runtime::task;
use oneloop_runtime::{ListenOptions, Loop, ServerId};

fn main() -> std::io::Result<()> {
    let mut lp = Loop::new()?;
    let addr: SocketAddr = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{a}: {e}"))
        })?,
        None => callback_echo_server(&mut lp)?,
    };
    lp.spawn_task(async move {
        let stream = match task::tcp_connect(addr).await {
            Ok(s) => s,
            Err(e) => return eprintln!("{e}"),
        };
        for line in ["hello", "from an async", "echo client"] {
            if let Err(e) = stream.write(format!("{line}\n")).await {
                return eprintln!("{e}");
            }
            let mut echoed = Vec::new();
            while !echoed.ends_with(b"\n") {
                match stream.read().await {
                    Ok(Some(chunk)) => echoed.extend_from_slice(&chunk),
                    Ok(None) => return eprintln!("the server ended the connection"),
                    Err(e) => return eprintln!("{e}"),
                }
            }
            print!("echo: {}", String::from_utf8_lossy(&echoed));
        }
        stream.end();
        // Drain to the end of the stream: the server ends too, and the socket closes.
        while let Ok(Some(_)) = stream.read().await {}
        println!("closed");
    })
    .detach();
    lp.run()
}

/// A one-connection echo server in callback style (it stops listening once it accepted, so the
/// loop exits when that connection closes); returns its address.
fn callback_echo_server(lp: &mut Loop) -> std::io::Result<SocketAddr> {
    let server_id = Rc::new(Cell::new(None::<ServerId>));
    let srv = Rc::clone(&server_id);
    let server = lp.tcp_listen(
        "127.0.0.1:0".parse().expect("literal address"),
        ListenOptions::default(),
        move |lp, conn| {
            if let Some(s) = srv.take() {
                let _ = lp.tcp_server_close(s, |_| {});
            }
            let _ = lp.tcp_on_data(conn, |lp, id, data| {
                let _ = lp.tcp_write(id, data);
            });
        },
    )?;
    server_id.set(Some(server));
    lp.tcp_server_addr(server).map_err(std::io::Error::other)
}
