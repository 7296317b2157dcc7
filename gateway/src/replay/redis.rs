//! The shared replay store: `SET {prefix}{id} 1 NX EX {ttl}` on the shared Redis, which
//! answers `OK` when the key was absent (first sighting) and nil when it was present (replay),
//! atomically across replicas.

use std::fmt;
use std::time::Duration;

use super::{Seen, MAX_TTL, MIN_TTL};
use crate::shared_redis::{Op, SharedRedis, StoreError};

/// The Redis replay store. Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct RedisStore {
    redis: SharedRedis,
    key_prefix: String,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("redis", &self.redis)
            .field("key_prefix", &self.key_prefix)
            .finish()
    }
}

impl RedisStore {
    /// A store on `redis`; keys are `{key_prefix}{id}`.
    pub fn new(redis: SharedRedis, key_prefix: String) -> Self {
        Self { redis, key_prefix }
    }

    /// Records `id` for `ttl` (rounded up to whole seconds, clamped to the store's bounds)
    /// unless it is already recorded.
    pub async fn check_and_record(&self, id: &str, ttl: Duration) -> Result<Seen, StoreError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(id))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(ttl_seconds(ttl));
        let reply: Option<String> = self.redis.run(Op::Cmd(&cmd)).await?;
        set_nx_reply(reply)
    }

    /// Forgets `id` (`DEL`).
    pub async fn release(&self, id: &str) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(self.key(id));
        let _removed: i64 = self.redis.run(Op::Cmd(&cmd)).await?;
        Ok(())
    }

    /// Whether the server answers (`PING`), within the store's timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.redis.ping().await
    }

    fn key(&self, id: &str) -> String {
        format!("{}{}", self.key_prefix, id)
    }
}

/// `ttl` in whole seconds, rounded up, within the store's bounds.
fn ttl_seconds(ttl: Duration) -> u64 {
    let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    seconds.clamp(MIN_TTL.as_secs(), MAX_TTL.as_secs())
}

/// What `SET key 1 NX EX ttl` answered: `OK`, or nil when the key existed.
fn set_nx_reply(reply: Option<String>) -> Result<Seen, StoreError> {
    match reply.as_deref() {
        Some("OK") => Ok(Seen::First),
        None => Ok(Seen::Replayed),
        Some(_) => Err(StoreError::Protocol("unexpected reply to SET".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_nx_answers() {
        assert_eq!(set_nx_reply(Some("OK".into())), Ok(Seen::First));
        assert_eq!(set_nx_reply(None), Ok(Seen::Replayed));
        assert!(matches!(
            set_nx_reply(Some("1".into())),
            Err(StoreError::Protocol(_))
        ));
    }

    #[test]
    fn ttl_is_whole_seconds_within_bounds() {
        assert_eq!(ttl_seconds(Duration::ZERO), 1);
        assert_eq!(ttl_seconds(Duration::from_millis(1)), 1);
        assert_eq!(ttl_seconds(Duration::from_millis(1001)), 2);
        assert_eq!(ttl_seconds(Duration::from_secs(300)), 300);
        assert_eq!(ttl_seconds(Duration::from_secs(u64::MAX)), 86_400);
    }
}
