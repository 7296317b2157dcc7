//! The key set cache (moka): one fetch in flight per URL, a TTL for good key sets and a short
//! one for failures (requests fail closed meanwhile), and at most one refetch per URL per
//! cooldown when a request names a `kid` the cached set lacks (key rotation).

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::Expiry;
use url::Url;

use crate::config::KeySetSection;
use crate::jose::jwk::JwkSet;
use crate::jose::verify::VerifyingKey;
use crate::keyset::fetch::{FetchError, KeySetFetcher};
use crate::metrics::Metrics;

/// Why no key could be found for a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeySetError {
    /// The key set could not be fetched (now, or recently: failures are cached briefly).
    #[error("the key set could not be fetched: {0}")]
    Unavailable(FetchError),
    /// The key set has no usable key with the request's `kid`, even after a refetch.
    #[error("the key set has no usable key with this kid")]
    UnknownKid,
}

/// A fetch result and when it was fetched.
struct Fetched {
    at: Instant,
    result: Result<JwkSet, FetchError>,
}

type Entry = Arc<Fetched>;

struct EntryExpiry {
    ok: Duration,
    failed: Duration,
}

impl EntryExpiry {
    fn ttl(&self, entry: &Entry) -> Option<Duration> {
        Some(if entry.result.is_ok() {
            self.ok
        } else {
            self.failed
        })
    }
}

impl Expiry<String, Entry> for EntryExpiry {
    fn expire_after_create(&self, _: &String, entry: &Entry, _: Instant) -> Option<Duration> {
        self.ttl(entry)
    }
    fn expire_after_update(
        &self,
        _: &String,
        entry: &Entry,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.ttl(entry)
    }
}

/// Cached, rotation-aware access to TPP key sets.
#[derive(Clone)]
pub struct KeySetCache {
    sets: Cache<String, Entry>,
    refetched: Cache<String, ()>,
    fetcher: KeySetFetcher,
    metrics: Arc<Metrics>,
}

impl KeySetCache {
    /// A cache configured by `[key_sets]`.
    pub fn new(cfg: &KeySetSection, fetcher: KeySetFetcher, metrics: Arc<Metrics>) -> Self {
        let sets = Cache::builder()
            .max_capacity(cfg.cache_capacity)
            .expire_after(EntryExpiry {
                ok: Duration::from_secs(cfg.cache_ttl_seconds),
                failed: Duration::from_secs(cfg.failure_ttl_seconds),
            })
            .build();
        let refetched = Cache::builder()
            .max_capacity(cfg.cache_capacity)
            .time_to_live(Duration::from_secs(cfg.refetch_cooldown_seconds))
            .build();
        Self {
            sets,
            refetched,
            fetcher,
            metrics,
        }
    }

    /// The key set at `url` is cached and usable, fetching it now if it is not (readiness).
    pub async fn ensure(&self, url: &Url) -> Result<(), KeySetError> {
        let key = url.as_str().to_owned();
        let entry = self.sets.get_with(key, self.fetch(url)).await;
        match &entry.result {
            Ok(_) => Ok(()),
            Err(e) => Err(KeySetError::Unavailable(e.clone())),
        }
    }

    /// The usable keys named `kid` in the key set at `url`.
    pub async fn keys(&self, url: &Url, kid: &str) -> Result<Vec<VerifyingKey>, KeySetError> {
        let key = url.as_str().to_owned();
        let entry = match self.sets.get(&key).await {
            Some(e) => {
                self.metrics.key_set_cache.with_label_values(&["hit"]).inc();
                e
            }
            None => {
                self.metrics
                    .key_set_cache
                    .with_label_values(&["miss"])
                    .inc();
                // get_with runs one fetch per key however many requests wait for it.
                self.sets.get_with(key.clone(), self.fetch(url)).await
            }
        };
        let set = match &entry.result {
            Ok(set) => set,
            Err(e) => return Err(KeySetError::Unavailable(e.clone())),
        };
        let keys = set.get(kid);
        if !keys.is_empty() {
            self.metrics
                .key_set_age
                .observe(entry.at.elapsed().as_secs_f64());
            return Ok(keys.to_vec());
        }
        // Unknown kid: the TPP may have rotated. Refetch, but only once per URL per cooldown,
        // so a stream of made-up kids cannot turn the gateway into a load generator.
        let first = self
            .refetched
            .entry(key.clone())
            .or_insert(())
            .await
            .is_fresh();
        if !first {
            return Err(KeySetError::UnknownKid);
        }
        let fresh = self.fetch(url).await;
        match &fresh.result {
            Ok(set) => {
                let keys = set.get(kid).to_vec();
                self.metrics.key_set_age.observe(0.0);
                self.sets.insert(key, fresh.clone()).await;
                if keys.is_empty() {
                    Err(KeySetError::UnknownKid)
                } else {
                    Ok(keys)
                }
            }
            // Keep serving the last good set; this request fails closed.
            Err(e) => Err(KeySetError::Unavailable(e.clone())),
        }
    }

    async fn fetch(&self, url: &Url) -> Entry {
        let result = self.fetcher.fetch(url).await;
        let label = match &result {
            Ok(_) => "ok",
            Err(e) => e.kind(),
        };
        self.metrics
            .key_set_fetches
            .with_label_values(&[label])
            .inc();
        if let Err(e) = &result {
            tracing::warn!(host = url.host_str().unwrap_or(""), error = %e, "key set fetch failed");
        }
        Arc::new(Fetched {
            at: Instant::now(),
            result,
        })
    }
}
