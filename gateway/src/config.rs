//! Configuration: the TOML file format (unknown keys refused), validated into [`Config`].
//!
//! Layered like River: [`ConfigFile`] is what operators write; [`Config::load`] checks every
//! value, resolves paths relative to the file, loads the policy profile, and reports the first
//! problem as a [`ConfigError`] naming the file, the key and what is wrong.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dcrgate_policies::{HostAllowlist, Profile};
use serde::Deserialize;

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

/// The configuration file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[listener]`: the mTLS listener TPPs connect to.
    pub listener: ListenerSection,
    /// `[admin]`: metrics and health.
    pub admin: AdminSection,
    /// `[upstream]`: the legacy registry.
    pub upstream: UpstreamSection,
    /// `[policy]`: which profile, and the deployment's own facts.
    pub policy: PolicySection,
    /// `[key_sets]`: fetching and caching TPP key sets.
    #[serde(default)]
    pub key_sets: KeySetSection,
    /// `[limits]`: request bounds and client timeouts.
    #[serde(default)]
    pub limits: LimitsSection,
    /// `[server]`: process settings.
    #[serde(default)]
    pub server: ServerSection,
}

/// `[listener]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerSection {
    /// Address to listen on, e.g. `0.0.0.0:8443`.
    pub address: String,
    /// PEM certificate chain served to clients (leaf first).
    pub certificate: PathBuf,
    /// PEM private key of the served certificate.
    pub private_key: PathBuf,
    /// PEM bundle of CAs that client certificates must chain to.
    pub client_ca: PathBuf,
}

/// `[admin]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSection {
    /// Address of the plain-HTTP admin listener (`/metrics`, `/healthz`). Keep it private.
    pub address: String,
}

/// `[upstream]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSection {
    /// `http://host:port` or `https://host:port` of the registry. Resolved once at start.
    pub url: String,
    /// Extra PEM CA bundle to verify an https upstream (default: the system roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// TCP (and TLS) connect timeout, milliseconds.
    #[serde(default = "default_upstream_connect_ms")]
    pub connect_timeout_ms: u64,
    /// Longest wait for each read from the upstream (response head and body), milliseconds.
    #[serde(default = "default_upstream_read_ms")]
    pub read_timeout_ms: u64,
    /// Longest wait for each write to the upstream, milliseconds.
    #[serde(default = "default_upstream_read_ms")]
    pub write_timeout_ms: u64,
}

/// `[policy]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// Path of the policy profile (a TOML file, see `policies/profiles/`).
    pub profile: PathBuf,
    /// The `aud` values that name this authorization server.
    pub audiences: Vec<String>,
    /// Hosts TPP key sets may be fetched from (`host` or `*.domain`).
    pub key_set_hosts: Vec<String>,
}

/// `[key_sets]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeySetSection {
    /// Whole-fetch timeout (connect, TLS, response), milliseconds.
    pub fetch_timeout_ms: u64,
    /// Largest accepted key set document, bytes.
    pub max_bytes: usize,
    /// How long a fetched key set is used, seconds.
    pub cache_ttl_seconds: u64,
    /// How many key sets are cached.
    pub cache_capacity: u64,
    /// After an unknown `kid` forces a refetch of a URL, the next one waits this long, seconds.
    pub refetch_cooldown_seconds: u64,
    /// How long a failed fetch is remembered (requests fail closed meanwhile), seconds.
    pub failure_ttl_seconds: u64,
    /// Extra PEM CA bundle trusted for key hosts, on top of the public web roots.
    pub extra_ca_file: Option<PathBuf>,
    /// Whether to trust the public web roots for key hosts.
    pub use_public_roots: bool,
    /// Allow key hosts that resolve to loopback, private or link-local addresses. Off: an
    /// allowlisted name that resolves inward (DNS rebinding, metadata endpoints) is refused.
    pub allow_private_addresses: bool,
}

impl Default for KeySetSection {
    fn default() -> Self {
        Self {
            fetch_timeout_ms: 2000,
            max_bytes: 256 * 1024,
            cache_ttl_seconds: 300,
            cache_capacity: 10_000,
            refetch_cooldown_seconds: 30,
            failure_ttl_seconds: 10,
            extra_ca_file: None,
            use_public_roots: true,
            allow_private_addresses: false,
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Largest request body, bytes (at most 65536).
    pub max_body_bytes: usize,
    /// Time allowed from accepting a connection (or finishing the previous request on it) to
    /// a complete request head, TLS handshake included, milliseconds.
    pub header_timeout_ms: u64,
    /// Time allowed to receive the whole request body, milliseconds.
    pub body_timeout_ms: u64,
    /// Longest accepted ClientId.
    pub max_client_id_length: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            max_body_bytes: MAX_BODY_CEILING,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            max_client_id_length: 128,
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Worker threads for the proxy.
    pub threads: usize,
    /// On SIGTERM: seconds to keep serving before stopping the listeners.
    pub grace_period_seconds: u64,
    /// Then: seconds to let in-flight requests finish.
    pub graceful_shutdown_timeout_seconds: u64,
    /// Log format: `text` or `json`.
    pub log_format: LogFormat,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            threads: 2,
            grace_period_seconds: 5,
            graceful_shutdown_timeout_seconds: 10,
            log_format: LogFormat::Text,
        }
    }
}

