//! Certificates and keys from PEM, with errors that say which file and what is wrong.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use oneloop_runtime::tls::rustls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;

/// Why a TLS configuration could not be built. Every variant names the input at fault.
#[derive(Debug)]
pub enum TlsConfigError {
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        error: std::io::Error,
    },
    /// No `CERTIFICATE` block in the certificate PEM.
    NoCertificate {
        /// Where the PEM came from (a path, or `"certificate PEM"`).
        source: String,
    },
    /// No private key block (`PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`) in the
    /// key PEM.
    NoPrivateKey {
        /// Where the PEM came from.
        source: String,
    },
    /// The PEM text is malformed (bad base64, an unterminated block).
    BadPem {
        /// Where the PEM came from.
        source: String,
        /// What the parser said.
        reason: String,
    },
    /// The key is not one rustls can sign with (RSA, ECDSA P-256/P-384, Ed25519 are).
    UnsupportedKey {
        /// Where the key came from.
        source: String,
        /// What rustls said.
        reason: rustls::Error,
    },
    /// The private key does not belong to the certificate (found at start, not at the first
    /// handshake).
    KeyMismatch {
        /// The certificate's source.
        cert: String,
        /// The key's source.
        key: String,
    },
    /// The configuration has no certificate at all (no default, no SNI entry).
    Empty,
    /// rustls refused the configuration.
    Rustls(rustls::Error),
    /// A root certificate was rejected (not a valid X.509 CA certificate).
    BadRoot {
        /// Where it came from.
        source: String,
        /// What rustls said.
        reason: String,
    },
}

impl fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsConfigError::Read { path, error } => {
                write!(f, "tls: cannot read {}: {error}", path.display())
            }
            TlsConfigError::NoCertificate { source } => {
                write!(f, "tls: no CERTIFICATE block in {source}")
            }
            TlsConfigError::NoPrivateKey { source } => write!(
                f,
                "tls: no private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block) in {source}"
            ),
            TlsConfigError::BadPem { source, reason } => {
                write!(f, "tls: malformed PEM in {source}: {reason}")
            }
            TlsConfigError::UnsupportedKey { source, reason } => {
                write!(f, "tls: unsupported private key in {source}: {reason}")
            }
            TlsConfigError::KeyMismatch { cert, key } => write!(
                f,
                "tls: the private key in {key} does not match the certificate in {cert}"
            ),
            TlsConfigError::Empty => f.write_str("tls: no certificate configured"),
            TlsConfigError::Rustls(e) => write!(f, "tls: {e}"),
            TlsConfigError::BadRoot { source, reason } => {
                write!(f, "tls: bad CA certificate in {source}: {reason}")
            }
        }
    }
}

impl std::error::Error for TlsConfigError {}

impl From<TlsConfigError> for std::io::Error {
    fn from(e: TlsConfigError) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e)
    }
}

pub(super) fn read_file(path: &Path) -> Result<Vec<u8>, TlsConfigError> {
    std::fs::read(path).map_err(|error| TlsConfigError::Read {
        path: path.to_path_buf(),
        error,
    })
}

/// Every `CERTIFICATE` block, in order (leaf first, as PEM chains are written).
pub(super) fn certificates(
    pem: &[u8],
    source: &str,
) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsConfigError::BadPem {
            source: source.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate {
            source: source.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key block (PKCS#8, PKCS#1 or SEC1).
pub(super) fn private_key(
    pem: &[u8],
    source: &str,
) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsConfigError::NoPrivateKey {
            source: source.to_owned(),
        },
        e => TlsConfigError::BadPem {
            source: source.to_owned(),
            reason: e.to_string(),
        },
    })
}

/// A certificate chain and its key, checked to belong together.
pub(super) fn certified_key(
    cert_pem: &[u8],
    cert_source: &str,
    key_pem: &[u8],
    key_source: &str,
) -> Result<Arc<CertifiedKey>, TlsConfigError> {
    let chain = certificates(cert_pem, cert_source)?;
    let key = private_key(key_pem, key_source)?;
    let provider = super::provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|reason| TlsConfigError::UnsupportedKey {
            source: key_source.to_owned(),
            reason,
        })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(Arc::new(certified)),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(TlsConfigError::KeyMismatch {
                cert: cert_source.to_owned(),
                key: key_source.to_owned(),
            })
        }
        // The key type cannot report its public half: nothing to compare (rustls' own rule).
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(Arc::new(certified))
        }
        Err(e) => Err(TlsConfigError::BadPem {
            source: cert_source.to_owned(),
            reason: e.to_string(),
        }),
    }
}
