//! Revocation of client certificates at the handshake, from the configured CRLs
//! (`[revocation]`).
//!
//! The chain is verified by rustls-webpki against the client CA bundle; then each certificate
//! the scope covers is looked up in the [`CrlIndex`]: a revoked certificate, a certificate
//! whose issuer has no CRL (unknown status) and a CRL past its nextUpdate all fail in `require`
//! mode. In `prefer` mode only a revoked certificate fails; an unknown status or a stale CRL is
//! counted and logged (fail open). Each check is counted by result in `dcrgate_revocation_checks_total`
//! (`good`, `revoked`, `unknown`, `unavailable`: a stale CRL).

use std::fmt;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{VerifierBuilderError, WebPkiClientVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};

use crate::config::{Revocation, RevocationMode, RevocationScope};
use crate::metrics::Metrics;
use crate::tls::crl::{CrlError, LoadedCrl};
use crate::tls::crl_index::CrlIndex;
pub use crate::tls::crl_index::RevocationResult;

/// The client certificate verifier with the configured revocation policy.
pub struct RevocationVerifier {
    /// Chain verification against the client CA bundle.
    chain: Arc<dyn ClientCertVerifier>,
    /// The CRLs (none when revocation is off).
    index: CrlIndex,
    mode: RevocationMode,
    scope: RevocationScope,
    metrics: Option<Arc<Metrics>>,
}

impl RevocationVerifier {
    /// A verifier over `roots` (the client CA bundle; `cas` its certificates, DER) with
    /// `revocation`'s mode and scope and these CRLs.
    pub fn build(
        roots: Arc<RootCertStore>,
        cas: &[Vec<u8>],
        revocation: &Revocation,
        crls: &[LoadedCrl],
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Self, RevocationBuildError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = WebPkiClientVerifier::builder_with_provider(roots, provider).build()?;
        if let Some(m) = &metrics {
            // Every result is exported from the start, at 0, so alerts see the series.
            for r in RevocationResult::ALL {
                m.revocation_checks
                    .with_label_values(&[r.as_str()])
                    .inc_by(0);
            }
        }
        let crls = if revocation.mode == RevocationMode::Off {
            &[]
        } else {
            crls
        };
        Ok(Self {
            chain,
            index: CrlIndex::build(crls, cas)?,
            mode: revocation.mode,
            scope: revocation.scope,
            metrics,
        })
    }

    /// The revocation status of a chain whose certificates verified (at `now`).
    fn lookup(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> RevocationResult {
        let chain: Vec<&[u8]> = std::iter::once(end_entity.as_ref())
            .chain(intermediates.iter().map(|c| c.as_ref()))
            .collect();
        let secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        self.index
            .status(&chain, self.scope == RevocationScope::Chain, secs)
    }

    /// The revocation status of a chain under the strict policy (whatever the mode lets
    /// through); `Err` when the chain fails for another reason (untrusted issuer, expiry, ...).
    pub fn status(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<RevocationResult, rustls::Error> {
        self.chain
            .verify_client_cert(end_entity, intermediates, now)?;
        Ok(self.lookup(end_entity, intermediates, now))
    }

    fn count(&self, result: RevocationResult) {
        if let Some(m) = &self.metrics {
            m.revocation_checks
                .with_label_values(&[result.as_str()])
                .inc();
        }
    }
}

/// The verifier could not be built.
#[derive(Debug, thiserror::Error)]
pub enum RevocationBuildError {
    /// rustls refused the client CA bundle.
    #[error(transparent)]
    Verifier(#[from] VerifierBuilderError),
    /// A CRL cannot be indexed.
    #[error(transparent)]
    Crl(#[from] CrlError),
}

impl ClientCertVerifier for RevocationVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.chain.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .chain
            .verify_client_cert(end_entity, intermediates, now)?;
        if self.mode == RevocationMode::Off {
            return Ok(verified);
        }
        let result = self.lookup(end_entity, intermediates, now);
        self.count(result);
        let error = match (result, self.mode) {
            (RevocationResult::Good, _) => return Ok(verified),
            (RevocationResult::Unknown | RevocationResult::Unavailable, RevocationMode::Prefer) => {
                tracing::warn!(
                    revocation = result.as_str(),
                    "client certificate revocation status not known; accepted (revocation.mode = prefer)"
                );
                return Ok(verified);
            }
            (RevocationResult::Revoked, _) => CertificateError::Revoked,
            (RevocationResult::Unknown, _) => CertificateError::UnknownRevocationStatus,
            (RevocationResult::Unavailable, _) => CertificateError::ExpiredRevocationList,
        };
        tracing::info!(
            revocation = result.as_str(),
            "client certificate refused at the handshake"
        );
        Err(rustls::Error::InvalidCertificate(error))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

impl fmt::Debug for RevocationVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RevocationVerifier")
            .field("mode", &self.mode)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}
