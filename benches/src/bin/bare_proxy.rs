//! dcrgate-bare-proxy: the third column of the end-to-end benchmark. A pingora proxy with the
//! gateway's TLS settings (pingora's rustls listener, ring, the same served certificate, a
//! client certificate required and verified against the same CA bundle, HTTP/1.1 only) that
//! forwards every request to the upstream as it is: no routing, no policy, no JWS, no metrics.
//! What dcrgate costs per request above it is what the gateway itself adds.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use async_trait::async_trait;
use clap::Parser;
use pingora::listeners::tls::TlsSettings;
use pingora::protocols::ALPN;
use pingora::proxy::{ProxyHttp, Session};
use pingora::server::configuration::{Opt, ServerConf};
use pingora::server::Server;
use pingora::upstreams::peer::HttpPeer;
use rustls::server::WebPkiClientVerifier;

/// The allocator dcrgate's binary uses, so that the difference between the two is the
/// gateway's work, not the allocator's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "dcrgate-bare-proxy",
    about = "A pingora mTLS proxy with dcrgate's TLS settings and nothing else (benchmark baseline)"
)]
struct Args {
    /// `IP:port` to listen on (TLS).
    #[arg(long)]
    listen: String,
    /// The served certificate chain (PEM).
    #[arg(long)]
    cert: PathBuf,
    /// Its private key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// The CA bundle client certificates must chain to (PEM).
    #[arg(long)]
    client_ca: PathBuf,
    /// `IP:port` of the plain-HTTP upstream.
    #[arg(long)]
    upstream: String,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
enum BareError {
    #[error("{0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: no CA certificate could be used")]
    NoCa(PathBuf),
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    #[error("TLS settings: {0}")]
    Tls(String),
}

/// Forwards everything to one upstream.
struct Bare {
    upstream: String,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut Self::CTX,
    ) -> pingora::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(
            self.upstream.as_str(),
            false,
            String::new(),
        )))
    }
}

fn tls_settings(args: &Args) -> Result<TlsSettings, BareError> {
    let pem =
        std::fs::read(&args.client_ca).map_err(|e| BareError::Read(args.client_ca.clone(), e))?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()).flatten() {
        let _ = roots.add(cert);
    }
    if roots.is_empty() {
        return Err(BareError::NoCa(args.client_ca.clone()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build()?;
    let cert = args.cert.to_string_lossy();
    let key = args.key.to_string_lossy();
    let mut settings =
        TlsSettings::intermediate(&cert, &key).map_err(|e| BareError::Tls(e.to_string()))?;
    settings.set_client_cert_verifier(verifier);
    settings.set_alpn(ALPN::H1);
    Ok(settings)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let settings = match tls_settings(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dcrgate-bare-proxy: {e}");
            return ExitCode::from(2);
        }
    };
    let conf = ServerConf {
        threads: args.threads,
        grace_period_seconds: Some(1),
        graceful_shutdown_timeout_seconds: Some(1),
        pid_file: std::env::temp_dir()
            .join(format!("dcrgate-bare-proxy-{}.pid", std::process::id()))
            .to_string_lossy()
            .into_owned(),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(Opt::default(), conf);
    server.bootstrap();
    let mut proxy = pingora::proxy::http_proxy_service(
        &server.configuration,
        Bare {
            upstream: args.upstream.clone(),
        },
    );
    proxy.add_tls_with_settings(&args.listen, None, settings);
    server.add_service(proxy);
    server.run_forever()
}
