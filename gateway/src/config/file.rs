//! The configuration file as operators write it: serde types only, unknown keys refused, the
//! documented defaults. Nothing here is checked; [`super::validate`] turns a [`ConfigFile`] into
//! the [`super::Config`] the runtime reads.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::{
    BearerMode, ClientClaim, LogFormat, OnStoreError, RevocationMode, RevocationOrder,
    RevocationScope, StoreKind, MAX_BODY_CEILING,
};

/// The configuration file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    /// `[listener]`: the mTLS listener TPPs connect to.
    pub listener: ListenerSection,
    /// `[admin]`: metrics and health.
    pub admin: AdminSection,
    /// `[front_proxy]`: a TLS terminator in front that passes the TPP's certificate on
    /// (RFC 9440 `Client-Cert`); off unless configured.
    #[serde(default)]
    pub front_proxy: FrontProxySection,
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
    /// `[redis]`: the Redis the replicas share (replay store, shared rate limits).
    #[serde(default)]
    pub redis: RedisSection,
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
    /// `[revocation]`: certificate revocation lists for client certificates.
    #[serde(default)]
    pub revocation: RevocationSection,
}

/// `[revocation]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationSection {
    /// `off` (default), `prefer` or `require`.
    #[serde(default)]
    pub mode: RevocationMode,
    /// `chain` (default: the leaf and every intermediate) or `leaf`.
    #[serde(default)]
    pub scope: RevocationScope,
    /// `crl` (default) or `ocsp_then_crl`: where the status comes from, for issuers without
    /// their own `[[revocation.issuer]]` order.
    #[serde(default)]
    pub order: RevocationOrder,
    /// `[[revocation.crl]]`: the CRL files, one per issuing CA.
    #[serde(default)]
    pub crl: Vec<CrlSection>,
    /// `[[revocation.issuer]]`: the policy of one issuing CA, instead of `mode` and `order`.
    #[serde(default)]
    pub issuer: Vec<IssuerSection>,
    /// Hosts a certificate may name as its OCSP responder (authorityInfoAccess).
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// One OCSP exchange, seconds.
    #[serde(default = "default_ocsp_timeout")]
    pub ocsp_timeout_seconds: u64,
    /// The longest an OCSP answer is cached (it is never cached past its nextUpdate).
    #[serde(default = "default_ocsp_max_cache")]
    pub ocsp_max_cache_seconds: u64,
    /// For CRLs with a `url`: fetch a new one this long before the current one's nextUpdate.
    #[serde(default = "default_crl_refresh_margin")]
    pub refresh_margin_seconds: u64,
    /// For CRLs with a `url`: wait this long after a failed fetch before trying again.
    #[serde(default = "default_crl_retry")]
    pub retry_seconds: u64,
    /// The whole fetch of one CRL, seconds.
    #[serde(default = "default_crl_fetch_timeout")]
    pub fetch_timeout_seconds: u64,
    /// Largest CRL fetched, bytes.
    #[serde(default = "default_crl_max_bytes")]
    pub max_crl_bytes: usize,
    /// Let CRL hosts resolve to loopback or private addresses (an internal CA's CRL server).
    #[serde(default)]
    pub allow_private_addresses: bool,
}

impl Default for RevocationSection {
    fn default() -> Self {
        Self {
            mode: RevocationMode::default(),
            scope: RevocationScope::default(),
            order: RevocationOrder::default(),
            crl: Vec::new(),
            issuer: Vec::new(),
            allowed_hosts: Vec::new(),
            ocsp_timeout_seconds: default_ocsp_timeout(),
            ocsp_max_cache_seconds: default_ocsp_max_cache(),
            refresh_margin_seconds: default_crl_refresh_margin(),
            retry_seconds: default_crl_retry(),
            fetch_timeout_seconds: default_crl_fetch_timeout(),
            max_crl_bytes: default_crl_max_bytes(),
            allow_private_addresses: false,
        }
    }
}

fn default_ocsp_timeout() -> u64 {
    5
}
fn default_ocsp_max_cache() -> u64 {
    3600
}
fn default_crl_refresh_margin() -> u64 {
    3600
}
fn default_crl_retry() -> u64 {
    60
}
fn default_crl_fetch_timeout() -> u64 {
    10
}
fn default_crl_max_bytes() -> usize {
    10 * 1024 * 1024
}

