//! Configuration: the TOML file format (unknown keys refused), validated into [`Config`].
//!
//! Layered like River: [`ConfigFile`] is what operators write; [`Config::load`] checks every
//! value, resolves paths relative to the file, loads the policy profile, and reports the first
//! problem as a [`ConfigError`] naming the file, the key and what is wrong.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dcrgate_policies::{HostAllowlist, Presence, Profile};
use serde::Deserialize;

use crate::bearer::introspection::IntrospectionSection;
use crate::bearer::jwt::JwtSection;
use crate::bearer::{BearerMode, ClientClaim};
use crate::rate_limit::RateLimitSection;
use crate::replay::ReplaySection;

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
    /// `[routes]`: which registration routes are served, and how their bearer tokens are checked.
    pub routes: RoutesSection,
    /// `[bearer]`: verifying bearer access tokens.
    #[serde(default)]
    pub bearer: BearerSection,
    /// `[replay]`: where used `jti`s are remembered.
    #[serde(default)]
    pub replay: ReplaySection,
    /// `[audit]`: one JSON record per decision.
    #[serde(default)]
    pub audit: AuditSection,
    /// `[rate_limits]`: per client certificate and global.
    #[serde(default)]
    pub rate_limits: RateLimitSection,
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
    /// Client request headers forwarded to the registry: exact names or `prefix-*`. Nothing
    /// else the client sends is forwarded (see `proxy::headers`).
    #[serde(default = "default_forward_headers")]
    pub forward_headers: Vec<String>,
}

fn default_forward_headers() -> Vec<String> {
    crate::proxy::headers::DEFAULT_FORWARD_HEADERS
        .map(String::from)
        .to_vec()
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
    /// Directories whose software statements are trusted (`[[policy.directories]]`).
    #[serde(default)]
    pub directories: Vec<DirectorySection>,
}

/// `[[policy.directories]]`: a software statement issuer the bank trusts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySection {
    /// The `iss` of its software statements, e.g. `OpenBanking Ltd`.
    pub issuer: String,
    /// https URL of its signing key set (cached like TPP key sets)...
    #[serde(default)]
    pub key_set_url: Option<String>,
    /// ...or a local JWKS file.
    #[serde(default)]
    pub key_set_file: Option<PathBuf>,
    /// Extra PEM CA bundle for `key_set_url`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// JWS algorithms accepted from it.
    #[serde(default = "default_directory_algorithms")]
    pub algorithms: Vec<String>,
}

fn default_directory_algorithms() -> Vec<String> {
    vec!["PS256".into()]
}

/// `[routes]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutesSection {
    /// `PUT /register/{ClientId}`: always served.
    pub update: UpdateRoute,
    /// `POST /register`: off unless configured.
    #[serde(default)]
    pub create: CreateRoute,
    /// `GET /register/{ClientId}`: off unless configured.
    #[serde(default)]
    pub read: ManagedRoute,
    /// `DELETE /register/{ClientId}`: off unless configured.
    #[serde(default)]
    pub delete: ManagedRoute,
}

/// `[routes.update]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateRoute {
    /// `jwt`, `introspection` or `upstream` (chosen explicitly; no default).
    pub bearer: BearerMode,
}

/// `[routes.create]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRoute {
    /// Serve `POST /register` (full request object and SSA checks, no bearer token).
    #[serde(default)]
    pub enabled: bool,
}

/// `[routes.read]` and `[routes.delete]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManagedRoute {
    /// Serve the route.
    #[serde(default)]
    pub enabled: bool,
    /// `jwt`, `introspection` or `upstream`; required when enabled.
    #[serde(default)]
    pub bearer: Option<BearerMode>,
}

/// `[bearer]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BearerSection {
    /// Which token claim names its client: `client_id` (default) or `azp`.
    #[serde(default)]
    pub client_claim: ClientClaim,
    /// `[bearer.jwt]`: needed when a route uses `bearer = "jwt"`.
    #[serde(default)]
    pub jwt: Option<JwtSection>,
    /// `[bearer.introspection]`: needed when a route uses `bearer = "introspection"`.
    #[serde(default)]
    pub introspection: Option<IntrospectionSection>,
}

/// `[audit]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// File the JSON audit records are appended to (one per line); no file: no audit records.
    #[serde(default)]
    pub path: Option<PathBuf>,
}

/// The routes served, each with its bearer mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routes {
    /// `PUT /register/{ClientId}`.
    pub update: BearerMode,
    /// `POST /register`.
    pub create: bool,
    /// `GET /register/{ClientId}`, when served.
    pub read: Option<BearerMode>,
    /// `DELETE /register/{ClientId}`, when served.
    pub delete: Option<BearerMode>,
}

impl Routes {
    /// Every bearer mode in use.
    pub fn modes(&self) -> impl Iterator<Item = BearerMode> {
        [Some(self.update), self.read, self.delete]
            .into_iter()
            .flatten()
    }
}

