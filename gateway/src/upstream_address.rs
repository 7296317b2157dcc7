//! The registry's address, resolved again every `upstream.resolve_seconds` (Kubernetes
//! Services, DNS-based failover) rather than once at start.
//!
//! The name is resolved by configuration validation (so start-up and reloads fail on a name
//! that does not resolve) and then by [`UpstreamResolver`] in the background; requests read
//! the latest address without waiting on DNS. A lookup that fails, times out or returns
//! nothing keeps the last good address (a DNS outage does not take the registry away) and is
//! counted; the current address is kept while it is still among the answers, so a name with
//! several addresses does not flap. An IP literal is never looked up.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::reload::SharedState;

/// The longest one lookup may take.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// A name lookup: `(host, port)` to addresses.
pub type Lookup = Arc<
    dyn Fn(String, u16) -> Pin<Box<dyn Future<Output = io::Result<Vec<SocketAddr>>> + Send>>
        + Send
        + Sync,
>;

/// The system resolver (`getaddrinfo`, through tokio).
pub fn system_lookup() -> Lookup {
    Arc::new(|host, port| {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .collect())
        })
    })
}

/// What one refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refresh {
    /// The name resolved to the address already in use (or the host is an IP literal).
    Same,
    /// The name now resolves elsewhere: requests go to the new address.
    Changed,
    /// The lookup failed, timed out or returned nothing: the last address is kept.
    Failed,
}

impl Refresh {
    /// A closed-set label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Refresh::Same => "same",
            Refresh::Changed => "changed",
            Refresh::Failed => "failed",
        }
    }
}

/// The registry's current address. Cloning shares it.
#[derive(Clone)]
pub struct UpstreamAddress {
    host: String,
    port: u16,
    current: Arc<RwLock<SocketAddr>>,
    lookup: Lookup,
}

impl std::fmt::Debug for UpstreamAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamAddress")
            .field("host", &self.host)
            .field("current", &self.get())
            .finish_non_exhaustive()
    }
}

impl UpstreamAddress {
    /// `host:port`, at first `resolved` (as validation found it), refreshed with `lookup`.
    pub fn new(host: &str, port: u16, resolved: SocketAddr, lookup: Lookup) -> Self {
        Self {
            host: host.to_owned(),
            port,
            current: Arc::new(RwLock::new(resolved)),
            lookup,
        }
    }