/// `[[revocation.issuer]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerSection {
    /// A name for the issuing CA, the `issuer` label of the OCSP metrics.
    pub name: String,
    /// The issuing CA's subject DN (RFC 4514): the policy of the certificates it issued.
    pub subject: String,
    /// `off`, `prefer` or `require`.
    pub mode: RevocationMode,
    /// `crl` or `ocsp_then_crl`; `revocation.order` when left out.
    #[serde(default)]
    pub order: Option<RevocationOrder>,
}

/// `[[revocation.crl]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrlSection {
    /// A name for the issuing CA, the `issuer` label of the CRL metrics.
    pub issuer: String,
    /// The CRL, PEM (`X509 CRL`) or DER; read again on every reload. With `url`, where the
    /// fetched CRL is kept (it may not exist yet).
    pub file: PathBuf,
    /// The issuer's CRL distribution point (http or https): fetched before the CRL's
    /// nextUpdate, checked, and written to `file`.
    #[serde(default)]
    pub url: Option<String>,
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

/// `[front_proxy]`: the trusted front proxy, recognised by its own client certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontProxySection {
    /// Subject DNs (RFC 4514) of the front proxy's client certificates.
    #[serde(default)]
    pub subjects: Vec<String>,
    /// Or their SHA-256 thumbprints, base64url (`x5t#S256`).
    #[serde(default)]
    pub thumbprints: Vec<String>,
    /// Addresses or CIDR blocks the front proxy connects from (empty: any).
    #[serde(default)]
    pub source_addresses: Vec<String>,
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
    /// `http://host:port` or `https://host:port` of the registry. Resolved at start, on each
    /// reload and every `resolve_seconds`.
    pub url: String,
    /// How often the registry's name is resolved again, seconds (0: only at start and reload).
    #[serde(default = "default_resolve_seconds")]
    pub resolve_seconds: u64,
    /// Also send the verified certificate as RFC 9440 `Client-Cert` / `Client-Cert-Chain`.
    #[serde(default)]
    pub send_client_cert: bool,
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

fn default_resolve_seconds() -> u64 {
    30
}

fn default_forward_headers() -> Vec<String> {
    super::forward_headers::DEFAULT_FORWARD_HEADERS
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
    /// How often the shared dependencies (`dcrgate_dependency_up`) are probed, seconds.
    pub dependency_probe_seconds: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            threads: 2,
            grace_period_seconds: 10,
            graceful_shutdown_timeout_seconds: 5,
            log_format: LogFormat::Text,
            upgrade_socket: None,
            dependency_probe_seconds: 10,
        }
    }
}

fn default_upstream_connect_ms() -> u64 {
    2000
}
fn default_upstream_read_ms() -> u64 {
    15_000
}

/// `[bearer.jwt]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSection {
    /// The authorization server's issuer identifier (`iss`).
    pub issuer: String,
    /// Accepted `aud` values (at least one must be in the token's `aud`).
    pub audiences: Vec<String>,
    /// JWS algorithms accepted for access tokens.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// https URL of the authorization server's key set (cached like TPP key sets).
    #[serde(default)]
    pub key_set_url: Option<String>,
    /// Or a local JWKS file.
    #[serde(default)]
    pub key_set_file: Option<PathBuf>,
    /// Extra PEM CA bundle for `key_set_url`.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Clock skew tolerated on `exp` and `nbf`, seconds.
    #[serde(default = "default_leeway")]
    pub clock_leeway_seconds: i64,
}

fn default_algorithms() -> Vec<String> {
    vec!["PS256".into()]
}

fn default_leeway() -> i64 {
    60
}

/// `[bearer.introspection]`: where and how to introspect access tokens.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionSection {
    /// The introspection endpoint, an https URL.
    pub endpoint: String,
    /// A PEM CA bundle to trust for the endpoint instead of the public web roots.
    pub ca_file: Option<PathBuf>,
    /// The gateway's client id, for `client_secret_basic`.
    pub client_id: Option<String>,
    /// A file holding the client secret (surrounding whitespace is trimmed).
    pub client_secret_file: Option<PathBuf>,
    /// The gateway's TLS client certificate chain (PEM), for mutual TLS to the endpoint.
    pub certificate: Option<PathBuf>,
    /// The key of `certificate` (PEM).
    pub private_key: Option<PathBuf>,
    /// The deadline for one whole introspection exchange.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The longest an answer is cached (never past the token's `exp`); 0 disables caching.
    #[serde(default = "default_max_cache_seconds")]
    pub max_cache_seconds: u64,
    /// The largest answer body accepted.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
    /// How many answers the cache holds.
    #[serde(default = "default_cache_capacity")]
    pub cache_capacity: u64,
}