/// A validated directory.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// Its `iss`.
    pub issuer: String,
    /// Its key set: URL...
    pub key_set_url: Option<url::Url>,
    /// ...or file.
    pub key_set_file: Option<PathBuf>,
    /// CA bundle for the URL.
    pub ca_file: Option<PathBuf>,
    /// Accepted algorithms.
    pub algorithms: Vec<String>,
}

/// `[key_sets]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
    /// Largest RSA modulus accepted in a key set, bits (2048–8192).
    pub rsa_max_bits: usize,
    /// Bytes the key set cache may hold (parsed keys, failures included).
    pub cache_max_bytes: u64,
    /// Distinct key set URLs cached per host; beyond it a URL on that host is fetched for its
    /// request and not cached.
    pub max_urls_per_host: usize,
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
            rsa_max_bits: crate::jose::jwk::DEFAULT_MAX_RSA_BITS,
            cache_max_bytes: 16 * 1024 * 1024,
            max_urls_per_host: 2000,
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
    /// Most header fields in a request head.
    pub max_headers: usize,
    /// Most bytes of header names and values in a request head.
    pub max_header_bytes: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            max_body_bytes: MAX_BODY_CEILING,
            header_timeout_ms: 10_000,
            body_timeout_ms: 10_000,
            max_client_id_length: 128,
            max_headers: 64,
            max_header_bytes: 16 * 1024,
        }
    }
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Worker threads for the proxy.
    pub threads: usize,
    /// On SIGTERM the listeners stop accepting at once; in-flight requests then have this long
    /// to finish (pingora's default is 300 s; keep it above the slowest registry answer you
    /// want to let through).
    pub grace_period_seconds: u64,
    /// Then the worker runtimes get this long to stop (anything still running is cut).
    pub graceful_shutdown_timeout_seconds: u64,
    /// Log format: `text` or `json`.
    pub log_format: LogFormat,
    /// Unix socket a new process takes the listening sockets over through in a zero-downtime
    /// upgrade (default: `dcrgate-<port>-upgrade.sock` in the temp directory).
    pub upgrade_socket: Option<PathBuf>,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            threads: 2,
            grace_period_seconds: 10,
            graceful_shutdown_timeout_seconds: 5,
            log_format: LogFormat::Text,
            upgrade_socket: None,
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
    /// The client headers forwarded.
    pub forward_headers: crate::proxy::headers::ForwardHeaders,
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
    /// Trusted software statement directories.
    pub directories: Vec<DirectoryConfig>,
    /// Routes served.
    pub routes: Routes,
    /// Bearer token verification.
    pub bearer: BearerSection,
    /// Replay store.
    pub replay: ReplaySection,
    /// Audit sink.
    pub audit: AuditSection,
    /// Rate limits.
    pub rate_limits: RateLimitSection,
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
        crate::tls::pem::load_client_ca_bundle(&client_ca)
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
        self.range("key_sets.rsa_max_bits", k.rsa_max_bits, 2048, 8192)?;
        self.range(
            "key_sets.cache_max_bytes",
            k.cache_max_bytes,
            64 * 1024,
            1024 * 1024 * 1024,
        )?;
        self.range(
            "key_sets.max_urls_per_host",
            k.max_urls_per_host,
            1,
            1_000_000,
        )?;
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
        self.range("limits.max_headers", l.max_headers, 8, 256)?;
        self.range(
            "limits.max_header_bytes",
            l.max_header_bytes,
            1024,
            256 * 1024,
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

        let directories = f
            .policy
            .directories
            .iter()
            .map(|d| self.directory(d))
            .collect::<Result<Vec<_>, _>>()?;
        if profile.software_statement.presence == Presence::Required
            && directories.is_empty()
            && !profile.software_statement.allow_unsigned
        {
            return Err(self.invalid(
                "policy.directories",
                "the profile requires software statements but no directory is trusted",
            ));
        }
        let routes = self.routes(&f.routes)?;
        let bearer = self.bearer(f.bearer, &routes)?;
        f.replay
            .validate()
            .map_err(|(key, reason)| self.invalid(key, reason))?;
        f.rate_limits
            .validate()
            .map_err(|(key, reason)| self.invalid(key, reason))?;
        let audit = AuditSection {
            path: match &f.audit.path {
                Some(p) if p.is_absolute() => Some(p.clone()),
                Some(p) => Some(self.base.join(p)),
                None => None,
            },
        };

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
            directories,
            routes,
            bearer,
            replay: f.replay,
            audit,
            rate_limits: f.rate_limits,
            key_sets,
            limits: f.limits,
            server: f.server,
        })
    }

    fn https_url(&self, key: &'static str, raw: &str) -> Result<url::Url, ConfigError> {
        let url = url::Url::parse(raw)
            .map_err(|e| self.invalid(key, format!("`{raw}` is not a URL ({e})")))?;
        if url.scheme() != "https" || url.host_str().is_none() {
            return Err(self.invalid(key, format!("`{raw}` is not an https URL")));
        }
        Ok(url)
    }

    fn algorithms(&self, key: &'static str, algs: &[String]) -> Result<(), ConfigError> {
        let supported = dcrgate_policies::profile::SUPPORTED_ALGORITHMS;
        if algs.is_empty() {
            return Err(self.invalid(key, "must list at least one algorithm"));
        }
        match algs.iter().find(|a| !supported.contains(&a.as_str())) {
            Some(bad) => Err(self.invalid(
                key,
                format!(
                    "`{bad}` is not supported (supported: {})",
                    supported.join(", ")
                ),
            )),
            None => Ok(()),
        }
    }

    /// Exactly one of a key set URL and file.
    fn key_source(
        &self,
        key: &'static str,
        url: Option<&str>,
        file: Option<&Path>,
    ) -> Result<(Option<url::Url>, Option<PathBuf>), ConfigError> {
        match (url, file) {
            (Some(u), None) => Ok((Some(self.https_url(key, u)?), None)),
            (None, Some(f)) => {
                let full = self.file(key, f)?;
                crate::trust::TrustedKeys::from_file(&full)
                    .map_err(|e| self.invalid(key, e.to_string()))?;
                Ok((None, Some(full)))
            }
            _ => Err(self.invalid(key, "set exactly one of key_set_url and key_set_file")),
        }
    }

    fn directory(&self, d: &DirectorySection) -> Result<DirectoryConfig, ConfigError> {
        const KEY: &str = "policy.directories";
        if d.issuer.trim().is_empty() {
            return Err(self.invalid(KEY, "issuer must not be empty"));
        }
        self.algorithms(KEY, &d.algorithms)?;
        let (key_set_url, key_set_file) =
            self.key_source(KEY, d.key_set_url.as_deref(), d.key_set_file.as_deref())?;
        let ca_file = match &d.ca_file {
            Some(p) => Some(self.file(KEY, p)?),
            None => None,
        };
        Ok(DirectoryConfig {
            issuer: d.issuer.clone(),
            key_set_url,
            key_set_file,
            ca_file,
            algorithms: d.algorithms.clone(),
        })
    }

    fn routes(&self, r: &RoutesSection) -> Result<Routes, ConfigError> {
        let managed = |key: &'static str, m: &ManagedRoute| match (m.enabled, m.bearer) {
            (false, _) => Ok(None),
            (true, Some(mode)) => Ok(Some(mode)),
            (true, None) => Err(self.invalid(
                key,
                "an enabled route needs bearer = \"jwt\", \"introspection\" or \"upstream\"",
            )),
        };
        Ok(Routes {
            update: r.update.bearer,
            create: r.create.enabled,
            read: managed("routes.read.bearer", &r.read)?,
            delete: managed("routes.delete.bearer", &r.delete)?,
        })
    }

    fn bearer(&self, mut b: BearerSection, routes: &Routes) -> Result<BearerSection, ConfigError> {
        let uses = |m| routes.modes().any(|x| x == m);
        match &mut b.jwt {
            None if uses(BearerMode::Jwt) => {
                return Err(self.invalid(
                    "bearer.jwt",
                    "a route uses bearer = \"jwt\" but [bearer.jwt] is not configured",
                ))
            }
            None => {}
            Some(j) => {
                if j.issuer.trim().is_empty() {
                    return Err(self.invalid("bearer.jwt.issuer", "must not be empty"));
                }
                if j.audiences.iter().all(|a| a.trim().is_empty()) {
                    return Err(self.invalid("bearer.jwt.audiences", "must name an audience"));
                }
                self.algorithms("bearer.jwt.algorithms", &j.algorithms)?;
                self.range(
                    "bearer.jwt.clock_leeway_seconds",
                    j.clock_leeway_seconds,
                    0,
                    300,
                )?;
                let (_, file) = self.key_source(
                    "bearer.jwt",
                    j.key_set_url.as_deref(),
                    j.key_set_file.as_deref(),
                )?;
                j.key_set_file = file;
                if let Some(ca) = &j.ca_file {
                    j.ca_file = Some(self.file("bearer.jwt.ca_file", ca)?);
                }
            }
        }
        match &mut b.introspection {
            None if uses(BearerMode::Introspection) => {
                return Err(self.invalid(
                    "bearer.introspection",
                    "a route uses bearer = \"introspection\" but [bearer.introspection] is not configured",
                ))
            }
            None => {}
            Some(i) => i
                .validate(self.base)
                .map_err(|(key, reason)| self.invalid(key, reason))?,
        }
        Ok(b)
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
            forward_headers: crate::proxy::headers::ForwardHeaders::new(&u.forward_headers)
                .map_err(|e| self.invalid("upstream.forward_headers", e.to_string()))?,
        })
    }
}

#[cfg(test)]
mod tests;
