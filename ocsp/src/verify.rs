//! Trusting an OCSP answer (RFC 6960 §3.2, §4.2.2.2): the single response about the CertID
//! asked for, signed either by the certificate's issuer or by a responder certificate the
//! issuer signed with the OCSP-signing extended key usage, valid now; named by the response's
//! ResponderID; and fresh (thisUpdate not in the future, nextUpdate not past, both within the
//! clock skew; without nextUpdate, thisUpdate no older than the caller's maximum age).

use ring::digest;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::cert_id::CertId;
use crate::response::{BasicResponse, CertStatus, ResponderId};
use crate::signature;
use crate::ParseError;

/// The certificate's issuer, as far as OCSP needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerKey {
    /// Its subject name (DER).
    pub subject: Vec<u8>,
    /// Its SubjectPublicKeyInfo (DER).
    pub spki: Vec<u8>,
    /// SHA-1 of its public key bits (a ResponderID byKey).
    pub key_sha1: Vec<u8>,
}

impl IssuerKey {
    /// From the issuer's certificate (DER).
    pub fn from_certificate(der: &[u8]) -> Result<Self, ParseError> {
        let (_, cert) = X509Certificate::from_der(der).map_err(|_| ParseError::Certificate)?;
        Ok(Self::from_parsed(&cert))
    }

    /// From the issuer's certificate, already parsed.
    pub fn from_parsed(cert: &X509Certificate<'_>) -> Self {
        Self {
            subject: cert.subject().as_raw().to_vec(),
            spki: cert.public_key().raw.to_vec(),
            key_sha1: key_sha1(&cert.public_key().subject_public_key.data),
        }
    }

    fn is(&self, id: &ResponderId) -> bool {
        match id {
            ResponderId::ByName(name) => *name == self.subject,
            ResponderId::ByKey(hash) => *hash == self.key_sha1,
        }
    }
}

fn key_sha1(bits: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, bits)
        .as_ref()
        .to_vec()
}

/// What a verified answer says about the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The status.
    pub status: CertStatus,
    /// thisUpdate.
    pub this_update: i64,
    /// nextUpdate, if given.
    pub next_update: Option<i64>,
}

/// When an answer is judged.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Now, seconds since the epoch.
    pub now: i64,
    /// Tolerated clock difference with the responder, seconds.
    pub skew: i64,
    /// The oldest thisUpdate accepted when there is no nextUpdate, seconds.
    pub max_age: i64,
}

/// Why a response is not trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// Neither the issuer nor an authorised responder certificate signed it.
    #[error("not signed by the issuer or a responder it authorised")]
    Unauthorised,
    /// No single response about the certificate asked for.
    #[error("no answer about the certificate asked for")]
    NotAbout,
    /// thisUpdate (or producedAt) is in the future.
    #[error("issued in the future")]
    NotYetValid,
    /// Past its nextUpdate, or without one and older than the maximum age.
    #[error("stale (past its nextUpdate)")]
    Stale,
}

/// The answer about `id` in `response`, trusted only as the module documents.
pub fn verify(
    response: &BasicResponse,
    id: &CertId,
    issuer: &IssuerKey,
    clock: Clock,
) -> Result<Answer, VerifyError> {
    if !signed_by_authorised(response, issuer, clock.now) {
        return Err(VerifyError::Unauthorised);
    }
    let single = response
        .responses
        .iter()
        .find(|s| s.cert_id == *id)
        .ok_or(VerifyError::NotAbout)?;
    if single.this_update > clock.now.saturating_add(clock.skew)
        || response.produced_at > clock.now.saturating_add(clock.skew)
    {
        return Err(VerifyError::NotYetValid);
    }
    let fresh = match single.next_update {
        Some(next) => next.saturating_add(clock.skew) >= clock.now,
        None => single.this_update.saturating_add(clock.max_age) >= clock.now,
    };
    if !fresh {
        return Err(VerifyError::Stale);
    }
    Ok(Answer {
        status: single.status,
        this_update: single.this_update,
        next_update: single.next_update,
    })
}

/// The issuer named as responder signed it, or a certificate that came with it, named as
/// responder, issued and signed by the issuer for OCSP signing and valid now.
fn signed_by_authorised(response: &BasicResponse, issuer: &IssuerKey, now: i64) -> bool {
    let signs = |spki: &[u8]| {
        signature::verify(
            spki,
            &response.signature_algorithm,
            &response.tbs,
            &response.signature,
        )
    };
    if issuer.is(&response.responder) && signs(&issuer.spki) {
        return true;
    }
    response.certs.iter().any(|der| {
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return false;
        };
        let delegate = IssuerKey::from_parsed(&cert);
        let for_ocsp = matches!(cert.extended_key_usage(), Ok(Some(eku)) if eku.value.ocsp_signing);
        let validity = cert.validity();
        delegate.is(&response.responder)
            && for_ocsp
            && validity.not_before.timestamp() <= now
            && now <= validity.not_after.timestamp()
            && cert.issuer().as_raw() == issuer.subject.as_slice()
            && signature::verify(
                &issuer.spki,
                &cert.signature_algorithm.algorithm.to_id_string(),
                cert.tbs_certificate.as_ref(),
                &cert.signature_value.data,
            )
            && signs(&delegate.spki)
    })
}
