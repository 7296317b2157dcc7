//! Bearer access tokens on the registration management routes (RFC 7592), bound to the ClientId
//! of the path and, through `cnf.x5t#S256`, to the presented certificate (RFC 8705).
//!
//! Three modes, chosen per route: `jwt` (verified here against the authorization server's key
//! set), `introspection` (RFC 7662, cached) and `upstream` (forwarded for the registry to
//! decide). Every failure is a 401 `invalid_token`; a valid token of another client gets the
//! same answer, so a ClientId's existence is never revealed. Tokens are never logged.

pub mod introspection;
pub mod jwt;

use serde_json::{Map, Value};

use introspection::{IntrospectionError, Introspector};
use jwt::JwtValidator;

pub use crate::config::{BearerMode, ClientClaim};
use crate::reason::Reason;

/// Why a bearer token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// Not a JWT the gateway accepts (form, alg, header rules).
    #[error("the access token is malformed")]
    Malformed,
    /// The signature does not verify (or no key with its `kid`).
    #[error("the access token signature does not verify")]
    Signature,
    /// The authorization server's key set could not be fetched.
    #[error("the authorization server's key set is unavailable")]
    KeysUnavailable,
    /// Wrong `iss`.
    #[error("the access token was not issued by this server's authorization server")]
    Issuer,
    /// No acceptable `aud`.
    #[error("the access token is not intended for this server")]
    Audience,
    /// `exp` missing or passed.
    #[error("the access token has expired")]
    Expired,
    /// `nbf` in the future.
    #[error("the access token is not valid yet")]
    NotYetValid,
    /// Introspection says the token is not active.
    #[error("the access token is not active")]
    Inactive,
    /// The token names no client, or another client than the path's ClientId.
    #[error("the access token was not issued for this client")]
    Client,
    /// `cnf.x5t#S256` differs from the presented certificate.
    #[error("the access token is bound to a different certificate")]
    CertificateMismatch,
    /// The profile requires certificate-bound tokens and this one has no `cnf.x5t#S256`.
    #[error("the access token must be bound to the client certificate (cnf x5t#S256)")]
    BindingRequired,
    /// The introspection endpoint could not answer.
    #[error("the access token could not be checked ({0})")]
    Introspection(&'static str),
    /// A route needs a mode that is not configured (prevented by config validation).
    #[error("no verifier is configured for this route's bearer mode")]
    NotConfigured,
}

impl BearerError {
    /// The reason the request is refused with (401 `invalid_token`, or 503 when the gateway
    /// could not check the token).
    pub fn reason(&self) -> Reason {
        match self {
            BearerError::Malformed => Reason::TokenMalformed,
            BearerError::Signature => Reason::TokenSignature,
            BearerError::KeysUnavailable => Reason::TokenKeysUnavailable,
            BearerError::Issuer => Reason::TokenIssuer,
            BearerError::Audience => Reason::TokenAudience,
            BearerError::Expired => Reason::TokenExpired,
            BearerError::NotYetValid => Reason::TokenNotYetValid,
            BearerError::Inactive => Reason::TokenInactive,
            BearerError::Client => Reason::TokenClient,
            BearerError::CertificateMismatch => Reason::TokenCnfMismatch,
            BearerError::BindingRequired => Reason::TokenCnfMissing,
            BearerError::Introspection(_) => Reason::TokenIntrospectionUnavailable,
            BearerError::NotConfigured => Reason::TokenNotConfigured,
        }
    }
}

/// What a verified token says about whom it was issued to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFacts {
    /// `client_id`.
    pub client_id: Option<String>,
    /// `azp`.
    pub azp: Option<String>,
    /// `cnf.x5t#S256`.
    pub x5t_s256: Option<String>,
}

impl TokenFacts {
    /// Read from JWT claims; a `cnf` that is present but unusable makes the token malformed.
    pub fn from_claims(claims: &Map<String, Value>) -> Result<Self, BearerError> {
        let text = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
        let x5t_s256 = match claims.get("cnf") {
            None => None,
            Some(Value::Object(cnf)) => match cnf.get("x5t#S256") {
                None => None,
                Some(Value::String(t)) => Some(t.clone()),
                Some(_) => return Err(BearerError::Malformed),
            },
            Some(_) => return Err(BearerError::Malformed),
        };
        Ok(Self {
            client_id: text("client_id"),
            azp: text("azp"),
            x5t_s256,
        })
    }

