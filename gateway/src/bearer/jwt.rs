//! `jwt` mode: access tokens issued by the bank's authorization server as signed JWTs (RFC 9068
//! shape), verified against its key set: `alg` from configuration, signature, `iss`, `aud`,
//! `exp` / `nbf`. Binding to the ClientId and certificate is checked by the caller.

use dcrgate_policies::claims::numeric_date;
use serde_json::Value;

use crate::bearer::{BearerError, TokenFacts};
use crate::config::JwtBearer;
use crate::jose::jws::parse_compact;
use crate::jose::verify::verify;
use crate::keyset::KeySetError;
use crate::trust::TrustedKeys;

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
    pub fn new(cfg: &JwtBearer, keys: TrustedKeys) -> Self {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use dcrgate_sandbox::tpp::{now, Signer};

    fn validator(signer: &Signer, dir: &std::path::Path) -> JwtValidator {
        let path = dir.join("as.jwks");
        std::fs::write(&path, signer.jwks()).unwrap();
        let cfg = JwtBearer {
            issuer: "https://as.bank.example".into(),
            audiences: vec!["https://bank.example/register".into()],
            algorithms: vec!["PS256".into()],
            keys: crate::config::KeySource::File(path.clone()),
            clock_leeway_seconds: 60,
        };
        JwtValidator::new(&cfg, TrustedKeys::from_file(&path).unwrap())
    }

    fn token(signer: &Signer, dates: serde_json::Value) -> String {
        let mut claims = json!({
            "iss": "https://as.bank.example",
            "aud": "https://bank.example/register",
            "client_id": "c1",
        });
        for (k, v) in dates.as_object().unwrap() {
            claims[k.as_str()] = v.clone();
        }
        signer.sign(&claims)
    }

    #[tokio::test]
    async fn numeric_dates_may_be_fractional_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::generate("as-1").unwrap();
        let v = validator(&signer, dir.path());
        let t = now();
        let f = |x: i64, frac: f64| json!(x as f64 + frac);
        let cases: Vec<(&str, serde_json::Value, Result<(), &str>)> = vec![
            ("fractional exp", json!({"exp": f(t + 300, 0.5)}), Ok(())),
            (
                "fractional exp and nbf",
                json!({"exp": f(t + 300, 0.25), "nbf": f(t - 10, 0.75)}),
                Ok(()),
            ),
            (
                "nbf an hour ahead, fractional",
                json!({"exp": t + 7200, "nbf": f(t + 3600, 0.5)}),
                Err("token_not_yet_valid"),
            ),
            (
                "nbf an hour ahead",
                json!({"exp": t + 7200, "nbf": t + 3600}),
                Err("token_not_yet_valid"),
            ),
            (
                "string nbf",
                json!({"exp": t + 300, "nbf": (t - 10).to_string()}),
                Err("token_malformed"),
            ),
            (
                "string exp",
                json!({"exp": (t + 300).to_string()}),
                Err("token_malformed"),
            ),
            ("null exp", json!({"exp": null}), Err("token_malformed")),
            (
                "boolean nbf",
                json!({"exp": t + 300, "nbf": true}),
                Err("token_malformed"),
            ),
            ("no exp", json!({}), Err("token_expired")),
            (
                "expired, fractional",
                json!({"exp": f(t - 120, 0.5)}),
                Err("token_expired"),
            ),
        ];
        for (name, dates, want) in cases {
            let got = v.validate(&token(&signer, dates), t).await;
            match want {
                Ok(()) => assert!(got.is_ok(), "{name}: {:?}", got.as_ref().err()),
                Err(kind) => assert_eq!(got.err().map(|e| e.reason().id()), Some(kind), "{name}"),
            }
        }
    }
}
