//! Validation: every value of a [`ConfigFile`] checked against its documented bounds, paths
//! resolved against the configuration file's folder and checked readable (certificates, CA
//! bundles and key sets parsed), URLs parsed, and the result assembled as the [`Config`] the
//! runtime reads. The first problem found is the [`ConfigError`], naming the dotted key.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use dcrgate_policies::{HostAllowlist, Presence, Profile};
use url::Url;

use super::file::{
    BearerSection, ConfigFile, DirectorySection, IntrospectionSection, ManagedRoute, ReplaySection,
    RoutesSection, UpstreamSection,
};
use super::settings::{
    Audit, Bearer, BearerMode, ClientSecret, DirectoryConfig, Introspection, JwtBearer, KeySets,
    KeySource, Limits, Redis, Replay, ReplayBackend, Routes, Server, StoreKind, Upstream,
};
use super::{
    audit_path, https_endpoint, read_secret_file, Config, ConfigError, ForwardHeaders,
    MAX_BODY_CEILING,
};
use crate::tls::pem;

/// The largest accepted `replay.memory_capacity`.
const MAX_MEMORY_CAPACITY: u64 = 10_000_000;
/// The longest accepted Redis key prefix (`replay.key_prefix`, `rate_limits.key_prefix`), bytes.
const MAX_KEY_PREFIX_LEN: usize = 128;

/// Validates one file's contents (or one section of it); relative paths resolve against the
/// file's folder.
pub struct Validator<'a> {
    path: &'a Path,
    base: &'a Path,
    /// Skip name resolution (see [`Validator::offline`]).
    offline: bool,
}

impl<'a> Validator<'a> {
    /// A validator for the file at `path`.
    pub fn new(path: &'a Path) -> Self {
        Self {
            path,
            base: path.parent().unwrap_or(Path::new(".")),
            offline: false,
        }
    }

    /// Validate without name resolution: `upstream.url`'s host is checked for form only (for
    /// `dcrgate check --offline` where the registry's name resolves only where it runs, e.g. a
    /// Kubernetes Service name checked in CI).
    pub fn offline(mut self) -> Self {
        self.offline = true;
        self
    }

