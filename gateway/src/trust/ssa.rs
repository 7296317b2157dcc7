//! Software statement verification: the SSA's issuer must be a directory the operator trusts,
//! its `alg` one the directory is configured for, and its signature must verify with the
//! directory's key set, all before anything the SSA names is fetched. Unsigned statements
//! (`alg: none`) pass only where the profile allows them.

use dcrgate_policies::SoftwareStatement;
use serde_json::{Map, Value};

use crate::jose::jws::{parse_compact, parse_unsigned, JwsError};
use crate::jose::verify::{verify, SignatureError};
use crate::keyset::KeySetError;
use crate::trust::anchor::TrustedKeys;

/// Longest accepted software statement (compact JWS), bytes.
pub const MAX_SSA_LEN: usize = 16 * 1024;

/// A directory whose software statements are trusted.
#[derive(Clone)]
pub struct Directory {
    /// The `iss` its statements carry.
    pub issuer: String,
    /// Its signing keys.
    pub keys: TrustedKeys,
    /// The JWS algorithms accepted from it.
    pub algorithms: Vec<String>,
}

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
    /// A closed-set label for metrics and rejection reasons.
    pub fn kind(&self) -> &'static str {
        match self {
            SsaError::Jws(_) | SsaError::TooLong | SsaError::Claims(_) => "ssa_malformed",
            SsaError::Unsigned => "ssa_unsigned",
            SsaError::UntrustedIssuer => "ssa_untrusted_issuer",
            SsaError::AlgNotAllowed(_) => "ssa_alg",
            SsaError::UnknownKid => "ssa_unknown_kid",
            SsaError::KeysUnavailable(_) => "ssa_keys_unavailable",
            SsaError::Signature(_) => "ssa_signature_invalid",
        }
    }
}

/// A software statement that passed verification.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Its claims.
    pub statement: SoftwareStatement,
    /// Whether it was accepted unsigned.
    pub unsigned: bool,
}

/// Verifies software statements against the configured directories.
#[derive(Clone, Default)]
pub struct SsaVerifier {
    directories: Vec<Directory>,
    algorithms: Vec<String>,
}

impl SsaVerifier {
    /// A verifier trusting `directories`.
    pub fn new(directories: Vec<Directory>) -> Self {
        let mut algorithms: Vec<String> = directories
            .iter()
            .flat_map(|d| d.algorithms.iter().cloned())
            .collect();
        algorithms.sort();
        algorithms.dedup();
        Self {
            directories,
            algorithms,
        }
    }

    /// The configured directories.
    pub fn directories(&self) -> &[Directory] {
        &self.directories
    }

    /// Whether any directory is configured.
    pub fn is_empty(&self) -> bool {
        self.directories.is_empty()
    }

    /// Verify `compact` and decode its claims.
    pub async fn verify(&self, compact: &str, allow_unsigned: bool) -> Result<Verified, SsaError> {
        if compact.len() > MAX_SSA_LEN {
            return Err(SsaError::TooLong);
        }
        if let Some(payload) = parse_unsigned(compact.as_bytes())? {
            if !allow_unsigned {
                return Err(SsaError::Unsigned);
            }
            return Ok(Verified {
                statement: SoftwareStatement::from_json(&payload)?,
                unsigned: true,
            });
        }
        // No directory configured: nothing can be trusted (parse_compact needs a non-empty list).
        if self.directories.is_empty() {
            return Err(SsaError::UntrustedIssuer);
        }
        let jws = parse_compact(compact.as_bytes(), &self.algorithms)?;
        let directory = self.directory_for(&jws.payload)?;
        if !directory.algorithms.contains(&jws.alg) {
            return Err(SsaError::AlgNotAllowed(jws.alg.chars().take(16).collect()));
        }
        let keys = directory.keys.keys(&jws.kid).await.map_err(|e| match e {
            KeySetError::UnknownKid => SsaError::UnknownKid,
            KeySetError::Unavailable(f) => SsaError::KeysUnavailable(f.to_string()),
        })?;
        let mut last = SignatureError::Invalid;
        for key in &keys {
            match verify(&jws.alg, key, &jws.signing_input, &jws.signature) {
                Ok(()) => {
                    return Ok(Verified {
                        statement: SoftwareStatement::from_json(&jws.payload)?,
                        unsigned: false,
                    })
                }
                Err(e) => last = e,
            }
        }
        Err(SsaError::Signature(last))
    }

    fn directory_for(&self, payload: &Map<String, Value>) -> Result<&Directory, SsaError> {
        let iss = payload
            .get("iss")
            .and_then(Value::as_str)
            .ok_or(SsaError::UntrustedIssuer)?;
        self.directories
            .iter()
            .find(|d| d.issuer == iss)
            .ok_or(SsaError::UntrustedIssuer)
    }
}
