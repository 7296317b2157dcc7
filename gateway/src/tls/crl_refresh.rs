//! CRLs fetched from their issuer's distribution point (`[[revocation.crl]] url`).
//!
//! A background service checks each such CRL once a second against its schedule: it is due
//! when its file does not exist or does not parse, or when its nextUpdate is less than
//! `revocation.refresh_margin_seconds` away (a CRL without nextUpdate: that long after its
//! thisUpdate). The fetch goes through the gateway's outbound client (addresses vetted unless
//! `revocation.allow_private_addresses`, no redirects, `revocation.max_crl_bytes`, one
//! deadline; http or https, as a CRL carries its own signature). A fetched CRL replaces the
//! file only when it parses, is complete (no delta or partition), names the same issuer as the
//! one in force, is not older than it, and, when a CA of the client bundle has the issuer's
//! name, verifies with that CA's key. It is written next to the file and renamed over it, so
//! the file watch reloads it and it stays in force across reloads and restarts. A failed or
//! refused fetch keeps the CRL in force and is tried again after `revocation.retry_seconds`.
//! Each attempt is counted in `dcrgate_crl_fetches_total{issuer,result}`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use http::header;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::clock::unix_now;
use crate::config::{CrlFile, Revocation};
use crate::keyset::fetch::key_host_tls;
use crate::outbound::pool::PoolLimits;
use crate::outbound::{request_to, Expect, HttpsClient, OutboundError, Target};
use crate::reload::SharedState;
use crate::tls::crl::{self, CrlError, LoadedCrl};
use crate::tls::crl_index::CrlIndex;
use crate::tls::pem::load_certs;

/// How often the schedule is looked at.
const TICK: Duration = Duration::from_secs(1);

/// Content types a CRL is served with.
const CRL_TYPES: &[&str] = &[
    "application/pkix-crl",
    "application/x-pkcs7-crl",
    "application/x-x509-crl",
    "application/octet-stream",
];

/// Why a fetched CRL did not replace the one in force.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The fetch failed.
    #[error("fetch failed: {0}")]
    Fetch(#[from] OutboundError),
    /// The fetch took longer than `revocation.fetch_timeout_seconds`.
    #[error("timed out")]
    Timeout,
    /// Not a usable CRL.
    #[error(transparent)]
    Crl(#[from] CrlError),
    /// Another issuer's CRL.
    #[error("names issuer {fetched}, not {in_force}")]
    OtherIssuer {
        /// The fetched CRL's issuer.
        fetched: String,
        /// The issuer of the CRL in force.
        in_force: String,
    },
    /// Older than the CRL in force.
    #[error("thisUpdate {fetched} is older than the CRL in force ({in_force})")]
    Older {
        /// The fetched CRL's thisUpdate.
        fetched: i64,
        /// The thisUpdate in force.
        in_force: i64,
    },
    /// The bundle CA of the issuer's name did not sign it.
    #[error("its signature does not verify with the client CA bundle's {0}")]
    Signature(String),
    /// The client CA bundle could not be read to check it.
    #[error("client CA bundle: {0}")]
    Bundle(String),
    /// The file could not be written.
    #[error("{0}")]
    Write(std::io::Error),
}

impl RefreshError {
    /// A closed-set label for metrics: `failed` (could not fetch) or `refused` (fetched, not
    /// accepted).
    pub fn kind(&self) -> &'static str {
        match self {
            RefreshError::Fetch(_) | RefreshError::Timeout | RefreshError::Write(_) => "failed",
            _ => "refused",
        }
    }
}

/// Fetches due CRLs for the current configuration.
pub struct CrlRefresher {
    state: Arc<SharedState>,
}

impl CrlRefresher {
    /// A refresher for `state`.
    pub fn new(state: Arc<SharedState>) -> Self {
        Self { state }
    }
}

/// When the CRL in force at `file` should be replaced, seconds since the epoch (now if it
/// is missing or unusable).
fn due_at(file: &CrlFile, margin: Duration) -> i64 {
    match crl::load(file) {
        Ok(c) => {
            let margin = i64::try_from(margin.as_secs()).unwrap_or(i64::MAX);
            match c.next_update {
                Some(next) => next.saturating_sub(margin),
                None => c.this_update.saturating_add(margin),
            }
        }
        Err(_) => 0,
    }
}

#[async_trait]
impl BackgroundService for CrlRefresher {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        // Per issuer: no attempt before this instant (after a failure, or a CRL just fetched
        // whose nextUpdate is already within the margin).
        let mut not_before: HashMap<String, Instant> = HashMap::new();
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                _ = shutdown.changed() => return,
                _ = tick.tick() => {}
            }
            let generation = self.state.current();
            let revocation = &generation.config.revocation;
            for file in revocation.crls.iter().filter(|f| f.url.is_some()) {
                if not_before
                    .get(&file.issuer)
                    .is_some_and(|t| Instant::now() < *t)
                    || due_at(file, revocation.refresh.margin) > unix_now()
                {
                    continue;
                }
                let result = refresh(file, revocation, &generation.config).await;
                let label = match &result {
                    Ok(true) => "ok",
                    Ok(false) => "unchanged",
                    Err(e) => e.kind(),
                };
                self.state
                    .metrics
                    .crl_fetches
                    .with_label_values(&[file.issuer.as_str(), label])
                    .inc();
                match &result {
                    Ok(true) => tracing::info!(issuer = %file.issuer, "CRL fetched"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(issuer = %file.issuer, error = %e, "CRL not refreshed")
                    }
                }
                not_before.insert(
                    file.issuer.clone(),
                    Instant::now() + revocation.refresh.retry,
                );
            }
        }
    }
}

