//! The validated settings the runtime reads: durations rather than milliseconds, paths resolved
//! against the configuration file's folder, URLs parsed, every bound checked. Only
//! [`super::validate`] builds them from the file; runtime modules take these, never a file
//! section. The small enums the file and the runtime share (route bearer modes, store kinds,
//! the log format) are values, defined here once.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::file::{KeySetSection, LimitsSection, RateLimitSection, ServerSection};
use super::forward_headers::ForwardHeaders;
use super::redis_url::RedisUrl;

/// How a route's bearer token is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BearerMode {
    /// A signed JWT from the bank's authorization server, verified at the gateway.
    Jwt,
    /// RFC 7662 introspection at the bank's authorization server.
    Introspection,
    /// Forwarded unchecked (beyond its form) for the registry to decide.
    Upstream,
}

impl BearerMode {
    /// A closed-set label for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            BearerMode::Jwt => "jwt",
            BearerMode::Introspection => "introspection",
            BearerMode::Upstream => "upstream",
        }
    }
}

/// Which token claim names the client the token was issued to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientClaim {
    /// `client_id` (RFC 9068, RFC 7662).
    #[default]
    #[serde(rename = "client_id")]
    ClientId,
    /// `azp` (OpenID Connect).
    Azp,
}

/// `replay.store`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// In this process: replicas do not see each other's identifiers.
    #[default]
    Memory,
    /// In Redis, shared by every replica.
    Redis,
}

/// `replay.on_store_error`: what to do with a request when the store cannot answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnStoreError {
    /// Refuse the request (fail closed).
    #[default]
    Reject,
    /// Let the request through unchecked (fail open).
    Accept,
}

/// `revocation.mode`: what a client certificate's revocation status decides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevocationMode {
    /// CRLs are not consulted.
    #[default]
    Off,
    /// A revoked certificate is refused; an unknown status (no CRL for its issuer) or a CRL
    /// past its nextUpdate lets the handshake through, counted and logged (fail open).
    Prefer,
    /// A revoked certificate, an unknown status or a CRL past its nextUpdate fails the
    /// handshake (fail closed).
    Require,
}

impl RevocationMode {
    /// The configured spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationMode::Off => "off",
            RevocationMode::Prefer => "prefer",
            RevocationMode::Require => "require",
        }
    }
}

/// `revocation.scope`: which certificates of the chain are checked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RevocationScope {
    /// The leaf and every intermediate.
    #[default]
    Chain,
    /// The leaf only.
    Leaf,
}

/// `revocation.order`: where a certificate's status comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationOrder {
    /// The issuer's CRL only.
    #[default]
    Crl,
    /// For a leaf that names an OCSP responder, its answer; the CRL when the responder gives
    /// none (unknown, unreachable, not allowed). Intermediates: the CRL.
    OcspThenCrl,
}

impl RevocationOrder {
    /// The configured spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationOrder::Crl => "crl",
            RevocationOrder::OcspThenCrl => "ocsp_then_crl",
        }
    }
}

/// The revocation policy of the certificates one CA issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerPolicy {
    /// The `issuer` label (`default` for the policy of every other issuer).
    pub name: String,
    /// The CA's subject; `None` for the default policy.
    pub subject: Option<dcrgate_policies::dn::Dn>,
    /// What the status decides.
    pub mode: RevocationMode,
    /// Where it comes from.
    pub order: RevocationOrder,
}

/// How OCSP responders are asked (`[revocation]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OcspSettings {
    /// Hosts (lower case) a certificate may name as its responder.
    pub allowed_hosts: Vec<String>,
    /// One exchange.
    pub timeout: std::time::Duration,
    /// The longest an answer is cached.
    pub max_cache: std::time::Duration,
    /// Responders may resolve to non-public addresses (`revocation.allow_private_addresses`).
    pub allow_private: bool,
    /// How long a failed or unknown answer is kept before asking again
    /// (`revocation.retry_seconds`).
    pub retry: std::time::Duration,
}

/// A CRL file and the name of its issuing CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlFile {
    /// The `issuer` label.
    pub issuer: String,
    /// The file, resolved.
    pub path: PathBuf,
    /// The distribution point it is fetched from (http or https), if any.
    pub url: Option<url::Url>,
}

