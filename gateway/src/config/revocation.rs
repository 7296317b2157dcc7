//! `[revocation]`, validated: the mode and scope, and every CRL file readable and a parseable
//! certificate revocation list, each under a distinct issuer name (the metric label).

use super::file::RevocationSection;
use super::validate::Validator;
use std::time::Duration;

use url::Url;

use super::settings::CrlRefresh;
use super::{ConfigError, CrlFile, Revocation, RevocationMode};
use crate::tls::crl;

/// The longest issuer name (a metric label value).
const MAX_ISSUER_LEN: usize = 64;

impl Validator<'_> {
    /// `[revocation]`: `require` needs at least one CRL; names are short, distinct label values.
    pub fn revocation(&self, r: &RevocationSection) -> Result<Revocation, ConfigError> {
        let mut crls: Vec<CrlFile> = Vec::with_capacity(r.crl.len());
        for entry in &r.crl {
            let name_ok = !entry.issuer.is_empty()
                && entry.issuer.len() <= MAX_ISSUER_LEN
                && entry
                    .issuer
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !name_ok {
                return Err(self.invalid(
                    "revocation.crl.issuer",
                    format!(
                        "`{}` must be 1 to {MAX_ISSUER_LEN} characters from A-Z a-z 0-9 - _ .",
                        entry.issuer.escape_debug()
                    ),
                ));
            }
            if crls.iter().any(|c| c.issuer == entry.issuer) {
                return Err(self.invalid(
                    "revocation.crl.issuer",
                    format!("`{}` is named twice", entry.issuer),
                ));
            }
            let url = entry
                .url
                .as_deref()
                .map(|raw| self.crl_url(raw))
                .transpose()?;
            let file = CrlFile {
                issuer: entry.issuer.clone(),
                path: if url.is_some() {
                    // Written by the first fetch when it does not exist yet.
                    self.resolve(&entry.file)
                } else {
                    self.file("revocation.crl.file", &entry.file)?
                },
                url,
            };
            if file.url.is_none() || file.path.exists() {
                crl::load(&file).map_err(|e| self.invalid("revocation.crl.file", e.to_string()))?;
            }
            crls.push(file);
        }
        if r.mode == RevocationMode::Require && crls.is_empty() {
            return Err(self.invalid(
                "revocation.mode",
                "`require` needs at least one [[revocation.crl]]: without one no status is known \
                 and every handshake would fail",
            ));
        }
        if r.mode == RevocationMode::Off {
            crls.clear();
        }
        if !(1..=86_400).contains(&r.retry_seconds) {
            return Err(self.invalid("revocation.retry_seconds", "must be 1 to 86400"));
        }
        if !(1..=120).contains(&r.fetch_timeout_seconds) {
            return Err(self.invalid("revocation.fetch_timeout_seconds", "must be 1 to 120"));
        }
        if !(1024..=256 * 1024 * 1024).contains(&r.max_crl_bytes) {
            return Err(self.invalid("revocation.max_crl_bytes", "must be 1 KiB to 256 MiB"));
        }
        Ok(Revocation {
            mode: r.mode,
            scope: r.scope,
            crls,
            refresh: CrlRefresh {
                margin: Duration::from_secs(r.refresh_margin_seconds),
                retry: Duration::from_secs(r.retry_seconds),
                timeout: Duration::from_secs(r.fetch_timeout_seconds),
                max_bytes: r.max_crl_bytes,
                allow_private: r.allow_private_addresses,
            },
        })
    }

    /// A CRL distribution point: http or https (a CRL is signed, so http is enough), a host,
    /// no userinfo and no fragment.
    fn crl_url(&self, raw: &str) -> Result<Url, ConfigError> {
        let url = Url::parse(raw)
            .map_err(|e| self.invalid("revocation.crl.url", format!("`{raw}`: {e}")))?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none_or(str::is_empty)
            || !url.username().is_empty()
            || url.password().is_some()
            || url.fragment().is_some()
        {
            return Err(self.invalid(
                "revocation.crl.url",
                format!(
                    "`{raw}` must be an http or https URL with a host, no userinfo or fragment"
                ),
            ));
        }
        Ok(url)
    }
}
