//! The HTTPS client's certificate errors, side by side with Node's: an expired certificate,
//! a self-signed one and one for another host, each served by a oneloop HTTPS server on a
//! free loopback port, fetched by `http::request` and by Node's `https.get` with the same
//! trust settings. Each must fail with a clear message and the `err.code` Node gives.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::Duration;

use oneloop::http::{self, ClientError};
use oneloop::runtime::Loop;
use oneloop::tls::{ClientTls, ServerTls};

struct Cert {
    cert_pem: String,
    key_pem: String,
}

/// A self-signed certificate for `localhost` only; `expired`: valid 2020-2021 only.
fn make_cert(expired: bool) -> Cert {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("params");
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let cert = params.self_signed(&key).expect("self-signed");
    Cert {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// A oneloop HTTPS server with `cert`, on its own thread, answering "ok".
fn https_server(cert: &Cert) -> SocketAddr {
    let tls = ServerTls::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes())
        .expect("pem")
        .build()
        .expect("tls config");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lp = Loop::new().unwrap();
        let server = oneloop::https::create_server(&mut lp, tls, |_lp, _req, res| res.end("ok"));
        let addr = server.listen(&mut lp, "127.0.0.1:0", |_lp, _| {}).unwrap();
        tx.send(addr).unwrap();
        lp.run().unwrap();
    });
    rx.recv_timeout(Duration::from_secs(10)).unwrap()
}

/// One `http::request`; the error it failed with (it must fail).
fn oneloop_get(url: &str, ca: Option<&str>) -> ClientError {
    let mut lp = Loop::new().unwrap();
    let out: Arc<Mutex<Option<Result<u16, ClientError>>>> = Arc::new(Mutex::new(None));
    let o = Arc::clone(&out);
    let mut req = http::ClientRequest::new("GET", url)
        .unwrap()
        .timeout_ms(5_000);
    if let Some(ca) = ca {
        req = req.tls(ClientTls::with_ca_pem(ca.as_bytes()).unwrap());
    }
    http::request(&mut lp, req, move |_lp, res| {
        *o.lock().unwrap() = Some(res.map(|r| r.status()));
    })
    .unwrap();
    lp.run().unwrap();
    let got = out.lock().unwrap().take().expect("no response callback");
    match got {
        Ok(status) => panic!("{url} answered {status}: the certificate should be refused"),
        Err(e) => e,
    }
}

/// Node's `https.get(url, { ca })`: the error's code, or "ok" if it succeeded.
fn node_get(url: &str, ca: Option<&PathBuf>) -> String {
    let ca = match ca {
        Some(p) => format!(
            "{{ ca: require('fs').readFileSync({:?}) }}",
            p.display().to_string()
        ),
        None => "{}".to_owned(),
    };
    let js = format!(
        "require('https').get({url:?}, {ca}, (res) => {{ console.log('ok'); res.resume(); }})\n\
           .on('error', (e) => console.log(e.code));"
    );
    let out = Command::new("node")
        .args(["-e", &js])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("node is required for this test and could not run: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn connect_code(e: &ClientError) -> Option<&'static str> {
    match e {
        ClientError::Connect { code, .. } => *code,
        other => panic!("expected a connect error, got {other:?}"),
    }
}

#[test]
fn expired_self_signed_and_wrong_host_certificates_fail_with_nodes_codes() {
    let dir = std::env::temp_dir().join(format!("oneloop-tls-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let expired = make_cert(true);
    let valid = make_cert(false);
    let expired_ca = dir.join("expired.pem");
    let valid_ca = dir.join("valid.pem");
    std::fs::write(&expired_ca, &expired.cert_pem).unwrap();
    std::fs::write(&valid_ca, &valid.cert_pem).unwrap();
    let expired_port = https_server(&expired).port();
    let valid_port = https_server(&valid).port();

    // Trusted (its own CA) but out of date.
    let url = format!("https://localhost:{expired_port}/");
    let e = oneloop_get(&url, Some(&expired.cert_pem));
    let node = node_get(&url, Some(&expired_ca));
    assert_eq!(node, "CERT_HAS_EXPIRED");
    assert_eq!(connect_code(&e), Some("CERT_HAS_EXPIRED"), "{e}");
    assert!(e.to_string().contains("certificate expired"), "{e}");

    // Valid, but self-signed and not trusted (Mozilla's roots only).
    let url = format!("https://localhost:{valid_port}/");
    let e = oneloop_get(&url, None);
    let node = node_get(&url, None);
    assert_eq!(node, "DEPTH_ZERO_SELF_SIGNED_CERT");
    assert_eq!(connect_code(&e), Some("DEPTH_ZERO_SELF_SIGNED_CERT"), "{e}");
    assert!(e.to_string().contains("self-signed certificate"), "{e}");

    // Trusted, but the URL names a host the certificate is not for.
    let url = format!("https://127.0.0.1:{valid_port}/");
    let e = oneloop_get(&url, Some(&valid.cert_pem));
    let node = node_get(&url, Some(&valid_ca));
    assert_eq!(node, "ERR_TLS_CERT_ALTNAME_INVALID");
    assert_eq!(
        connect_code(&e),
        Some("ERR_TLS_CERT_ALTNAME_INVALID"),
        "{e}"
    );
    assert!(e.to_string().contains("not valid for name"), "{e}");

    // The same trust settings succeed on a valid URL: the failures are the certificates'.
    let mut lp = Loop::new().unwrap();
    let ok = Arc::new(Mutex::new(None));
    let o = Arc::clone(&ok);
    let req = http::ClientRequest::new("GET", &format!("https://localhost:{valid_port}/"))
        .unwrap()
        .tls(ClientTls::with_ca_pem(valid.cert_pem.as_bytes()).unwrap());
    http::request(&mut lp, req, move |_lp, res| {
        *o.lock().unwrap() = Some(res.map(|r| r.status()).map_err(|e| e.to_string()));
    })
    .unwrap();
    lp.run().unwrap();
    assert_eq!(ok.lock().unwrap().take(), Some(Ok(200)));
    let _ = std::fs::remove_dir_all(&dir);
}
