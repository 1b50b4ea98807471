//! The client side: which servers to trust.

use std::path::Path;
use std::sync::Arc;

use oneloop_runtime::tls::rustls;
use oneloop_runtime::tls::SelfSignedCertificate;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};

use super::pem::{certificates, read_file, TlsConfigError};

/// A TLS client configuration (Node's `tls.connect` / `https.request` options `ca` and
/// `rejectUnauthorized`).
///
/// # Roots
/// By default the client trusts Mozilla's root list as compiled into `webpki-roots`: the
/// same list Node bundles as its default store (`tls.rootCertificates`), so a server Node
/// trusts, oneloop trusts, on any machine, with no dependence on the system's CA files.
/// [`ClientTls::with_ca_pem`] replaces it with your CAs (Node's `ca` option replaces the
/// defaults too).
///
/// # Verification
/// The certificate chain, its validity dates and the host name are always checked, unless
/// [`ClientTls::danger_accept_invalid_certs`] says otherwise (Node's
/// `rejectUnauthorized: false`): there is no other way to turn it off.
#[derive(Clone, Debug)]
pub struct ClientTls {
    config: Arc<rustls::ClientConfig>,
}

impl ClientTls {
    /// Trusts Mozilla's roots (as Node's default store); ALPN `http/1.1`; TLS 1.2 and 1.3.
    pub fn new() -> ClientTls {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        ClientTls::with_roots(roots)
    }

    /// Trusts only the CA certificates in `ca_pem` (Node's `ca` option).
    ///
    /// # Errors
    /// Malformed PEM, no certificate, or a certificate rustls cannot use as a root.
    pub fn with_ca_pem(ca_pem: &[u8]) -> Result<ClientTls, TlsConfigError> {
        ClientTls::ca_from(ca_pem, "CA PEM")
    }

    /// As [`ClientTls::with_ca_pem`], reading the file.
    ///
    /// # Errors
    /// As [`ClientTls::with_ca_pem`], plus an unreadable file.
    pub fn with_ca_file(path: impl AsRef<Path>) -> Result<ClientTls, TlsConfigError> {
        let path = path.as_ref();
        ClientTls::ca_from(&read_file(path)?, &path.display().to_string())
    }

    fn ca_from(pem: &[u8], source: &str) -> Result<ClientTls, TlsConfigError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates(pem, source)? {
            roots.add(cert).map_err(|e| TlsConfigError::BadRoot {
                source: source.to_owned(),
                reason: e.to_string(),
            })?;
        }
        Ok(ClientTls::with_roots(roots))
    }

    fn with_roots(roots: rustls::RootCertStore) -> ClientTls {
        let provider = super::provider();
        let verifier = NamesSelfSigned {
            inner: WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .expect("a root store with the provider's algorithms"),
            provider: provider.clone(),
        };
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports TLS 1.2 and 1.3")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        ClientTls {
            config: Arc::new(config),
        }
    }

    /// Accepts any certificate: expired, self-signed, for another host (Node's
    /// `rejectUnauthorized: false`). The connection is still encrypted, but anyone on the
    /// path can read it. For tests and development only.
    pub fn danger_accept_invalid_certs() -> ClientTls {
        let provider = super::provider();
        let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .expect("aws-lc-rs supports TLS 1.2 and 1.3")
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate { provider }))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        ClientTls {
            config: Arc::new(config),
        }
    }

    /// The rustls configuration.
    pub fn config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.config)
    }
}

impl Default for ClientTls {
    fn default() -> ClientTls {
        ClientTls::new()
    }
}

/// rustls' standard verification (webpki: chain to the roots, dates, host name), which tells
/// a self-signed certificate apart from one whose issuer is merely unknown, as Node does
/// (`DEPTH_ZERO_SELF_SIGNED_CERT`): where webpki says `UnknownIssuer` for a certificate sent
/// alone, the certificate is checked against itself as the only root, and if its own key
/// signs it the error becomes [`SelfSignedCertificate`]. Nothing is accepted that webpki
/// refuses; only the reason changes.
#[derive(Debug)]
struct NamesSelfSigned {
    inner: Arc<WebPkiServerVerifier>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl NamesSelfSigned {
    /// Whether `cert` chains to itself: webpki finds its issuer when it is the only root.
    fn is_self_signed(
        &self,
        cert: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> bool {
        let mut roots = rustls::RootCertStore::empty();
        if roots.add(cert.clone().into_owned()).is_err() {
            return false;
        }
        let Ok(alone) =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
        else {
            return false;
        };
        !matches!(
            alone.verify_server_cert(cert, &[], server_name, &[], now),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            ))
        )
    }
}

impl ServerCertVerifier for NamesSelfSigned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer))
                if intermediates.is_empty()
                    && self.is_self_signed(end_entity, server_name, now) =>
            {
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(SelfSignedCertificate)),
                )))
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `rejectUnauthorized: false`: the certificate is not checked; the handshake signatures
/// still are (so the key exchange is bound to the certificate presented).
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
