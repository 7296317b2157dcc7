//! OCSP for client certificates: the responder a leaf names (authorityInfoAccess) asked about it
//! through the guarded outbound client, answers verified (`dcrgate_ocsp::verify`) and cached.
//!
//! An answer is cached until its nextUpdate, at most `revocation.ocsp_max_cache_seconds`; a
//! failed or unknown answer for `revocation.retry_seconds`, so a responder that is down is not
//! asked on every request. Concurrent requests about one certificate share one exchange
//! (single-flight), so a busy TPP causes at most one exchange per certificate per cache
//! lifetime. The handshake only reads the cache ([`OcspCache::peek`]); a certificate whose
//! status is not cached yet is asked about when its first request arrives
//! ([`OcspCache::status`]), the handshake having started the exchange already.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use dcrgate_ocsp::verify::{Clock, IssuerKey};
use dcrgate_ocsp::{request, response, CertId, CertStatus};
use http::header;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::X509Certificate;

use crate::clock::unix_now;
use crate::config::OcspSettings;
use crate::metrics::Metrics;
use crate::outbound::{request_to, Expect, HttpsClient, OutboundError, Target};

/// id-ad-ocsp.
const ID_AD_OCSP: &str = "1.3.6.1.5.5.7.48.1";
/// Largest answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Tolerated clock difference with responders.
const SKEW_SECS: i64 = 300;
/// Certificates whose answers are cached.
const CAPACITY: u64 = 100_000;

/// What OCSP says about a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OcspStatus {
    /// A verified, fresh answer: good.
    Good,
    /// A verified answer: revoked.
    Revoked,
    /// A verified answer: the responder does not know it.
    Unknown,
    /// No usable answer (responder down, not allowed, answer not verified or stale).
    Unavailable,
}

#[derive(Debug, Clone, Copy)]
struct Cached {
    status: OcspStatus,
    ttl: Duration,
}

struct ByAnswer;

impl moka::Expiry<CertId, Cached> for ByAnswer {
    fn expire_after_create(&self, _: &CertId, value: &Cached, _: Instant) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// What one question needs: the certificate, its issuer, where to ask, under which name.
#[derive(Debug, Clone)]
pub struct Question {
    /// The certificate's CertID.
    pub id: CertId,
    /// Its issuer's name and key.
    pub issuer: IssuerKey,
    /// The responder.
    pub url: url::Url,
    /// The issuer policy's name (metric label).
    pub policy: String,
}

/// The answers, shared across reloads.
pub struct OcspCache {
    client: Option<HttpsClient>,
    answers: moka::sync::Cache<CertId, Cached>,
    inflight: moka::future::Cache<CertId, Cached>,
    metrics: Option<Arc<Metrics>>,
}

/// The first OCSP responder URI a certificate names (authorityInfoAccess), unparsed.
pub fn responder_uri<'a>(cert: &'a X509Certificate<'_>) -> Option<&'a str> {
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityInfoAccess(aia) => {
                aia.accessdescs.iter().find_map(|d| {
                    match (
                        &d.access_location,
                        d.access_method.to_id_string() == ID_AD_OCSP,
                    ) {
                        (GeneralName::URI(uri), true) => Some(*uri),
                        _ => None,
                    }
                })
            }
            _ => None,
        })
}

/// A responder URI as a URL, when it is http or https.
pub fn responder_url(uri: &str) -> Option<url::Url> {
    url::Url::parse(uri)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
}

impl OcspCache {
    /// A cache asking responders with `client` (none: every question is unavailable).
    pub fn new(client: Option<HttpsClient>, metrics: Option<Arc<Metrics>>) -> Self {
        Self {
            client,
            answers: moka::sync::Cache::builder()
                .max_capacity(CAPACITY)
                .expire_after(ByAnswer)
                .build(),
            inflight: moka::future::Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(Duration::from_secs(120))
                .build(),
            metrics,
        }
    }

    /// The cached status, if any (the handshake's read).
    pub fn peek(&self, id: &CertId) -> Option<OcspStatus> {
        self.answers.get(id).map(|c| c.status)
    }

    /// Start finding the status of `q` in the background, when not cached.
    pub fn prefetch(self: &Arc<Self>, q: Question, settings: OcspSettings) {
        if self.answers.contains_key(&q.id) {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let this = Arc::clone(self);
            rt.spawn(async move {
                this.status(&q, &settings).await;
            });
        }
    }

