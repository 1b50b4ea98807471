//! The server side: certificates by SNI, ALPN, versions, resumption, handshake timeout.

use std::path::Path;
use std::sync::Arc;

use oneloop_runtime::tls::{rustls, TlsServerOptions, DEFAULT_HANDSHAKE_TIMEOUT_MS};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::pem::{certified_key, read_file, TlsConfigError};

/// A TLS server configuration (Node's `tls.createServer` options: `cert`, `key`, `SNICallback`
/// via [`ServerTls::add_sni`], `ALPNProtocols`, `handshakeTimeout`).
///
/// ```no_run
/// use oneloop::tls::ServerTls;
/// let tls = ServerTls::from_pem_files("cert.pem", "key.pem")?
///     .add_sni_files("api.example.com", "api-cert.pem", "api-key.pem")?;
/// # Ok::<(), oneloop::tls::TlsConfigError>(())
/// ```
///
/// # Defaults (Node's)
/// TLS 1.2 and 1.3; ALPN `http/1.1`; session tickets (TLS 1.3: two per handshake; TLS 1.2:
/// stateless tickets) and a 256-entry session cache for session-id resumption; handshake
/// timeout 120 s.
#[derive(Clone, Debug)]
pub struct ServerTls {
    default: Option<Arc<CertifiedKey>>,
    by_name: Vec<(String, Arc<CertifiedKey>)>,
    alpn: Vec<Vec<u8>>,
    handshake_timeout_ms: u64,
    tls12: bool,
}

impl ServerTls {
    /// The default certificate (chain, leaf first) and its key, from PEM text. The key must
    /// belong to the certificate: a mismatch is [`TlsConfigError::KeyMismatch`] here, not a
    /// failed handshake later.
    ///
    /// # Errors
    /// Malformed PEM, no certificate or key, an unsupported key type, a key mismatch.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<ServerTls, TlsConfigError> {
        let key = certified_key(cert_pem, "certificate PEM", key_pem, "key PEM")?;
        Ok(ServerTls::with_default(Some(key)))
    }

    /// As [`ServerTls::from_pem`], reading the two files.
    ///
    /// # Errors
    /// As [`ServerTls::from_pem`], plus unreadable files; errors name the file.
    pub fn from_pem_files(
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<ServerTls, TlsConfigError> {
        let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
        let key = certified_key(
            &read_file(cert_path)?,
            &cert_path.display().to_string(),
            &read_file(key_path)?,
            &key_path.display().to_string(),
        )?;
        Ok(ServerTls::with_default(Some(key)))
    }

    /// No default certificate: only SNI names added with [`ServerTls::add_sni`] are served
    /// (a client asking for another name, or none, fails its handshake).
    pub fn sni_only() -> ServerTls {
        ServerTls::with_default(None)
    }

    fn with_default(default: Option<Arc<CertifiedKey>>) -> ServerTls {
        ServerTls {
            default,
            by_name: Vec::new(),
            alpn: vec![b"http/1.1".to_vec()],
            handshake_timeout_ms: DEFAULT_HANDSHAKE_TIMEOUT_MS,
            tls12: true,
        }
    }

    /// Serves this certificate to clients that ask for `name` by SNI (Node's
    /// `server.addContext(hostname, context)`). `name` is a DNS name, matched without regard
    /// to case, or a wildcard `*.example.com` matching one label. Exact names win over
    /// wildcards; otherwise the first added match wins; no match gets the default.
    ///
    /// # Errors
    /// As [`ServerTls::from_pem`].
    pub fn add_sni(
        mut self,
        name: &str,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<ServerTls, TlsConfigError> {
        let source = format!("the certificate PEM for {name}");
        let key = certified_key(
            cert_pem,
            &source,
            key_pem,
            &format!("the key PEM for {name}"),
        )?;
        self.by_name.push((name.to_ascii_lowercase(), key));
        Ok(self)
    }

    /// As [`ServerTls::add_sni`], reading the two files.
    ///
    /// # Errors
    /// As [`ServerTls::from_pem_files`].
    pub fn add_sni_files(
        mut self,
        name: &str,
        cert_path: impl AsRef<Path>,
        key_path: impl AsRef<Path>,
    ) -> Result<ServerTls, TlsConfigError> {
        let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
        let key = certified_key(
            &read_file(cert_path)?,
            &cert_path.display().to_string(),
            &read_file(key_path)?,
            &key_path.display().to_string(),
        )?;
        self.by_name.push((name.to_ascii_lowercase(), key));
        Ok(self)
    }

    /// The ALPN protocols offered, in preference order (default `["http/1.1"]`; empty: no
    /// ALPN). A client that offers ALPN but none of these fails its handshake
    /// (`no_application_protocol`), as Node's server does.
    pub fn alpn(mut self, protocols: &[&[u8]]) -> ServerTls {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// The handshake timeout (Node's `handshakeTimeout`, 120 s); 0 disables it.
    pub fn handshake_timeout_ms(mut self, ms: u64) -> ServerTls {
        self.handshake_timeout_ms = ms;
        self
    }

    /// TLS 1.3 only (Node's `minVersion: 'TLSv1.3'`). Default: 1.2 and 1.3.
    pub fn tls13_only(mut self) -> ServerTls {
        self.tls12 = false;
        self
    }

    /// The rustls configuration and the runtime options a listening socket takes.
    ///
    /// # Errors
    /// [`TlsConfigError::Empty`] without any certificate; rustls' refusal otherwise.
    pub fn build(&self) -> Result<TlsServerOptions, TlsConfigError> {
        if self.default.is_none() && self.by_name.is_empty() {
            return Err(TlsConfigError::Empty);
        }
        let versions: &[&'static rustls::SupportedProtocolVersion] = if self.tls12 {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13]
        };
        let resolver = SniResolver {
            default: self.default.clone(),
            by_name: self.by_name.clone(),
        };
        let mut config = rustls::ServerConfig::builder_with_provider(super::provider())
            .with_protocol_versions(versions)
            .map_err(TlsConfigError::Rustls)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = self.alpn.clone();
        config.ticketer =
            rustls::crypto::aws_lc_rs::Ticketer::new().map_err(TlsConfigError::Rustls)?;
        let mut options = TlsServerOptions::new(Arc::new(config));
        options.handshake_timeout_ms = self.handshake_timeout_ms;
        Ok(options)
    }
}

/// Chooses the certificate by the client's SNI name.
#[derive(Debug)]
struct SniResolver {
    default: Option<Arc<CertifiedKey>>,
    by_name: Vec<(String, Arc<CertifiedKey>)>,
}

impl SniResolver {
    fn lookup(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        let name = name.to_ascii_lowercase();
        if let Some((_, key)) = self.by_name.iter().find(|(n, _)| *n == name) {
            return Some(key);
        }
        let parent = name.split_once('.').map(|(_, rest)| rest)?;
        self.by_name
            .iter()
            .find(|(n, _)| n.strip_prefix("*.") == Some(parent))
            .map(|(_, key)| key)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        hello
            .server_name()
            .and_then(|name| self.lookup(name))
            .or(self.default.as_ref())
            .cloned()
    }
}