    /// Check the token is for `client_id` and, when bound, for the certificate `thumbprint`.
    pub fn check_binding(
        &self,
        claim: ClientClaim,
        client_id: &str,
        thumbprint: &str,
        require_binding: bool,
    ) -> Result<(), BearerError> {
        let client = match claim {
            ClientClaim::ClientId => self.client_id.as_deref(),
            ClientClaim::Azp => self.azp.as_deref(),
        };
        if client != Some(client_id) {
            return Err(BearerError::Client);
        }
        match self.x5t_s256.as_deref() {
            // A thumbprint is public: plain comparison.
            Some(t) if t == thumbprint => Ok(()),
            Some(_) => Err(BearerError::CertificateMismatch),
            None if require_binding => Err(BearerError::BindingRequired),
            None => Ok(()),
        }
    }
}

/// The request a token is checked for.
#[derive(Debug, Clone, Copy)]
pub struct TokenUse<'a> {
    /// The ClientId of the path.
    pub client_id: &'a str,
    /// The presented certificate's SHA-256 thumbprint, base64url.
    pub thumbprint: &'a str,
    /// The profile's `bearer.require_certificate_binding`.
    pub require_binding: bool,
    /// Now, seconds since the epoch.
    pub now: i64,
}

/// The configured token verifiers.
#[derive(Clone, Default)]
pub struct BearerVerifier {
    /// `jwt` mode, when `[bearer.jwt]` is configured.
    pub jwt: Option<JwtValidator>,
    /// `introspection` mode, when `[bearer.introspection]` is configured.
    pub introspection: Option<Introspector>,
    /// Which claim names the token's client.
    pub client_claim: ClientClaim,
}

impl BearerVerifier {
    /// Check `token` under `mode` for `usage`.
    pub async fn check(
        &self,
        mode: BearerMode,
        token: &str,
        usage: &TokenUse<'_>,
    ) -> Result<(), BearerError> {
        let facts = match mode {
            BearerMode::Upstream => return Ok(()),
            BearerMode::Jwt => {
                let v = self.jwt.as_ref().ok_or(BearerError::NotConfigured)?;
                v.validate(token, usage.now).await?
            }
            BearerMode::Introspection => {
                let i = self
                    .introspection
                    .as_ref()
                    .ok_or(BearerError::NotConfigured)?;
                let answer =
                    i.introspect(token, usage.now)
                        .await
                        .map_err(|e: IntrospectionError| {
                            tracing::warn!(error = %e, "token introspection failed");
                            BearerError::Introspection(e.kind())
                        })?;
                if !answer.active {
                    return Err(BearerError::Inactive);
                }
                if answer.exp.is_some_and(|exp| exp <= usage.now) {
                    return Err(BearerError::Expired);
                }
                TokenFacts {
                    client_id: answer.client_id.clone(),
                    azp: answer.azp.clone(),
                    x5t_s256: answer.cnf_x5t_s256.clone(),
                }
            }
        };
        facts.check_binding(
            self.client_claim,
            usage.client_id,
            usage.thumbprint,
            usage.require_binding,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn facts(v: Value) -> Result<TokenFacts, BearerError> {
        TokenFacts::from_claims(v.as_object().unwrap())
    }

    #[test]
    fn binding_rules() {
        let f = facts(json!({"client_id": "c1", "azp": "a1", "cnf": {"x5t#S256": "T"}})).unwrap();
        assert_eq!(
            f.check_binding(ClientClaim::ClientId, "c1", "T", true),
            Ok(())
        );
        assert_eq!(f.check_binding(ClientClaim::Azp, "a1", "T", false), Ok(()));
        assert_eq!(
            f.check_binding(ClientClaim::ClientId, "c2", "T", false),
            Err(BearerError::Client)
        );
        assert_eq!(
            f.check_binding(ClientClaim::ClientId, "c1", "U", false),
            Err(BearerError::CertificateMismatch)
        );
        let unbound = facts(json!({"client_id": "c1"})).unwrap();
        assert_eq!(
            unbound.check_binding(ClientClaim::ClientId, "c1", "T", false),
            Ok(())
        );
        assert_eq!(
            unbound.check_binding(ClientClaim::ClientId, "c1", "T", true),
            Err(BearerError::BindingRequired)
        );
        assert_eq!(
            facts(json!({"client_id": "c1", "cnf": {"x5t#S256": 5}})),
            Err(BearerError::Malformed)
        );
        assert_eq!(facts(json!({"cnf": "x"})), Err(BearerError::Malformed));
    }
}
