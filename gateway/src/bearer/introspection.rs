//! RFC 7662 token introspection: asking the authorization server whether a bearer access token
//! is active, and what it says about it.
//!
//! The endpoint is operator-configured (so private addresses are fine), but what it answers is
//! treated as untrusted input: redirects are never followed, the answer must be 200
//! `application/json`, its body is read only up to the size bound and parsed as strict JSON,
//! and `active` must be a real boolean. The whole exchange runs under one deadline. The gateway
//! authenticates with `client_secret_basic` and/or a TLS client certificate.
//!
//! Answers are cached by the SHA-256 of the token (the token itself is never kept), for at most
//! `max_cache_seconds` and never past the token's `exp`; inactive answers only for a couple of
//! seconds; failures not at all. Checking the answer against the request (client binding,
//! `cnf`, expiry) is the caller's job.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::{header, HeaderValue, Request};
use moka::future::Cache;
use moka::Expiry;
use serde_json::Value;

use crate::config::{
    read_secret_file, ClientSecret, HttpsEndpoint, Introspection, SecretFileError,
};
use crate::outbound::pool::PoolLimits;
use crate::outbound::{AnswerError, Expect, HttpsClient, OutboundError, Target};
use crate::tls::pem::{load_ca_bundle, load_cert_and_key, PemError};

/// Idle connections kept to the introspection endpoint, so cache misses reuse them.
const INTROSPECTION_POOL: PoolLimits = PoolLimits {
    per_endpoint: 4,
    endpoints: 1,
    idle: Duration::from_secs(60),
};

/// How long an inactive answer is remembered (bounded by `max_cache_seconds`).
const INACTIVE_TTL: Duration = Duration::from_secs(2);

/// What an introspection answer says (only the members dcrgate uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspected {
    /// Whether the token is active. When false, every other member is empty.
    pub active: bool,
    /// `client_id`: the client the token was issued to.
    pub client_id: Option<String>,
    /// `azp`: the authorized party, where the server names it.
    pub azp: Option<String>,
    /// `exp`: expiry, seconds since the epoch.
    pub exp: Option<i64>,
    /// `iss`: the issuer.
    pub iss: Option<String>,
    /// `aud`, a string or an array of strings in the answer.
    pub aud: Vec<String>,
    /// `cnf["x5t#S256"]`: the certificate the token is bound to (RFC 8705).
    pub cnf_x5t_s256: Option<String>,
    /// `token_type`.
    pub token_type: Option<String>,
}

impl Introspected {
    fn inactive() -> Self {
        Self {
            active: false,
            client_id: None,
            azp: None,
            exp: None,
            iss: None,
            aud: Vec::new(),
            cnf_x5t_s256: None,
            token_type: None,
        }
    }
}

/// Why a token could not be introspected. Never cached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntrospectionError {
    /// The whole exchange took longer than the deadline.
    #[error("timed out")]
    Timeout,
    /// The endpoint's host name did not resolve.
    #[error("host name did not resolve")]
    Dns,
    /// No TCP connection could be made.
    #[error("connection failed")]
    Connect,
    /// The TLS handshake failed, or the server refused the gateway's certificate.
    #[error("TLS failed: {0}")]
    Tls(String),
    /// HTTP-level failure.
    #[error("HTTP exchange failed")]
    Http,
    /// A redirect, which is never followed.
    #[error("answered with a redirect ({0}), which is not followed")]
    Redirect(u16),
    /// A status other than 200 (401: the gateway's credentials were refused).
    #[error("answered with status {0}")]
    Status(u16),
    /// Not `application/json`.
    #[error("answered with a non-JSON content type")]
    ContentType,
    /// Larger than the bound.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// Not a well-formed introspection answer.
    #[error("malformed answer: {0}")]
    Malformed(String),
}

impl IntrospectionError {
    /// A closed-set label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            IntrospectionError::Timeout => "timeout",
            IntrospectionError::Dns => "dns",
            IntrospectionError::Connect => "connect",
            IntrospectionError::Tls(_) => "tls",
            IntrospectionError::Http => "http",
            IntrospectionError::Redirect(_) => "redirect",
            IntrospectionError::Status(_) => "status",
            IntrospectionError::ContentType => "content_type",
            IntrospectionError::TooLarge(_) => "too_large",
            IntrospectionError::Malformed(_) => "malformed",
        }
    }
}

