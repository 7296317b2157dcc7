//! Assembling and running the pingora server from a validated [`Config`].

use std::sync::Arc;
use std::time::Duration;

use pingora::server::configuration::ServerConf;
use pingora::server::{RunArgs, Server, ShutdownSignalWatch};
use pingora::services::listening::Service;

use crate::admin::AdminApp;
use crate::config::Config;
use crate::conn_guard::{ArmOnAccept, ConnGuards};
use crate::keyset::fetch::FetcherSetupError;
use crate::keyset::{KeySetCache, KeySetFetcher};
use crate::metrics::{Metrics, MetricsError};
use crate::proxy::Gateway;
use crate::tls::listener::{tls_settings, ListenerTlsError};
use crate::tls::pem::{load_certs, PemError};

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

    let fetcher = KeySetFetcher::new(&config.key_sets)?;
    let key_sets = KeySetCache::new(&config.key_sets, fetcher, metrics.clone());
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
        key_sets,
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
