//! HTTPS interop and bad input: real clients (curl, openssl s_client, Python ssl, Node https)
//! against a oneloop HTTPS server on a free loopback port, and a oneloop TLS client against a
//! Node https server. Certificates are made by rcgen in a temp dir. A missing tool fails the
//! test with a message.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use oneloop::http::{self, ServerConfig};
use oneloop::runtime::{Loop, SocketOptions, TcpId};
use oneloop::tls::{self, ClientTls, ServerName, ServerTls, TlsConfigError, TlsConnectOptions};

const IO_TIMEOUT: Duration = Duration::from_secs(10);

struct Cert {
    cert_pem: String,
    key_pem: String,
}

fn make_cert(names: &[&str]) -> Cert {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let c = rcgen::generate_simple_self_signed(names).expect("rcgen");
    Cert {
        cert_pem: c.cert.pem(),
        key_pem: c.signing_key.serialize_pem(),
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("oneloop-tls-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A oneloop HTTPS server on its own thread; TLS client errors are recorded as text.
struct Server {
    addr: SocketAddr,
    tls_errors: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(tls: ServerTls) -> Server {
        let options = tls.build().expect("tls config");
        let (tx, rx) = mpsc::channel();
        let tls_errors = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::clone(&tls_errors);
        thread::spawn(move || {
            let mut lp = Loop::new().unwrap();
            let server = oneloop::https::create_server_with_config(
                &mut lp,
                options,
                ServerConfig::default(),
                |lp, req, res| {
                    let info = lp.tls_info(req.socket()).expect("a TLS socket");
                    let body = format!(
                        "hello over {} alpn={} sni={}\n",
                        info.protocol.unwrap_or("?"),
                        info.alpn
                            .map(|a| String::from_utf8_lossy(&a).into_owned())
                            .unwrap_or_default(),
                        info.server_name.unwrap_or_default()
                    );
                    res.set_header("content-type", "text/plain");
                    res.end(body);
                },
            );
            let addr = server
                .listen(&mut lp, "127.0.0.1:0", |_lp, _addr| {})
                .unwrap();
            let id = server.tcp_id().unwrap();
            lp.tcp_server_on_tls_error(id, move |_lp, e| {
                errors.lock().unwrap().push(e.error.to_string());
            })
            .unwrap();
            tx.send(addr).unwrap();
            lp.run().unwrap();
        });
        Server {
            addr: rx.recv_timeout(IO_TIMEOUT).unwrap(),
            tls_errors,
        }
    }

    /// Waits (bounded) for a TLS client error containing `needle`; returns every error seen.
    fn wait_tls_error(&self, needle: &str) -> Vec<String> {
        let start = Instant::now();
        loop {
            let errors = self.tls_errors.lock().unwrap().clone();
            if errors.iter().any(|e| e.contains(needle)) || start.elapsed() > IO_TIMEOUT {
                return errors;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

fn localhost_server(dir: &Path) -> (Server, PathBuf) {
    let cert = make_cert(&["localhost", "127.0.0.1"]);
    let ca = write(dir, "cert.pem", &cert.cert_pem);
    let tls = ServerTls::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).unwrap();
    (Server::start(tls.handshake_timeout_ms(300)), ca)
}

fn run(cmd: &mut Command, what: &str) -> (String, String) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what} is required for this test and could not run: {e}"));
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_with_input(cmd: &mut Command, what: &str, input: &[u8]) -> String {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} is required for this test and could not run: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn curl_verifies_the_certificate_and_speaks_tls12_tls13_with_alpn_http11() {
    let dir = temp_dir("curl");
    let (server, ca) = localhost_server(&dir);
    let url = format!("https://localhost:{}/", server.addr.port());
    for (flags, version) in [
        (vec!["--tlsv1.3"], "TLSv1.3"),
        (vec!["--tlsv1.2", "--tls-max", "1.2"], "TLSv1.2"),
    ] {
        let (out, err) = run(
            Command::new("curl")
                .args(["-sS", "-v", "--cacert"])
                .arg(&ca)
                .args(&flags)
                .arg(&url),
            "curl",
        );
        assert_eq!(
            out,
            format!("hello over {version} alpn=http/1.1 sni=localhost\n"),
            "{err}"
        );
        assert!(err.contains("ALPN: server accepted http/1.1"), "{err}");
    }
    // Without --cacert curl refuses the self-signed certificate.
    let (out, _err) = run(Command::new("curl").args(["-sS", &url]), "curl");
    assert!(out.is_empty());
}

#[test]
fn openssl_s_client_completes_a_verified_handshake_and_resumes_a_tls12_session() {
    let dir = temp_dir("openssl");
    let (server, ca) = localhost_server(&dir);
    let connect = server.addr.to_string();
    let sess = dir.join("session.pem");
    let request = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let first = run_with_input(
        Command::new("openssl")
            .args(["s_client", "-connect", &connect, "-servername", "localhost"])
            .args(["-alpn", "http/1.1", "-tls1_2", "-ign_eof", "-CAfile"])
            .arg(&ca)
            .arg("-sess_out")
            .arg(&sess),
        "openssl",
        request,
    );
    assert!(first.contains("Verify return code: 0 (ok)"), "{first}");
    assert!(first.contains("ALPN protocol: http/1.1"), "{first}");
    assert!(first.contains("hello over TLSv1.2"), "{first}");
    assert!(first.contains("New, TLSv1.2"), "{first}");
    let second = run_with_input(
        Command::new("openssl")
            .args(["s_client", "-connect", &connect, "-servername", "localhost"])
            .args(["-tls1_2", "-ign_eof", "-CAfile"])
            .arg(&ca)
            .arg("-sess_in")
            .arg(&sess),
        "openssl",
        request,
    );
    assert!(second.contains("Reused, TLSv1.2"), "{second}");
    assert!(second.contains("hello over TLSv1.2"), "{second}");
}

#[test]
fn python_ssl_and_node_https_clients_get_answers() {
    let dir = temp_dir("py-node");
    let (server, ca) = localhost_server(&dir);
    let port = server.addr.port();
    let py = format!(
        "import ssl, socket\n\
ctx = ssl.create_default_context(cafile={ca:?})\n\
ctx.set_alpn_protocols(['http/1.1'])\n\
s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', {port})), server_hostname='localhost')\n\
s.sendall(b'GET / HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n')\n\
data = b''\n\
while True:\n    chunk = s.recv(65536)\n    if not chunk: break\n    data += chunk\n\
print(s.version(), s.selected_alpn_protocol())\n\
print(data.decode().split('\\r\\n\\r\\n', 1)[1], end='')\n",
        ca = ca.display().to_string()
    );
    let (out, err) = run(Command::new("python3").args(["-c", &py]), "python3");
    assert_eq!(
        out, "TLSv1.3 http/1.1\nhello over TLSv1.3 alpn=http/1.1 sni=localhost\n",
        "{err}"
    );
    let js = format!(
        "const https = require('https'), fs = require('fs');\n\
https.get({{ host: '127.0.0.1', servername: 'localhost', port: {port}, path: '/', \
ca: fs.readFileSync({ca:?}) }}, (res) => {{\n\
  let body = ''; const proto = res.socket.getProtocol(); res.on('data', (d) => body += d);\n\
  res.on('end', () => console.log(res.statusCode, proto, body.trim()));\n\
}}).on('error', (e) => {{ console.error('error', e.message); process.exit(1); }});\n",
        ca = ca.display().to_string()
    );
    let (out, err) = run(Command::new("node").args(["-e", &js]), "node");
    assert_eq!(
        out,
        "200 TLSv1.3 hello over TLSv1.3 alpn= sni=localhost\n", // Node offers no ALPN by default
        "{err}"
    );
}

#[test]
fn sni_chooses_the_certificate_by_name_and_falls_back_to_the_default() {
    let dir = temp_dir("sni");
    let default = make_cert(&["localhost"]);
    let api = make_cert(&["api.test"]);
    let wild = make_cert(&["*.apps.test"]);
    let tls = ServerTls::from_pem(default.cert_pem.as_bytes(), default.key_pem.as_bytes())
        .unwrap()
        .add_sni("api.test", api.cert_pem.as_bytes(), api.key_pem.as_bytes())
        .unwrap()
        .add_sni(
            "*.apps.test",
            wild.cert_pem.as_bytes(),
            wild.key_pem.as_bytes(),
        )
        .unwrap();
    let server = Server::start(tls);
    let port = server.addr.port();
    for (name, cert) in [
        ("api.test", &api),
        ("one.apps.test", &wild),
        ("localhost", &default),
    ] {
        let ca = write(&dir, &format!("{name}.pem"), &cert.cert_pem);
        let (out, err) = run(
            Command::new("curl")
                .args(["-sS", "--cacert"])
                .arg(&ca)
                .args(["--resolve", &format!("{name}:{port}:127.0.0.1")])
                .arg(format!("https://{name}:{port}/")),
            "curl",
        );
        assert_eq!(
            out,
            format!("hello over TLSv1.3 alpn=http/1.1 sni={name}\n"),
            "{name}: {err}"
        );
    }
}

#[test]
fn plain_http_on_the_tls_port_is_answered_400() {
    let dir = temp_dir("plain");
    let (server, _ca) = localhost_server(&dir);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    assert!(got.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{got}");
    assert!(got.contains("This port speaks HTTPS"), "{got}");
    server.wait_tls_error("plain HTTP");
}

/// Reads until the server closes; panics on a timeout (the server must cut the connection).
fn read_until_closed(s: &mut TcpStream) -> Vec<u8> {
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return got,
            Err(e) => panic!("the server did not close the connection: {e}"),
        }
    }
}

#[test]
fn garbage_instead_of_a_client_hello_gets_an_alert_and_a_close() {
    let dir = temp_dir("garbage");
    let (server, _ca) = localhost_server(&dir);
    let mut s = TcpStream::connect(server.addr).unwrap();
    // Lower-case and binary bytes: not an HTTP method, not a TLS record.
    s.write_all(b"\x01\x02\x03garbage garbage garbage garbage\x00\xff")
        .unwrap();
    let got = read_until_closed(&mut s);
    // A TLS alert record (content type 21) before the close.
    assert_eq!(got.first(), Some(&21), "{got:?}");
    let errors = server.wait_tls_error("tls:");
    assert!(errors.iter().any(|e| e.contains("tls:")), "{errors:?}");
    // The server still serves.
    let mut ok = TcpStream::connect(server.addr).unwrap();
    ok.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(String::from_utf8_lossy(&read_until_closed(&mut ok)).contains("400"));
}

/// The first bytes of a TLS 1.2 ClientHello record: a handshake record header and the start
/// of the message, never completed.
const PARTIAL_HELLO: &[u8] = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";

#[test]
fn a_client_stalling_mid_handshake_is_cut_at_the_handshake_timeout() {
    let dir = temp_dir("stall");
    let (server, _ca) = localhost_server(&dir); // 300 ms handshake timeout
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(PARTIAL_HELLO).unwrap();
    let got = read_until_closed(&mut s);
    assert!(got.is_empty(), "{got:?}");
    let errors = server.wait_tls_error("handshake not completed within 300 ms");
    assert!(
        errors.iter().any(|e| e.contains("within 300 ms")),
        "{errors:?}"
    );
}

#[test]
fn a_client_disconnecting_mid_handshake_is_reported() {
    let dir = temp_dir("disconnect");
    let (server, _ca) = localhost_server(&dir);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(PARTIAL_HELLO).unwrap();
    drop(s);
    let errors = server.wait_tls_error("closed by the peer during the handshake");
    assert!(
        errors.iter().any(|e| e.contains("during the handshake")),
        "{errors:?}"
    );
}

#[test]
fn a_tls12_renegotiation_attempt_is_refused_and_the_server_keeps_serving() {
    let dir = temp_dir("reneg");
    let (server, ca) = localhost_server(&dir);
    let connect = server.addr.to_string();
    // `R` asks s_client to renegotiate; the request after it is only answered if the
    // connection survived.
    let out = run_with_input(
        Command::new("openssl")
            .args(["s_client", "-connect", &connect, "-servername", "localhost"])
            .args(["-tls1_2", "-CAfile"])
            .arg(&ca),
        "openssl",
        b"R\nGET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert!(out.contains("RENEGOTIATING"), "{out}");
    assert!(
        !out.contains("hello over"),
        "renegotiation must not succeed: {out}"
    );
    let (body, err) = run(
        Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&ca)
            .arg(format!("https://localhost:{}/", server.addr.port())),
        "curl",
    );
    assert!(body.starts_with("hello over"), "{err}");
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused_at_start() {
    let a = make_cert(&["localhost"]);
    let b = make_cert(&["localhost"]);
    let err = ServerTls::from_pem(a.cert_pem.as_bytes(), b.key_pem.as_bytes()).unwrap_err();
    assert!(matches!(err, TlsConfigError::KeyMismatch { .. }), "{err}");
    assert!(err.to_string().contains("does not match"), "{err}");
    let dir = temp_dir("mismatch");
    let cert = write(&dir, "cert.pem", &a.cert_pem);
    let key = write(&dir, "key.pem", "not a pem file");
    let err = ServerTls::from_pem_files(&cert, &key).unwrap_err();
    assert!(err.to_string().contains("key.pem"), "{err}");
    let err = ServerTls::from_pem_files(dir.join("missing.pem"), &key).unwrap_err();
    assert!(err.to_string().contains("missing.pem"), "{err}");
}

/// A Node https server on a free port with `cert`; returns the child and its port.
fn node_https_server(dir: &Path, cert: &Cert) -> (std::process::Child, u16) {
    let cert_path = write(dir, "node-cert.pem", &cert.cert_pem);
    let key_path = write(dir, "node-key.pem", &cert.key_pem);
    let js = format!(
        "const https = require('https'), fs = require('fs');\n\
const s = https.createServer({{ cert: fs.readFileSync({c:?}), key: fs.readFileSync({k:?}) }}, \
(req, res) => res.end('node says hi over ' + req.socket.getProtocol()));\n\
s.listen(0, '127.0.0.1', () => console.log(s.address().port));\n\
setTimeout(() => process.exit(0), 30000);\n",
        c = cert_path.display().to_string(),
        k = key_path.display().to_string()
    );
    let mut child = Command::new("node")
        .args(["-e", &js])
        .stdout(Stdio::piped())
        .spawn()
        .expect("node is required for this test");
    let mut line = String::new();
    let mut out = child.stdout.take().unwrap();
    let mut byte = [0u8; 1];
    while out.read(&mut byte).unwrap_or(0) == 1 && byte[0] != b'\n' {
        line.push(byte[0] as char);
    }
    (child, line.trim().parse().expect("node printed its port"))
}

/// Runs one GET over a oneloop TLS client connection; returns the response text or the error.
fn oneloop_tls_get(port: u16, client: ClientTls, name: &str) -> Result<String, String> {
    let mut lp = Loop::new().unwrap();
    let result: Arc<Mutex<Option<Result<String, String>>>> = Arc::new(Mutex::new(None));
    let options = TlsConnectOptions {
        config: client.config(),
        server_name: ServerName::try_from(name.to_owned()).unwrap(),
        handshake_timeout_ms: 5_000,
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let id = lp
        .tls_connect(addr, options, SocketOptions::default(), |lp, id| {
            let req = b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
            lp.tcp_write(id, req).unwrap();
        })
        .unwrap();
    let body = Arc::new(Mutex::new(Vec::new()));
    let b = Arc::clone(&body);
    lp.tcp_on_data(id, move |_lp, _id, data: &[u8]| {
        b.lock().unwrap().extend_from_slice(data)
    })
    .unwrap();
    let r = Arc::clone(&result);
    lp.tcp_on_error(id, move |_lp, _id: TcpId, e| {
        let tls = tls::tls_error(e).map(|t| t.to_string());
        *r.lock().unwrap() = Some(Err(tls.unwrap_or_else(|| e.to_string())));
    })
    .unwrap();
    let r = Arc::clone(&result);
    lp.tcp_on_end(id, move |_lp, _id| {
        let text = String::from_utf8_lossy(&body.lock().unwrap()).into_owned();
        *r.lock().unwrap() = Some(Ok(text));
    })
    .unwrap();
    lp.run().unwrap();
    let out = result.lock().unwrap().take();
    out.expect("the connection ended without a result")
}

#[test]
fn oneloop_tls_client_talks_to_node_https_and_refuses_bad_certificates() {
    let dir = temp_dir("client");
    let cert = make_cert(&["localhost"]);
    let (mut node, port) = node_https_server(&dir, &cert);
    let trusted = ClientTls::with_ca_pem(cert.cert_pem.as_bytes()).unwrap();
    let ok = oneloop_tls_get(port, trusted.clone(), "localhost");
    // Self-signed, not in the (Mozilla) roots.
    let untrusted = oneloop_tls_get(port, ClientTls::new(), "localhost");
    // Trusted, but for another host.
    let wrong_host = oneloop_tls_get(port, trusted, "example.com");
    // Only by explicit option.
    let insecure = oneloop_tls_get(
        port,
        ClientTls::danger_accept_invalid_certs(),
        "example.com",
    );
    let _ = node.kill();
    let _ = node.wait();
    let ok = ok.unwrap();
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(ok.ends_with("node says hi over TLSv1.3"), "{ok}");
    let untrusted = untrusted.unwrap_err();
    assert!(untrusted.contains("self-signed certificate"), "{untrusted}");
    let wrong_host = wrong_host.unwrap_err();
    assert!(wrong_host.contains("not valid for name"), "{wrong_host}");
    assert!(insecure.unwrap().ends_with("node says hi over TLSv1.3"));
}

#[test]
fn http_server_with_listen_tls_serves_the_same_handler() {
    let cert = make_cert(&["localhost"]);
    let tls = ServerTls::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lp = Loop::new().unwrap();
        let server = http::create_server(&mut lp, |_lp, _req, res| res.end("same handler"));
        let addr = server
            .listen_tls(&mut lp, "127.0.0.1:0", tls, |_lp, _| {})
            .unwrap();
        tx.send(addr).unwrap();
        lp.run().unwrap();
    });
    let addr: SocketAddr = rx.recv_timeout(IO_TIMEOUT).unwrap();
    let got = oneloop_tls_get(
        addr.port(),
        ClientTls::with_ca_pem(cert.cert_pem.as_bytes()).unwrap(),
        "localhost",
    )
    .unwrap();
    assert!(got.ends_with("same handler"), "{got}");
}

type Outcome = Result<(u16, String), String>;

/// One `http::request` to `url`; the status and body, or the error's text.
fn http_client_get(url: &str, tls: Option<ClientTls>) -> Outcome {
    let mut lp = Loop::new().unwrap();
    let out: Arc<Mutex<Option<Outcome>>> = Arc::new(Mutex::new(None));
    let o = Arc::clone(&out);
    let mut req = http::ClientRequest::new("GET", url)
        .unwrap()
        .timeout_ms(5_000);
    if let Some(tls) = tls {
        req = req.tls(tls);
    }
    http::request(&mut lp, req, move |_lp, res| {
        *o.lock().unwrap() = Some(
            res.map(|r| (r.status(), String::from_utf8_lossy(r.body()).into_owned()))
                .map_err(|e| e.to_string()),
        );
    })
    .unwrap();
    lp.run().unwrap();
    let got = out.lock().unwrap().take();
    got.expect("no response callback")
}

#[test]
fn http_client_fetches_https_urls_from_node_and_names_certificate_failures() {
    let dir = temp_dir("http-client");
    let cert = make_cert(&["localhost"]);
    let (mut node, port) = node_https_server(&dir, &cert);
    let url = format!("https://localhost:{port}/");
    let ca = ClientTls::with_ca_pem(cert.cert_pem.as_bytes()).unwrap();
    let ok = http_client_get(&url, Some(ca.clone()));
    let self_signed = http_client_get(&url, None); // Mozilla's roots by default
    let wrong_host = http_client_get(&format!("https://127.0.0.1:{port}/"), Some(ca));
    let _ = node.kill();
    let _ = node.wait();
    assert_eq!(ok, Ok((200, "node says hi over TLSv1.3".to_owned())));
    let self_signed = self_signed.unwrap_err();
    assert!(
        self_signed.contains("DEPTH_ZERO_SELF_SIGNED_CERT"),
        "{self_signed}"
    );
    let wrong_host = wrong_host.unwrap_err();
    assert!(wrong_host.contains("not valid for name"), "{wrong_host}");
}

#[test]
fn wss_goes_through_the_same_upgrade_hook_and_echoes() {
    let cert = make_cert(&["localhost"]);
    let dir = temp_dir("wss");
    let ca = write(&dir, "cert.pem", &cert.cert_pem);
    let tls = ServerTls::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())
        .unwrap()
        .build()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lp = Loop::new().unwrap();
        let server = oneloop::https::create_server(&mut lp, tls, |_lp, _req, res| res.end("no"));
        oneloop::ws::Endpoint::new(
            oneloop::ws::WsOptions::default(),
            oneloop::ws::echo_handler(),
        )
        .attach(&server, "/ws");
        let addr = server.listen(&mut lp, "127.0.0.1:0", |_lp, _| {}).unwrap();
        tx.send(addr).unwrap();
        lp.run().unwrap();
    });
    let addr: SocketAddr = rx.recv_timeout(IO_TIMEOUT).unwrap();
    // A minimal RFC 6455 client over Python's ssl: handshake, one masked text frame, read
    // the echo.
    let py = format!(
        "import ssl, socket, os\n\
ctx = ssl.create_default_context(cafile={ca:?})\n\
s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', {port})), server_hostname='localhost')\n\
s.sendall(b'GET /ws HTTP/1.1\\r\\nHost: localhost\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n'\n\
  b'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n')\n\
head = b''\n\
while b'\\r\\n\\r\\n' not in head:\n    head += s.recv(1)\n\
print(head.split(b'\\r\\n')[0].decode())\n\
payload = b'hello over wss'\n\
mask = os.urandom(4)\n\
s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))\n\
frame = b''\n\
while len(frame) < 2 + len(payload):\n    frame += s.recv(64)\n\
print(frame[2:].decode())\n",
        ca = ca.display().to_string(),
        port = addr.port()
    );
    let (out, err) = run(Command::new("python3").args(["-c", &py]), "python3");
    assert_eq!(
        out, "HTTP/1.1 101 Switching Protocols\nhello over wss\n",
        "{err}"
    );
}
