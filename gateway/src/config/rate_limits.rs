//! `[rate_limits]`, validated: every rate and burst a finite number ≥ 0, and within what the
//! limiter can represent (a positive rate of at least [`MIN_RATE`], bursts up to [`MAX_BURST`]).

use super::file::RateLimitSection;
use super::validate::Validator;
use super::{ConfigError, RateLimits, Redis, StoreKind};

/// The smallest positive rate limit, requests per second.
pub const MIN_RATE: f64 = 1e-6;
/// The largest burst.
pub const MAX_BURST: f64 = 1e9;

impl Validator<'_> {
    /// `[rate_limits]`, validated.
    pub fn rate_limits(
        &self,
        r: &RateLimitSection,
        redis: Option<&Redis>,
    ) -> Result<RateLimits, ConfigError> {
        for (key, v) in [
            ("rate_limits.per_client_per_second", r.per_client_per_second),
            ("rate_limits.per_client_burst", r.per_client_burst),
            ("rate_limits.global_per_second", r.global_per_second),
            ("rate_limits.global_burst", r.global_burst),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(self.invalid(key, format!("{v} must be a number ≥ 0")));
            }
        }
        // What the limiter can represent: a refill period of at most about 11.5 days per token,
        // and bursts a counter holds exactly.
        for (key, v) in [
            ("rate_limits.per_client_per_second", r.per_client_per_second),
            ("rate_limits.global_per_second", r.global_per_second),
        ] {
            if v > 0.0 && v < MIN_RATE {
                return Err(self.invalid(
                    key,
                    format!("{v} is below {MIN_RATE} (0 turns the limit off)"),
                ));
            }
        }
        for (key, v) in [
            ("rate_limits.per_client_burst", r.per_client_burst),
            ("rate_limits.global_burst", r.global_burst),
        ] {
            if v > MAX_BURST {
                return Err(self.invalid(key, format!("{v} is above {MAX_BURST}")));
            }
        }
        if r.per_client_per_second > 0.0 && r.per_client_burst < 1.0 {
            return Err(self.invalid("rate_limits.per_client_burst", "must be at least 1"));
        }
        if r.global_per_second > 0.0 && r.global_burst < 1.0 {
            return Err(self.invalid("rate_limits.global_burst", "must be at least 1"));
        }
        if r.store == StoreKind::Redis && redis.is_none() {
            return Err(self.invalid(
                "redis.url",
                "is required when rate_limits.store = \"redis\"",
            ));
        }
        self.key_prefix("rate_limits.key_prefix", &r.key_prefix)?;
        if r.max_clients == 0 {
            return Err(self.invalid("rate_limits.max_clients", "must be at least 1"));
        }
        Ok(RateLimits::from(r))
    }
}
