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
    /// A certificate outside its validity period (or one that does not parse to tell).
    #[error("{path}: certificate {index} {reason}")]
    Validity {
        /// The file.
        path: PathBuf,
        /// Zero-based position in the file.
        index: usize,
        /// Why: expired, not yet valid.
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

/// A client CA bundle: a CA bundle whose every certificate is a CA (`basicConstraints` with
/// `cA`, so a leaf is refused) that may sign certificates (`keyUsage` with `keyCertSign`, where
/// present), and is within its validity period now.
pub fn load_client_ca_bundle(path: &Path) -> Result<rustls::RootCertStore, PemError> {
    for (index, cert) in load_certs(path)?.iter().enumerate() {
        crate::tls::ca_usage::check_anchor(cert).map_err(|e| PemError::BadAnchor {
            path: path.to_owned(),
            index,
            reason: e.to_string(),
        })?;
        valid_now(cert, path, index)?;
    }
    load_ca_bundle(path)
}

/// `der` is within its validity period now.
fn valid_now(der: &[u8], path: &Path, index: usize) -> Result<(), PemError> {
    let invalid = |reason: String| PemError::Validity {
        path: path.to_owned(),
        index,
        reason,
    };
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| invalid(format!("does not parse: {e}")))?;
    let now = crate::clock::unix_now();
    let validity = cert.validity();
    if validity.not_after.timestamp() < now {
        return Err(invalid(format!("expired on {}", validity.not_after)));
    }
    if validity.not_before.timestamp() > now {
        return Err(invalid(format!(
            "is not valid before {}",
            validity.not_before
        )));
    }
    Ok(())
}

/// A certificate chain and its private key, checked to belong together, the leaf within its
/// validity period now.
pub fn load_cert_and_key(
    cert_path: &Path,
    key_path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), PemError> {
    let certs = load_certs(cert_path)?;
    // The leaf must be valid now: an expired or not-yet-valid certificate fails every handshake.
    if let Some(leaf) = certs.first() {
        valid_now(leaf, cert_path, 0)?;
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use dcrgate_certs::{Authority, SubjectSpec};

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_client_ca_bundle_holds_current_cas_only() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::new("TPP CA").unwrap();
        let good = write(dir.path(), "good.pem", &ca.cert_pem());
        assert!(load_client_ca_bundle(&good).is_ok());
        // A leaf certificate (no basicConstraints) is not a CA.
        let leaf = ca.issue_client(&SubjectSpec::common_name("tpp")).unwrap();
        let leaf = write(dir.path(), "leaf.pem", &leaf.cert_pem);
        let e = load_client_ca_bundle(&leaf).unwrap_err();
        assert!(matches!(e, PemError::BadAnchor { index: 0, .. }), "{e}");
        // An expired CA, second in the bundle.
        let expired = Authority::expired("old TPP CA").unwrap();
        let both = write(
            dir.path(),
            "both.pem",
            &format!("{}{}", ca.cert_pem(), expired.cert_pem()),
        );
        let e = load_client_ca_bundle(&both).unwrap_err();
        assert!(matches!(e, PemError::Validity { index: 1, .. }), "{e}");
        assert!(e.to_string().contains("expired"), "{e}");
    }

    #[test]
    fn an_expired_served_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::new("server CA").unwrap();
        let old = ca
            .issue_client_valid(
                &SubjectSpec::common_name("gateway"),
                time::Duration::days(-1),
            )
            .unwrap();
        let cert = write(dir.path(), "old.pem", &old.cert_pem);
        let key = write(dir.path(), "old.key", &old.key_pem);
        let e = load_cert_and_key(&cert, &key).unwrap_err();
        assert!(matches!(e, PemError::Validity { index: 0, .. }), "{e}");
        let current = ca.issue_server(&["localhost"]).unwrap();
        let cert = write(dir.path(), "new.pem", &current.cert_pem);
        let key = write(dir.path(), "new.key", &current.key_pem);
        assert!(load_cert_and_key(&cert, &key).is_ok());
    }
}
