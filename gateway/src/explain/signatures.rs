//! The cryptographic checks of an explanation, run only on key material given to it and
//! otherwise reported as NOT CHECKED: the request object's signature (`--jwks`), the software
//! statement's (`--directory-jwks`, or the `--config` directory that issued it) and the bearer
//! token (`--token` under `--config`). Each uses the gateway's own code: the key set lookup and
//! signature verification of the request path, the software statement verifier, and the bearer
//! token verifier, answering with the same reason ids.

use std::sync::Arc;

use serde::Serialize;

use super::inputs::{Inputs, KeySetArg};
use super::report::Finding;
use crate::bearer::{BearerMode, BearerVerifier, TokenUse};
use crate::config::{KeySets, KeySource};
use crate::jose::jws::parse_compact;
use crate::metrics::Metrics;
use crate::proxy::admit::verify_signature;
use crate::rejection::Rejection;
use crate::trust::anchor::TrustedKeys;
use crate::trust::ssa::{Directory, SsaVerifier};

/// One check's result.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// `verified`, `failed` or `not_checked`.
    pub status: &'static str,
    /// What was checked against what, or why not.
    pub detail: String,
    /// On failure: the gateway's answer.
    pub finding: Option<Finding>,
}

impl Check {
    fn verified(detail: impl Into<String>) -> Self {
        Self {
            status: "verified",
            detail: detail.into(),
            finding: None,
        }
    }

    fn failed(rejection: Rejection) -> Self {
        let finding = Finding::from(rejection);
        Self {
            status: "failed",
            detail: finding.message.clone(),
            finding: Some(finding),
        }
    }

    fn not_checked(detail: impl Into<String>) -> Self {
        Self {
            status: "not_checked",
            detail: detail.into(),
            finding: None,
        }
    }

    /// Whether it verified nothing.
    pub fn is_not_checked(&self) -> bool {
        self.status == "not_checked"
    }
}

/// Every cryptographic check of an explanation.
#[derive(Debug, Clone, Serialize)]
pub struct Signatures {
    /// The request object's signature.
    pub request_object: Check,
    /// The software statement's, when the request carries one the profile reads.
    pub software_statement: Option<Check>,
    /// The bearer token, when `--token` is given.
    pub bearer_token: Option<Check>,
}

impl Signatures {
    /// Nothing checked (no key material): what [`super::explain`] reports on its own.
    pub fn unchecked(inputs: &Inputs) -> Self {
        Self {
            request_object: Check::not_checked(
                "no --jwks: the request object's signature was not verified",
            ),
            software_statement: carried_ssa(inputs).map(|_| {
                Check::not_checked(
                    "no --directory-jwks and no --config directory for it: the software \
                     statement's signature was not verified",
                )
            }),
            bearer_token: None,
        }
    }

    /// The first failure, in the order the gateway checks (token, software statement,
    /// request object signature).
    pub fn failure(&self) -> Option<&Finding> {
        [
            self.bearer_token.as_ref(),
            self.software_statement.as_ref(),
            Some(&self.request_object),
        ]
        .into_iter()
        .flatten()
        .find_map(|c| c.finding.as_ref())
    }

    /// What was not checked, for the verdict.
    pub fn unchecked_parts(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.request_object.is_not_checked() {
            out.push("the request object's signature");
        }
        if self
            .software_statement
            .as_ref()
            .is_some_and(Check::is_not_checked)
        {
            out.push("the software statement's signature");
        }
        out
    }
}

/// The software statement the explanation reads, if any.
fn carried_ssa(inputs: &Inputs) -> Option<&str> {
    if inputs.profile.software_statement.presence == dcrgate_policies::Presence::Refused {
        return None;
    }
    inputs
        .jwt_payload
        .get("software_statement")
        .and_then(serde_json::Value::as_str)
}

/// Runs every check the inputs give key material for, at `now`.
pub async fn examine(inputs: &Inputs, path_client_id: Option<&str>, now: i64) -> Signatures {
    let mut out = Signatures::unchecked(inputs);
    let metrics = match Metrics::new() {
        Ok(m) => Arc::new(m),
        Err(e) => {
            out.request_object = Check::not_checked(format!("cannot set up the checks: {e}"));
            return out;
        }
    };
    let key_sets = inputs
        .deployment
        .as_ref()
        .map(|d| d.config.key_sets.clone())
        .unwrap_or_default();
    if let Some(arg) = &inputs.request_keys {
        out.request_object = request_object(inputs, arg, &key_sets, &metrics).await;
    }
    if let Some(compact) = carried_ssa(inputs) {
        if let Some(check) = software_statement(inputs, compact, &key_sets, &metrics).await {
            out.software_statement = Some(check);
        }
    }
    if let Some(token) = &inputs.token {
        out.bearer_token = Some(bearer(inputs, token, path_client_id, now, &metrics).await);
    }
    out
}

fn trusted(
    arg: &KeySetArg,
    key_sets: &KeySets,
    metrics: &Arc<Metrics>,
) -> Result<TrustedKeys, String> {
    match arg {
        KeySetArg::File(path) => TrustedKeys::from_file(path).map_err(|e| e.to_string()),
        KeySetArg::Url(url) => TrustedKeys::from_url(url.clone(), None, key_sets, metrics.clone())
            .map_err(|e| e.to_string()),
    }
}

fn describe(arg: &KeySetArg) -> String {
    match arg {
        KeySetArg::File(path) => path.display().to_string(),
        KeySetArg::Url(url) => url.to_string(),
    }
}

