//! Certificate revocation lists for client certificates: each configured file read (PEM
//! `X509 CRL` or DER), parsed, and described (issuer, thisUpdate, nextUpdate) for the metrics
//! and `dcrgate check`. The signature of a CRL is verified by webpki against the certificate
//! that issued it, when a chain it covers is verified; a CRL no certificate of a chain chains to
//! is never consulted.

use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateRevocationListDer;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use crate::config::CrlFile;

/// Why a CRL file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CrlError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A PEM file without an `X509 CRL` block, or one that does not decode.
    #[error("{path}: no PEM X509 CRL block ({reason})")]
    Pem {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Not a DER certificate revocation list.
    #[error("{path}: not an X.509 certificate revocation list: {reason}")]
    NotCrl {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        reason: String,
    },
}

/// One loaded CRL.
#[derive(Debug, Clone)]
pub struct LoadedCrl {
    /// The configured issuer name (the metric label).
    pub issuer: String,
    /// The file it was read from.
    pub path: PathBuf,
    /// The issuer's DN as the CRL names it (RFC 4514).
    pub issuer_dn: String,
    /// thisUpdate, seconds since the epoch.
    pub this_update: i64,
    /// nextUpdate, seconds since the epoch (a CRL may omit it).
    pub next_update: Option<i64>,
    /// The DER.
    pub der: CertificateRevocationListDer<'static>,
}

/// Read and parse every configured CRL file; a CRL fetched from a `url` whose file does not
/// exist yet is left out (its issuer's status is unknown until the first fetch).
pub fn load_all(files: &[CrlFile]) -> Result<Vec<LoadedCrl>, CrlError> {
    files
        .iter()
        .filter(|f| f.url.is_none() || f.path.exists())
        .map(load)
        .collect()
}

/// Read and parse one CRL file.
pub fn load(file: &CrlFile) -> Result<LoadedCrl, CrlError> {
    let bytes = std::fs::read(&file.path).map_err(|source| CrlError::Read {
        path: file.path.clone(),
        source,
    })?;
    parse(file, &bytes)
}

/// Parse `bytes` (PEM or DER) as the CRL of `file`.
pub fn parse(file: &CrlFile, bytes: &[u8]) -> Result<LoadedCrl, CrlError> {
    let der = der_of(bytes, &file.path)?;
    let (rest, crl) = CertificateRevocationList::from_der(&der).map_err(|e| CrlError::NotCrl {
        path: file.path.clone(),
        reason: e.to_string(),
    })?;
    if !rest.is_empty() {
        return Err(CrlError::NotCrl {
            path: file.path.clone(),
            reason: format!("{} bytes after the list", rest.len()),
        });
    }
    let loaded = LoadedCrl {
        issuer: file.issuer.clone(),
        path: file.path.clone(),
        issuer_dn: crl.issuer().to_string(),
        this_update: crl.last_update().timestamp(),
        next_update: crl.next_update().map(|t| t.timestamp()),
        der: CertificateRevocationListDer::from(der.clone()),
    };
    Ok(loaded)
}

/// The DER of a PEM `X509 CRL` block, or the bytes themselves.
fn der_of(bytes: &[u8], path: &Path) -> Result<Vec<u8>, CrlError> {
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Ok(bytes.to_vec());
    }
    match rustls_pemfile::crls(&mut &bytes[..]).next() {
        Some(Ok(der)) => Ok(der.as_ref().to_vec()),
        Some(Err(e)) => Err(CrlError::Pem {
            path: path.to_owned(),
            reason: e.to_string(),
        }),
        None => Err(CrlError::Pem {
            path: path.to_owned(),
            reason: "none found".into(),
        }),
    }
}
