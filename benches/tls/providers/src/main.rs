//! Server CPU per TLS 1.3 handshake with rustls, aws-lc-rs against ring, in memory (no
//! sockets): a client and a server connection exchange bytes through Vecs; only the time
//! spent in the server's calls is counted. Key exchange: X25519 for both (ring has no
//! ML-KEM), and aws-lc-rs' default (X25519MLKEM768 first). Full and resumed handshakes.
//!
//!   cargo run --release -- CERT.pem KEY.pem [N]
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, ServerConfig, ServerConnection, SignatureScheme};

#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(&self, _: &CertificateDer<'_>, _: &[CertificateDer<'_>], _: &ServerName<'_>, _: &[u8], _: UnixTime) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(&self, m: &[u8], c: &CertificateDer<'_>, d: &DigitallySignedStruct) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Moves everything `from` wants to send into `to`; returns the time spent in the server.
fn pump(client: &mut ClientConnection, server: &mut ServerConnection) -> Duration {
    let mut in_server = Duration::ZERO;
    loop {
        let mut buf = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        let mut progressed = !buf.is_empty();
        if !buf.is_empty() {
            let t = Instant::now();
            let mut rd = &buf[..];
            while !rd.is_empty() {
                server.read_tls(&mut rd).unwrap();
            }
            server.process_new_packets().unwrap();
            in_server += t.elapsed();
        }
        let mut out = Vec::new();
        let t = Instant::now();
        while server.wants_write() {
            server.write_tls(&mut out).unwrap();
        }
        in_server += t.elapsed();
        if !out.is_empty() {
            progressed = true;
            let mut rd = &out[..];
            while !rd.is_empty() {
                client.read_tls(&mut rd).unwrap();
            }
            client.process_new_packets().unwrap();
        }
        if !progressed && !client.is_handshaking() && !server.is_handshaking() {
            return in_server;
        }
    }
}

fn run(name: &str, provider: CryptoProvider, certs: &[CertificateDer<'static>], key: &PrivateKeyDer<'static>, n: usize) {
    let provider = Arc::new(provider);
    let server = Arc::new(
        ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13]).unwrap()
            .with_no_client_auth()
            .with_single_cert(certs.to_vec(), key.clone_key()).unwrap(),
    );
    for resume in [false, true] {
        let mut cc = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13]).unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider.clone())))
            .with_no_client_auth();
        if !resume {
            cc.resumption = rustls::client::Resumption::disabled();
        }
        let cc = Arc::new(cc);
        let mut total = Duration::ZERO;
        let mut resumed = 0;
        for i in 0..n + 50 {
            let mut c = ClientConnection::new(cc.clone(), ServerName::try_from("localhost").unwrap()).unwrap();
            let mut s = ServerConnection::new(server.clone()).unwrap();
            let t = pump(&mut c, &mut s);
            if i >= 50 {
                total += t;
                resumed += usize::from(s.handshake_kind() == Some(rustls::HandshakeKind::Resumed));
            }
        }
        println!(
            "{name:34} {:8} server µs/handshake {:7.1}  ({} of {n} resumed)",
            if resume { "resumed" } else { "full" },
            total.as_secs_f64() * 1e6 / n as f64,
            resumed
        );
    }
}

#[allow(deprecated)] // ring::default_provider: "no support for post-quantum algorithms", which is the point
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let certs: Vec<_> = CertificateDer::pem_file_iter(&args[1]).unwrap().map(|c| c.unwrap()).collect();
    let key = PrivateKeyDer::from_pem_file(&args[2]).unwrap();
    let n: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2000);
    let only_x25519 = |mut p: CryptoProvider| {
        p.kx_groups.retain(|g| g.name() == rustls::NamedGroup::X25519);
        p
    };
    for _round in 0..3 {
        run("aws-lc-rs, X25519MLKEM768 (default)", rustls::crypto::aws_lc_rs::default_provider(), &certs, &key, n);
        run("aws-lc-rs, X25519", only_x25519(rustls::crypto::aws_lc_rs::default_provider()), &certs, &key, n);
        run("ring, X25519", only_x25519(rustls::crypto::ring::default_provider()), &certs, &key, n);
    }
}
