//! A trusted key set: a local JWKS file read at start, or an https URL fetched and cached like
//! TPP key sets (same bounds, no redirects), with the operator's CA bundle. Anchors are named
//! by configuration, never by a request, so private addresses are allowed for them.

use std::path::Path;
use std::sync::Arc;

use url::Url;

use crate::config::KeySets;
use crate::jose::jwk::{JwkSet, JwkSetError};
use crate::jose::verify::VerifyingKey;
use crate::keyset::fetch::FetcherSetupError;
use crate::keyset::{KeySetCache, KeySetError, KeySetFetcher};
use crate::metrics::Metrics;

/// A trust anchor's key set could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum AnchorError {
    /// The JWKS file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The JWKS file is not a usable key set.
    #[error("{0}")]
    Parse(#[from] JwkSetError),
    /// The fetcher could not be built (CA bundle, TLS).
    #[error(transparent)]
    Fetcher(#[from] FetcherSetupError),
}

/// Where a trust anchor's keys come from.
#[derive(Clone)]
pub enum TrustedKeys {
    /// Read once from a file.
    File(Arc<JwkSet>),
    /// Fetched from an https URL and cached.
    Url {
        /// The key set URL.
        url: Url,
        /// Its cache (one per anchor).
        cache: Box<KeySetCache>,
    },
}

impl TrustedKeys {
    /// Keys from a local JWKS file.
    pub fn from_file(path: &Path) -> Result<Self, AnchorError> {
        let bytes = std::fs::read(path).map_err(|source| AnchorError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self::File(Arc::new(JwkSet::parse(&bytes)?)))
    }

    /// Keys fetched from `url` under the `[key_sets]` bounds, trusting `ca_file` on top of the
    /// public roots when `key_sets.use_public_roots` is on.
    pub fn from_url(
        url: Url,
        ca_file: Option<&Path>,
        key_sets: &KeySets,
        metrics: Arc<Metrics>,
    ) -> Result<Self, AnchorError> {
        let mut cfg = key_sets.clone();
        cfg.allow_private_addresses = true;
        if let Some(ca) = ca_file {
            cfg.extra_ca_file = Some(ca.to_owned());
        }
        let fetcher = KeySetFetcher::new(&cfg)?;
        Ok(Self::Url {
            url,
            cache: Box::new(KeySetCache::new(&cfg, fetcher, metrics)),
        })
    }

    /// The usable keys with this `kid`.
    pub async fn keys(&self, kid: &str) -> Result<Vec<VerifyingKey>, KeySetError> {
        match self {
            TrustedKeys::File(set) => {
                let keys = set.get(kid);
                if keys.is_empty() {
                    Err(KeySetError::UnknownKid)
                } else {
                    Ok(keys.to_vec())
                }
            }
            TrustedKeys::Url { url, cache } => cache.keys(url, kid).await,
        }
    }

    /// The key set is usable now (a URL is fetched if not cached): for readiness.
    pub async fn ensure(&self) -> Result<(), KeySetError> {
        match self {
            TrustedKeys::File(_) => Ok(()),
            TrustedKeys::Url { url, cache } => cache.ensure(url).await,
        }
    }

    /// The URL, for readiness reports and logs (none for a file).
    pub fn url(&self) -> Option<&Url> {
        match self {
            TrustedKeys::File(_) => None,
            TrustedKeys::Url { url, .. } => Some(url),
        }
    }
}
