//! The in-process replay store (moka): bounded, each identifier expiring after its own TTL.
//!
//! Only this process sees the identifiers, so a request object replayed to another replica is
//! not caught; use the Redis store when running more than one. When full, the least recently
//! used identifiers are dropped first (they are also the closest to expiring), so a flood of
//! more than `capacity` identifiers within one TTL makes the oldest ones acceptable again; each
//! such drop is counted (`dcrgate_replay_evictions_total`), so it can be alerted on.

use std::fmt;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::policy::EvictionPolicy;
use moka::Expiry;

use super::Seen;

/// Each entry's value is its own TTL.
struct TtlExpiry;

impl Expiry<String, Duration> for TtlExpiry {
    fn expire_after_create(&self, _: &String, ttl: &Duration, _: Instant) -> Option<Duration> {
        Some(*ttl)
    }
    // Reads and updates keep the expiry set at creation (the trait's defaults).
}

/// Identifiers seen by this process.
#[derive(Clone)]
pub struct MemoryStore {
    seen: Cache<String, Duration>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStore")
            .field("capacity", &self.seen.policy().max_capacity())
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// A store holding at most `capacity` identifiers.
    pub fn new(capacity: u64) -> Self {
        Self::build(capacity, None)
    }

    /// A store holding at most `capacity` identifiers, counting in `evictions` each one
    /// dropped before it expired because the store was full.
    pub fn counted(capacity: u64, evictions: prometheus::IntCounter) -> Self {
        Self::build(capacity, Some(evictions))
    }

    fn build(capacity: u64, evictions: Option<prometheus::IntCounter>) -> Self {
        let mut builder = Cache::builder()
            .max_capacity(capacity)
            // LRU admits every new identifier (TinyLFU could refuse to keep one that was
            // just recorded, letting its replay through).
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(TtlExpiry);
        if let Some(counter) = evictions {
            builder = builder.eviction_listener(move |_, _, cause| {
                if cause == moka::notification::RemovalCause::Size {
                    counter.inc();
                }
            });
        }
        Self {
            seen: builder.build(),
        }
    }

    /// Records `id` for `ttl` unless it is already recorded; atomic per identifier.
    pub async fn check_and_record(&self, id: &str, ttl: Duration) -> Seen {
        let entry = self
            .seen
            .entry_by_ref(id)
            .or_insert_with(async move { ttl })
            .await;
        if entry.is_fresh() {
            Seen::First
        } else {
            Seen::Replayed
        }
    }

    /// Forgets `id`.
    pub async fn release(&self, id: &str) {
        self.seen.invalidate(id).await;
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_released_id_is_first_again() {
        let s = MemoryStore::new(100);
        assert_eq!(s.check_and_record("a", MINUTE).await, Seen::First);
        s.release("a").await;
        assert_eq!(s.check_and_record("a", MINUTE).await, Seen::First);
        assert_eq!(s.check_and_record("a", MINUTE).await, Seen::Replayed);
    }

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);
    const MINUTE: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn a_full_store_counts_what_it_drops_and_a_dropped_id_is_first_again() {
        let evictions = prometheus::IntCounter::new("evictions", "test").expect("counter");
        let store = MemoryStore::counted(10, evictions.clone());
        for i in 0..200 {
            assert_eq!(
                store.check_and_record(&format!("id-{i}"), MINUTE).await,
                Seen::First
            );
        }
        store.seen.run_pending_tasks().await;
        assert!(
            store.seen.entry_count() <= 10,
            "{}",
            store.seen.entry_count()
        );
        assert!(evictions.get() >= 190, "{}", evictions.get());
        // What the flood pushed out is accepted again: the documented limit of the bound.
        assert_eq!(store.check_and_record("id-0", MINUTE).await, Seen::First);
        // Expiry is not eviction.
        let expired = prometheus::IntCounter::new("expired", "test").expect("counter");
        let store = MemoryStore::counted(10, expired.clone());
        store
            .check_and_record("short", Duration::from_millis(50))
            .await;
        tokio::time::sleep(Duration::from_millis(120)).await;
        store.seen.run_pending_tasks().await;
        assert_eq!(store.check_and_record("short", MINUTE).await, Seen::First);
        store.seen.run_pending_tasks().await;
        assert_eq!(expired.get(), 0);
    }

    #[tokio::test]
    async fn first_then_replayed() {
        let store = MemoryStore::new(100);
        assert_eq!(store.check_and_record("iss:a", MINUTE).await, Seen::First);
        assert_eq!(
            store.check_and_record("iss:a", MINUTE).await,
            Seen::Replayed
        );
        assert_eq!(
            store.check_and_record("iss:a", MINUTE).await,
            Seen::Replayed
        );
    }

    #[tokio::test]
    async fn distinct_ids_are_independent() {
        let store = MemoryStore::new(100);
        assert_eq!(store.check_and_record("iss:a", MINUTE).await, Seen::First);
        assert_eq!(store.check_and_record("iss:b", MINUTE).await, Seen::First);
        assert_eq!(store.check_and_record("other:a", MINUTE).await, Seen::First);
        assert_eq!(
            store.check_and_record("iss:b", MINUTE).await,
            Seen::Replayed
        );
        // A clone shares the record.
        let clone = store.clone();
        assert_eq!(
            clone.check_and_record("iss:a", MINUTE).await,
            Seen::Replayed
        );
    }

    #[tokio::test]
    async fn concurrent_sightings_have_one_first() {
        let store = MemoryStore::new(100);
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { store.check_and_record("iss:race", MINUTE).await })
            })
            .collect();
        let mut firsts = 0;
        for t in tasks {
            if t.await.expect("task") == Seen::First {
                firsts += 1;
            }
        }
        assert_eq!(firsts, 1);
    }

    #[tokio::test]
    async fn each_entry_expires_after_its_own_ttl() {
        let store = MemoryStore::new(100);
        let start = Instant::now();
        assert_eq!(
            store.check_and_record("iss:short", SECOND).await,
            Seen::First
        );
        assert_eq!(
            store.check_and_record("iss:long", MINUTE).await,
            Seen::First
        );
        assert_eq!(
            store.check_and_record("iss:short", SECOND).await,
            Seen::Replayed
        );
        // Poll (bounded) until the short one is forgotten.
        let deadline = start + Duration::from_secs(5);
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if store.check_and_record("iss:short", SECOND).await == Seen::First {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "a 1 s entry still present after 5 s"
            );
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(950),
            "expired early: {elapsed:?}"
        );
        // The long one is still there, and the short one is recorded afresh.
        assert_eq!(
            store.check_and_record("iss:long", MINUTE).await,
            Seen::Replayed
        );
        assert_eq!(
            store.check_and_record("iss:short", SECOND).await,
            Seen::Replayed
        );
    }

    #[tokio::test]
    async fn capacity_is_bounded_and_newest_kept() {
        let store = MemoryStore::new(50);
        for i in 0..1000 {
            let id = format!("iss:{i}");
            assert_eq!(store.check_and_record(&id, MINUTE).await, Seen::First);
        }
        store.seen.run_pending_tasks().await;
        assert!(
            store.seen.entry_count() <= 50,
            "{}",
            store.seen.entry_count()
        );
        assert_eq!(
            store.check_and_record("iss:999", MINUTE).await,
            Seen::Replayed
        );
    }
}
