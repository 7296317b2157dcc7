//! Revocation of client certificates at the handshake, from the configured CRLs
//! (`[revocation]`), on rustls-webpki's CRL support.
//!
//! Every chain is verified with the CRLs under the strict policy: a revoked certificate, a
//! certificate whose issuer has no CRL (unknown status) and a CRL past its nextUpdate all fail.
//! In `require` mode that is the answer. In `prefer` mode an unknown status or a stale CRL is
//! then verified again without them (fail open), counted and logged; a revoked certificate is
//! refused in both. Each check is counted by result in `dcrgate_revocation_checks_total`
//! (`good`, `revoked`, `unknown`, `unavailable`: a stale CRL).

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};

use crate::config::{Revocation, RevocationMode, RevocationScope};
use crate::metrics::Metrics;

/// A revocation check's result, the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationResult {
    /// Not revoked, per a current CRL of its issuer (every checked certificate of the chain).
    Good,
    /// Revoked.
    Revoked,
    /// No CRL for its issuer.
    Unknown,
    /// The issuer's CRL is past its nextUpdate.
    Unavailable,
}

impl RevocationResult {
    /// Every result, for metric pre-registration.
    pub const ALL: [RevocationResult; 4] = [
        RevocationResult::Good,
        RevocationResult::Revoked,
        RevocationResult::Unknown,
        RevocationResult::Unavailable,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationResult::Good => "good",
            RevocationResult::Revoked => "revoked",
            RevocationResult::Unknown => "unknown",
            RevocationResult::Unavailable => "unavailable",
        }
    }
}

/// The client certificate verifier with the configured revocation policy.
pub struct RevocationVerifier {
    /// CRLs under the strict policy (or none when revocation is off).
    strict: Arc<dyn ClientCertVerifier>,
    /// `prefer` only: the same CRLs, unknown status and stale CRLs allowed.
    lenient: Option<Arc<dyn ClientCertVerifier>>,
    mode: RevocationMode,
    metrics: Option<Arc<Metrics>>,
}

impl RevocationVerifier {
    /// A verifier over `roots` with `revocation`'s mode and scope and these CRLs.
    pub fn build(
        roots: Arc<RootCertStore>,
        revocation: &Revocation,
        crls: Vec<CertificateRevocationListDer<'static>>,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Self, VerifierBuilderError> {
        let provider = || Arc::new(rustls::crypto::ring::default_provider());
        let base = || {
            let builder = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider());
            match revocation.mode {
                RevocationMode::Off => builder,
                RevocationMode::Prefer | RevocationMode::Require => {
                    let b = builder.with_crls(crls.clone());
                    match revocation.scope {
                        RevocationScope::Chain => b,
                        RevocationScope::Leaf => b.only_check_end_entity_revocation(),
                    }
                }
            }
        };
        let strict = match revocation.mode {
            RevocationMode::Off => base().build()?,
            _ => base().enforce_revocation_expiration().build()?,
        };
        let lenient = match revocation.mode {
            RevocationMode::Prefer => Some(base().allow_unknown_revocation_status().build()?),
            _ => None,
        };
        Ok(Self {
            strict,
            lenient,
            mode: revocation.mode,
            metrics,
        })
    }

    /// The revocation status of a chain under the strict policy (whatever the mode lets
    /// through); `Err` when the chain fails for another reason (untrusted issuer, expiry, ...).
    pub fn status(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<RevocationResult, rustls::Error> {
        match self
            .strict
            .verify_client_cert(end_entity, intermediates, now)
        {
            Ok(_) => Ok(RevocationResult::Good),
            Err(e) => revocation_failure(&e).ok_or(e),
        }
    }

    fn count(&self, result: RevocationResult) {
        if let Some(m) = &self.metrics {
            m.revocation_checks
                .with_label_values(&[result.as_str()])
                .inc();
        }
    }
}

/// What a refusal says about revocation, if anything.
fn revocation_failure(e: &rustls::Error) -> Option<RevocationResult> {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::Revoked) => {
            Some(RevocationResult::Revoked)
        }
        rustls::Error::InvalidCertificate(CertificateError::UnknownRevocationStatus) => {
            Some(RevocationResult::Unknown)
        }
        rustls::Error::InvalidCertificate(
            CertificateError::ExpiredRevocationList
            | CertificateError::ExpiredRevocationListContext { .. },
        ) => Some(RevocationResult::Unavailable),
        _ => None,
    }
}

impl ClientCertVerifier for RevocationVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.strict.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let strict = self
            .strict
            .verify_client_cert(end_entity, intermediates, now);
        if self.mode == RevocationMode::Off {
            return strict;
        }
        let e = match strict {
            Ok(verified) => {
                self.count(RevocationResult::Good);
                return Ok(verified);
            }
            Err(e) => e,
        };
        let Some(result) = revocation_failure(&e) else {
            return Err(e);
        };
        self.count(result);
        match (&self.lenient, result) {
            (Some(lenient), RevocationResult::Unknown | RevocationResult::Unavailable) => {
                tracing::warn!(
                    revocation = result.as_str(),
                    "client certificate revocation status not known; accepted (revocation.mode = prefer)"
                );
                lenient.verify_client_cert(end_entity, intermediates, now)
            }
            _ => {
                tracing::info!(
                    revocation = result.as_str(),
                    "client certificate refused at the handshake"
                );
                Err(e)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.strict.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.strict.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.strict.supported_verify_schemes()
    }
}

impl fmt::Debug for RevocationVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationVerifier")
            .field("mode", &self.mode)
            .field("strict", &self.strict)
            .finish_non_exhaustive()
    }
}
