//! The rate limiter of one process: a token bucket per client certificate and one for the whole
//! gateway. Buckets of certificates that went quiet are forgotten (bounded memory).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use moka::sync::Cache;

use super::{LimitScope, RateLimited};
use crate::config::RateLimits;

/// A token bucket.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: f64, burst: f64, now: Instant) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Take a token, or say how long until one is available.
    fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(secs((1.0 - self.tokens) / self.rate))
        }
    }

    fn give_back(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.burst);
    }
}

fn retry_after(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

/// The longest a client's bucket is kept without use.
const MAX_IDLE: Duration = Duration::from_secs(100 * 365 * 86_400);

/// `s` seconds as a duration; what does not fit (huge, not a number) is the longest one.
fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
}

/// The rate limiter of this process.
#[derive(Clone, Debug)]
pub struct LocalLimiter {
    cfg: RateLimits,
    clients: Cache<String, Arc<Mutex<Bucket>>>,
    global: Arc<Mutex<Bucket>>,
}

impl LocalLimiter {
    /// A limiter configured by `[rate_limits]`.
    pub fn new(cfg: &RateLimits) -> Self {
        // A bucket untouched for the time it takes to refill is full again: forget it.
        // (The cache refuses idle times of 1,000 years or more; a bucket that slow is kept for
        // a century, longer than any process runs.)
        let idle = if cfg.per_client_per_second > 0.0 {
            secs((cfg.per_client_burst / cfg.per_client_per_second).max(1.0)).min(MAX_IDLE)
        } else {
            Duration::from_secs(1)
        };
        Self {
            cfg: cfg.clone(),
            clients: Cache::builder()
                .max_capacity(cfg.max_clients)
                .time_to_idle(idle)
                .build(),
            global: Arc::new(Mutex::new(Bucket::new(
                cfg.global_per_second,
                cfg.global_burst,
                Instant::now(),
            ))),
        }
    }

    /// Admit one request from the client certificate `thumbprint`, or refuse it.
    pub fn check(&self, thumbprint: &str) -> Result<(), RateLimited> {
        let now = Instant::now();
        let client = (self.cfg.per_client_per_second > 0.0).then(|| {
            self.clients.get_with_by_ref(thumbprint, || {
                Arc::new(Mutex::new(Bucket::new(
                    self.cfg.per_client_per_second,
                    self.cfg.per_client_burst,
                    now,
                )))
            })
        });
        if let Some(bucket) = &client {
            let mut b = bucket.lock().unwrap_or_else(PoisonError::into_inner);
            b.take(now).map_err(|wait| RateLimited {
                scope: LimitScope::Client,
                retry_after_secs: retry_after(wait),
            })?;
        }
        if self.cfg.global_per_second > 0.0 {
            let taken = self
                .global
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(now);
            if let Err(wait) = taken {
                // The client's token was not used: return it.
                if let Some(bucket) = &client {
                    bucket
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .give_back();
                }
                return Err(RateLimited {
                    scope: LimitScope::Global,
                    retry_after_secs: retry_after(wait),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(client: f64, client_burst: f64, global: f64, global_burst: f64) -> LocalLimiter {
        LocalLimiter::new(&RateLimits {
            per_client_per_second: client,
            per_client_burst: client_burst,
            global_per_second: global,
            global_burst,
            max_clients: 10,
            ..RateLimits::default()
        })
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_its_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(2.0, 3.0, t0);
        for _ in 0..3 {
            assert!(b.take(t0).is_ok());
        }
        let wait = b.take(t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-9, "{wait:?}");
        assert!(b.take(t0 + Duration::from_millis(500)).is_ok());
        assert!(b.take(t0 + Duration::from_millis(500)).is_err());
        // Never more than the burst, however long it rested.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(b.take(later).is_ok());
        }
        assert!(b.take(later).is_err());
    }

    #[test]
    fn one_client_cannot_starve_another() {
        let l = limiter(1.0, 2.0, 0.0, 0.0);
        assert!(l.check("a").is_ok());
        assert!(l.check("a").is_ok());
        let refused = l.check("a").unwrap_err();
        assert_eq!(refused.scope, LimitScope::Client);
        assert_eq!(refused.retry_after_secs, 1);
        assert!(
            l.check("b").is_ok(),
            "another certificate has its own bucket"
        );
    }

    #[test]
    fn the_global_limit_refuses_everyone_and_returns_the_client_token() {
        let l = limiter(10.0, 10.0, 1.0, 2.0);
        assert!(l.check("a").is_ok());
        assert!(l.check("b").is_ok());
        let refused = l.check("c").unwrap_err();
        assert_eq!(refused.scope, LimitScope::Global);
        // c's client token was given back: its own bucket is still full.
        let b = l.clients.get("c").unwrap();
        assert!((b.lock().unwrap().tokens - 10.0).abs() < 1e-6);
    }

    #[test]
    fn zero_turns_a_limit_off_and_values_are_validated() {
        let l = limiter(0.0, 0.0, 0.0, 0.0);
        for _ in 0..1000 {
            assert!(l.check("a").is_ok());
        }
        use crate::config::file::RateLimitSection;
        let validator = crate::config::Validator::new(std::path::Path::new("dcrgate.toml"));
        let bad = RateLimitSection {
            per_client_per_second: -1.0,
            ..RateLimitSection::default()
        };
        assert_eq!(
            validator.rate_limits(&bad, None).unwrap_err().key(),
            Some("rate_limits.per_client_per_second")
        );
        assert!(validator
            .rate_limits(&RateLimitSection::default(), None)
            .is_ok());
    }

    #[test]
    fn rates_and_bursts_the_limiter_cannot_represent_are_refused_and_never_panic() {
        use crate::config::file::RateLimitSection;
        let validator = crate::config::Validator::new(std::path::Path::new("dcrgate.toml"));
        for (section, key) in [
            (
                RateLimitSection {
                    per_client_per_second: 1e-300,
                    ..RateLimitSection::default()
                },
                "rate_limits.per_client_per_second",
            ),
            (
                RateLimitSection {
                    global_per_second: f64::MIN_POSITIVE,
                    global_burst: 1.0,
                    ..RateLimitSection::default()
                },
                "rate_limits.global_per_second",
            ),
            (
                RateLimitSection {
                    per_client_per_second: 1.0,
                    per_client_burst: 1e300,
                    ..RateLimitSection::default()
                },
                "rate_limits.per_client_burst",
            ),
        ] {
            assert_eq!(
                validator.rate_limits(&section, None).unwrap_err().key(),
                Some(key)
            );
        }
        // Built directly, the limiter holds whatever it is given without panicking.
        let l = limiter(1e-300, 1.0, 0.0, 0.0);
        assert!(l.check("a").is_ok());
        let retry = l.check("a").unwrap_err();
        assert!(retry.retry_after_secs > 0);
        assert_eq!(secs(f64::NAN), Duration::MAX);
        assert_eq!(secs(1e300), Duration::MAX);
    }
}