/// Operational log format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line.
    Json,
}

fn default_upstream_connect_ms() -> u64 {
    2000
}
fn default_upstream_read_ms() -> u64 {
    15_000
}

/// Where and how to reach the upstream registry.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Resolved address.
    pub address: SocketAddr,
    /// TLS to the upstream.
    pub tls: bool,
    /// SNI and certificate name for https.
    pub host: String,
    /// Extra CA bundle for https.
    pub ca_file: Option<PathBuf>,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Read timeout.
    pub read_timeout: Duration,
    /// Write timeout.
    pub write_timeout: Duration,
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
    /// Key set fetching and caching.
    pub key_sets: KeySetSection,
    /// Request bounds and timeouts.
    pub limits: LimitsSection,
    /// Process settings.
    pub server: ServerSection,
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

    /// Parse and validate configuration text; relative paths resolve against `path`'s folder.
    pub fn from_toml_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|source| ConfigError::Syntax {
            path: path.to_owned(),
            source,
        })?;
        Validator {
            path,
            base: path.parent().unwrap_or(Path::new(".")),
        }
        .validate(file)
    }
}

struct Validator<'a> {
    path: &'a Path,
    base: &'a Path,
}

impl Validator<'_> {
    fn invalid(&self, key: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            key,
            reason: reason.into(),
        }
    }

    fn file(&self, key: &'static str, p: &Path) -> Result<PathBuf, ConfigError> {
        let full = if p.is_absolute() {
            p.to_owned()
        } else {
            self.base.join(p)
        };
        if !full.is_file() {
            return Err(self.invalid(key, format!("{} is not a readable file", full.display())));
        }
        Ok(full)
    }

    fn address(&self, key: &'static str, a: &str) -> Result<String, ConfigError> {
        a.parse::<SocketAddr>()
            .map(|_| a.to_owned())
            .map_err(|e| self.invalid(key, format!("`{a}` is not an IP:port address ({e})")))
    }

    fn range<T: PartialOrd + std::fmt::Display + Copy>(
        &self,
        key: &'static str,
        v: T,
        lo: T,
        hi: T,
    ) -> Result<T, ConfigError> {
        if v < lo || v > hi {
            return Err(self.invalid(key, format!("{v} is outside {lo}..={hi}")));
        }
        Ok(v)
    }

    fn validate(&self, f: ConfigFile) -> Result<Config, ConfigError> {
        let listen = self.address("listener.address", &f.listener.address)?;
        let admin_listen = self.address("admin.address", &f.admin.address)?;
        if listen == admin_listen {
            return Err(self.invalid("admin.address", "must differ from listener.address"));
        }
        let certificate = self.file("listener.certificate", &f.listener.certificate)?;
        let private_key = self.file("listener.private_key", &f.listener.private_key)?;
        let client_ca = self.file("listener.client_ca", &f.listener.client_ca)?;
        crate::tls::pem::load_ca_bundle(&client_ca)
            .map_err(|e| self.invalid("listener.client_ca", e.to_string()))?;
        crate::tls::pem::load_cert_and_key(&certificate, &private_key)
            .map_err(|e| self.invalid("listener.certificate", e.to_string()))?;

        let upstream = self.upstream(&f.upstream)?;

        let profile_path = self.file("policy.profile", &f.policy.profile)?;
        let profile_text =
            std::fs::read_to_string(&profile_path).map_err(|source| ConfigError::Read {
                path: profile_path.clone(),
                source,
            })?;
        let profile =
            Profile::from_toml_str(&profile_text).map_err(|source| ConfigError::Profile {
                path: profile_path.clone(),
                source,
            })?;
        if f.policy.audiences.iter().all(|a| a.trim().is_empty()) {
            return Err(self.invalid("policy.audiences", "must name at least one audience"));
        }
        let key_hosts = HostAllowlist::new(&f.policy.key_set_hosts)
            .map_err(|e| self.invalid("policy.key_set_hosts", e))?;
        if key_hosts.is_empty() {
            return Err(self.invalid(
                "policy.key_set_hosts",
                "must list at least one host: key sets are only fetched from allowlisted hosts",
            ));
        }

        let k = &f.key_sets;
        self.range("key_sets.fetch_timeout_ms", k.fetch_timeout_ms, 100, 30_000)?;
        self.range("key_sets.max_bytes", k.max_bytes, 1024, 1024 * 1024)?;
        self.range("key_sets.cache_ttl_seconds", k.cache_ttl_seconds, 1, 86_400)?;
        self.range("key_sets.cache_capacity", k.cache_capacity, 1, 1_000_000)?;
        self.range(
            "key_sets.refetch_cooldown_seconds",
            k.refetch_cooldown_seconds,
            1,
            3600,
        )?;
        self.range(
            "key_sets.failure_ttl_seconds",
            k.failure_ttl_seconds,
            1,
            600,
        )?;
        let mut key_sets = k.clone();
        if let Some(ca) = &k.extra_ca_file {
            let full = self.file("key_sets.extra_ca_file", ca)?;
            crate::tls::pem::load_ca_bundle(&full)
                .map_err(|e| self.invalid("key_sets.extra_ca_file", e.to_string()))?;
            key_sets.extra_ca_file = Some(full);
        } else if !k.use_public_roots {
            return Err(self.invalid(
                "key_sets.use_public_roots",
                "is false and no key_sets.extra_ca_file is set: no key host could be trusted",
            ));
        }

        let l = &f.limits;
        self.range(
            "limits.max_body_bytes",
            l.max_body_bytes,
            1024,
            MAX_BODY_CEILING,
        )?;
        self.range(
            "limits.header_timeout_ms",
            l.header_timeout_ms,
            100,
            120_000,
        )?;
        self.range("limits.body_timeout_ms", l.body_timeout_ms, 100, 120_000)?;
        self.range(
            "limits.max_client_id_length",
            l.max_client_id_length,
            8,
            1024,
        )?;
        self.range("server.threads", f.server.threads, 1, 256)?;
        self.range(
            "server.grace_period_seconds",
            f.server.grace_period_seconds,
            0,
            3600,
        )?;
        self.range(
            "server.graceful_shutdown_timeout_seconds",
            f.server.graceful_shutdown_timeout_seconds,
            0,
            3600,
        )?;

        Ok(Config {
            path: self.path.to_owned(),
            listen,
            certificate,
            private_key,
            client_ca,
            admin_listen,
            upstream,
            profile,
            profile_path,
            audiences: f.policy.audiences,
            key_hosts,
            key_sets,
            limits: f.limits,
            server: f.server,
        })
    }

    fn upstream(&self, u: &UpstreamSection) -> Result<Upstream, ConfigError> {
        let url = url::Url::parse(&u.url)
            .map_err(|e| self.invalid("upstream.url", format!("`{}` is not a URL ({e})", u.url)))?;
        let tls = match url.scheme() {
            "http" => false,
            "https" => true,
            other => {
                return Err(self.invalid(
                    "upstream.url",
                    format!("scheme must be http or https, not {other}"),
                ))
            }
        };
        if url.path() != "/" || url.query().is_some() {
            return Err(self.invalid(
                "upstream.url",
                "must not carry a path or query: request paths are forwarded as received",
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| self.invalid("upstream.url", "has no host"))?
            .trim_matches(|c| c == '[' || c == ']')
            .to_owned();
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let address = (host.as_str(), port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| self.invalid("upstream.url", format!("cannot resolve {host}:{port}")))?;
        let ca_file = match &u.ca_file {
            Some(p) => {
                let full = self.file("upstream.ca_file", p)?;
                crate::tls::pem::load_ca_bundle(&full)
                    .map_err(|e| self.invalid("upstream.ca_file", e.to_string()))?;
                Some(full)
            }
            None => None,
        };
        Ok(Upstream {
            address,
            tls,
            host,
            ca_file,
            connect_timeout: Duration::from_millis(self.range(
                "upstream.connect_timeout_ms",
                u.connect_timeout_ms,
                10,
                60_000,
            )?),
            read_timeout: Duration::from_millis(self.range(
                "upstream.read_timeout_ms",
                u.read_timeout_ms,
                10,
                300_000,
            )?),
            write_timeout: Duration::from_millis(self.range(
                "upstream.write_timeout_ms",
                u.write_timeout_ms,
                10,
                300_000,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_is_well_formed() {
        let text = include_str!("../../deploy/dcrgate.example.toml");
        let file: ConfigFile = toml::from_str(text).expect("example parses");
        assert_eq!(file.limits.max_body_bytes, MAX_BODY_CEILING);
        assert_eq!(file.server.log_format, LogFormat::Json);
    }

    #[test]
    fn syntax_errors_name_file_and_key() {
        let text = include_str!("../../deploy/dcrgate.example.toml")
            .replace("[limits]", "[limits]\nmax_body = 1");
        let e = Config::from_toml_str(&text, Path::new("conf/dcrgate.toml")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("conf/dcrgate.toml:"), "{msg}");
        assert!(msg.contains("max_body"), "{msg}");
    }

    #[test]
    fn missing_files_name_the_key() {
        let text = include_str!("../../deploy/dcrgate.example.toml");
        let e = Config::from_toml_str(text, Path::new("/nonexistent/dcrgate.toml")).unwrap_err();
        assert!(
            matches!(
                e,
                ConfigError::Invalid {
                    key: "listener.certificate",
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let l = LimitsSection::default();
        assert_eq!(
            (l.max_body_bytes, l.header_timeout_ms, l.body_timeout_ms),
            (65536, 10_000, 10_000)
        );
        let k = KeySetSection::default();
        assert_eq!(
            (
                k.fetch_timeout_ms,
                k.max_bytes,
                k.cache_ttl_seconds,
                k.refetch_cooldown_seconds
            ),
            (2000, 262_144, 300, 30)
        );
        assert!(!k.allow_private_addresses);
    }
}