fn default_timeout_ms() -> u64 {
    1000
}
fn default_max_cache_seconds() -> u64 {
    60
}
fn default_max_bytes() -> usize {
    16 * 1024
}
fn default_cache_capacity() -> u64 {
    10_000
}

/// `[replay]`: where used `jti`s are remembered.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplaySection {
    /// Where identifiers are recorded: `memory` (this process only) or `redis` (shared).
    pub store: StoreKind,
    /// Moved to `redis.url`; refused with a message saying so.
    pub redis_url: Option<Moved>,
    /// Moved to `redis.timeout_ms`; refused with a message saying so.
    pub timeout_ms: Option<Moved>,
    /// Prefix of the Redis keys.
    pub key_prefix: String,
    /// What a request gets when the store cannot answer: `reject` (fail closed) or `accept`.
    pub on_store_error: OnStoreError,
    /// How many identifiers the memory store holds at most (the least recently used go first).
    pub memory_capacity: u64,
}

impl Default for ReplaySection {
    fn default() -> Self {
        Self {
            store: StoreKind::Memory,
            redis_url: None,
            timeout_ms: None,
            key_prefix: "dcrgate:jti:".to_owned(),
            on_store_error: OnStoreError::Reject,
            memory_capacity: 100_000,
        }
    }
}

/// A setting that moved to another section: whatever it held is dropped unread (it may be a
/// credential), and validation names the new place.
#[derive(Clone, PartialEq, Eq)]
pub struct Moved;

impl fmt::Debug for Moved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<moved>")
    }
}

impl<'de> Deserialize<'de> for Moved {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| Moved)
    }
}

/// `[redis]`: the Redis server the replicas share.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisSection {
    /// `redis://` or `rediss://` (TLS), `[user:password@]host[:port][/db]`.
    pub url: Option<String>,
    /// A file holding the URL instead (a mounted Secret: the password stays out of the
    /// configuration); read again on every reload. At most one of `url` and `url_file`.
    pub url_file: Option<PathBuf>,
    /// CA certificates (PEM) that sign the server's certificate, for `rediss://` (default:
    /// the system's roots).
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM), for servers that ask for one.
    pub certificate: Option<PathBuf>,
    /// Its private key (PEM).
    pub private_key: Option<PathBuf>,
    /// Bound on one operation (connect, authenticate, command), milliseconds.
    pub timeout_ms: u64,
    /// Sentinel: the name of the monitored master; `url` then gives the scheme, credentials
    /// and database, and the sentinels give its address.
    pub sentinel_master: Option<String>,
    /// Sentinel: the sentinels, each `redis://` or `rediss://[user:password@]host[:port]`.
    pub sentinels: Vec<String>,
}

impl Default for RedisSection {
    fn default() -> Self {
        Self {
            url: None,
            url_file: None,
            ca_file: None,
            certificate: None,
            private_key: None,
            timeout_ms: 250,
            sentinel_master: None,
            sentinels: Vec::new(),
        }
    }
}

/// Credentials in `url` and `sentinels` are not printed.
impl fmt::Debug for RedisSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSection")
            .field("url", &self.url.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .field("certificate", &self.certificate)
            .field("private_key", &self.private_key)
            .field("timeout_ms", &self.timeout_ms)
            .field("sentinel_master", &self.sentinel_master)
            .field("sentinels", &self.sentinels.len())
            .finish()
    }
}

/// `[rate_limits]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSection {
    /// Sustained requests per second per client certificate (0: no per-client limit).
    pub per_client_per_second: f64,
    /// Requests a client certificate may send at once above the sustained rate.
    pub per_client_burst: f64,
    /// Sustained requests per second for the whole gateway (0: no global limit).
    pub global_per_second: f64,
    /// Global burst.
    pub global_burst: f64,
    /// Client certificates whose buckets are remembered at most.
    pub max_clients: u64,
    /// Where the buckets live: `memory` (each replica its own) or `redis` (shared by all).
    pub store: StoreKind,
    /// Prefix of the Redis keys.
    pub key_prefix: String,
    /// What a request gets when the shared store cannot answer: `reject` (fail closed, 503) or
    /// `accept` (fail open: the request is not limited).
    pub on_store_error: OnStoreError,
}

impl Default for RateLimitSection {
    fn default() -> Self {
        Self {
            per_client_per_second: 5.0,
            per_client_burst: 20.0,
            global_per_second: 500.0,
            global_burst: 1000.0,
            max_clients: 100_000,
            store: StoreKind::Memory,
            key_prefix: "dcrgate:rate:".to_owned(),
            on_store_error: OnStoreError::Reject,
        }
    }
}