/// Client certificate revocation, validated (every CRL file parsed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocation {
    /// What the status decides, for issuers without their own policy.
    pub mode: RevocationMode,
    /// Where it comes from, for issuers without their own policy.
    pub order: RevocationOrder,
    /// The issuers with their own policy, in configuration order.
    pub issuers: Vec<IssuerPolicy>,
    /// How OCSP responders are asked.
    pub ocsp: OcspSettings,
    /// Which certificates are checked.
    pub scope: RevocationScope,
    /// The CRL files (none when every policy is `off`).
    pub crls: Vec<CrlFile>,
    /// How CRLs with a `url` are fetched.
    pub refresh: CrlRefresh,
}

/// How CRLs with a `url` are fetched (`[revocation]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrlRefresh {
    /// Fetch this long before the current CRL's nextUpdate.
    pub margin: std::time::Duration,
    /// Wait this long after a failed fetch.
    pub retry: std::time::Duration,
    /// The whole fetch.
    pub timeout: std::time::Duration,
    /// Largest CRL, bytes.
    pub max_bytes: usize,
    /// CRL hosts may resolve to non-public addresses.
    pub allow_private: bool,
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

/// Where and how to reach the upstream registry.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The address the name resolved to at validation (requests read the refreshed one from
    /// the generation's [`crate::upstream_address::UpstreamAddress`]).
    pub address: SocketAddr,
    /// The port.
    pub port: u16,
    /// How often the name is resolved again; `None`: only at start and reload.
    pub resolve_every: Option<Duration>,
    /// Send the verified certificate as RFC 9440 `Client-Cert` / `Client-Cert-Chain` too.
    pub send_client_cert: bool,
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
    pub forward_headers: ForwardHeaders,
}

/// `[front_proxy]`: how the trusted front proxy is recognised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontProxy {
    /// Its certificates' subjects, canonical RFC 4514.
    pub subjects: Vec<String>,
    /// Its certificates' SHA-256 thumbprints, base64url.
    pub thumbprints: Vec<String>,
    /// The networks it connects from (empty: any).
    pub source_addresses: Vec<(std::net::IpAddr, u8)>,
}

impl FrontProxy {
    /// Whether a connection from `peer` may act as the front proxy (the allowlist is empty or
    /// holds `peer`).
    pub fn admits_address(&self, peer: Option<std::net::IpAddr>) -> bool {
        self.source_addresses.is_empty()
            || peer.is_some_and(|ip| {
                self.source_addresses
                    .iter()
                    .any(|(net, bits)| in_network(ip, *net, *bits))
            })
    }
}

/// Whether `ip` is in `net`/`bits` (an IPv4-mapped IPv6 peer counts as its IPv4 address).
pub fn in_network(ip: std::net::IpAddr, net: std::net::IpAddr, bits: u8) -> bool {
    use std::net::IpAddr;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
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

/// Where a trusted signer's key set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An https URL, fetched and cached under `[key_sets]`, with an extra CA bundle.
    Url {
        /// The key set's URL.
        url: Url,
        /// Extra PEM CA bundle trusted for it.
        ca_file: Option<PathBuf>,
    },
    /// A local JWKS file, read when the configuration is loaded.
    File(PathBuf),
}

/// A trusted software statement directory.
#[derive(Debug, Clone)]
pub struct DirectoryConfig {
    /// Its `iss`.
    pub issuer: String,
    /// Its signing keys.
    pub keys: KeySource,
    /// Accepted algorithms.
    pub algorithms: Vec<String>,
}

/// `[key_sets]`: fetching and caching TPP key sets.
#[derive(Debug, Clone, PartialEq)]
pub struct KeySets {
    /// Whole-fetch deadline (connect, TLS, response).
    pub fetch_timeout: Duration,
    /// Largest accepted key set document, bytes.
    pub max_bytes: usize,
    /// How long a fetched key set is used.
    pub cache_ttl: Duration,
    /// How many key sets are cached.
    pub cache_capacity: u64,
    /// After an unknown `kid` forces a refetch of a URL, the next one waits this long.
    pub refetch_cooldown: Duration,
    /// How long a failed fetch is remembered (requests fail closed meanwhile).
    pub failure_ttl: Duration,
    /// Extra PEM CA bundle trusted for key hosts (resolved path).
    pub extra_ca_file: Option<PathBuf>,
    /// Whether the public web roots are trusted for key hosts.
    pub use_public_roots: bool,
    /// Whether key hosts may resolve to loopback, private or link-local addresses.
    pub allow_private_addresses: bool,
    /// Largest RSA modulus accepted in a key set, bits.
    pub rsa_max_bits: usize,
    /// Bytes the key set cache may hold.
    pub cache_max_bytes: u64,
    /// Distinct key set URLs cached per host.
    pub max_urls_per_host: usize,
}

