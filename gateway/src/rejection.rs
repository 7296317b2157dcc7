//! Rejections: what the gateway answers itself, as RFC 7591 JSON errors that are never
//! forwarded. Each carries a closed-set `reason` for metrics and logs.

use std::borrow::Cow;

use bytes::Bytes;
use dcrgate_policies::Violation;
use pingora::http::ResponseHeader;

use crate::bearer::BearerError;
use crate::jose::jws::JwsError;
use crate::jose::verify::SignatureError;
use crate::keyset::{FetchError, KeySetError};
use crate::rate_limit::{LimitScope, RateLimited};
use crate::reason::{Reason, TEMPORARILY_UNAVAILABLE};
use crate::trust::SsaError;

/// `WWW-Authenticate` for a token that was presented and refused (RFC 6750 §3.1).
pub const BEARER_INVALID_TOKEN: &str = "Bearer realm=\"dcrgate\", error=\"invalid_token\"";

/// A request the gateway answers itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Why: decides the status, the `error` member and the metric's `reason` label.
    pub reason: Reason,
    /// The `error_description` member.
    pub description: String,
    /// Extra response headers.
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    /// Close the connection after answering (the request body may be unread).
    pub close: bool,
}

impl Rejection {
    /// A rejection with no extra headers that keeps the connection.
    pub fn new(reason: Reason, description: impl Into<String>) -> Self {
        Self {
            reason,
            description: description.into(),
            headers: Vec::new(),
            close: false,
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        self.reason.status()
    }

    /// The `error` member.
    pub fn error(&self) -> &'static str {
        self.reason.error()
    }

    /// Add a response header.
    pub fn header(mut self, name: &'static str, value: impl Into<Cow<'static, str>>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Close the connection after the answer.
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// The policy's verdict: the first violation decides status and code; all are described.
    pub fn from_violations<'a>(violations: impl IntoIterator<Item = &'a Violation>) -> Self {
        let mut violations = violations.into_iter().peekable();
        let Some(first) = violations.peek().map(|v| v.rule) else {
            return Self::new(Reason::Internal, "empty verdict");
        };
        let description = violations
            .map(|v| v.message.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        Self::new(Reason::Rule(first), description)
    }

    /// The request body is not an acceptable JWS.
    pub fn from_jws(e: &JwsError) -> Self {
        Self::new(Reason::from_jws(e), format!("request object: {e}"))
    }

    /// No key could be had for the request.
    pub fn from_key_set(e: &KeySetError, host: &str) -> Self {
        match e {
            KeySetError::UnknownKid => Self::new(
                Reason::UnknownKid,
                format!("request object: the key set at {host} has no usable key with this kid"),
            ),
            KeySetError::Unavailable(FetchError::Timeout) => Self::new(
                Reason::KeySetTimeout,
                format!("the key set at {host} did not answer in time; try again later"),
            ),
            KeySetError::Unavailable(f) => Self::new(
                Reason::KeySetUnavailable,
                format!("the key set at {host} could not be used: {f}"),
            ),
        }
    }

    /// The signature did not verify with any key named by the `kid`.
    pub fn from_signature(e: &SignatureError) -> Self {
        Self::new(Reason::SignatureInvalid, format!("request object: {e}"))
    }

    /// A refused bearer token: 401 `invalid_token`, the same for every client (a valid token
    /// of another client included), or 503 when the gateway could not check it.
    pub fn from_bearer(e: &BearerError) -> Self {
        let reason = e.reason();
        if reason.error() == TEMPORARILY_UNAVAILABLE {
            return Self::new(reason, format!("{e}; try again later"));
        }
        Self::new(reason, e.to_string()).header("WWW-Authenticate", BEARER_INVALID_TOKEN)
    }

    /// A software statement that did not verify.
    pub fn from_ssa(e: &SsaError) -> Self {
        let reason = e.reason();
        if reason.error() == TEMPORARILY_UNAVAILABLE {
            return Self::new(reason, format!("{e}; try again later"));
        }
        Self::new(reason, e.to_string())
    }

    /// Over a rate limit: 429 with `Retry-After` (whole seconds until a request may succeed).
    pub fn rate_limited(limit: &RateLimited) -> Self {
        let (reason, who) = match limit.scope {
            LimitScope::Client => (Reason::RateLimitedClient, "this client certificate"),
            LimitScope::Global => (Reason::RateLimitedGlobal, "the gateway"),
        };
        Self::new(
            reason,
            format!(
                "too many requests for {who}; retry after {} s",
                limit.retry_after_secs
            ),
        )
        .header("Retry-After", limit.retry_after_secs.to_string())
    }

    /// A request object whose `jti` was seen before.
    pub fn replayed() -> Self {
        Self::new(
            Reason::JtiReplayed,
            "request object: this jti has been used before; sign a new request object",
        )
    }

    /// The replay store could not answer and the configuration says to fail closed.
    pub fn replay_unavailable() -> Self {
        Self::new(
            Reason::ReplayStoreUnavailable,
            "the replay check could not be made; try again later",
        )
    }

    /// The shared rate limiter could not answer and fails closed.
    pub fn rate_limit_unavailable() -> Self {
        Self::new(
            Reason::RateLimitStoreUnavailable,
            "the rate limit check could not be made; try again later",
        )
        .header("Retry-After", "1")
    }

    /// The upstream registry could not be reached (502) or was too slow (504).
    pub fn upstream(timeout: bool) -> Self {
        if timeout {
            Self::new(
                Reason::UpstreamTimeout,
                "the registry did not answer in time",
            )
        } else {
            Self::new(
                Reason::UpstreamUnavailable,
                "the registry could not be reached",
            )
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Bytes {
        let v = serde_json::json!({ "error": self.error(), "error_description": self.description });
        Bytes::from(v.to_string())
    }

    /// The response head for [`Self::body`] of `len` bytes.
    pub fn response_header(&self, len: usize) -> pingora::Result<ResponseHeader> {
        let mut h = ResponseHeader::build(self.status(), Some(6 + self.headers.len()))?;
        h.insert_header("Content-Type", "application/json")?;
        h.insert_header("Cache-Control", "no-store")?;
        h.insert_header("Pragma", "no-cache")?;
        h.insert_header("Content-Length", len.to_string())?;
        for (name, value) in &self.headers {
            h.insert_header(*name, value.as_ref())?;
        }
        if self.close {
            h.insert_header("Connection", "close")?;
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dcrgate_policies::Rule;

    #[test]
    fn body_is_rfc7591_json() {
        let r = Rejection::from_violations(&[
            Violation::new(
                Rule::RedirectUris,
                "redirect_uris: `http://x` does not use https",
            ),
            Violation::new(Rule::Scope, "scope must include openid"),
        ]);
        assert_eq!(r.status(), 400);
        let v: serde_json::Value = serde_json::from_slice(&r.body()).unwrap();
        assert_eq!(v["error"], "invalid_redirect_uri");
        assert!(v["error_description"].as_str().unwrap().contains("openid"));
        let h = r.response_header(10).unwrap();
        assert_eq!(h.headers.get("cache-control").unwrap(), "no-store");
    }
}
