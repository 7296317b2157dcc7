//! `jwt` mode: access tokens issued by the bank's authorization server as signed JWTs (RFC 9068
//! shape), verified against its key set: `alg` from configuration, signature, `iss`, `aud`,
//! `exp` / `nbf`. Binding to the ClientId and certificate is checked by the caller.

use std::path::PathBuf;

use dcrgate_policies::claims::numeric_date;
use serde::Deserialize;
use serde_json::Value;

use crate::bearer::{BearerError, TokenFacts};
use crate::jose::jws::parse_compact;
use crate::jose::verify::verify;
use crate::keyset::KeySetError;
use crate::trust::TrustedKeys;

/// `[bearer.jwt]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSection {
    /// The authorization server's issuer identifier (`iss`).
    pub issuer: String,
    /// Accepted `aud` values (at least one must be in the token's `aud`).
    pub audiences: Vec<String>,
    /// JWS algorithms accepted for access tokens.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// https URL of the authorization server's key set (cached like TPP key sets).
    #[serde(default)]
    pub key_set_url: Option<String>,
    /// Or a local JWKS file.
    #[serde(default)]
    pub key_set_file: Option<PathBuf>,
    /// Extra PEM CA bundle for `key_set_url`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Clock skew tolerated on `exp` and `nbf`, seconds.
    #[serde(default = "default_leeway")]
    pub clock_leeway_seconds: i64,
}

fn default_algorithms() -> Vec<String> {
    vec!["PS256".into()]
}

fn default_leeway() -> i64 {
    60
}

/// Verifies access tokens issued as JWTs.
#[derive(Clone)]
pub struct JwtValidator {
    issuer: String,
    audiences: Vec<String>,
    algorithms: Vec<String>,
    keys: TrustedKeys,
    leeway: i64,
}

impl JwtValidator {
    /// A validator for `cfg` with the authorization server's keys.
    pub fn new(cfg: &JwtSection, keys: TrustedKeys) -> Self {
        Self {
            issuer: cfg.issuer.clone(),
            audiences: cfg.audiences.clone(),
            algorithms: cfg.algorithms.clone(),
            keys,
            leeway: cfg.clock_leeway_seconds,
        }
    }

    /// The authorization server's key set.
    pub fn keys(&self) -> &TrustedKeys {
        &self.keys
    }

    /// Verify `token` and return what it says about its client.
    pub async fn validate(&self, token: &str, now: i64) -> Result<TokenFacts, BearerError> {
        let jws = parse_compact(token.as_bytes(), &self.algorithms)
            .map_err(|_| BearerError::Malformed)?;
        let keys = self.keys.keys(&jws.kid).await.map_err(|e| match e {
            KeySetError::UnknownKid => BearerError::Signature,
            KeySetError::Unavailable(_) => BearerError::KeysUnavailable,
        })?;
        if !keys
            .iter()
            .any(|k| verify(&jws.alg, k, &jws.signing_input, &jws.signature).is_ok())
        {
            return Err(BearerError::Signature);
        }
        let claims = &jws.payload;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(BearerError::Issuer);
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => self.audiences.contains(a),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .any(|a| self.audiences.iter().any(|x| x == a)),
            _ => false,
        };
        if !aud_ok {
            return Err(BearerError::Audience);
        }
        // The one NumericDate parser (fractional seconds allowed, any other type malformed).
        let date = |k: &'static str| numeric_date(claims, k).map_err(|_| BearerError::Malformed);
        match date("exp")? {
            Some(exp) if exp.saturating_add(self.leeway) > now => {}
            _ => return Err(BearerError::Expired),
        }
        if date("nbf")?.is_some_and(|nbf| nbf.saturating_sub(self.leeway) > now) {
            return Err(BearerError::NotYetValid);
        }
        TokenFacts::from_claims(claims)
    }
}
