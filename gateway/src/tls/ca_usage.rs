//! What a CA certificate must say to issue client certificates: a `keyUsage` extension, where
//! present, with `keyCertSign` (RFC 5280 §4.2.1.3), and `basicConstraints`, where present, with
//! `cA` set. webpki checks `basicConstraints` on the path but not `keyUsage`, so the client
//! verifier applies this to every intermediate a client presents, and the client CA bundle is
//! checked with it when loaded.

use x509_parser::prelude::{FromDer, X509Certificate};

/// Why a certificate may not act as a CA.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaUsageError {
    /// Not parseable X.509.
    #[error("the certificate does not parse as X.509")]
    Unparseable,
    /// `keyUsage` without `keyCertSign`.
    #[error("its keyUsage lacks keyCertSign, so it may not sign certificates (RFC 5280 §4.2.1.3)")]
    NoKeyCertSign,
    /// `basicConstraints` absent (in a bundle of CAs) or with `cA` false.
    #[error("it is not a CA (no basicConstraints with cA)")]
    NotCa,
}

/// Check that the DER certificate `der` may sign certificates.
pub fn check_ca(der: &[u8]) -> Result<(), CaUsageError> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| CaUsageError::Unparseable)?;
    match cert.key_usage() {
        Ok(Some(ku)) if !ku.value.key_cert_sign() => return Err(CaUsageError::NoKeyCertSign),
        Ok(_) => {}
        Err(_) => return Err(CaUsageError::Unparseable),
    }
    match cert.basic_constraints() {
        Ok(Some(bc)) if !bc.value.ca => Err(CaUsageError::NotCa),
        Ok(_) => Ok(()),
        Err(_) => Err(CaUsageError::Unparseable),
    }
}

/// Check that the DER certificate `der` is a CA a client CA bundle may hold: [`check_ca`], and
/// `basicConstraints` present (every v3 CA certificate carries it, RFC 5280 §4.2.1.9; a leaf
/// does not).
pub fn check_anchor(der: &[u8]) -> Result<(), CaUsageError> {
    check_ca(der)?;
    let (_, cert) = X509Certificate::from_der(der).map_err(|_| CaUsageError::Unparseable)?;
    match cert.basic_constraints() {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(CaUsageError::NotCa),
        Err(_) => Err(CaUsageError::Unparseable),
    }
}

/// A rustls error for a client chain through a certificate that may not sign certificates.
#[derive(Debug, thiserror::Error)]
#[error("client certificate chain: intermediate {index} may not sign certificates: {reason}")]
pub struct IntermediateNotCa {
    /// Zero-based position among the intermediates.
    pub index: usize,
    /// Why.
    pub reason: CaUsageError,
}

/// Check every intermediate a client presented.
pub fn check_intermediates(
    intermediates: &[rustls::pki_types::CertificateDer<'_>],
) -> Result<(), rustls::Error> {
    for (index, der) in intermediates.iter().enumerate() {
        if let Err(reason) = check_ca(der) {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(std::sync::Arc::new(
                    IntermediateNotCa { index, reason },
                ))),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use dcrgate_certs::{Authority, SubjectSpec};

    use super::*;

    #[test]
    fn only_signing_cas_pass() {
        let root = Authority::new("root").unwrap();
        let good = root.intermediate("issuing", true).unwrap();
        let bad = root.intermediate("not signing", false).unwrap();
        let leaf = good.issue_client(&SubjectSpec::common_name("tpp")).unwrap();
        assert_eq!(check_ca(&root.cert_der()), Ok(()));
        assert_eq!(check_ca(&good.cert_der()), Ok(()));
        assert_eq!(check_ca(&bad.cert_der()), Err(CaUsageError::NoKeyCertSign));
        assert_eq!(check_ca(&leaf.cert_der), Err(CaUsageError::NoKeyCertSign));
        assert_eq!(
            check_ca(b"not a certificate"),
            Err(CaUsageError::Unparseable)
        );
        let chain = [
            rustls::pki_types::CertificateDer::from(good.cert_der()),
            rustls::pki_types::CertificateDer::from(bad.cert_der()),
        ];
        assert!(check_intermediates(&chain[..1]).is_ok());
        let e = check_intermediates(&chain).unwrap_err().to_string();
        assert!(e.contains("index: 1") && e.contains("NoKeyCertSign"), "{e}");
    }
}
