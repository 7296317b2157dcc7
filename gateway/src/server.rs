//! Assembling and running the pingora server from a validated [`Config`]: the mTLS proxy
//! service, the admin service and the reloader, over the first generation.

use std::sync::Arc;

use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::{RunArgs, Server, ShutdownSignalWatch};
use pingora::services::background::background_service;
use pingora::services::listening::Service;

use crate::admin::AdminApp;
use crate::config::Config;
use crate::conn_guard::{ArmOnAccept, ConnGuards};
use crate::dependencies::DependencyProbe;
pub use crate::generation::StartError;
use crate::metrics::Metrics;
use crate::proxy::Gateway;
use crate::reload::{Reloader, SharedState};
use crate::tls::crl_refresh::CrlRefresher;
use crate::tls::listener::tls_settings;
use crate::upstream_address::UpstreamResolver;

/// Build the pingora server: the mTLS proxy service, the admin service and the reloader.
/// `upgrade`: take the listening sockets over from a running instance (pingora's zero-downtime
/// upgrade; the old instance hands them over on SIGQUIT).
pub fn build(config: Config, upgrade: bool) -> Result<Server, StartError> {
    // pingora retries a bind that fails for ever, serving nothing while the process looks
    // alive: a taken address fails start-up instead, naming it. (An upgrade takes the sockets
    // over from the running instance, which still holds them.)
    if !upgrade {
        bindable("listener.address", &config.listen)?;
        bindable("admin.address", &config.admin_listen)?;
    }
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

    let guards = ConnGuards::new(config.limits.header_timeout, metrics.clone());
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
    server.add_service(background_service(
        "dcrgate CRL refresher",
        CrlRefresher::new(state.clone()),
    ));
    server.add_service(background_service(
        "dcrgate dependency probe",
        DependencyProbe::new(state.clone()),
    ));
    server.add_service(background_service(
        "dcrgate upstream resolver",
        UpstreamResolver::new(state.clone()),
    ));

    let mut admin = Service::new("dcrgate admin".to_owned(), AdminApp::new(state));
    admin.add_tcp(&config.admin_listen);
    server.add_service(admin);
    Ok(server)
}

/// Whether `address` can be bound now (the probe socket is closed at once).
fn bindable(key: &'static str, address: &str) -> Result<(), StartError> {
    std::net::TcpListener::bind(address)
        .map(drop)
        .map_err(|source| StartError::Bind {
            key,
            address: address.to_owned(),
            source,
        })
}

/// Run until a signal stops the server: SIGTERM drains gracefully, SIGINT stops at once.
pub fn run(server: Server, shutdown: Option<Box<dyn ShutdownSignalWatch>>) {
    match shutdown {
        Some(shutdown_signal) => server.run(RunArgs { shutdown_signal }),
        None => server.run(RunArgs::default()),
    }
}