    pub(super) fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_owned()
        } else {
            self.base.join(p)
        }
    }

    pub(super) fn invalid(&self, key: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_owned(),
            key,
            reason: reason.into(),
        }
    }

    pub(super) fn file(&self, key: &'static str, p: &Path) -> Result<PathBuf, ConfigError> {
        let full = self.resolve(p);
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

    /// The whole file, validated.
    pub fn validate(&self, f: ConfigFile) -> Result<Config, ConfigError> {
        let listen = self.address("listener.address", &f.listener.address)?;
        let front_proxy = self.front_proxy(&f.front_proxy)?;
        let admin_listen = self.address("admin.address", &f.admin.address)?;
        if listen == admin_listen {
            return Err(self.invalid("admin.address", "must differ from listener.address"));
        }
        let certificate = self.file("listener.certificate", &f.listener.certificate)?;
        let private_key = self.file("listener.private_key", &f.listener.private_key)?;
        let client_ca = self.file("listener.client_ca", &f.listener.client_ca)?;
        pem::load_client_ca_bundle(&client_ca)
            .map_err(|e| self.invalid("listener.client_ca", e.to_string()))?;
        pem::load_cert_and_key(&certificate, &private_key)
            .map_err(|e| self.invalid("listener.certificate", e.to_string()))?;

        let upstream = self.upstream(&f.upstream)?;
        let revocation = self.revocation(&f.revocation)?;

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
        // A jti is remembered until its request object can no longer be accepted: exp plus the
        // leeway, exp being at most the lifetime after an iat up to the leeway ahead. The
        // store keeps identifiers at most crate::replay::MAX_TTL.
        if profile.replay.require_jti {
            let longest = profile
                .request
                .max_lifetime_seconds
                .saturating_add(profile.request.clock_leeway_seconds.saturating_mul(2));
            let kept = crate::replay::MAX_TTL.as_secs() as i64;
            if longest > kept {
                return Err(self.invalid(
                    "policy.profile",
                    format!(
                        "{}: a request object may be accepted for up to {longest} s \
                         (request.max_lifetime_seconds plus twice clock_leeway_seconds), longer \
                         than the {kept} s the replay store keeps a jti: a replay could be \
                         accepted after its jti is forgotten",
                        profile_path.display()
                    ),
                ));
            }
        }
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
        let mut key_sets = KeySets::from(k);
        if let Some(ca) = &k.extra_ca_file {
            let full = self.file("key_sets.extra_ca_file", ca)?;
            pem::load_ca_bundle(&full)
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
        self.range(
            "server.dependency_probe_seconds",
            f.server.dependency_probe_seconds,
            1,
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
        let bearer = self.bearer(&f.bearer, &routes)?;
        let redis = self.redis(&f.redis)?;
        let replay = self.replay(&f.replay, redis.as_ref())?;
        let rate_limits = self.rate_limits(&f.rate_limits, redis.as_ref())?;
        let audit = Audit {
            path: f.audit.path.as_deref().map(|p| {
                if p.as_os_str() == "-" {
                    p.to_owned()
                } else {
                    self.resolve(p)
                }
            }),
        };
        if let Some(path) = audit.path.as_ref().filter(|p| p.as_os_str() != "-") {
            audit_path::check_writable(path)
                .map_err(|e| self.invalid("audit.path", format!("{}: {e}", path.display())))?;
        }

        Ok(Config {
            path: self.path.to_owned(),
            listen,
            certificate,
            private_key,
            client_ca,
            front_proxy,
            revocation,
            admin_listen,
            upstream,
            profile,
            profile_path,
            audiences: f.policy.audiences,
            key_hosts,
            directories,
            routes,
            bearer,
            replay,
            redis,
            audit,
            rate_limits,
            key_sets,
            limits: Limits::from(&f.limits),
            server: Server::from(&f.server),
        })
    }

    fn https_url(&self, key: &'static str, raw: &str) -> Result<Url, ConfigError> {
        let url = Url::parse(raw)
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

    /// Exactly one of a key set URL and file; `ca_file` (checked readable whichever is set)
    /// goes with the URL.
    fn key_source(
        &self,
        key: &'static str,
        url: Option<&str>,
        file: Option<&Path>,
        ca_file: Option<&Path>,
        ca_key: &'static str,
    ) -> Result<KeySource, ConfigError> {
        let source = match (url, file) {
            (Some(u), None) => KeySource::Url {
                url: self.https_url(key, u)?,
                ca_file: None,
            },
            (None, Some(f)) => {
                let full = self.file(key, f)?;
                let bytes = std::fs::read(&full).map_err(|e| self.invalid(key, e.to_string()))?;
                dcrgate_jose::jwk::JwkSet::parse(&bytes)
                    .map_err(|e| self.invalid(key, e.to_string()))?;
                KeySource::File(full)
            }
            _ => return Err(self.invalid(key, "set exactly one of key_set_url and key_set_file")),
        };
        let ca = match ca_file {
            Some(p) => Some(self.file(ca_key, p)?),
            None => None,
        };
        Ok(match source {
            KeySource::Url { url, .. } => KeySource::Url { url, ca_file: ca },
            file => file,
        })
    }

    fn directory(&self, d: &DirectorySection) -> Result<DirectoryConfig, ConfigError> {
        const KEY: &str = "policy.directories";
        if d.issuer.trim().is_empty() {
            return Err(self.invalid(KEY, "issuer must not be empty"));
        }
        self.algorithms(KEY, &d.algorithms)?;
        let keys = self.key_source(
            KEY,
            d.key_set_url.as_deref(),
            d.key_set_file.as_deref(),
            d.ca_file.as_deref(),
            KEY,
        )?;
        Ok(DirectoryConfig {
            issuer: d.issuer.clone(),
            keys,
            algorithms: d.algorithms.clone(),
        })
    }

    pub(super) fn routes(&self, r: &RoutesSection) -> Result<Routes, ConfigError> {
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

    pub(super) fn bearer(&self, b: &BearerSection, routes: &Routes) -> Result<Bearer, ConfigError> {
        let uses = |m| routes.modes().any(|x| x == m);
        let jwt = match &b.jwt {
            None if uses(BearerMode::Jwt) => {
                return Err(self.invalid(
                    "bearer.jwt",
                    "a route uses bearer = \"jwt\" but [bearer.jwt] is not configured",
                ))
            }
            None => None,
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
                let keys = self.key_source(
                    "bearer.jwt",
                    j.key_set_url.as_deref(),
                    j.key_set_file.as_deref(),
                    j.ca_file.as_deref(),
                    "bearer.jwt.ca_file",
                )?;
                Some(JwtBearer {
                    issuer: j.issuer.clone(),
                    audiences: j.audiences.clone(),
                    algorithms: j.algorithms.clone(),
                    keys,
                    clock_leeway_seconds: j.clock_leeway_seconds,
                })
            }
        };
        let introspection = match &b.introspection {
            None if uses(BearerMode::Introspection) => {
                return Err(self.invalid(
                    "bearer.introspection",
                    "a route uses bearer = \"introspection\" but [bearer.introspection] is not configured",
                ))
            }
            None => None,
            Some(i) => Some(self.introspection(i)?),
        };
        Ok(Bearer {
            client_claim: b.client_claim,
            jwt,
            introspection,
        })
    }

    /// `[bearer.introspection]`, validated: an https endpoint, client authentication configured (a client id with a secret file,
    /// and/or a certificate with its key), every file readable and usable, bounds in range.
    pub fn introspection(&self, i: &IntrospectionSection) -> Result<Introspection, ConfigError> {
        let endpoint = https_endpoint(&i.endpoint)
            .map_err(|e| self.invalid("bearer.introspection.endpoint", e.to_string()))?;
        let file = |key: &'static str, p: &Option<PathBuf>| match p {
            Some(p) => self.file(key, p).map(Some),
            None => Ok(None),
        };
        let ca_file = file("bearer.introspection.ca_file", &i.ca_file)?;
        let secret_file = file(
            "bearer.introspection.client_secret_file",
            &i.client_secret_file,
        )?;
        let certificate = file("bearer.introspection.certificate", &i.certificate)?;
        let private_key = file("bearer.introspection.private_key", &i.private_key)?;
        if let Some(ca) = &ca_file {
            pem::load_ca_bundle(ca)
                .map_err(|e| self.invalid("bearer.introspection.ca_file", e.to_string()))?;
        }
        let client_secret = match (&i.client_id, secret_file) {
            (Some(id), Some(secret_file)) => {
                if id.is_empty() || id.chars().any(char::is_control) {
                    return Err(self.invalid(
                        "bearer.introspection.client_id",
                        "must be non-empty and free of control characters",
                    ));
                }
                read_secret_file(&secret_file).map_err(|e| {
                    self.invalid("bearer.introspection.client_secret_file", e.to_string())
                })?;
                Some(ClientSecret {
                    client_id: id.clone(),
                    secret_file,
                })
            }
            (Some(_), None) => {
                return Err(self.invalid(
                    "bearer.introspection.client_secret_file",
                    "is required with client_id",
                ))
            }
            (None, Some(_)) => {
                return Err(self.invalid(
                    "bearer.introspection.client_id",
                    "is required with client_secret_file",
                ))
            }
            (None, None) => None,
        };
        let client_certificate = match (certificate, private_key) {
            (Some(cert), Some(key)) => {
                pem::load_cert_and_key(&cert, &key)
                    .map_err(|e| self.invalid("bearer.introspection.certificate", e.to_string()))?;
                Some((cert, key))
            }
            (Some(_), None) => {
                return Err(self.invalid(
                    "bearer.introspection.private_key",
                    "is required with certificate",
                ))
            }
            (None, Some(_)) => {
                return Err(self.invalid(
                    "bearer.introspection.certificate",
                    "is required with private_key",
                ))
            }
            (None, None) => None,
        };
        if client_secret.is_none() && client_certificate.is_none() {
            return Err(self.invalid(
                "bearer.introspection",
                "configure client authentication: client_id with client_secret_file, \
                 and/or certificate with private_key",
            ));
        }
        let timeout = self.range("bearer.introspection.timeout_ms", i.timeout_ms, 100, 30_000)?;
        let max_cache = self.range(
            "bearer.introspection.max_cache_seconds",
            i.max_cache_seconds,
            0,
            3600,
        )?;
        let max_bytes = self.range(
            "bearer.introspection.max_bytes",
            i.max_bytes,
            1024,
            1024 * 1024,
        )?;
        let cache_capacity = self.range(
            "bearer.introspection.cache_capacity",
            i.cache_capacity,
            1,
            1_000_000,
        )?;
        Ok(Introspection {
            endpoint,
            ca_file,
            client_secret,
            client_certificate,
            timeout: Duration::from_millis(timeout),
            max_cache: Duration::from_secs(max_cache),
            max_bytes,
            cache_capacity,
        })
    }

    /// `[replay]`, validated; `redis` is the validated `[redis]`, which `store = "redis"` needs.
    pub fn replay(&self, r: &ReplaySection, redis: Option<&Redis>) -> Result<Replay, ConfigError> {
        if r.redis_url.is_some() {
            return Err(self.invalid(
                "replay.redis_url",
                "has moved: set redis.url (the [redis] section is shared with the rate limiter)",
            ));
        }
        if r.timeout_ms.is_some() {
            return Err(self.invalid("replay.timeout_ms", "has moved: set redis.timeout_ms"));
        }
        self.key_prefix("replay.key_prefix", &r.key_prefix)?;
        if r.memory_capacity == 0 || r.memory_capacity > MAX_MEMORY_CAPACITY {
            return Err(self.invalid(
                "replay.memory_capacity",
                format!("must be between 1 and {MAX_MEMORY_CAPACITY}"),
            ));
        }
        let backend = match r.store {
            StoreKind::Redis if redis.is_none() => {
                return Err(self.invalid("redis.url", "is required when replay.store = \"redis\""))
            }
            StoreKind::Redis => ReplayBackend::Redis,
            StoreKind::Memory => ReplayBackend::Memory {
                capacity: r.memory_capacity,
            },
        };
        Ok(Replay {
            backend,
            key_prefix: r.key_prefix.clone(),
            on_store_error: r.on_store_error,
        })
    }

    /// A Redis key prefix: short printable ASCII without spaces.
    pub(super) fn key_prefix(&self, key: &'static str, prefix: &str) -> Result<(), ConfigError> {
        if prefix.len() > MAX_KEY_PREFIX_LEN {
            return Err(self.invalid(key, format!("must be at most {MAX_KEY_PREFIX_LEN} bytes")));
        }
        if !prefix.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(self.invalid(key, "must be printable ASCII without spaces"));
        }
        Ok(())
    }

    fn upstream(&self, u: &UpstreamSection) -> Result<Upstream, ConfigError> {
        let url = Url::parse(&u.url)
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
        let address = if self.offline {
            // Not resolved: a placeholder with the port; an offline check's result never runs.
            SocketAddr::from(([0, 0, 0, 0], port))
        } else {
            (host.as_str(), port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| {
                    self.invalid("upstream.url", format!("cannot resolve {host}:{port}"))
                })?
        };
        let ca_file = match &u.ca_file {
            Some(p) => {
                let full = self.file("upstream.ca_file", p)?;
                pem::load_ca_bundle(&full)
                    .map_err(|e| self.invalid("upstream.ca_file", e.to_string()))?;
                Some(full)
            }
            None => None,
        };
        let resolve_seconds =
            self.range("upstream.resolve_seconds", u.resolve_seconds, 0, 86_400)?;
        Ok(Upstream {
            address,
            port,
            resolve_every: (resolve_seconds > 0).then(|| Duration::from_secs(resolve_seconds)),
            send_client_cert: u.send_client_cert,
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
            forward_headers: ForwardHeaders::new(&u.forward_headers)
                .map_err(|e| self.invalid("upstream.forward_headers", e.to_string()))?,
        })
    }
}
