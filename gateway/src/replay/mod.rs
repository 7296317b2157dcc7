//! Replay protection for request-object `jti`s: each identifier is recorded once, for as long as
//! the request object could still be accepted, and a second sighting within that time is a
//! replay. The record is kept in process ([`memory`]) or in Redis ([`redis`]), shared by all
//! replicas of the gateway.

pub mod memory;
pub mod redis;

use std::fmt;
use std::time::Duration;

pub use crate::config::{OnStoreError, RedisUrl, RedisUrlError, StoreKind};
pub use crate::shared_redis::StoreError;
pub use memory::MemoryStore;
pub use redis::RedisStore;

use crate::config::{Replay, ReplayBackend};
use crate::shared_redis::SharedRedis;

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
    /// The store the validated `[replay]` settings name, on `redis` when they name Redis
    /// (validation ensures it is configured; without it the store is in memory). Redis is not
    /// contacted here: the connection is made on first use.
    pub fn new(cfg: &Replay, redis: Option<&SharedRedis>) -> Self {
        Self::build(cfg, redis, None)
    }

    /// [`ReplayStore::new`], the memory store counting in `evictions` the identifiers it drops
    /// before they expire because it is full.
    pub fn counted(
        cfg: &Replay,
        redis: Option<&SharedRedis>,
        evictions: prometheus::IntCounter,
    ) -> Self {
        Self::build(cfg, redis, Some(evictions))
    }

    fn build(
        cfg: &Replay,
        redis: Option<&SharedRedis>,
        evictions: Option<prometheus::IntCounter>,
    ) -> Self {
        match (&cfg.backend, redis) {
            (ReplayBackend::Redis, Some(redis)) => ReplayStore::Redis(redis::RedisStore::new(
                redis.clone(),
                cfg.key_prefix.clone(),
            )),
            (ReplayBackend::Memory { capacity }, _) => ReplayStore::Memory(match evictions {
                Some(counter) => memory::MemoryStore::counted(*capacity, counter),
                None => memory::MemoryStore::new(*capacity),
            }),
            // Unreachable after validation; if it were reached, every check fails (as configured
            // by `on_store_error`) rather than falling back to a store the replicas do not share.
            (ReplayBackend::Redis, None) => ReplayStore::Redis(redis::RedisStore::new(
                SharedRedis::unconfigured(),
                cfg.key_prefix.clone(),
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
    use crate::config::file::{RedisSection, ReplaySection};
    use crate::config::Validator;

    fn section(toml_text: &str) -> Result<ReplaySection, toml::de::Error> {
        toml::from_str(toml_text)
    }

    fn redis_section(toml_text: &str) -> Result<RedisSection, toml::de::Error> {
        toml::from_str(toml_text)
    }

    fn validator() -> Validator<'static> {
        Validator::new(std::path::Path::new("dcrgate.toml"))
    }

    /// The sections validated as `dcrgate.toml`'s `[replay]` and `[redis]`; on failure the
    /// dotted key.
    fn validate(
        s: &ReplaySection,
        redis: &str,
    ) -> Result<(Replay, Option<SharedRedis>), &'static str> {
        let v = validator();
        let redis = v
            .redis(&redis_section(redis).expect("redis section parses"))
            .map_err(|e| e.key().unwrap_or("not a key"))?;
        let replay = v
            .replay(s, redis.as_ref())
            .map_err(|e| e.key().unwrap_or("not a key"))?;
        Ok((replay, redis.as_ref().map(SharedRedis::new)))
    }

    #[test]
    fn defaults_are_memory_fail_closed() {
        let s = section("").expect("empty section");
        assert_eq!(s.store, StoreKind::Memory);
        assert_eq!(s.key_prefix, "dcrgate:jti:");
        assert_eq!(s.on_store_error, OnStoreError::Reject);
        assert_eq!(s.memory_capacity, 100_000);
        assert_eq!(redis_section("").expect("empty").timeout_ms, 250);
        let (replay, redis) = validate(&s, "").expect("valid");
        assert!(redis.is_none());
        assert_eq!(ReplayStore::new(&replay, redis.as_ref()).kind(), "memory");
    }

    #[test]
    fn unknown_keys_and_values_are_refused() {
        assert!(section("stor = \"memory\"").is_err());
        assert!(section("store = \"memcached\"").is_err());
        assert!(section("on_store_error = \"ignore\"").is_err());
        assert!(redis_section("urls = \"redis://h\"").is_err());
        let s = section("store = \"redis\"\non_store_error = \"accept\"").expect("redis section");
        assert_eq!(s.store, StoreKind::Redis);
        assert_eq!(s.on_store_error, OnStoreError::Accept);
        let (replay, redis) = validate(&s, "url = \"redis://127.0.0.1:6379/2\"").expect("valid");
        assert_eq!(ReplayStore::new(&replay, redis.as_ref()).kind(), "redis");
    }

    #[test]
    fn the_url_can_come_from_a_file_never_from_both() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("redis-url");
        std::fs::write(&file, "rediss://gw:hunter2@redis.internal:6380/3\n").expect("write");
        let s = section("store = \"redis\"").expect("parses");
        let with_file = format!("url_file = {:?}", file.display().to_string());
        let (_, redis) = validate(&s, &with_file).expect("valid");
        let redis = redis.expect("configured");
        let printed = format!("{redis:?}");
        assert!(printed.contains("redis.internal"), "{printed}");
        assert!(!printed.contains("hunter2"), "{printed}");
        let both = format!("url = \"redis://h\"\n{with_file}");
        assert_eq!(validate(&s, &both).map(|_| ()), Err("redis.url_file"));
        std::fs::write(&file, "  \n").expect("write");
        assert_eq!(validate(&s, &with_file).map(|_| ()), Err("redis.url_file"));
        std::fs::write(&file, "http://h:1").expect("write");
        assert_eq!(validate(&s, &with_file).map(|_| ()), Err("redis.url_file"));
        let missing = format!(
            "url_file = {:?}",
            dir.path().join("nope").display().to_string()
        );
        assert_eq!(validate(&s, &missing).map(|_| ()), Err("redis.url_file"));
    }

    #[test]
    fn validation_names_the_key() {
        let key = |replay: &str, redis: &str| {
            validate(&section(replay).expect("parses"), redis).map(|_| ())
        };
        assert_eq!(key("store = \"redis\"", ""), Err("redis.url"));
        assert_eq!(
            key("store = \"redis\"", "url = \"http://127.0.0.1:6379\""),
            Err("redis.url")
        );
        assert_eq!(
            key("redis_url = \"redis://u:hunter2@h:1\"", ""),
            Err("replay.redis_url")
        );
        assert_eq!(key("timeout_ms = 250", ""), Err("replay.timeout_ms"));
        assert_eq!(
            key("", "url = \"redis://h\"\ntimeout_ms = 0"),
            Err("redis.timeout_ms")
        );
        assert_eq!(
            key("", "url = \"redis://h\"\ntimeout_ms = 60000"),
            Err("redis.timeout_ms")
        );
        assert_eq!(key("key_prefix = \"a b\"", ""), Err("replay.key_prefix"));
        assert_eq!(
            key("memory_capacity = 0", ""),
            Err("replay.memory_capacity")
        );
        assert_eq!(
            key(
                "",
                "sentinel_master = \"m\"\nsentinels = [\"redis://s:26379\"]"
            ),
            Err("redis.url")
        );
        assert_eq!(
            key("", "url = \"redis://h\"\nsentinel_master = \"m\""),
            Err("redis.sentinels")
        );
        assert_eq!(
            key("", "url = \"redis://h\"\nsentinels = [\"redis://s:26379\"]"),
            Err("redis.sentinel_master")
        );
        assert_eq!(
            key(
                "",
                "url = \"redis://h\"\nsentinel_master = \"m\"\nsentinels = [\"redis://s:26379/1\"]"
            ),
            Err("redis.sentinels")
        );
        assert_eq!(
            key(
                "",
                "url = \"redis://h\"\nsentinel_master = \"m\"\nsentinels = [\"redis://s:1\", \"rediss://s:2\"]"
            ),
            Err("redis.sentinels")
        );
        assert_eq!(key("", "url = \"rediss://h#insecure\""), Err("redis.url"));
        assert_eq!(
            key("", "url = \"redis://h\"\nca_file = \"no-such-file.pem\""),
            Err("redis.ca_file")
        );
        assert_eq!(
            key("", "url = \"redis://h\"\ncertificate = \"c.pem\""),
            Err("redis.private_key")
        );
    }

    #[test]
    fn debug_does_not_print_the_redis_password() {
        let s =
            section("store = \"redis\"\nredis_url = \"redis://u:hunter2@h:1\"").expect("parses");
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        let r = redis_section(
            "url = \"redis://u:hunter2@127.0.0.1:6379\"\nsentinel_master = \"m\"\nsentinels = [\"redis://:hunter3@s:26379\"]",
        )
        .expect("parses");
        let printed = format!("{r:?}");
        assert!(!printed.contains("hunter"), "{printed}");
        let s = section("store = \"redis\"").expect("parses");
        let (replay, redis) =
            validate(&s, "url = \"redis://u:hunter2@127.0.0.1:6379\"").expect("valid");
        let printed = format!("{replay:?} {redis:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        let store = ReplayStore::new(&replay, redis.as_ref());
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