/// The introspector could not be set up from configuration.
#[derive(Debug, thiserror::Error)]
pub enum IntrospectionSetupError {
    /// A CA bundle, certificate or key is unusable.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// The client secret file is unusable.
    #[error("{path}: {source}")]
    Secret {
        /// The file.
        path: PathBuf,
        /// Why.
        source: SecretFileError,
    },
    /// The client id and secret cannot form a header.
    #[error("bearer.introspection: the client credentials cannot be sent in a header")]
    Credentials,
    /// rustls refused the client configuration.
    #[error("introspection TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// `Authorization: Basic` for `client_secret_basic`: id and secret form-urlencoded first
/// (RFC 6749 §2.3.1), so a `:` in either cannot shift the boundary.
fn basic_authorization(
    client_id: &str,
    secret: &str,
) -> Result<HeaderValue, IntrospectionSetupError> {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let credentials = STANDARD.encode(format!("{}:{}", enc(client_id), enc(secret)));
    let mut value = HeaderValue::from_str(&format!("Basic {credentials}"))
        .map_err(|_| IntrospectionSetupError::Credentials)?;
    value.set_sensitive(true);
    Ok(value)
}

type TokenHash = [u8; 32];

/// A cached answer and how long it may be kept.
#[derive(Clone)]
struct Entry {
    answer: Arc<Introspected>,
    ttl: Duration,
}

struct EntryExpiry;

impl Expiry<TokenHash, Entry> for EntryExpiry {
    fn expire_after_create(&self, _: &TokenHash, e: &Entry, _: Instant) -> Option<Duration> {
        Some(e.ttl)
    }
    fn expire_after_update(
        &self,
        _: &TokenHash,
        e: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(e.ttl)
    }
}

struct Inner {
    client: HttpsClient,
    endpoint: HttpsEndpoint,
    authorization: Option<HeaderValue>,
    timeout: Duration,
    max_bytes: usize,
    max_cache: Duration,
}

/// Introspects access tokens at the configured endpoint, with a cache in front.
#[derive(Clone)]
pub struct Introspector {
    inner: Arc<Inner>,
    cache: Cache<TokenHash, Entry>,
}

impl fmt::Debug for Introspector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Introspector")
            .field("endpoint", &self.inner.endpoint.authority)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl Introspector {
    /// Build from the validated `[bearer.introspection]` settings.
    pub fn new(cfg: &Introspection) -> Result<Self, IntrospectionSetupError> {
        let endpoint = cfg.endpoint.clone();
        let roots = match &cfg.ca_file {
            Some(path) => load_ca_bundle(path)?,
            None => {
                let mut roots = rustls::RootCertStore::empty();
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                roots
            }
        };
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
        let tls = match &cfg.client_certificate {
            Some((cert, key)) => {
                let (chain, key) = load_cert_and_key(cert, key)?;
                builder.with_client_auth_cert(chain, key)?
            }
            _ => builder.with_no_client_auth(),
        };
        let authorization = match &cfg.client_secret {
            Some(ClientSecret {
                client_id,
                secret_file,
            }) => {
                let secret = read_secret_file(secret_file).map_err(|source| {
                    IntrospectionSetupError::Secret {
                        path: secret_file.clone(),
                        source,
                    }
                })?;
                Some(basic_authorization(client_id, &secret)?)
            }
            None => None,
        };
        let cache = Cache::builder()
            .max_capacity(cfg.cache_capacity)
            .expire_after(EntryExpiry)
            .build();
        Ok(Self {
            inner: Arc::new(Inner {
                client: HttpsClient::new(tls, INTROSPECTION_POOL),
                endpoint,
                authorization,
                timeout: cfg.timeout,
                max_bytes: cfg.max_bytes,
                max_cache: cfg.max_cache,
            }),
            cache,
        })
    }

    /// What the authorization server says about `token`, `now` being the current time in
    /// seconds since the epoch. Concurrent introspections of one token share one request.
    pub async fn introspect(
        &self,
        token: &str,
        now: i64,
    ) -> Result<Arc<Introspected>, IntrospectionError> {
        let key: TokenHash = {
            let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
            let mut key = [0u8; 32];
            key.copy_from_slice(digest.as_ref());
            key
        };
        if let Some(hit) = self.cache.get(&key).await {
            // Belt and braces: the TTL already ends at `exp`, but the caller's clock decides.
            if hit.answer.exp.is_none_or(|exp| exp > now) {
                return Ok(hit.answer);
            }
            self.cache.invalidate(&key).await;
        }
        let inner = &self.inner;
        let entry = self
            .cache
            .try_get_with(key, async move {
                let answer = inner.introspect_uncached(token).await?;
                let ttl = inner.ttl(&answer, now);
                Ok::<_, IntrospectionError>(Entry {
                    answer: Arc::new(answer),
                    ttl,
                })
            })
            .await
            .map_err(|e| (*e).clone())?;
        Ok(entry.answer)
    }
}

impl Inner {
    /// How long an answer may be cached.
    fn ttl(&self, answer: &Introspected, now: i64) -> Duration {
        if !answer.active {
            return self.max_cache.min(INACTIVE_TTL);
        }
        match answer.exp {
            None => self.max_cache,
            Some(exp) => {
                let left = u64::try_from(exp.saturating_sub(now)).unwrap_or(0);
                self.max_cache.min(Duration::from_secs(left))
            }
        }
    }

