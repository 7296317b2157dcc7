//! The in-process replay store (moka): bounded, each identifier expiring after its own TTL.
//!
//! Only this process sees the identifiers, so a request object replayed to another replica is
//! not caught; use the Redis store when running more than one. When full, the least recently
//! used identifiers are dropped first (they are also the closest to expiring), so a flood of
//! more than `capacity` identifiers within one TTL makes the oldest ones acceptable again.

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
        let seen = Cache::builder()
            .max_capacity(capacity)
            // LRU admits every new identifier (TinyLFU could refuse to keep one that was
            // just recorded, letting its replay through).
            .eviction_policy(EvictionPolicy::lru())
            .expire_after(TtlExpiry)
            .build();
        Self { seen }
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
