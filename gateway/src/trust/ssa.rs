//! Software statement verification: the SSA's issuer must be a directory the operator trusts,
//! its `alg` one the directory is configured for, and its signature must verify with the
//! directory's key set, all before anything the SSA names is fetched. Unsigned statements
//! (`alg: none`) pass only where the profile allows them.

use dcrgate_policies::SoftwareStatement;

use super::error::SsaError;
use super::form::{self as checks, SsaForm, TrustedIssuer};
use crate::jose::verify::{verify, SignatureError};
use crate::keyset::KeySetError;
use crate::trust::anchor::TrustedKeys;

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

impl TrustedIssuer for Directory {
    fn issuer(&self) -> &str {
        &self.issuer
    }

    fn algorithms(&self) -> &[String] {
        &self.algorithms
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

    /// Verify `compact` and decode its claims: the offline checks first
    /// ([`checks::software_statement_form`], [`checks::directory_for`]), then the directory's
    /// keys and the signature.
    pub async fn verify(&self, compact: &str, allow_unsigned: bool) -> Result<Verified, SsaError> {
        let jws = match checks::software_statement_form(compact, allow_unsigned, &self.algorithms)?
        {
            SsaForm::Unsigned(payload) => {
                return Ok(Verified {
                    statement: checks::software_statement_claims(&payload)?,
                    unsigned: true,
                })
            }
            SsaForm::Signed(jws) => jws,
        };
        let directory = checks::directory_for(&jws, &self.directories)?;
        let keys = directory.keys.keys(&jws.kid).await.map_err(|e| match e {
            KeySetError::UnknownKid => SsaError::UnknownKid,
            KeySetError::Unavailable(f) => SsaError::KeysUnavailable(f.to_string()),
        })?;
        let mut last = SignatureError::Invalid;
        for key in &keys {
            match verify(&jws.alg, key, &jws.signing_input, &jws.signature) {
                Ok(()) => {
                    return Ok(Verified {
                        statement: checks::software_statement_claims(&jws.payload)?,
                        unsigned: false,
                    })
                }
                Err(e) => last = e,
            }
        }
        Err(SsaError::Signature(last))
    }
}
