//! `[redis]`, validated: the server URL, the TLS material (read and parsed here, so that
//! `check` refuses what `run` could not use), Sentinel mode, and the operation timeout.

use super::file::RedisSection;
use super::redis_url::RedisUrl;
use super::secret_file::read_secret_file;
use super::validate::Validator;
use super::{ConfigError, Redis, RedisSentinel, RedisTls};
use crate::tls::pem;

/// The longest accepted `redis.timeout_ms`.
pub const MAX_TIMEOUT_MS: u64 = 10_000;
/// The most sentinels accepted.
pub const MAX_SENTINELS: usize = 16;

impl Validator<'_> {
    /// `[redis]`, validated; `None` when no `url` is set.
    pub fn redis(&self, r: &RedisSection) -> Result<Option<Redis>, ConfigError> {
        if r.timeout_ms == 0 || r.timeout_ms > MAX_TIMEOUT_MS {
            return Err(self.invalid(
                "redis.timeout_ms",
                format!("must be between 1 and {MAX_TIMEOUT_MS}"),
            ));
        }
        let (from_file, url_file) = match (&r.url, &r.url_file) {
            (Some(_), Some(_)) => {
                return Err(self.invalid("redis.url_file", "set either url or url_file, not both"))
            }
            (None, Some(path)) => {
                let path = self.file("redis.url_file", path)?;
                let url = read_secret_file(&path)
                    .map_err(|e| self.invalid("redis.url_file", e.to_string()))?;
                (Some(url), Some(path))
            }
            _ => (None, None),
        };
        let Some(url) = from_file.as_ref().or(r.url.as_ref()) else {
            if r.sentinel_master.is_some() || !r.sentinels.is_empty() {
                return Err(self.invalid(
                    "redis.url",
                    "is required with Sentinel (it gives the scheme, credentials and database)",
                ));
            }
            return Ok(None);
        };
        let key = if from_file.is_some() {
            "redis.url_file"
        } else {
            "redis.url"
        };
        let url = RedisUrl::parse(url).map_err(|e| self.invalid(key, e.to_string()))?;
        let tls = self.redis_tls(r)?;
        let sentinel = match (&r.sentinel_master, r.sentinels.as_slice()) {
            (None, []) => None,
            (Some(_), []) => {
                return Err(self.invalid("redis.sentinels", "is required with sentinel_master"))
            }
            (None, _) => {
                return Err(self.invalid("redis.sentinel_master", "is required with sentinels"))
            }
            (Some(master), nodes) => {
                if master.is_empty() || !master.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(self.invalid(
                        "redis.sentinel_master",
                        "must be printable ASCII without spaces",
                    ));
                }
                if nodes.len() > MAX_SENTINELS {
                    return Err(self.invalid(
                        "redis.sentinels",
                        format!("at most {MAX_SENTINELS} sentinels"),
                    ));
                }
                let nodes = nodes
                    .iter()
                    .enumerate()
                    .map(|(i, n)| {
                        let node = RedisUrl::parse(n).map_err(|e| {
                            self.invalid("redis.sentinels", format!("sentinel {}: {e}", i + 1))
                        })?;
                        if node.db().is_some() {
                            return Err(self.invalid(
                                "redis.sentinels",
                                format!("sentinel {}: a sentinel has no database", i + 1),
                            ));
                        }
                        Ok(node)
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let same = |a: &RedisUrl, b: &RedisUrl| {
                    a.tls() == b.tls()
                        && a.username() == b.username()
                        && a.password() == b.password()
                };
                if nodes.windows(2).any(|w| !same(&w[0], &w[1])) {
                    return Err(self.invalid(
                        "redis.sentinels",
                        "every sentinel must have the same scheme and credentials",
                    ));
                }
                for u in std::iter::once(&url).chain(&nodes) {
                    let utf8 = |b: Option<&[u8]>| b.is_none_or(|b| std::str::from_utf8(b).is_ok());
                    if !utf8(u.username()) || !utf8(u.password()) {
                        return Err(self.invalid(
                            "redis.url",
                            "user names and passwords must be UTF-8 once percent-decoded",
                        ));
                    }
                }
                Some(RedisSentinel {
                    master: master.clone(),
                    nodes,
                })
            }
        };
        let any_tls = url.tls()
            || sentinel
                .as_ref()
                .is_some_and(|s| s.nodes.iter().any(RedisUrl::tls));
        if !any_tls && (tls.ca_pem.is_some() || tls.client.is_some()) {
            return Err(self.invalid(
                "redis.ca_file",
                "TLS files are set but no URL is rediss://: the connection would not use them",
            ));
        }
        Ok(Some(Redis {
            url,
            tls,
            sentinel,
            timeout: std::time::Duration::from_millis(r.timeout_ms),
            url_file,
        }))
    }

    fn redis_tls(&self, r: &RedisSection) -> Result<RedisTls, ConfigError> {
        let read = |key: &'static str, path| {
            let full = self.file(key, path)?;
            std::fs::read(&full)
                .map_err(|e| self.invalid(key, format!("{}: {e}", full.display())))
                .map(|bytes| (full, bytes))
        };
        let ca_pem = match &r.ca_file {
            Some(p) => {
                let (full, bytes) = read("redis.ca_file", p)?;
                pem::load_ca_bundle(&full)
                    .map_err(|e| self.invalid("redis.ca_file", e.to_string()))?;
                Some(bytes)
            }
            None => None,
        };
        let client = match (&r.certificate, &r.private_key) {
            (Some(c), Some(k)) => {
                let (cert_path, cert) = read("redis.certificate", c)?;
                let (key_path, key) = read("redis.private_key", k)?;
                pem::load_cert_and_key(&cert_path, &key_path)
                    .map_err(|e| self.invalid("redis.certificate", e.to_string()))?;
                Some((cert, key))
            }
            (Some(_), None) => {
                return Err(self.invalid("redis.private_key", "is required with certificate"))
            }
            (None, Some(_)) => {
                return Err(self.invalid("redis.certificate", "is required with private_key"))
            }
            (None, None) => None,
        };
        Ok(RedisTls { ca_pem, client })
    }
}
