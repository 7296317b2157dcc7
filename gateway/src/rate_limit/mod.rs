//! Rate limits: a token bucket per client certificate (so one TPP cannot starve the others) and
//! one for the whole gateway (so the registry behind it is never flooded). Checked right after
//! the route and identity, before anything costly; a refused request gets 429 with
//! `Retry-After`. The buckets live in this process ([`local`]: each replica has its own) or in
//! the shared Redis ([`shared`]: the limits hold for all replicas together).

pub mod local;
pub mod shared;

pub use local::LocalLimiter;
pub use shared::SharedLimiter;

use crate::config::{OnStoreError, RateLimits, StoreKind};
use crate::shared_redis::{SharedRedis, StoreError};

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// The client certificate's own limit.
    Client,
    /// The gateway-wide limit.
    Global,
}

impl LimitScope {
    /// A closed-set label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitScope::Client => "client",
            LimitScope::Global => "global",
        }
    }
}

/// A refusal: which limit, and when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    /// The limit.
    pub scope: LimitScope,
    /// Whole seconds until a token is available (at least 1).
    pub retry_after_secs: u64,
}

/// Why a request was not admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A limit refused it.
    Limited(RateLimited),
    /// The shared store could not answer and the limiter fails closed.
    StoreUnavailable(StoreError),
}

/// What the limiter decided, with the store error an admitted request met (fail open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Admitted, or why not.
    pub outcome: Result<(), Refusal>,
    /// The shared store's failure, when there was one.
    pub store_error: Option<StoreError>,
}

/// The gateway's rate limiter.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    cfg: RateLimits,
    store: Store,
}

#[derive(Clone, Debug)]
enum Store {
    Local(LocalLimiter),
    Shared(SharedLimiter),
}

impl RateLimiter {
    /// A limiter configured by `[rate_limits]`; `redis` is used when `store = "redis"`
    /// (validation ensures it is configured; without it every check meets a store error).
    pub fn new(cfg: &RateLimits, redis: Option<&SharedRedis>) -> Self {
        let store = match cfg.store {
            StoreKind::Memory => Store::Local(LocalLimiter::new(cfg)),
            StoreKind::Redis => Store::Shared(SharedLimiter::new(
                cfg,
                redis.cloned().unwrap_or_else(SharedRedis::unconfigured),
            )),
        };
        Self {
            cfg: cfg.clone(),
            store,
        }
    }

    /// The configuration it was built from.
    pub fn config(&self) -> &RateLimits {
        &self.cfg
    }

    /// `"memory"` or `"redis"`, for logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self.store {
            Store::Local(_) => "memory",
            Store::Shared(_) => "redis",
        }
    }

    /// The shared limiter, when the buckets live in Redis.
    pub fn shared(&self) -> Option<&SharedLimiter> {
        match &self.store {
            Store::Shared(s) => Some(s),
            Store::Local(_) => None,
        }
    }

    /// Admit one request from the client certificate `thumbprint`, or refuse it.
    pub async fn check(&self, thumbprint: &str) -> Verdict {
        match &self.store {
            Store::Local(l) => Verdict {
                outcome: l.check(thumbprint).map_err(Refusal::Limited),
                store_error: None,
            },
            Store::Shared(s) => match s.check(thumbprint).await {
                Ok(outcome) => Verdict {
                    outcome: outcome.map_err(Refusal::Limited),
                    store_error: None,
                },
                Err(e) => Verdict {
                    outcome: match self.cfg.on_store_error {
                        OnStoreError::Reject => Err(Refusal::StoreUnavailable(e.clone())),
                        OnStoreError::Accept => Ok(()),
                    },
                    store_error: Some(e),
                },
            },
        }
    }
}
