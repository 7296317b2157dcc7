//! Loading certificates and keys from PEM files, with errors that say which file and why.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A PEM file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file holds no certificate.
    #[error("{0}: no PEM certificate found")]
    NoCertificate(PathBuf),
    /// The file holds no private key.
    #[error("{0}: no PEM private key found")]
    NoKey(PathBuf),
    /// A certificate in a CA bundle is not acceptable as a trust anchor.
    #[error("{path}: certificate {index} is not a usable trust anchor: {reason}")]
    BadAnchor {
        /// The file.
        path: PathBuf,
        /// Zero-based position in the file.
        index: usize,
        /// Why.
        reason: String,
    },
    /// The key does not belong to the certificate, or is of an unsupported kind.
    #[error("{cert}: certificate and key {key} do not form a usable pair: {reason}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why.
        reason: String,
    },
}

fn open(path: &Path) -> Result<BufReader<File>, PemError> {
    File::open(path)
        .map(BufReader::new)
        .map_err(|source| PemError::Io {
            path: path.to_owned(),
            source,
        })
}

/// Every certificate in a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = rustls_pemfile::certs(&mut open(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| PemError::Io {
            path: path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(PemError::NoCertificate(path.to_owned()));
    }
    Ok(certs)
}

/// A CA bundle as a root store; every certificate in it must be a valid trust anchor.
pub fn load_ca_bundle(path: &Path) -> Result<rustls::RootCertStore, PemError> {
    let mut store = rustls::RootCertStore::empty();
    for (index, cert) in load_certs(path)?.into_iter().enumerate() {
        store.add(cert).map_err(|e| PemError::BadAnchor {
            path: path.to_owned(),
            index,
            reason: e.to_string(),
        })?;
    }
    Ok(store)
}

/// A client CA bundle: a CA bundle whose every certificate may sign certificates
/// (`keyUsage` with `keyCertSign`, `basicConstraints` with `cA`, where present).
pub fn load_client_ca_bundle(path: &Path) -> Result<rustls::RootCertStore, PemError> {
    for (index, cert) in load_certs(path)?.iter().enumerate() {
        crate::tls::ca_usage::check_ca(cert).map_err(|e| PemError::BadAnchor {
            path: path.to_owned(),
            index,
            reason: e.to_string(),
        })?;
    }
    load_ca_bundle(path)
}

/// A certificate chain and its private key, checked to belong together.
pub fn load_cert_and_key(
    cert_path: &Path,
    key_path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PemError> {
    let certs = load_certs(cert_path)?;
    let key = rustls_pemfile::private_key(&mut open(key_path)?)
        .map_err(|source| PemError::Io {
            path: key_path.to_owned(),
            source,
        })?
        .ok_or_else(|| PemError::NoKey(key_path.to_owned()))?;
    let provider = rustls::crypto::ring::default_provider();
    let mismatch = |reason: String| PemError::Mismatch {
        cert: cert_path.to_owned(),
        key: key_path.to_owned(),
        reason,
    };
    let signing_key = provider
        .key_provider
        .load_private_key(key.clone_key())
        .map_err(|e| mismatch(e.to_string()))?;
    let certified = rustls::sign::CertifiedKey::new(certs.clone(), signing_key);
    certified
        .keys_match()
        .map_err(|e| mismatch(e.to_string()))?;
    Ok((certs, key))
}