    /// The address requests go to now.
    pub fn get(&self) -> SocketAddr {
        *self.current.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the host is a name (an IP literal is never looked up).
    pub fn is_name(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_err()
    }

    /// Looks the name up once and moves to the answer when the current address is not in it.
    pub async fn refresh(&self) -> Refresh {
        if !self.is_name() {
            return Refresh::Same;
        }
        let answer =
            tokio::time::timeout(LOOKUP_TIMEOUT, (self.lookup)(self.host.clone(), self.port)).await;
        let addresses = match answer {
            Ok(Ok(a)) if !a.is_empty() => a,
            _ => return Refresh::Failed,
        };
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if addresses.contains(&current) {
            return Refresh::Same;
        }
        *current = addresses[0];
        Refresh::Changed
    }
}

/// Refreshes the current generation's upstream address every `upstream.resolve_every`.
pub struct UpstreamResolver {
    state: Arc<SharedState>,
}

impl UpstreamResolver {
    /// A resolver for `state`'s current configuration.
    pub fn new(state: Arc<SharedState>) -> Self {
        Self { state }
    }
}

#[async_trait]
impl BackgroundService for UpstreamResolver {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut last_failed = false;
        let mut last_refresh = tokio::time::Instant::now();
        loop {
            // A one-second tick, so that a reload that shortens the interval takes effect at
            // once.
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let generation = self.state.current();
            let Some(every) = generation.config.upstream.resolve_every else {
                continue;
            };
            let address = &generation.services.upstream_address;
            if !address.is_name() || last_refresh.elapsed() < every {
                continue;
            }
            last_refresh = tokio::time::Instant::now();
            let before = address.get();
            let result = address.refresh().await;
            self.state
                .metrics
                .upstream_resolutions
                .with_label_values(&[result.as_str()])
                .inc();
            match result {
                Refresh::Changed => tracing::info!(
                    from = %before,
                    to = %address.get(),
                    "the registry's name resolves to a new address"
                ),
                Refresh::Failed if !last_failed => tracing::warn!(
                    host = %generation.config.upstream.host,
                    keeping = %before,
                    "the registry's name did not resolve; keeping the last address"
                ),
                _ => {}
            }
            last_failed = result == Refresh::Failed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// A lookup that answers from a script, one answer per call.
    fn scripted(answers: Vec<io::Result<Vec<SocketAddr>>>) -> (Lookup, Arc<Mutex<usize>>) {
        let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
        let calls = Arc::new(Mutex::new(0));
        let counted = calls.clone();
        let lookup: Lookup = Arc::new(move |host, port| {
            assert_eq!((host.as_str(), port), ("registry.internal", 8443));
            *counted.lock().unwrap() += 1;
            let next = answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| Ok(Vec::new()));
            Box::pin(async move { next })
        });
        (lookup, calls)
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn a_new_answer_moves_requests_and_a_failed_lookup_keeps_the_last_address() {
        let (lookup, calls) = scripted(vec![
            Ok(vec![addr("10.0.0.1:8443")]),
            Ok(vec![addr("10.0.0.2:8443")]),
            Err(io::Error::other("SERVFAIL")),
            Ok(Vec::new()),
            // Several addresses, the current one among them: no flapping.
            Ok(vec![addr("10.0.0.3:8443"), addr("10.0.0.2:8443")]),
            Ok(vec![addr("10.0.0.3:8443"), addr("10.0.0.4:8443")]),
        ]);
        let a = UpstreamAddress::new("registry.internal", 8443, addr("10.0.0.1:8443"), lookup);
        let mut seen = Vec::new();
        for _ in 0..6 {
            let r = a.refresh().await;
            seen.push((r, a.get()));
        }
        assert_eq!(
            seen,
            [
                (Refresh::Same, addr("10.0.0.1:8443")),
                (Refresh::Changed, addr("10.0.0.2:8443")),
                (Refresh::Failed, addr("10.0.0.2:8443")),
                (Refresh::Failed, addr("10.0.0.2:8443")),
                (Refresh::Same, addr("10.0.0.2:8443")),
                (Refresh::Changed, addr("10.0.0.3:8443")),
            ]
        );
        assert_eq!(*calls.lock().unwrap(), 6);
    }

    #[tokio::test]
    async fn clones_share_the_address() {
        let (lookup, _) = scripted(vec![Ok(vec![addr("10.0.0.9:8443")])]);
        let a = UpstreamAddress::new("registry.internal", 8443, addr("10.0.0.1:8443"), lookup);
        let b = a.clone();
        assert_eq!(a.refresh().await, Refresh::Changed);
        assert_eq!(b.get(), addr("10.0.0.9:8443"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_lookup_that_hangs_is_a_failure_after_the_timeout() {
        let lookup: Lookup = Arc::new(|_, _| Box::pin(std::future::pending()));
        let a = UpstreamAddress::new("registry.internal", 8443, addr("10.0.0.1:8443"), lookup);
        assert_eq!(a.refresh().await, Refresh::Failed);
        assert_eq!(a.get(), addr("10.0.0.1:8443"));
    }

    #[tokio::test]
    async fn an_ip_literal_is_never_looked_up() {
        let (lookup, calls) = scripted(vec![Ok(vec![addr("10.0.0.2:80")])]);
        let a = UpstreamAddress::new("10.0.0.1", 80, addr("10.0.0.1:80"), lookup);
        assert!(!a.is_name());
        assert_eq!(a.refresh().await, Refresh::Same);
        assert_eq!(*calls.lock().unwrap(), 0);
        let v6 = UpstreamAddress::new("::1", 80, addr("[::1]:80"), system_lookup());
        assert!(!v6.is_name());
    }

    #[tokio::test]
    async fn the_system_lookup_resolves_localhost() {
        let found = (system_lookup())("localhost".into(), 8080)
            .await
            .expect("localhost");
        assert!(
            found
                .iter()
                .all(|a| a.ip().is_loopback() && a.port() == 8080),
            "{found:?}"
        );
    }
}
