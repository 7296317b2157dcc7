//! The software statement examined offline: the gateway's own checks of it
//! ([`crate::checks`]) that need no keys, and its claims decoded whatever they find, so that
//! its rules are explained too.

use std::path::Path;

use dcrgate_policies::profile::SUPPORTED_ALGORITHMS;
use dcrgate_policies::{Profile, SoftwareStatement};
use serde_json::Value;

use super::decode::decode_tolerant;
use super::inputs::Deployment;
use super::report::{Finding, SoftwareStatementReport};
use super::SSA_NOTE;
use crate::checks::{self, SsaForm, TrustedIssuer};
use crate::jose::jws::CompactJws;
use crate::rejection::Rejection;
use crate::trust::SsaError;

/// The software statement examined offline.
pub(super) struct SsaExamined {
    /// What the report shows of it.
    pub(super) report: SoftwareStatementReport,
    /// Its claims, when they decode: used as if verified, so its rules are explained.
    pub(super) statement: Option<SoftwareStatement>,
    /// The first offline check it fails, as the gateway would answer it.
    pub(super) finding: Option<Finding>,
}

const UNSIGNED: &str = "unsigned (alg none): no issuer signature";

impl TrustedIssuer for (String, Vec<String>) {
    fn issuer(&self) -> &str {
        &self.0
    }

    fn algorithms(&self) -> &[String] {
        &self.1
    }
}

/// Run the gateway's offline checks of a software statement ([`checks::software_statement_form`],
/// [`checks::directory_for`] when the configuration is known, [`checks::software_statement_claims`])
/// and decode it whatever they find, so that its rules are explained too.
pub(super) fn examine_ssa(
    compact: &str,
    profile: &Profile,
    deployment: Option<&Deployment>,
) -> SsaExamined {
    let tolerant = decode_tolerant(compact.as_bytes()).ok();
    let alg = tolerant
        .as_ref()
        .and_then(|t| t.header.as_ref().ok())
        .and_then(|h| h.get("alg"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    // The algorithms of every trusted directory, as the gateway's verifier has them; offline,
    // every algorithm the gateway supports.
    let algorithms: Vec<String> = match deployment {
        Some(d) => {
            let mut all: Vec<String> = d.directories.iter().flat_map(|(_, a)| a.clone()).collect();
            all.sort();
            all.dedup();
            all
        }
        None => SUPPORTED_ALGORITHMS.map(String::from).to_vec(),
    };
    let allow_unsigned = profile.software_statement.allow_unsigned;
    let path = deployment.map(|d| d.path.as_path());
    let (payload, trust, error) =
        match checks::software_statement_form(compact, allow_unsigned, &algorithms) {
            Ok(SsaForm::Unsigned(payload)) => (Some(payload), UNSIGNED.to_owned(), None),
            Ok(SsaForm::Signed(jws)) => {
                let (trust, error) = trust_of(&jws, deployment);
                (Some(jws.payload), trust, error)
            }
            Err(e) => {
                let trust = match (&e, path) {
                    (SsaError::Unsigned, _) => UNSIGNED.to_owned(),
                    (SsaError::UntrustedIssuer, Some(path)) => untrusted(path),
                    _ => "not checked: the statement's form is refused".to_owned(),
                };
                (tolerant.map(|t| t.payload), trust, Some(e))
            }
        };
    let claims = payload.as_ref().map(checks::software_statement_claims);
    let error = error.or_else(|| claims.as_ref().and_then(|c| c.as_ref().err().cloned()));
    let issuer = payload
        .as_ref()
        .and_then(|p| p.get("iss"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    SsaExamined {
        report: SoftwareStatementReport {
            verified: false,
            note: SSA_NOTE,
            alg,
            issuer,
            trust,
            claims: payload,
        },
        statement: claims.and_then(Result::ok),
        finding: error.map(|e| Finding::from(Rejection::from_ssa(&e))),
    }
}

fn untrusted(path: &Path) -> String {
    format!(
        "the issuer is not a trusted directory in {}",
        path.display()
    )
}

/// Whether a signed statement's issuer is a directory the configuration trusts for its `alg`,
/// and the refusal when it is not.
fn trust_of(jws: &CompactJws, deployment: Option<&Deployment>) -> (String, Option<SsaError>) {
    let Some(d) = deployment else {
        let unknown = "not checked offline (pass --config to check the issuer against \
                       policy.directories)";
        return (unknown.into(), None);
    };
    match checks::directory_for(jws, &d.directories) {
        Ok(_) => (
            format!(
                "the issuer is a trusted directory in {} (its signature: see below)",
                d.path.display()
            ),
            None,
        ),
        Err(e @ SsaError::AlgNotAllowed(_)) => (
            format!(
                "the issuer is a trusted directory in {}, but not for alg {}; \
                 the statement is refused",
                d.path.display(),
                jws.alg
            ),
            Some(e),
        ),
        Err(e) => (untrusted(&d.path), Some(e)),
    }
}
