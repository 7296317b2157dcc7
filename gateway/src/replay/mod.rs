//! Replay protection for request-object `jti`s: each identifier is recorded once, for as long as
//! the request object could still be accepted, and a second sighting within that time is a
//! replay. The record is kept in process ([`memory`]) or in Redis ([`redis`]), shared by all
//! replicas of the gateway.

pub mod memory;
pub mod redis;

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

pub use memory::MemoryStore;
pub use redis::{RedisStore, RedisUrl, RedisUrlError, StoreError};

/// The shortest time an identifier is remembered (Redis `EX` must be at least one second).
pub const MIN_TTL: Duration = Duration::from_secs(1);
/// The longest time an identifier is remembered.
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest accepted `replay.timeout_ms`.
const MAX_TIMEOUT_MS: u64 = 10_000;
/// The largest accepted `replay.memory_capacity`.
const MAX_MEMORY_CAPACITY: u64 = 10_000_000;
/// The longest accepted `replay.key_prefix`, bytes.
const MAX_KEY_PREFIX_LEN: usize = 128;

/// `[replay]` section of the gateway config (TOML), unknown keys refused.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplaySection {
    /// Where identifiers are recorded: `memory` (this process only) or `redis` (shared).
    pub store: StoreKind,
    /// `redis://[user:password@]host:port[/db]`; required when `store = "redis"`.
    pub redis_url: Option<String>,
    /// Bound on one store operation (connect, authenticate, command), milliseconds.
    pub timeout_ms: u64,
    /// Prefix of the Redis keys.
    pub key_prefix: String,
    /// What a request gets when the store cannot answer: `reject` (fail closed) or `accept`.
    pub on_store_error: OnStoreError,
    /// How many identifiers the memory store holds at most (the least recently used go first).
    pub memory_capacity: u64,
}

impl Default for ReplaySection {
    fn default() -> Self {
        Self {
            store: StoreKind::Memory,
            redis_url: None,
            timeout_ms: 250,
            key_prefix: "dcrgate:jti:".to_owned(),
            on_store_error: OnStoreError::Reject,
            memory_capacity: 100_000,
        }
    }
}

/// Credentials in `redis_url` are not printed.
impl fmt::Debug for ReplaySection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplaySection")
            .field("store", &self.store)
            .field("redis_url", &self.redis_url.as_ref().map(|_| "<redacted>"))
            .field("timeout_ms", &self.timeout_ms)
            .field("key_prefix", &self.key_prefix)
            .field("on_store_error", &self.on_store_error)
            .field("memory_capacity", &self.memory_capacity)
            .finish()
    }
}

impl ReplaySection {
    /// Checks every value; on failure names the dotted key and what is wrong.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.timeout_ms == 0 || self.timeout_ms > MAX_TIMEOUT_MS {
            return Err((
                "replay.timeout_ms",
                format!("must be between 1 and {MAX_TIMEOUT_MS}"),
            ));
        }
        if self.key_prefix.len() > MAX_KEY_PREFIX_LEN {
            return Err((
                "replay.key_prefix",
                format!("must be at most {MAX_KEY_PREFIX_LEN} bytes"),
            ));
        }
        if !self.key_prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err((
                "replay.key_prefix",
                "must be printable ASCII without spaces".to_owned(),
            ));
        }
        if self.memory_capacity == 0 || self.memory_capacity > MAX_MEMORY_CAPACITY {
            return Err((
                "replay.memory_capacity",
                format!("must be between 1 and {MAX_MEMORY_CAPACITY}"),
            ));
        }
        match (&self.redis_url, self.store) {
            (Some(url), _) => {
                RedisUrl::parse(url).map_err(|e| ("replay.redis_url", e.to_string()))?;
            }
            (None, StoreKind::Redis) => {
                return Err((
                    "replay.redis_url",
                    "is required when replay.store = \"redis\"".to_owned(),
                ));
            }
            (None, StoreKind::Memory) => {}
        }
        Ok(())
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// `replay.store`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In this process: replicas do not see each other's identifiers.
    #[default]
    Memory,
    /// In Redis, shared by every replica.
    Redis,
}

/// `replay.on_store_error`: what to do with a request when the store cannot answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnStoreError {
    /// Refuse the request (fail closed).
    #[default]
    Reject,
    /// Let the request through unchecked (fail open).
    Accept,
}

/// The `[replay]` section could not be turned into a store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplaySetupError {
    /// A value is not acceptable.
    #[error("key `{key}`: {reason}")]
    Invalid {
        /// The dotted key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

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
    /// Validates the section and builds its store. Redis is not contacted here: connections
    /// are made on first use.
    pub fn from_config(cfg: &ReplaySection) -> Result<Self, ReplaySetupError> {
        cfg.validate()
            .map_err(|(key, reason)| ReplaySetupError::Invalid { key, reason })?;
        match (cfg.store, &cfg.redis_url) {
            (StoreKind::Memory, _) => Ok(ReplayStore::Memory(memory::MemoryStore::new(
                cfg.memory_capacity,
            ))),
            (StoreKind::Redis, Some(url)) => {
                let url = RedisUrl::parse(url).map_err(|e| ReplaySetupError::Invalid {
                    key: "replay.redis_url",
                    reason: e.to_string(),
                })?;
                Ok(ReplayStore::Redis(redis::RedisStore::new(
                    url,
                    cfg.key_prefix.clone(),
                    cfg.timeout(),
                )))
            }
            (StoreKind::Redis, None) => Err(ReplaySetupError::Invalid {
                key: "replay.redis_url",
                reason: "is required when replay.store = \"redis\"".to_owned(),
            }),
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

    fn section(toml_text: &str) -> Result<ReplaySection, toml::de::Error> {
        toml::from_str(toml_text)
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
        assert_eq!(s.validate(), Ok(()));
        let store = ReplayStore::from_config(&s).expect("memory store");
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
        let store = ReplayStore::from_config(&s).expect("redis store");
        assert_eq!(store.kind(), "redis");
    }

    #[test]
    fn validation_names_the_key() {
        let key = |text: &str| section(text).expect("parses").validate().map_err(|e| e.0);
        assert_eq!(key("store = \"redis\""), Err("replay.redis_url"));
        assert_eq!(
            key("store = \"redis\"\nredis_url = \"http://127.0.0.1:6379\""),
            Err("replay.redis_url")
        );
        assert_eq!(key("timeout_ms = 0"), Err("replay.timeout_ms"));
        assert_eq!(key("timeout_ms = 60000"), Err("replay.timeout_ms"));
        assert_eq!(key("key_prefix = \"a b\""), Err("replay.key_prefix"));
        assert_eq!(key("memory_capacity = 0"), Err("replay.memory_capacity"));
        let err = ReplayStore::from_config(&section("store = \"redis\"").expect("parses"))
            .expect_err("refused");
        assert!(matches!(
            err,
            ReplaySetupError::Invalid {
                key: "replay.redis_url",
                ..
            }
        ));
    }

    #[test]
    fn debug_does_not_print_the_redis_password() {
        let s = section("store = \"redis\"\nredis_url = \"redis://u:hunter2@127.0.0.1:6379\"")
            .expect("parses");
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        let store = ReplayStore::from_config(&s).expect("redis store");
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