    async fn introspect_uncached(&self, token: &str) -> Result<Introspected, IntrospectionError> {
        tokio::time::timeout(self.timeout, self.exchange(token))
            .await
            .unwrap_or(Err(IntrospectionError::Timeout))
    }

    async fn exchange(&self, token: &str) -> Result<Introspected, IntrospectionError> {
        let ep = &self.endpoint;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let mut request = Request::post(ep.target.as_str())
            .header(header::HOST, ep.authority.as_str())
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::CONTENT_LENGTH, form.len())
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, crate::outbound::USER_AGENT);
        if let Some(auth) = &self.authorization {
            request = request.header(header::AUTHORIZATION, auth.clone());
        }
        let request = request
            .body(Bytes::from(form))
            .map_err(|_| IntrospectionError::Http)?;
        // The endpoint is the operator's own: private addresses are fine.
        let target = Target {
            host: &ep.host,
            port: ep.port,
            allow_private: true,
            plaintext: false,
        };
        let expect = Expect {
            content_types: &["application/json"],
            max_bytes: self.max_bytes,
        };
        let buf = self
            .client
            .fetch(target, request, expect)
            .await
            .map_err(|e| match e {
                OutboundError::Dns | OutboundError::ForbiddenAddress => IntrospectionError::Dns,
                OutboundError::Connect => IntrospectionError::Connect,
                OutboundError::Tls(m) => IntrospectionError::Tls(m),
                OutboundError::Request => IntrospectionError::Http,
                OutboundError::Answer(AnswerError::Redirect(s)) => IntrospectionError::Redirect(s),
                OutboundError::Answer(AnswerError::Status(s)) => IntrospectionError::Status(s),
                OutboundError::Answer(AnswerError::ContentType) => IntrospectionError::ContentType,
                OutboundError::Answer(AnswerError::TooLarge(n)) => IntrospectionError::TooLarge(n),
                OutboundError::Transport(_) | OutboundError::Answer(AnswerError::Body(_)) => e
                    .tls_cause()
                    .map_or(IntrospectionError::Http, IntrospectionError::Tls),
            })?;
        parse_answer(&buf)
    }
}

/// Parse an introspection answer body.
fn parse_answer(bytes: &[u8]) -> Result<Introspected, IntrospectionError> {
    let malformed = |m: &str| IntrospectionError::Malformed(m.to_owned());
    let value = crate::jose::json::from_slice_strict(bytes)
        .map_err(|e| IntrospectionError::Malformed(e.to_string()))?;
    let Value::Object(obj) = value else {
        return Err(malformed("not a JSON object"));
    };
    match obj.get("active") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Ok(Introspected::inactive()),
        Some(_) => return Err(malformed("`active` is not a boolean")),
        None => return Err(malformed("`active` is missing")),
    }
    let string = |name: &'static str| -> Result<Option<String>, IntrospectionError> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(IntrospectionError::Malformed(format!(
                "`{name}` is not a string"
            ))),
        }
    };
    let exp = match obj.get("exp") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_i64()
                .ok_or_else(|| malformed("`exp` is not an integer"))?,
        ),
        Some(_) => return Err(malformed("`exp` is not a number")),
    };
    let aud = match obj.get("aud") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| malformed("`aud` holds a non-string"))?,
        Some(_) => return Err(malformed("`aud` is neither a string nor an array")),
    };
    let cnf_x5t_s256 = match obj.get("cnf") {
        None | Some(Value::Null) => None,
        Some(Value::Object(cnf)) => match cnf.get("x5t#S256") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(malformed("`cnf.x5t#S256` is not a string")),
        },
        Some(_) => return Err(malformed("`cnf` is not an object")),
    };
    Ok(Introspected {
        active: true,
        client_id: string("client_id")?,
        azp: string("azp")?,
        exp,
        iss: string("iss")?,
        aud,
        cnf_x5t_s256,
        token_type: string("token_type")?,
    })
}

#[cfg(test)]
mod tests;
