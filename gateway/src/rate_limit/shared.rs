//! The rate limiter the replicas share: GCRA (the generic cell rate algorithm, a token bucket
//! kept as one timestamp) in the shared Redis, the client's and the global limit checked and
//! recorded together by one Lua script, on the server's clock (replicas' clocks do not matter).
//!
//! A limit of rate `r` and burst `b` emits one request every `T = 1/r`; a key holds its
//! "theoretical arrival time" `tat`. A request at `now` is admitted when
//! `max(tat, now) + T − b·T ≤ now`, and then `tat` becomes `max(tat, now) + T`. A refusal by
//! the client limit leaves the global limit untouched, and a refusal by the global limit
//! leaves the client's untouched: nothing is recorded unless both admit.

use std::sync::LazyLock;

use super::{LimitScope, RateLimited};
use crate::config::RateLimits;
use crate::shared_redis::{Op, SharedRedis, StoreError};

/// The script. `KEYS`: the client's key, the global key. `ARGV`: each limit's emission
/// interval in microseconds (0: off) and burst. Answers `{0, 0}` (admitted) or
/// `{scope, wait}` (1 client, 2 global; wait in microseconds).
const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local max_wait = 1e15
local max_px = 1e12
local function check(key, interval, burst)
  local stored = redis.call('GET', key)
  local tat = now
  if stored then tat = math.max(tonumber(stored) or now, now) end
  local new_tat = tat + interval
  local wait = new_tat - burst * interval - now
  if wait > 0 then return nil, math.min(math.ceil(wait), max_wait) end
  return new_tat, 0
end
local function record(key, new_tat)
  local px = math.min(math.max(math.ceil((new_tat - now) / 1000), 1), max_px)
  redis.call('SET', key, string.format('%.0f', new_tat), 'PX', string.format('%.0f', px))
end
local ci, cb = tonumber(ARGV[1]), tonumber(ARGV[2])
local gi, gb = tonumber(ARGV[3]), tonumber(ARGV[4])
local c_tat, g_tat, wait
if ci > 0 then
  c_tat, wait = check(KEYS[1], ci, cb)
  if not c_tat then return {1, wait} end
end
if gi > 0 then
  g_tat, wait = check(KEYS[2], gi, gb)
  if not g_tat then return {2, wait} end
end
if c_tat then record(KEYS[1], c_tat) end
if g_tat then record(KEYS[2], g_tat) end
return {0, 0}
"#;

static SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(GCRA));

/// The shared limiter.
#[derive(Clone, Debug)]
pub struct SharedLimiter {
    redis: SharedRedis,
    client_prefix: String,
    global_key: String,
    client: Limit,
    global: Limit,
}

/// One limit as the script takes it.
#[derive(Clone, Copy, Debug)]
struct Limit {
    /// Microseconds between two requests at the sustained rate; 0: off.
    interval_us: f64,
    burst: f64,
}

impl Limit {
    fn new(per_second: f64, burst: f64) -> Self {
        if per_second > 0.0 {
            Self {
                interval_us: 1e6 / per_second,
                burst,
            }
        } else {
            Self {
                interval_us: 0.0,
                burst: 0.0,
            }
        }
    }
}

impl SharedLimiter {
    /// A limiter configured by `[rate_limits]`, on `redis`.
    pub fn new(cfg: &RateLimits, redis: SharedRedis) -> Self {
        Self {
            redis,
            client_prefix: format!("{}client:", cfg.key_prefix),
            global_key: format!("{}global", cfg.key_prefix),
            client: Limit::new(cfg.per_client_per_second, cfg.per_client_burst),
            global: Limit::new(cfg.global_per_second, cfg.global_burst),
        }
    }

    /// Whether the store answers (`PING`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.redis.ping().await
    }

    /// Admits one request from the client certificate `thumbprint`, refuses it, or says the
    /// store could not answer.
    pub async fn check(&self, thumbprint: &str) -> Result<Result<(), RateLimited>, StoreError> {
        if self.client.interval_us == 0.0 && self.global.interval_us == 0.0 {
            return Ok(Ok(()));
        }
        let mut invocation = SCRIPT.prepare_invoke();
        invocation
            .key(format!("{}{thumbprint}", self.client_prefix))
            .key(&self.global_key)
            .arg(self.client.interval_us)
            .arg(self.client.burst)
            .arg(self.global.interval_us)
            .arg(self.global.burst);
        let (scope, wait_us): (i64, i64) = self.redis.run(Op::Script(&invocation)).await?;
        let scope = match scope {
            0 => return Ok(Ok(())),
            1 => LimitScope::Client,
            2 => LimitScope::Global,
            _ => return Err(StoreError::Protocol("unexpected rate limit answer".into())),
        };
        let retry_after_secs = u64::try_from(wait_us)
            .unwrap_or(0)
            .div_ceil(1_000_000)
            .max(1);
        Ok(Err(RateLimited {
            scope,
            retry_after_secs,
        }))
    }
}
