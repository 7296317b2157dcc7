//! Assembling and running the pingora server from a validated [`Config`].

use std::sync::Arc;
use std::time::Duration;

use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignalWatch};
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
use crate::replay::{ReplaySetupError, ReplayStore};
use crate::tls::listener::{tls_settings, ListenerTlsError};
use crate::tls::pem::{load_certs, PemError};
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
/// audit sink.
pub fn services(config: &Config, metrics: &Arc<Metrics>) -> Result<Services, StartError> {
    let fetcher = KeySetFetcher::new(&config.key_sets)?;
    let key_sets = KeySetCache::new(&config.key_sets, fetcher, metrics.clone());
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
        Some(ReplayStore::from_config(&config.replay)?)
    } else {
        None
    };
    let audit = match &config.audit.path {
        Some(p) => AuditSink::to_file(p, metrics.clone()).map_err(StartError::Audit)?,
        None => AuditSink::off(metrics.clone()),
    };
    Ok(Services {
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

/// Build the pingora server: the mTLS proxy service and the admin service.
pub fn build(config: Config) -> Result<Server, StartError> {
    let config = Arc::new(config);
    let metrics = Arc::new(Metrics::new()?);
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
        upgrade_sock: tmp
            .join(format!("dcrgate-{port}-upgrade.sock"))
            .to_string_lossy()
            .into_owned(),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let services = services(&config, &metrics)?;
    let guards = ConnGuards::new(
        Duration::from_millis(config.limits.header_timeout_ms),
        metrics.clone(),
    );
    let upstream_ca = match &config.upstream.ca_file {
        Some(p) => Some(load_certs(p)?.into_iter().map(|c| c.to_vec()).collect()),
        None => None,
    };
    let gateway = Gateway::new(
        config.clone(),
        services,
        metrics.clone(),
        guards.clone(),
        upstream_ca,
    );
    let mut proxy =
        pingora::proxy::http_proxy_service_with_name(&server.configuration, gateway, "dcrgate");
    proxy.add_tls_with_settings(
        &config.listen,
        None,
        tls_settings(&config, metrics.clone())?,
    );
    proxy
        .endpoints()
        .set_pre_tls_callback(Arc::new(ArmOnAccept(guards)));
    server.add_service(proxy);

    let mut admin = Service::new("dcrgate admin".to_owned(), AdminApp::new(metrics));
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
