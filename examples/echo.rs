// An echo server on one loop. Run it with:
//
//     cargo run --example echo -- --port 7000            (or PORT=7000 HOST=0.0.0.0 cargo run --example echo)
//
// then `nc 127.0.0.1 7000` and type. Flags win over the PORT and HOST environment variables;
// the defaults are 127.0.0.1 and port 7000 (port 0 picks a free one). It prints the address it
// listens on. Reads pause while a client is not reading its echoes (write returned false) and
// resume on drain, so a slow client cannot make the server buffer without bound.

use std::io;
use std::net::{IpAddr, SocketAddr};

use oneloop::runtime::{ListenOptions, Loop};

fn main() -> io::Result<()> {
    let mut host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let mut port = std::env::var("PORT").unwrap_or_else(|_| "7000".into());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => port = args.next().unwrap_or_default(),
            "--host" => host = args.next().unwrap_or_default(),
            other => return Err(invalid(format!("unknown argument {other:?}"))),
        }
    }
    let ip: IpAddr = host
        .parse()
        .map_err(|_| invalid(format!("bad host {host:?}")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| invalid(format!("bad port {port:?}")))?;

    let mut lp = Loop::new()?;
    let server = lp.tcp_listen(
        SocketAddr::new(ip, port),
        ListenOptions::default(),
        |lp, conn| {
            let _ = lp.tcp_on_data(conn, |lp, id, data| {
                // `write` returned false: the client is not keeping up; stop reading until the
                // queue drains.
                if let Ok(false) = lp.tcp_write(id, data) {
                    let _ = lp.tcp_pause(id);
                }
            });
            let _ = lp.tcp_on_drain(conn, |lp, id| {
                let _ = lp.tcp_resume(id);
            });
        },
    )?;
    let addr = lp
        .tcp_server_addr(server)
        .map_err(|e| io::Error::other(e.to_string()))?;
    println!("echo server listening on {addr}");
    lp.run()
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}
