//! Replay protection for request-object `jti`s: each identifier is recorded once, for as long as
//! the request object could still be accepted, and a second sighting within that time is a
//! replay. The record is kept in process ([`memory`]) or in Redis ([`redis`]), shared by all
//! replicas of the gateway.

pub mod memory;
pub mod redis;

use std::fmt;
use std::time::Duration;

pub use crate::config::{OnStoreError, RedisUrl, RedisUrlError, StoreKind};
pub use memory::MemoryStore;
pub use redis::{RedisStore, StoreError};

use crate::config::{Replay, ReplayBackend};

/// The shortest time an identifier is remembered (Redis `EX` must be at least one second).
pub const MIN_TTL: Duration = Duration::from_secs(1);
/// The longest time an identifier is remembered.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Whether an identifier had been recorded before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// First sighting: the identifier is now recorded.
    First,
    /// Recorded before and not yet expired: a replay.
    Replayed,
}

/// The replay store chosen by the configuration. Cloning is cheap and shares the store.
#[derive(Clone)]
pub enum ReplayStore {
    /// In this process.
    Memory(memory::MemoryStore),
    /// In Redis.
    Redis(redis::RedisStore),
}

impl fmt::Debug for ReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayStore::Memory(s) => s.fmt(f),
            ReplayStore::Redis(s) => s.fmt(f),
        }
    }
}

impl ReplayStore {
    /// The store the validated `[replay]` settings name. Redis is not contacted here:
    /// connections are made on first use.
    pub fn new(cfg: &Replay) -> Self {
        match &cfg.backend {
            ReplayBackend::Memory { capacity } => {
                ReplayStore::Memory(memory::MemoryStore::new(*capacity))
            }
            ReplayBackend::Redis(url) => ReplayStore::Redis(redis::RedisStore::new(
                url.clone(),
                cfg.key_prefix.clone(),
                cfg.timeout,
            )),
        }
    }

    /// Record `id` as used for `ttl`. Ok(Seen::First) the first time, Ok(Seen::Replayed) if it
    /// was recorded before and has not expired; Err when the store cannot answer.
    ///
    /// `ttl` is clamped to [`MIN_TTL`]..=[`MAX_TTL`].
    pub async fn check_and_record(&self, id: &str, ttl: Duration) -> Result<Seen, StoreError> {
        let ttl = clamp_ttl(ttl);
        match self {
            ReplayStore::Memory(s) => Ok(s.check_and_record(id, ttl).await),
            ReplayStore::Redis(s) => s.check_and_record(id, ttl).await,
        }
    }

    /// Forget `id`: the request that recorded it never reached the registry, so the TPP may
    /// send it again. Err when the store cannot answer (the id then stays recorded).
    pub async fn release(&self, id: &str) -> Result<(), StoreError> {
        match self {
            ReplayStore::Memory(s) => {
                s.release(id).await;
                Ok(())
            }
            ReplayStore::Redis(s) => s.release(id).await,
        }
    }

    /// Whether the store answers: always for memory, `PING` for Redis.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            ReplayStore::Memory(_) => Ok(()),
            ReplayStore::Redis(s) => s.ping().await,
        }
    }

    /// `"memory"` or `"redis"`, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            ReplayStore::Memory(_) => "memory",
            ReplayStore::Redis(_) => "redis",
        }
    }
}

/// `ttl` bounded to [`MIN_TTL`]..=[`MAX_TTL`].
pub fn clamp_ttl(ttl: Duration) -> Duration {
    ttl.clamp(MIN_TTL, MAX_TTL)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::file::ReplaySection;
    use crate::config::Validator;

    fn section(toml_text: &str) -> Result<ReplaySection, toml::de::Error> {
        toml::from_str(toml_text)
    }

    /// The section validated as `dcrgate.toml`'s `[replay]`; on failure the dotted key.
    fn validate(s: &ReplaySection) -> Result<Replay, &'static str> {
        Validator::new(std::path::Path::new("dcrgate.toml"))
            .replay(s)
            .map_err(|e| e.key().unwrap_or("not a key"))
    }

    #[test]
    fn defaults_are_memory_fail_closed() {
        let s = section("").expect("empty section");
        assert_eq!(s.store, StoreKind::Memory);
        assert_eq!(s.redis_url, None);
        assert_eq!(s.timeout_ms, 250);
        assert_eq!(s.key_prefix, "dcrgate:jti:");
        assert_eq!(s.on_store_error, OnStoreError::Reject);
        assert_eq!(s.memory_capacity, 100_000);
        let store = ReplayStore::new(&validate(&s).expect("valid"));
        assert_eq!(store.kind(), "memory");
    }

    #[test]
    fn unknown_keys_and_values_are_refused() {
        assert!(section("stor = \"memory\"").is_err());
        assert!(section("store = \"memcached\"").is_err());
        assert!(section("on_store_error = \"ignore\"").is_err());
        let s = section("store = \"redis\"\nredis_url = \"redis://127.0.0.1:6379/2\"\non_store_error = \"accept\"")
            .expect("redis section");
        assert_eq!(s.store, StoreKind::Redis);
        assert_eq!(s.on_store_error, OnStoreError::Accept);
        let store = ReplayStore::new(&validate(&s).expect("valid"));
        assert_eq!(store.kind(), "redis");
    }

    #[test]
    fn validation_names_the_key() {
        let key = |text: &str| validate(&section(text).expect("parses")).map(|_| ());
        assert_eq!(key("store = \"redis\""), Err("replay.redis_url"));
        assert_eq!(
            key("store = \"redis\"\nredis_url = \"http://127.0.0.1:6379\""),
            Err("replay.redis_url")
        );
        assert_eq!(key("timeout_ms = 0"), Err("replay.timeout_ms"));
        assert_eq!(key("timeout_ms = 60000"), Err("replay.timeout_ms"));
        assert_eq!(key("key_prefix = \"a b\""), Err("replay.key_prefix"));
        assert_eq!(key("memory_capacity = 0"), Err("replay.memory_capacity"));
    }

    #[test]
    fn debug_does_not_print_the_redis_password() {
        let s = section("store = \"redis\"\nredis_url = \"redis://u:hunter2@127.0.0.1:6379\"")
            .expect("parses");
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        let settings = validate(&s).expect("valid");
        let printed = format!("{settings:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        let store = ReplayStore::new(&settings);
        let printed = format!("{store:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("127.0.0.1"), "{printed}");
    }

    #[test]
    fn ttl_is_clamped() {
        assert_eq!(clamp_ttl(Duration::ZERO), MIN_TTL);
        assert_eq!(clamp_ttl(Duration::from_secs(90)), Duration::from_secs(90));
        assert_eq!(clamp_ttl(Duration::from_secs(10 * 86_400)), MAX_TTL);
    }
}
