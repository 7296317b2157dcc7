//! Configuration, in three layers (as River layers its own): [`file`] is the TOML operators
//! write (serde types only, unknown keys refused), [`validate`] checks every value, resolves
//! paths relative to the file and loads the policy profile, and [`Config`] with its [`settings`]
//! is what the runtime reads. The first problem is reported as a [`ConfigError`] naming the
//! file, the key and what is wrong. This module depends on no runtime module.

pub mod audit_path;
pub mod endpoint;
pub mod file;
pub mod forward_headers;
pub mod front_proxy;
pub mod rate_limits;
pub mod redis;
pub mod redis_url;
pub mod revocation;
pub mod secret_file;
pub mod settings;
pub mod validate;

use std::path::{Path, PathBuf};

use dcrgate_policies::{HostAllowlist, Profile};

pub use endpoint::{https_endpoint, EndpointError};
pub use file::ConfigFile;
pub use forward_headers::{AllowlistError, ForwardHeaders};
pub use redis_url::{RedisUrl, RedisUrlError};
pub use secret_file::{read_secret_file, SecretFileError};
pub use settings::{
    Audit, Bearer, BearerMode, ClientClaim, ClientSecret, CrlFile, DirectoryConfig, FrontProxy,
    HttpsEndpoint, Introspection, IssuerPolicy, JwtBearer, KeySets, KeySource, Limits, LogFormat,
    OcspSettings, OnStoreError, RateLimits, Redis, RedisSentinel, RedisTls, Replay, ReplayBackend,
    Revocation, RevocationMode, RevocationOrder, RevocationScope, Routes, Server, StoreKind,
    Upstream,
};
pub use validate::Validator;

/// The largest request body the gateway will hold (the whole body is verified before it is
/// forwarded, and replayed to the upstream from memory).
pub const MAX_BODY_CEILING: usize = 64 * 1024;

/// A configuration problem: which file, which key, what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key or a wrong type; toml's message names the key and line.
    #[error("{path}: {source}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: toml::de::Error,
    },
    /// A value that parses but is not acceptable.
    #[error("{path}: key `{key}`: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The dotted key.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The policy profile named by `policy.profile` is not acceptable.
    #[error("{path}: {source}")]
    Profile {
        /// The profile file.
        path: PathBuf,
        /// What is wrong with it.
        source: dcrgate_policies::ProfileError,
    },
}

impl ConfigError {
    /// The dotted key at fault, when the problem is one value.
    pub fn key(&self) -> Option<&'static str> {
        match self {
            ConfigError::Invalid { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub path: PathBuf,
    /// Listener address.
    pub listen: String,
    /// Served certificate chain.
    pub certificate: PathBuf,
    /// Served private key.
    pub private_key: PathBuf,
    /// Client CA bundle.
    pub client_ca: PathBuf,
    /// The trusted front proxy, when configured.
    pub front_proxy: Option<FrontProxy>,
    /// Client certificate revocation (CRLs).
    pub revocation: Revocation,
    /// Admin listener address.
    pub admin_listen: String,
    /// The upstream registry.
    pub upstream: Upstream,
    /// The policy profile.
    pub profile: Profile,
    /// Where the profile was loaded from.
    pub profile_path: PathBuf,
    /// Accepted audiences.
    pub audiences: Vec<String>,
    /// Key set host allowlist.
    pub key_hosts: HostAllowlist,
    /// Trusted software statement directories.
    pub directories: Vec<DirectoryConfig>,
    /// Routes served.
    pub routes: Routes,
    /// Bearer token verification.
    pub bearer: Bearer,
    /// Replay store.
    pub replay: Replay,
    /// The shared Redis, when configured.
    pub redis: Option<Redis>,
    /// Audit sink.
    pub audit: Audit,
    /// Rate limits.
    pub rate_limits: RateLimits,
    /// Key set fetching and caching.
    pub key_sets: KeySets,
    /// Request bounds and timeouts.
    pub limits: Limits,
    /// Process settings.
    pub server: Server,
}

impl Config {
    /// Read, parse and validate a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text, path)
    }

    /// Read, parse and validate a configuration file without resolving `upstream.url` (the
    /// result's upstream address is a placeholder: for checking, not for running).
    pub fn load_offline(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file = Self::parse(&text, path)?;
        validate::Validator::new(path).offline().validate(file)
    }

    /// Parse and validate configuration text; relative paths resolve against `path`'s folder.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file = Self::parse(text, path)?;
        validate::Validator::new(path).validate(file)
    }

    fn parse(text: &str, path: &Path) -> Result<ConfigFile, ConfigError> {
        toml::from_str(text).map_err(|source| ConfigError::Syntax {
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests;