async fn request_object(
    inputs: &Inputs,
    arg: &KeySetArg,
    key_sets: &KeySets,
    metrics: &Arc<Metrics>,
) -> Check {
    let Ok(jws) = parse_compact(&inputs.jwt, &inputs.profile.request.algorithms) else {
        return Check::not_checked(
            "the request object does not pass the JWS rules (see the findings): no signature to \
             verify",
        );
    };
    let keys = match trusted(arg, key_sets, metrics) {
        Ok(k) => k,
        Err(e) => return Check::not_checked(format!("--jwks {}: {e}", describe(arg))),
    };
    let host = match arg {
        KeySetArg::Url(url) => url.host_str().unwrap_or_default().to_owned(),
        KeySetArg::File(path) => path.display().to_string(),
    };
    let found = match keys.keys(&jws.kid).await {
        Ok(k) => k,
        Err(e) => return Check::failed(Rejection::from_key_set(&e, &host)),
    };
    match verify_signature(&jws.alg, &found, &jws.signing_input, &jws.signature).await {
        Ok(()) => Check::verified(format!(
            "{} signature verified with kid {} of {}",
            jws.alg,
            jws.kid,
            describe(arg)
        )),
        Err(e) => Check::failed(Rejection::from_signature(&e)),
    }
}

/// The issuer a software statement names, decoded without verification.
fn ssa_issuer(compact: &str) -> Option<String> {
    crate::jose::jws::parse_unsigned(compact.as_bytes())
        .ok()
        .flatten()
        .or_else(|| {
            super::decode::decode_tolerant(compact.as_bytes())
                .ok()
                .map(|d| d.payload)
        })
        .and_then(|p| p.get("iss").and_then(|v| v.as_str()).map(str::to_owned))
}

async fn software_statement(
    inputs: &Inputs,
    compact: &str,
    key_sets: &KeySets,
    metrics: &Arc<Metrics>,
) -> Option<Check> {
    let issuer = ssa_issuer(compact).unwrap_or_default();
    let configured = inputs.deployment.as_ref().and_then(|d| {
        d.config
            .directories
            .iter()
            .find(|dir| dir.issuer == issuer)
            .map(|dir| (dir.clone(), d.config.clone()))
    });
    let (keys, algorithms, source) = match (&inputs.directory_keys, &configured) {
        (Some(arg), _) => {
            let keys = match trusted(arg, key_sets, metrics) {
                Ok(k) => k,
                Err(e) => {
                    return Some(Check::not_checked(format!(
                        "--directory-jwks {}: {e}",
                        describe(arg)
                    )))
                }
            };
            let algorithms = configured
                .as_ref()
                .map(|(d, _)| d.algorithms.clone())
                .unwrap_or_else(|| vec!["PS256".into(), "ES256".into()]);
            (keys, algorithms, describe(arg))
        }
        (None, Some((dir, config))) => {
            let keys = match crate::generation::anchor(&dir.keys, config, metrics) {
                Ok(k) => k,
                Err(e) => {
                    return Some(Check::not_checked(format!(
                        "the keys of directory `{issuer}` in --config: {e}"
                    )))
                }
            };
            let source = match &dir.keys {
                KeySource::File(path) => path.display().to_string(),
                KeySource::Url { url, .. } => url.to_string(),
            };
            (keys, dir.algorithms.clone(), source)
        }
        (None, None) => return None,
    };
    let verifier = SsaVerifier::new(vec![Directory {
        issuer: issuer.clone(),
        keys,
        algorithms,
    }]);
    let allow_unsigned = inputs.profile.software_statement.allow_unsigned;
    Some(match verifier.verify(compact, allow_unsigned).await {
        Ok(v) if v.unsigned => Check::verified(
            "unsigned, and the profile's software_statement.allow_unsigned accepts that",
        ),
        Ok(_) => Check::verified(format!(
            "signed by directory `{issuer}`, verified with {source}"
        )),
        Err(e) => Check::failed(Rejection::from_ssa(&e)),
    })
}

async fn bearer(
    inputs: &Inputs,
    token: &str,
    path_client_id: Option<&str>,
    now: i64,
    metrics: &Arc<Metrics>,
) -> Check {
    let Some(deployment) = &inputs.deployment else {
        return Check::not_checked("--token needs --config");
    };
    let config = &deployment.config;
    let mode = config.routes.update;
    let jwt = match &config.bearer.jwt {
        Some(j) => match crate::generation::anchor(&j.keys, config, metrics) {
            Ok(keys) => Some(crate::bearer::jwt::JwtValidator::new(j, keys)),
            Err(e) => return Check::not_checked(format!("bearer.jwt keys: {e}")),
        },
        None => None,
    };
    let introspection = match &config.bearer.introspection {
        Some(i) => match crate::bearer::introspection::Introspector::new(i) {
            Ok(v) => Some(v),
            Err(e) => return Check::not_checked(format!("bearer.introspection: {e}")),
        },
        None => None,
    };
    let verifier = BearerVerifier {
        jwt,
        introspection,
        client_claim: config.bearer.client_claim,
    };
    let usage = TokenUse {
        client_id: path_client_id.unwrap_or_default(),
        thumbprint: &inputs.certificate.thumbprint,
        require_binding: inputs.profile.bearer.require_certificate_binding,
        now,
    };
    let mode_name = match mode {
        BearerMode::Jwt => "jwt",
        BearerMode::Introspection => "introspection",
        BearerMode::Upstream => "upstream",
    };
    match verifier.check(mode, token, &usage).await {
        Ok(()) if mode == BearerMode::Upstream => Check::verified(
            "routes.update is `upstream`: the gateway checks only the token's form; the registry \
             decides",
        ),
        Ok(()) => Check::verified(format!(
            "valid for ClientId {} under bearer mode {mode_name}",
            usage.client_id
        )),
        Err(e) => Check::failed(Rejection::from_bearer(&e)),
    }
}
