//! One generation: a validated configuration and everything built from it (caches, verifiers,
//! stores, sinks), and the builder that makes one, lending what must survive a reload from the
//! previous generation. The proxy reads a generation, the reloader swaps one in, and the server
//! assembles the first: this module depends on none of them.

use std::sync::Arc;

use pingora::utils::tls::WrappedX509;

use crate::audit::AuditSink;
use crate::bearer::introspection::{IntrospectionSetupError, Introspector};
use crate::bearer::jwt::JwtValidator;
use crate::bearer::BearerVerifier;
use crate::config::{Config, KeySource};
use crate::keyset::fetch::FetcherSetupError;
use crate::keyset::{KeySetCache, KeySetFetcher};
use crate::metrics::{Metrics, MetricsError};
use crate::rate_limit::RateLimiter;
use crate::replay::ReplayStore;
use crate::shared_redis::SharedRedis;
use crate::tls::listener::ListenerTlsError;
use crate::tls::pem::{load_certs, PemError};
use crate::tls::reload::TlsReloadError;
use crate::trust::{AnchorError, Directory, SsaVerifier, TrustedKeys};
use crate::upstream_address::{system_lookup, UpstreamAddress};

/// One configuration and what was built from it.
pub struct Generation {
    /// The validated configuration.
    pub config: Arc<Config>,
    /// Caches, verifiers, stores and sinks built from it.
    pub services: Services,
    /// CA certificates for an https upstream.
    pub upstream_ca: Option<Arc<[WrappedX509]>>,
}

/// What the gateway consults besides its configuration.
#[derive(Clone)]
pub struct Services {
    /// TPP key sets.
    pub key_sets: KeySetCache,
    /// Software statement directories.
    pub ssa: SsaVerifier,
    /// Bearer token verifiers.
    pub bearer: BearerVerifier,
    /// The `jti` store, when the profile requires replay protection.
    pub replay: Option<ReplayStore>,
    /// The audit sink.
    pub audit: AuditSink,
    /// Per-certificate and global rate limits.
    pub rate_limits: RateLimiter,
    /// The shared Redis, when `[redis]` is configured.
    pub redis: Option<SharedRedis>,
    /// The registry's address, refreshed by [`crate::upstream_address::UpstreamResolver`].
    pub upstream_address: UpstreamAddress,
}

/// The gateway could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Listener TLS.
    #[error(transparent)]
    ListenerTls(#[from] ListenerTlsError),
    /// Key set fetcher.
    #[error(transparent)]
    Fetcher(#[from] FetcherSetupError),
    /// Upstream CA bundle.
    #[error(transparent)]
    Pem(#[from] PemError),
    /// Metrics.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// A trust anchor (directory or authorization server key set).
    #[error("trust anchor: {0}")]
    Anchor(#[from] AnchorError),
    /// The introspection client.
    #[error(transparent)]
    Introspection(#[from] IntrospectionSetupError),
    /// The audit file.
    #[error("audit file: {0}")]
    Audit(std::io::Error),
    /// The served certificate or the client CA bundle.
    #[error("listener TLS: {0}")]
    TlsFiles(#[from] TlsReloadError),
    /// A listening address cannot be bound (taken by another process, or not this host's).
    #[error("{key} {address} cannot be bound: {source}")]
    Bind {
        /// The setting.
        key: &'static str,
        /// The address.
        address: String,
        /// Why.
        source: std::io::Error,
    },
}

pub(crate) fn anchor(
    source: &KeySource,
    config: &Config,
    metrics: &Arc<Metrics>,
) -> Result<TrustedKeys, AnchorError> {
    match source {
        KeySource::Url { url, ca_file } => TrustedKeys::from_url(
            url.clone(),
            ca_file.as_deref(),
            &config.key_sets,
            metrics.clone(),
        ),
        KeySource::File(path) => TrustedKeys::from_file(path),
    }
}

/// Build what the proxy consults: key set cache, directories, token verifiers, replay store,
/// audit sink. On a reload, `previous` lends what must survive it: the key set cache and the
/// replay store (when their sections are unchanged) and the audit sink (same file).
pub fn services(
    config: &Config,
    metrics: &Arc<Metrics>,
    previous: Option<(&Config, &Services)>,
) -> Result<Services, StartError> {
    let key_sets = match previous {
        Some((old, s)) if old.key_sets == config.key_sets => s.key_sets.clone(),
        _ => {
            let fetcher = KeySetFetcher::new(&config.key_sets)?;
            KeySetCache::new(&config.key_sets, fetcher, metrics.clone())
        }
    };
    let directories = config
        .directories
        .iter()
        .map(|d| {
            Ok(Directory {
                issuer: d.issuer.clone(),
                keys: anchor(&d.keys, config, metrics)?,
                algorithms: d.algorithms.clone(),
            })
        })
        .collect::<Result<Vec<_>, StartError>>()?;
    let jwt = match &config.bearer.jwt {
        Some(j) => Some(JwtValidator::new(j, anchor(&j.keys, config, metrics)?)),
        None => None,
    };
    let introspection = match &config.bearer.introspection {
        Some(i) => Some(Introspector::new(i)?),
        None => None,
    };
    let redis_unchanged = previous.is_some_and(|(old, _)| old.redis == config.redis);
    let redis = match (previous, &config.redis) {
        (Some((_, s)), Some(_)) if redis_unchanged => s.redis.clone(),
        (_, Some(settings)) => Some(SharedRedis::new(settings)),
        (_, None) => None,
    };
    let replay = if config.profile.replay.require_jti {
        match previous {
            Some((old, s))
                if redis_unchanged && old.replay == config.replay && s.replay.is_some() =>
            {
                s.replay.clone()
            }
            _ => Some(ReplayStore::counted(
                &config.replay,
                redis.as_ref(),
                metrics.replay_evictions.clone(),
            )),
        }
    } else {
        None
    };
    let audit = match (&config.audit.path, previous) {
        (Some(p), Some((old, s))) if old.audit.path.as_ref() == Some(p) => s.audit.clone(),
        (Some(p), _) => AuditSink::to_file(p, metrics.clone()).map_err(StartError::Audit)?,
        (None, _) => AuditSink::off(metrics.clone()),
    };
    let rate_limits = match previous {
        Some((old, s)) if redis_unchanged && old.rate_limits == config.rate_limits => {
            s.rate_limits.clone()
        }
        _ => RateLimiter::new(&config.rate_limits, redis.as_ref()),
    };
    Ok(Services {
        rate_limits,
        key_sets,
        ssa: SsaVerifier::new(directories),
        bearer: BearerVerifier {
            jwt,
            introspection,
            client_claim: config.bearer.client_claim,
        },
        replay,
        audit,
        redis,
        upstream_address: UpstreamAddress::new(
            &config.upstream.host,
            config.upstream.port,
            config.upstream.address,
            system_lookup(),
        ),
    })
}

/// CA certificates for an https upstream, as pingora wants them.
pub fn upstream_ca(config: &Config) -> Result<Option<Arc<[WrappedX509]>>, StartError> {
    let Some(path) = &config.upstream.ca_file else {
        return Ok(None);
    };
    let certs: Vec<WrappedX509> = load_certs(path)?
        .into_iter()
        .map(|c| WrappedX509::new(c.to_vec(), pingora::utils::tls::parse_x509))
        .collect();
    Ok(Some(Arc::from(certs)))
}