impl From<&KeySetSection> for KeySets {
    /// The section's values as settings (their bounds are checked by validation).
    fn from(k: &KeySetSection) -> Self {
        Self {
            fetch_timeout: Duration::from_millis(k.fetch_timeout_ms),
            max_bytes: k.max_bytes,
            cache_ttl: Duration::from_secs(k.cache_ttl_seconds),
            cache_capacity: k.cache_capacity,
            refetch_cooldown: Duration::from_secs(k.refetch_cooldown_seconds),
            failure_ttl: Duration::from_secs(k.failure_ttl_seconds),
            extra_ca_file: k.extra_ca_file.clone(),
            use_public_roots: k.use_public_roots,
            allow_private_addresses: k.allow_private_addresses,
            rsa_max_bits: k.rsa_max_bits,
            cache_max_bytes: k.cache_max_bytes,
            max_urls_per_host: k.max_urls_per_host,
        }
    }
}

impl Default for KeySets {
    fn default() -> Self {
        Self::from(&KeySetSection::default())
    }
}

/// `[limits]`: request bounds and client timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// From accepting a connection (or finishing the previous request on it) to a complete
    /// request head, TLS handshake included.
    pub header_timeout: Duration,
    /// To receive the whole request body.
    pub body_timeout: Duration,
    /// Longest accepted ClientId.
    pub max_client_id_length: usize,
    /// Most header fields in a request head.
    pub max_headers: usize,
    /// Most bytes of header names and values in a request head.
    pub max_header_bytes: usize,
}

impl From<&LimitsSection> for Limits {
    /// The section's values as settings (their bounds are checked by validation).
    fn from(l: &LimitsSection) -> Self {
        Self {
            max_body_bytes: l.max_body_bytes,
            header_timeout: Duration::from_millis(l.header_timeout_ms),
            body_timeout: Duration::from_millis(l.body_timeout_ms),
            max_client_id_length: l.max_client_id_length,
            max_headers: l.max_headers,
            max_header_bytes: l.max_header_bytes,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::from(&LimitsSection::default())
    }
}

/// `[server]`: process settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Worker threads for the proxy.
    pub threads: usize,
    /// After SIGTERM, how long in-flight requests have to finish, seconds.
    pub grace_period_seconds: u64,
    /// Then how long the worker runtimes have to stop, seconds.
    pub graceful_shutdown_timeout_seconds: u64,
    /// Log format.
    pub log_format: LogFormat,
    /// The zero-downtime upgrade socket, when not the default.
    pub upgrade_socket: Option<PathBuf>,
    /// How often the shared dependencies are probed.
    pub dependency_probe: Duration,
}

impl From<&ServerSection> for Server {
    /// The section's values as settings (their bounds are checked by validation).
    fn from(s: &ServerSection) -> Self {
        Self {
            threads: s.threads,
            grace_period_seconds: s.grace_period_seconds,
            graceful_shutdown_timeout_seconds: s.graceful_shutdown_timeout_seconds,
            log_format: s.log_format,
            upgrade_socket: s.upgrade_socket.clone(),
            dependency_probe: Duration::from_secs(s.dependency_probe_seconds),
        }
    }
}

/// `[audit]`: where decision records go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Audit {
    /// The file records are appended to (resolved path); none: no audit records.
    pub path: Option<PathBuf>,
}

/// `[rate_limits]`: per client certificate and global token buckets (0 turns one off).
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    /// Sustained requests per second per client certificate.
    pub per_client_per_second: f64,
    /// Requests a client certificate may send at once above the sustained rate.
    pub per_client_burst: f64,
    /// Sustained requests per second for the whole gateway.
    pub global_per_second: f64,
    /// Global burst.
    pub global_burst: f64,
    /// Client certificates whose buckets are remembered at most.
    pub max_clients: u64,
    /// Where the buckets live.
    pub store: StoreKind,
    /// Prefix of the Redis keys.
    pub key_prefix: String,
    /// What a request gets when the shared store cannot answer.
    pub on_store_error: OnStoreError,
}