    /// The status of `q`: cached, or from one exchange shared by every concurrent caller.
    pub async fn status(&self, q: &Question, settings: &OcspSettings) -> OcspStatus {
        if let Some(c) = self.answers.get(&q.id) {
            return c.status;
        }
        let cached = self
            .inflight
            .get_with_by_ref(&q.id, async {
                if let Some(c) = self.answers.get(&q.id) {
                    return c;
                }
                let c = self.exchange(q, settings).await;
                self.answers.insert(q.id.clone(), c);
                c
            })
            .await;
        self.inflight.invalidate(&q.id).await;
        cached.status
    }

    async fn exchange(&self, q: &Question, settings: &OcspSettings) -> Cached {
        let retry = settings.retry;
        let host = q.url.host_str().unwrap_or_default().to_ascii_lowercase();
        let short = |status| Cached { status, ttl: retry };
        if !settings.allowed_hosts.contains(&host) {
            self.count(&q.policy, "refused");
            tracing::warn!(issuer = %q.policy, host = %host, "OCSP responder host not in revocation.allowed_hosts");
            return short(OcspStatus::Unavailable);
        }
        let Some(client) = &self.client else {
            self.count(&q.policy, "failed");
            return short(OcspStatus::Unavailable);
        };
        let body = match tokio::time::timeout(settings.timeout, ask(client, q, settings)).await {
            Ok(Ok(body)) => body,
            Ok(Err(e)) => {
                self.count(&q.policy, "failed");
                tracing::warn!(issuer = %q.policy, error = %e, "OCSP responder not reached");
                return short(OcspStatus::Unavailable);
            }
            Err(_) => {
                self.count(&q.policy, "failed");
                tracing::warn!(issuer = %q.policy, "OCSP responder timed out");
                return short(OcspStatus::Unavailable);
            }
        };
        let now = unix_now();
        let max_cache = i64::try_from(settings.max_cache.as_secs()).unwrap_or(i64::MAX);
        let clock = Clock {
            now,
            skew: SKEW_SECS,
            max_age: max_cache,
        };
        let verified = response::parse(&body)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                dcrgate_ocsp::verify::verify(&r, &q.id, &q.issuer, clock).map_err(|e| e.to_string())
            });
        match verified {
            Ok(answer) => {
                let (status, label) = match answer.status {
                    CertStatus::Good => (OcspStatus::Good, "good"),
                    CertStatus::Revoked { .. } => (OcspStatus::Revoked, "revoked"),
                    CertStatus::Unknown => (OcspStatus::Unknown, "unknown"),
                };
                self.count(&q.policy, label);
                let until = answer
                    .next_update
                    .map_or(max_cache, |n| (n - now).clamp(1, max_cache));
                let ttl = match status {
                    OcspStatus::Unknown => retry,
                    _ => Duration::from_secs(until.unsigned_abs()),
                };
                Cached { status, ttl }
            }
            Err(e) => {
                self.count(&q.policy, "invalid");
                tracing::warn!(issuer = %q.policy, error = %e, "OCSP answer not accepted");
                short(OcspStatus::Unavailable)
            }
        }
    }

    fn count(&self, policy: &str, result: &str) {
        if let Some(m) = &self.metrics {
            m.ocsp_exchanges.with_label_values(&[policy, result]).inc();
        }
    }
}

/// POST the request to the responder; the body of its answer.
async fn ask(
    client: &HttpsClient,
    q: &Question,
    settings: &OcspSettings,
) -> Result<Vec<u8>, OutboundError> {
    let host = q.url.host_str().unwrap_or_default();
    let request = request_to(http::Method::POST, &q.url)
        .header(header::CONTENT_TYPE, request::CONTENT_TYPE)
        .header(header::ACCEPT, response::CONTENT_TYPE)
        .body(Bytes::from(request::encode(&q.id)))
        .map_err(|_| OutboundError::Request)?;
    let target = Target {
        host,
        port: q.url.port_or_known_default().unwrap_or(80),
        allow_private: settings.allow_private,
        plaintext: q.url.scheme() == "http",
    };
    let expect = Expect {
        content_types: &[response::CONTENT_TYPE],
        max_bytes: MAX_ANSWER_BYTES,
    };
    client.fetch(target, request, expect).await
}
