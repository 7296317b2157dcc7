//! Assembling and running the pingora server from a validated [`Config`].

use std::sync::Arc;
use std::time::Duration;

use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server, ShutdownSignalWatch};
use pingora::services::background::background_service;
use pingora::services::listening::Service;

use crate::admin::AdminApp;
use crate::audit::AuditSink;
use crate::bearer::introspection::{IntrospectionSetupError, Introspector};
use crate::bearer::jwt::JwtValidator;
use crate::bearer::BearerVerifier;
use crate::config::Config;
use crate::conn_guard::{ArmOnAccept, ConnGuards};
use crate::keyset::fetch::FetcherSetupError;
use crate::keyset::{KeySetCache, KeySetFetcher};
use crate::metrics::{Metrics, MetricsError};
use crate::proxy::{Gateway, Services};
use crate::rate_limit::RateLimiter;
use crate::reload::{Reloader, SharedState};
use crate::replay::{ReplaySetupError, ReplayStore};
use crate::tls::listener::{tls_settings, ListenerTlsError};
use crate::tls::pem::PemError;
use crate::tls::reload::TlsReloadError;
use crate::trust::{AnchorError, Directory, SsaVerifier, TrustedKeys};

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
    /// The replay store.
    #[error(transparent)]
    Replay(#[from] ReplaySetupError),
    /// The audit file.
    #[error("audit file: {0}")]
    Audit(std::io::Error),
    /// The served certificate or the client CA bundle.
    #[error("listener TLS: {0}")]
    TlsFiles(#[from] TlsReloadError),
}

fn anchor(
    url: Option<&url::Url>,
    file: Option<&std::path::Path>,
    ca: Option<&std::path::Path>,
    config: &Config,
    metrics: &Arc<Metrics>,
) -> Result<TrustedKeys, AnchorError> {
    match (url, file) {
        (Some(u), _) => TrustedKeys::from_url(u.clone(), ca, &config.key_sets, metrics.clone()),
        (None, Some(f)) => TrustedKeys::from_file(f),
        (None, None) => Err(AnchorError::Read {
            path: String::new(),
            source: std::io::Error::other("no key set configured"),
        }),
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
                keys: anchor(
                    d.key_set_url.as_ref(),
                    d.key_set_file.as_deref(),
                    d.ca_file.as_deref(),
                    config,
                    metrics,
                )?,
                algorithms: d.algorithms.clone(),
            })
        })
        .collect::<Result<Vec<_>, StartError>>()?;
    let jwt = match &config.bearer.jwt {
        Some(j) => {
            let url = match &j.key_set_url {
                Some(u) => Some(url::Url::parse(u).map_err(|e| AnchorError::Read {
                    path: u.clone(),
                    source: std::io::Error::other(e.to_string()),
                })?),
                None => None,
            };
            let keys = anchor(
                url.as_ref(),
                j.key_set_file.as_deref(),
                j.ca_file.as_deref(),
                config,
                metrics,
            )?;
            Some(JwtValidator::new(j, keys))
        }
        None => None,
    };
    let introspection = match &config.bearer.introspection {
        Some(i) => Some(Introspector::new(i)?),
        None => None,
    };
    let replay = if config.profile.replay.require_jti {
        match previous {
            Some((old, s)) if old.replay == config.replay && s.replay.is_some() => s.replay.clone(),
            _ => Some(ReplayStore::from_config(&config.replay)?),
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
        Some((old, s)) if old.rate_limits == config.rate_limits => s.rate_limits.clone(),
        _ => RateLimiter::new(&config.rate_limits),
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
    })
}

/// Build the pingora server: the mTLS proxy service, the admin service and the reloader.
/// `upgrade`: take the listening sockets over from a running instance (pingora's zero-downtime
/// upgrade; the old instance hands them over on SIGQUIT).
pub fn build(config: Config, upgrade: bool) -> Result<Server, StartError> {
    let metrics = Arc::new(Metrics::new()?);
    let state = SharedState::new(config, metrics.clone())?;
    let config = state.current().config.clone();
    let port = config.listen.rsplit(':').next().unwrap_or("0").to_owned();
    let tmp = std::env::temp_dir();
    let conf = ServerConf {
        threads: config.server.threads,
        grace_period_seconds: Some(config.server.grace_period_seconds),
        graceful_shutdown_timeout_seconds: Some(config.server.graceful_shutdown_timeout_seconds),
        pid_file: tmp
            .join(format!("dcrgate-{port}.pid"))
            .to_string_lossy()
            .into_owned(),
        upgrade_sock: config
            .server
            .upgrade_socket
            .clone()
            .unwrap_or_else(|| tmp.join(format!("dcrgate-{port}-upgrade.sock")))
            .to_string_lossy()
            .into_owned(),
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    let guards = ConnGuards::new(
        Duration::from_millis(config.limits.header_timeout_ms),
        metrics.clone(),
    );
    let gateway = Gateway::new(state.clone(), guards.clone());
    let mut proxy =
        pingora::proxy::http_proxy_service_with_name(&server.configuration, gateway, "dcrgate");
    proxy.add_tls_with_settings(
        &config.listen,
        None,
        tls_settings(
            state.cert.clone(),
            state.client_verifier.clone(),
            metrics.clone(),
        )?,
    );
    proxy
        .endpoints()
        .set_pre_tls_callback(Arc::new(ArmOnAccept(guards)));
    server.add_service(proxy);
    server.add_service(background_service(
        "dcrgate reloader",
        Reloader::new(state.clone()),
    ));

    let mut admin = Service::new("dcrgate admin".to_owned(), AdminApp::new(state));
    admin.add_tcp(&config.admin_listen);
    server.add_service(admin);
    Ok(server)
}

/// Run until a signal stops the server: SIGTERM drains gracefully, SIGINT stops at once.
pub fn run(server: Server, shutdown: Option<Box<dyn ShutdownSignalWatch>>) {
    match shutdown {
        Some(shutdown_signal) => server.run(RunArgs { shutdown_signal }),
        None => server.run(RunArgs::default()),
    }
}