impl From<&RateLimitSection> for RateLimits {
    /// The section's values as settings (their bounds are checked by validation).
    fn from(r: &RateLimitSection) -> Self {
        Self {
            per_client_per_second: r.per_client_per_second,
            per_client_burst: r.per_client_burst,
            global_per_second: r.global_per_second,
            global_burst: r.global_burst,
            max_clients: r.max_clients,
            store: r.store,
            key_prefix: r.key_prefix.clone(),
            on_store_error: r.on_store_error,
        }
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::from(&RateLimitSection::default())
    }
}

/// `[redis]`: how to reach the Redis the replicas share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redis {
    /// The server (in Sentinel mode: its scheme, credentials and database).
    pub url: RedisUrl,
    /// TLS settings, for `rediss://` servers and sentinels.
    pub tls: RedisTls,
    /// Sentinel mode: the master's name and the sentinels that know its address.
    pub sentinel: Option<RedisSentinel>,
    /// Bound on one operation (connect, authenticate, command).
    pub timeout: Duration,
    /// The file the URL was read from (`redis.url_file`), watched for changes like the TLS
    /// files.
    pub url_file: Option<PathBuf>,
}

/// TLS material for Redis, read at validation.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// CA certificates (PEM) instead of the system's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate chain and key (PEM).
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

/// The key is not printed.
impl fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTls")
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .field(
                "client",
                &self.client.as_ref().map(|_| "<certificate and key>"),
            )
            .finish()
    }
}

/// Sentinel mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisSentinel {
    /// The monitored master's name.
    pub master: String,
    /// The sentinels.
    pub nodes: Vec<RedisUrl>,
}

/// Where used `jti`s are recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayBackend {
    /// In this process.
    Memory {
        /// Identifiers held at most (the least recently used go first).
        capacity: u64,
    },
    /// In the shared Redis (`[redis]`).
    Redis,
}

/// `[replay]`: the `jti` store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// The store.
    pub backend: ReplayBackend,
    /// Prefix of the Redis keys.
    pub key_prefix: String,
    /// What a request gets when the store cannot answer.
    pub on_store_error: OnStoreError,
}

/// `[bearer]`: how bearer access tokens are verified.
#[derive(Debug, Clone, Default)]
pub struct Bearer {
    /// Which token claim names its client.
    pub client_claim: ClientClaim,
    /// `jwt` mode, when a route uses it (or it is configured).
    pub jwt: Option<JwtBearer>,
    /// `introspection` mode, when a route uses it (or it is configured).
    pub introspection: Option<Introspection>,
}

/// `[bearer.jwt]`: access tokens as JWTs of the bank's authorization server.
#[derive(Debug, Clone)]
pub struct JwtBearer {
    /// Its issuer identifier (`iss`).
    pub issuer: String,
    /// Accepted `aud` values.
    pub audiences: Vec<String>,
    /// Accepted JWS algorithms.
    pub algorithms: Vec<String>,
    /// Its key set.
    pub keys: KeySource,
    /// Clock skew tolerated on `exp` and `nbf`, seconds.
    pub clock_leeway_seconds: i64,
}

/// An https endpoint, split the way a request to it needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsEndpoint {
    /// The host as in the URL (IPv6 literals bracketed).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The `Host` header value.
    pub authority: String,
    /// Path and query.
    pub target: String,
}

/// How the gateway authenticates to the introspection endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret {
    /// The gateway's client id.
    pub client_id: String,
    /// The file holding the secret (read when the introspector is built, never kept here).
    pub secret_file: PathBuf,
}

/// The secret file's path is shown, never its content (it is not held here).
impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientSecret")
            .field("client_id", &self.client_id)
            .field("secret_file", &self.secret_file)
            .finish()
    }
}

/// `[bearer.introspection]`: RFC 7662 at the bank's authorization server.
#[derive(Debug, Clone)]
pub struct Introspection {
    /// The endpoint.
    pub endpoint: HttpsEndpoint,
    /// A CA bundle trusted for it instead of the public web roots.
    pub ca_file: Option<PathBuf>,
    /// `client_secret_basic`, when configured.
    pub client_secret: Option<ClientSecret>,
    /// The gateway's TLS client certificate chain and key, when configured.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
    /// Deadline of one whole exchange.
    pub timeout: Duration,
    /// Longest an answer is cached (zero: not cached).
    pub max_cache: Duration,
    /// Largest answer body accepted.
    pub max_bytes: usize,
    /// Answers the cache holds.
    pub cache_capacity: u64,
}
