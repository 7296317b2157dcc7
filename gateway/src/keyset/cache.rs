//! The key set cache (moka): one fetch in flight per URL, a TTL for good key sets and a short
//! one for failures (requests fail closed meanwhile), and at most one refetch per URL per
//! cooldown when a request names a `kid` the cached set lacks (key rotation); a set fetched
//! while the request waited counts as that refetch, so an unknown `kid` on a new URL costs one
//! fetch, not two.
//!
//! Memory is bounded by bytes, not entries: each entry weighs what its parsed keys hold (and
//! at least `cache_max_bytes / cache_capacity`, so the entry bound holds too), and the sum
//! stays under `key_sets.cache_max_bytes`. Each host may fill at most
//! `key_sets.max_urls_per_host` entries; past that, a URL on that host is fetched for its
//! request and not kept, so one TPP minting URLs (`?v=1`, `?v=2`, ...) cannot push the other
//! hosts' key sets out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::notification::RemovalCause;
use moka::Expiry;
use url::Url;

use crate::config::KeySets;
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
    host: String,
    result: Result<Arc<JwkSet>, FetchError>,
}

impl Fetched {
    fn weight(&self) -> usize {
        self.host.len()
            + 64
            + match &self.result {
                Ok(set) => set.weight(),
                Err(e) => 32 + e.to_string().len(),
            }
    }
}

/// Entries cached per host.
#[derive(Default)]
struct HostCounts(Mutex<HashMap<String, usize>>);

impl HostCounts {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, host: &str) -> usize {
        self.lock().get(host).copied().unwrap_or(0)
    }

    fn added(&self, host: &str) {
        *self.lock().entry(host.to_owned()).or_default() += 1;
    }

    fn removed(&self, host: &str) {
        let mut map = self.lock();
        if let Some(n) = map.get_mut(host) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(host);
            }
        }
    }
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
    hosts: Arc<HostCounts>,
    max_per_host: usize,
}

impl KeySetCache {
    /// A cache configured by `[key_sets]`.
    pub fn new(cfg: &KeySets, fetcher: KeySetFetcher, metrics: Arc<Metrics>) -> Self {
        let hosts = Arc::new(HostCounts::default());
        let floor = (cfg.cache_max_bytes / cfg.cache_capacity.max(1)).max(1);
        let listener_hosts = Arc::clone(&hosts);
        let sets = Cache::builder()
            .max_capacity(cfg.cache_max_bytes)
            .weigher(move |key: &String, entry: &Entry| -> u32 {
                let bytes = (key.len() + entry.weight()) as u64;
                u32::try_from(bytes.max(floor)).unwrap_or(u32::MAX)
            })
            .eviction_listener(move |_key, entry: Entry, _cause: RemovalCause| {
                listener_hosts.removed(&entry.host);
            })
            .expire_after(EntryExpiry {
                ok: cfg.cache_ttl,
                failed: cfg.failure_ttl,
            })
            .build();
        let refetched = Cache::builder()
            .max_capacity(cfg.cache_capacity)
            .time_to_live(cfg.refetch_cooldown)
            .build();
        Self {
            sets,
            refetched,
            fetcher,
            metrics,
            hosts,
            max_per_host: cfg.max_urls_per_host,
        }
    }

    /// Fetch `url` for the cache: the entry counts against its host.
    async fn fetch_for_cache(&self, url: &Url) -> Entry {
        let entry = self.fetch(url).await;
        self.hosts.added(&entry.host);
        entry
    }

    /// How many entries the cache holds for `host` (for tests and diagnostics).
    pub fn entries_for_host(&self, host: &str) -> usize {
        self.hosts.count(host)
    }

    /// The cache's current weight in bytes, after pending maintenance.
    pub async fn weighted_size(&self) -> u64 {
        self.sets.run_pending_tasks().await;
        self.sets.weighted_size()
    }

    /// The key set at `url` is cached and usable, fetching it now if it is not (readiness).
    pub async fn ensure(&self, url: &Url) -> Result<(), KeySetError> {
        let key = url.as_str().to_owned();
        let entry = self.sets.get_with(key, self.fetch_for_cache(url)).await;
        match &entry.result {
            Ok(_) => Ok(()),
            Err(e) => Err(KeySetError::Unavailable(e.clone())),
        }
    }

    /// The key set at `url`, cached or fetched now (for what it lists, see
    /// [`JwkSet::listing`]).
    pub async fn set(&self, url: &Url) -> Result<Arc<JwkSet>, KeySetError> {
        let entry = self.entry(url).await;
        match &entry.result {
            Ok(set) => Ok(Arc::clone(set)),
            Err(e) => Err(KeySetError::Unavailable(e.clone())),
        }
    }

    /// The cache entry for `url`: a hit, or one fetch however many requests wait for it (kept
    /// unless the URL's host has its share of the cache).
    async fn entry(&self, url: &Url) -> Entry {
        let key = url.as_str().to_owned();
        let host = url.host_str().unwrap_or_default();
        match self.sets.get(&key).await {
            Some(e) => {
                self.metrics.key_set_cache.with_label_values(&["hit"]).inc();
                e
            }
            None => {
                self.metrics
                    .key_set_cache
                    .with_label_values(&["miss"])
                    .inc();
                if self.hosts.count(host) >= self.max_per_host {
                    // This host has its share of the cache: fetch for this request only.
                    self.fetch(url).await
                } else {
                    // get_with runs one fetch per key however many requests wait for it.
                    self.sets.get_with(key, self.fetch_for_cache(url)).await
                }
            }
        }
    }

    /// The usable keys named `kid` in the key set at `url`.
    pub async fn keys(&self, url: &Url, kid: &str) -> Result<Vec<VerifyingKey>, KeySetError> {
        let asked = Instant::now();
        let key = url.as_str().to_owned();
        let entry = self.entry(url).await;
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
        // Unknown kid: the TPP may have rotated. A set fetched while this request waited is
        // already the fresh one; otherwise refetch, but only once per URL per cooldown, so a
        // stream of made-up kids cannot turn the gateway into a load generator.
        if entry.at >= asked {
            return Err(KeySetError::UnknownKid);
        }
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
                if self.sets.contains_key(&key) {
                    // Replaces the cached entry: the listener counts the old one out.
                    self.hosts.added(&fresh.host);
                    self.sets.insert(key, fresh.clone()).await;
                }
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
        let result = self.fetcher.fetch(url).await.map(Arc::new);
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
            host: url.host_str().unwrap_or_default().to_owned(),
            result,
        })
    }
}