/// Fetch the CRL of `file` and, when it is acceptable and new, write it; `Ok(false)` when
/// it is the one in force already.
async fn refresh(
    file: &CrlFile,
    revocation: &Revocation,
    config: &crate::config::Config,
) -> Result<bool, RefreshError> {
    let Some(url) = &file.url else {
        return Ok(false);
    };
    let tls = key_host_tls(&config.key_sets).map_err(|e| RefreshError::Bundle(e.to_string()))?;
    let client = HttpsClient::new(tls, PoolLimits::OFF);
    let bytes = tokio::time::timeout(revocation.refresh.timeout, fetch(&client, url, revocation))
        .await
        .map_err(|_| RefreshError::Timeout)??;
    let fetched = crl::parse(file, &bytes)?;
    let in_force = crl::load(file).ok();
    accept(&fetched, in_force.as_ref(), &config.client_ca)?;
    if in_force.is_some_and(|c| c.der.as_ref() == fetched.der.as_ref()) {
        return Ok(false);
    }
    let tmp = file.path.with_extension("fetching");
    std::fs::write(&tmp, fetched.der.as_ref()).map_err(RefreshError::Write)?;
    std::fs::rename(&tmp, &file.path).map_err(RefreshError::Write)?;
    Ok(true)
}

/// Whether `fetched` may replace `in_force`.
fn accept(
    fetched: &LoadedCrl,
    in_force: Option<&LoadedCrl>,
    client_ca: &std::path::Path,
) -> Result<(), RefreshError> {
    if let Some(current) = in_force {
        if current.issuer_dn != fetched.issuer_dn {
            return Err(RefreshError::OtherIssuer {
                fetched: fetched.issuer_dn.clone(),
                in_force: current.issuer_dn.clone(),
            });
        }
        if fetched.this_update < current.this_update {
            return Err(RefreshError::Older {
                fetched: fetched.this_update,
                in_force: current.this_update,
            });
        }
    }
    let cas: Vec<Vec<u8>> = load_certs(client_ca)
        .map_err(|e| RefreshError::Bundle(e.to_string()))?
        .iter()
        .map(|c| c.as_ref().to_vec())
        .collect();
    match CrlIndex::check_one(fetched, &cas)? {
        Some(false) => Err(RefreshError::Signature(fetched.issuer_dn.clone())),
        _ => Ok(()),
    }
}

async fn fetch(
    client: &HttpsClient,
    url: &url::Url,
    revocation: &Revocation,
) -> Result<Vec<u8>, RefreshError> {
    let host = url.host_str().unwrap_or_default();
    let request = request_to(http::Method::GET, url)
        .header(header::ACCEPT, "application/pkix-crl")
        .body(Bytes::new())
        .map_err(|_| RefreshError::Fetch(OutboundError::Request))?;
    let target = Target {
        host,
        port: url.port_or_known_default().unwrap_or(80),
        allow_private: revocation.refresh.allow_private,
        plaintext: url.scheme() == "http",
    };
    let expect = Expect {
        content_types: CRL_TYPES,
        max_bytes: revocation.refresh.max_bytes,
    };
    Ok(client.fetch(target, request, expect).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dcrgate_certs::Authority;

    fn loaded(dir: &std::path::Path, name: &str, pem: &str) -> LoadedCrl {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        crl::load(&CrlFile {
            issuer: "tpp-ca".into(),
            path,
            url: None,
        })
        .unwrap()
    }

    #[test]
    fn a_fetched_crl_must_be_the_same_issuers_not_older_and_signed_by_the_bundle_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = Authority::new("TPP CA").unwrap();
        let bundle = dir.path().join("client-ca.pem");
        std::fs::write(&bundle, ca.cert_pem()).unwrap();
        let in_force = loaded(dir.path(), "in-force", &ca.crl(&[], 86_400).unwrap());
        // thisUpdate three hours ago, before the one in force (an hour ago): a replay.
        let older = loaded(dir.path(), "older", &ca.crl(&[], -7_200).unwrap());
        assert!(matches!(
            accept(&older, Some(&in_force), &bundle),
            Err(RefreshError::Older { .. })
        ));
        let newer = loaded(dir.path(), "newer", &ca.crl(&[], 2 * 86_400).unwrap());
        assert!(accept(&newer, Some(&in_force), &bundle).is_ok());
        assert!(accept(&newer, None, &bundle).is_ok());
        let other = Authority::new("Another CA").unwrap();
        let foreign = loaded(dir.path(), "foreign", &other.crl(&[], 86_400).unwrap());
        assert!(matches!(
            accept(&foreign, Some(&in_force), &bundle),
            Err(RefreshError::OtherIssuer { .. })
        ));
        // Same name, another key: not the bundle CA's signature.
        let impostor = Authority::new("TPP CA").unwrap();
        let forged = loaded(dir.path(), "forged", &impostor.crl(&[], 86_400).unwrap());
        assert!(matches!(
            accept(&forged, Some(&in_force), &bundle),
            Err(RefreshError::Signature(_))
        ));
        assert_eq!(RefreshError::Timeout.kind(), "failed");
        assert_eq!(RefreshError::Signature(String::new()).kind(), "refused");
    }
}
