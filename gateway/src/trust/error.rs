//! Why a software statement was not accepted, and the reason the gateway answers with.

use crate::jose::jws::JwsError;
use crate::jose::verify::SignatureError;
use crate::reason::Reason;

/// Longest accepted software statement (compact JWS), bytes.
pub const MAX_SSA_LEN: usize = 16 * 1024;

/// Why a software statement was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsaError {
    /// Not a well-formed compact JWS, or a header rule broken.
    #[error("software_statement: {0}")]
    Jws(#[from] JwsError),
    /// Longer than [`MAX_SSA_LEN`].
    #[error("software_statement is longer than {MAX_SSA_LEN} bytes")]
    TooLong,
    /// `alg: none` where the profile does not allow it.
    #[error("software_statement is unsigned (alg none), which this server does not accept")]
    Unsigned,
    /// No `iss`, or an `iss` that is not a trusted directory.
    #[error("software_statement issuer is not a trusted directory")]
    UntrustedIssuer,
    /// The directory is trusted but not for this algorithm.
    #[error("software_statement alg {0} is not accepted from this directory")]
    AlgNotAllowed(String),
    /// The directory's key set has no key with the SSA's `kid`.
    #[error("software_statement kid is not in the directory's key set")]
    UnknownKid,
    /// The directory's key set could not be fetched.
    #[error("the directory's key set is unavailable: {0}")]
    KeysUnavailable(String),
    /// The signature does not verify.
    #[error("software_statement signature: {0}")]
    Signature(#[from] SignatureError),
    /// A known claim has the wrong type.
    #[error("software_statement: {0}")]
    Claims(#[from] dcrgate_policies::ClaimError),
}

impl SsaError {
    /// The reason the request is refused with.
    pub fn reason(&self) -> Reason {
        match self {
            SsaError::Jws(_) | SsaError::TooLong | SsaError::Claims(_) => Reason::SsaMalformed,
            SsaError::Unsigned => Reason::SsaUnsigned,
            SsaError::UntrustedIssuer => Reason::SsaUntrustedIssuer,
            SsaError::AlgNotAllowed(_) => Reason::SsaAlg,
            SsaError::UnknownKid => Reason::SsaUnknownKid,
            SsaError::KeysUnavailable(_) => Reason::SsaKeysUnavailable,
            SsaError::Signature(_) => Reason::SsaSignatureInvalid,
        }
    }
}
