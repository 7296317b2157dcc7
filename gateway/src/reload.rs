//! The running generation (configuration and everything built from it) and how it changes
//! without a restart: on SIGHUP or when a watched file changes, the configuration is loaded and
//! validated first, then swapped in atomically. An invalid file keeps the running generation,
//! is logged and counted. Requests take a snapshot of the generation when they start, so
//! in-flight requests finish on the version they started with.
//!
//! What a reload keeps: the key set cache and the replay store (when their sections did not
//! change: a reload never reopens a replay window), the served certificate and client CA
//! objects (reloaded in place, client authentication still mandatory). What needs a restart (or
//! a zero-downtime upgrade): listener and admin addresses, threads, header timeout.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crate::clock::unix_now as now;
use crate::config::{Config, ConfigError};
pub use crate::generation::Generation;
use crate::generation::{services, upstream_ca, StartError};
use crate::metrics::Metrics;
use crate::outbound::pool::PoolLimits;
use crate::outbound::HttpsClient;
use crate::tls::reload::{ReloadableCert, ReloadableClientVerifier};
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

/// How often watched files are checked for changes.
pub const WATCH_INTERVAL: Duration = Duration::from_secs(2);

/// Why a reload was refused (the running generation stays).
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The configuration or the profile is invalid.
    #[error(transparent)]
    Config(#[from] Box<ConfigError>),
    /// Something built from it could not be set up.
    #[error(transparent)]
    Start(#[from] StartError),
    /// The served certificate or the client CA bundle is unusable.
    #[error("listener TLS: {0}")]
    Tls(#[from] crate::tls::reload::TlsReloadError),
}

/// The running generation, shared by the proxy, the admin endpoints and the reloader.
pub struct SharedState {
    current: RwLock<Arc<Generation>>,
    config_path: PathBuf,
    /// The listener's served certificate.
    pub cert: Arc<ReloadableCert>,
    /// The listener's client certificate verifier.
    pub client_verifier: Arc<ReloadableClientVerifier>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
}

/// Idle connections kept to OCSP responders: a few, briefly.
const OCSP_POOL: PoolLimits = PoolLimits {
    per_endpoint: 2,
    endpoints: 16,
    idle: Duration::from_secs(30),
};

impl SharedState {
    /// The first generation, from `config`.
    pub fn new(config: Config, metrics: Arc<Metrics>) -> Result<Arc<Self>, StartError> {
        let cert = ReloadableCert::load(&config.certificate, &config.private_key)?;
        let ocsp_client = crate::keyset::fetch::key_host_tls(&config.key_sets)
            .ok()
            .map(|tls| HttpsClient::new(tls, OCSP_POOL));
        let client_verifier = ReloadableClientVerifier::load_with(
            &config.client_ca,
            &config.revocation,
            Some(metrics.clone()),
            ocsp_client,
        )?;
        metrics.served_cert_expiry.set(cert.not_after());
        let generation = Generation {
            services: services(&config, &metrics, None)?,
            upstream_ca: upstream_ca(&config)?,
            config: Arc::new(config),
        };
        metrics.last_reload.set(now());
        Ok(Arc::new(Self {
            config_path: generation.config.path.clone(),
            current: RwLock::new(Arc::new(generation)),
            cert,
            client_verifier,
            metrics,
        }))
    }

    /// The running generation (a request keeps it until it ends).
    pub fn current(&self) -> Arc<Generation> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Load, validate and swap in the configuration file; on any error keep the running one.
    pub fn reload(&self) -> Result<(), ReloadError> {
        let result = self.try_reload();
        let label = if result.is_ok() { "ok" } else { "invalid" };
        self.metrics.reloads.with_label_values(&[label]).inc();
        match &result {
            Ok(()) => {
                self.metrics.last_reload.set(now());
                tracing::info!(config = %self.config_path.display(), "configuration reloaded");
            }
            Err(e) => tracing::error!(
                config = %self.config_path.display(),
                error = %e,
                "reload refused; the running configuration stays"
            ),
        }
        result
    }

    fn try_reload(&self) -> Result<(), ReloadError> {
        let config = Config::load(&self.config_path).map_err(Box::new)?;
        let old = self.current();
        let services = services(&config, &self.metrics, Some((&old.config, &old.services)))?;
        // A rotated audit file (logrotate's postrotate sends SIGHUP) is reopened.
        services.audit.reopen();
        let upstream_ca = upstream_ca(&config)?;
        // Validate both TLS files before touching either, so a bad pair changes nothing.
        ReloadableCert::load(&config.certificate, &config.private_key)?;
        ReloadableClientVerifier::load_with(&config.client_ca, &config.revocation, None, None)?;
        self.cert.reload(&config.certificate, &config.private_key)?;
        self.client_verifier
            .reload_with(&config.client_ca, &config.revocation)?;
        self.metrics.served_cert_expiry.set(self.cert.not_after());
        for (what, before, after) in restart_only(&old.config, &config) {
            tracing::warn!(
                setting = what,
                running = %before,
                configured = %after,
                "this setting changes only on restart or upgrade"
            );
        }
        let generation = Arc::new(Generation {
            config: Arc::new(config),
            services,
            upstream_ca,
        });
        match self.current.write() {
            Ok(mut g) => *g = generation,
            Err(poisoned) => *poisoned.into_inner() = generation,
        }
        Ok(())
    }

    /// Files whose change triggers a reload: the configuration, the profile, the TLS files, the
    /// CRLs and the Redis URL file.
    fn watched(&self) -> Vec<PathBuf> {
        let g = self.current();
        let c = &g.config;
        vec![
            self.config_path.clone(),
            c.profile_path.clone(),
            c.certificate.clone(),
            c.private_key.clone(),
            c.client_ca.clone(),
        ]
        .into_iter()
        .chain(c.revocation.crls.iter().map(|crl| crl.path.clone()))
        .chain(c.redis.as_ref().and_then(|r| r.url_file.clone()))
        .collect()
    }
}

/// Settings a reload cannot change, with their running and configured values when they differ.
fn restart_only(old: &Config, new: &Config) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    let mut check = |what, a: String, b: String| {
        if a != b {
            out.push((what, a, b));
        }
    };
    check("listener.address", old.listen.clone(), new.listen.clone());
    check(
        "admin.address",
        old.admin_listen.clone(),
        new.admin_listen.clone(),
    );
    check(
        "server.threads",
        old.server.threads.to_string(),
        new.server.threads.to_string(),
    );
    check(
        "limits.header_timeout_ms",
        old.limits.header_timeout.as_millis().to_string(),
        new.limits.header_timeout.as_millis().to_string(),
    );
    // pingora reads these once, when the server is built; the logger is installed once.
    check(
        "server.grace_period_seconds",
        old.server.grace_period_seconds.to_string(),
        new.server.grace_period_seconds.to_string(),
    );
    check(
        "server.graceful_shutdown_timeout_seconds",
        old.server.graceful_shutdown_timeout_seconds.to_string(),
        new.server.graceful_shutdown_timeout_seconds.to_string(),
    );
    check(
        "server.upgrade_socket",
        format!("{:?}", old.server.upgrade_socket),
        format!("{:?}", new.server.upgrade_socket),
    );
    check(
        "server.log_format",
        format!("{:?}", old.server.log_format),
        format!("{:?}", new.server.log_format),
    );
    out
}

/// What identifies a watched file's version: its modification time, size and inode (a file
/// replaced by a rename, as Kubernetes updates a mounted ConfigMap, has a new inode even when
/// the clock gives it the old one's time). Symbolic links are followed.
fn modified(paths: &[PathBuf]) -> Vec<Option<(SystemTime, u64, u64)>> {
    use std::os::unix::fs::MetadataExt;
    paths
        .iter()
        .map(|p| {
            let m = std::fs::metadata(p).ok()?;
            Some((m.modified().ok()?, m.len(), m.ino()))
        })
        .collect()
}

/// Reloads on SIGHUP and when a watched file changes (checked every [`WATCH_INTERVAL`]).
pub struct Reloader {
    state: Arc<SharedState>,
}

impl Reloader {
    /// A reloader for `state`.
    pub fn new(state: Arc<SharedState>) -> Self {
        Self { state }
    }
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP; file changes still reload");
                None
            }
        };
        let mut paths = self.state.watched();
        let mut seen = modified(&paths);
        let mut tick = tokio::time::interval(WATCH_INTERVAL);
        loop {
            let signalled = tokio::select! {
                _ = shutdown.changed() => return,
                _ = async {
                    match hangup.as_mut() {
                        Some(h) => { h.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => true,
                _ = tick.tick() => false,
            };
            let now_seen = modified(&paths);
            if signalled || now_seen != seen {
                if signalled {
                    tracing::info!("SIGHUP: reloading");
                }
                // A refused reload is logged and counted; the watch goes on.
                let _ = self.state.reload();
                paths = self.state.watched();
                seen = modified(&paths);
            }
        }
    }
}
