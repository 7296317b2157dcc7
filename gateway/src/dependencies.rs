//! The shared dependencies every replica relies on, probed in the background and exported as
//! `dcrgate_dependency_up{dependency}` (1 up, 0 down), not as readiness: when the registry or
//! a directory's key set is down for one replica it is down for all, and failing readiness on
//! every replica at once would turn the gateway's JSON 503s into TCP failures.
//!
//! Every `server.dependency_probe_seconds` (10), each configured dependency is probed with a
//! bound of [`PROBE_TIMEOUT`]: `registry` (a TCP connection to the upstream),
//! `directory_key_set` (every trusted directory's key set usable, fetched if not cached),
//! `authorization_server_key_set` (with JWT bearer tokens), `replay_store` (Redis `PING`, with
//! the Redis replay store in use: the profile requires a `jti`) and `rate_limit_store` (Redis
//! `PING`, with `rate_limits.store = "redis"`). A change of state is logged once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::generation::Generation;
use crate::reload::SharedState;

/// Bound on each probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One probe's outcome: the dependency, and why it is down (`None`: up).
pub type Probe = (&'static str, Option<String>);

/// Probe every dependency `generation` configures.
pub async fn probe(generation: &Generation) -> Vec<Probe> {
    let mut out = Vec::new();
    let upstream = generation.services.upstream_address.get();
    let registry =
        match tokio::time::timeout(PROBE_TIMEOUT, tokio::net::TcpStream::connect(upstream)).await {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(format!("{upstream}: {e}")),
            Err(_) => Some(format!("{upstream}: connect timed out")),
        };
    out.push(("registry", registry));
    let services = &generation.services;
    let directories = services.ssa.directories();
    if !directories.is_empty() {
        let mut down = Vec::new();
        for d in directories {
            match tokio::time::timeout(PROBE_TIMEOUT, d.keys.ensure()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => down.push(format!("`{}`: {e}", d.issuer)),
                Err(_) => down.push(format!("`{}`: timed out", d.issuer)),
            }
        }
        out.push((
            "directory_key_set",
            (!down.is_empty()).then(|| down.join("; ")),
        ));
    }
    if let Some(jwt) = services.bearer.jwt.as_ref() {
        let state = match tokio::time::timeout(PROBE_TIMEOUT, jwt.keys().ensure()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("timed out".to_owned()),
        };
        out.push(("authorization_server_key_set", state));
    }
    if let Some(store) = services.replay.as_ref().filter(|s| s.kind() == "redis") {
        let state = match tokio::time::timeout(PROBE_TIMEOUT, store.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("timed out".to_owned()),
        };
        out.push(("replay_store", state));
    }
    if let Some(limiter) = services.rate_limits.shared() {
        let state = match tokio::time::timeout(PROBE_TIMEOUT, limiter.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("timed out".to_owned()),
        };
        out.push(("rate_limit_store", state));
    }
    out
}

/// Probes the dependencies every `server.dependency_probe_seconds` and exports their state.
pub struct DependencyProbe {
    state: Arc<SharedState>,
}

impl DependencyProbe {
    /// A probe of `state`'s current configuration.
    pub fn new(state: Arc<SharedState>) -> Self {
        Self { state }
    }
}

#[async_trait]
impl BackgroundService for DependencyProbe {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut last: HashMap<&'static str, bool> = HashMap::new();
        loop {
            let generation = self.state.current();
            let probes = probe(&generation).await;
            let gauge = &self.state.metrics.dependency_up;
            // Dependencies no longer configured disappear.
            gauge.reset();
            for (name, down) in &probes {
                gauge
                    .with_label_values(&[name])
                    .set(i64::from(down.is_none()));
                let up = down.is_none();
                if last.insert(name, up) != Some(up) {
                    match down {
                        None => tracing::info!(dependency = name, "dependency up"),
                        Some(why) => {
                            tracing::warn!(dependency = name, error = %why, "dependency down")
                        }
                    }
                }
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(generation.config.server.dependency_probe) => {}
            }
        }
    }
}
