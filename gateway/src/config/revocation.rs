//! `[revocation]`, validated: the mode, order and scope, every CRL file readable and a parseable
//! certificate revocation list, each under a distinct issuer name (the metric label), every
//! `[[revocation.issuer]]` subject a DN under a distinct name, and OCSP responders named by
//! host when any policy asks them.

use super::file::RevocationSection;
use super::validate::Validator;
use std::time::Duration;

use url::Url;

use super::settings::CrlRefresh;
use super::settings::{IssuerPolicy, OcspSettings};
use super::{ConfigError, CrlFile, Revocation, RevocationMode, RevocationOrder};
use crate::tls::crl;
use dcrgate_policies::dn::{match_dn, Dn, MatchMode, ParseMode};

/// The longest issuer name (a metric label value).
const MAX_ISSUER_LEN: usize = 64;

impl Validator<'_> {
    /// `[revocation]`: `require` needs at least one CRL; names are short, distinct label values.
    pub fn revocation(&self, r: &RevocationSection) -> Result<Revocation, ConfigError> {
        let mut crls: Vec<CrlFile> = Vec::with_capacity(r.crl.len());
        for entry in &r.crl {
            self.label("revocation.crl.issuer", &entry.issuer)?;
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
        let issuers = self.issuers(r)?;
        let policies =
            || std::iter::once((r.mode, r.order)).chain(issuers.iter().map(|i| (i.mode, i.order)));
        if crls.is_empty()
            && policies().any(|(m, o)| m == RevocationMode::Require && o == RevocationOrder::Crl)
        {
            return Err(self.invalid(
                "revocation.mode",
                "`require` with order `crl` needs at least one [[revocation.crl]]: without one no \
                 status is known and every handshake would fail",
            ));
        }
        let asks_ocsp =
            policies().any(|(m, o)| m != RevocationMode::Off && o == RevocationOrder::OcspThenCrl);
        let mut allowed_hosts = Vec::with_capacity(r.allowed_hosts.len());
        for host in &r.allowed_hosts {
            let ok = !host.is_empty()
                && host.len() <= 253
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.'));
            if !ok {
                return Err(self.invalid(
                    "revocation.allowed_hosts",
                    format!("`{}` must be a host name", host.escape_debug()),
                ));
            }
            allowed_hosts.push(host.to_ascii_lowercase());
        }
        if asks_ocsp && allowed_hosts.is_empty() {
            return Err(self.invalid(
                "revocation.allowed_hosts",
                "order `ocsp_then_crl` needs the OCSP responder hosts certificates may name: \
                 without one no responder is ever asked",
            ));
        }
        if !(1..=60).contains(&r.ocsp_timeout_seconds) {
            return Err(self.invalid("revocation.ocsp_timeout_seconds", "must be 1 to 60"));
        }
        if !(60..=7 * 86_400).contains(&r.ocsp_max_cache_seconds) {
            return Err(self.invalid("revocation.ocsp_max_cache_seconds", "must be 60 to 604800"));
        }
        if !policies().any(|(m, _)| m != RevocationMode::Off) {
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
            order: r.order,
            issuers,
            ocsp: OcspSettings {
                allowed_hosts,
                timeout: Duration::from_secs(r.ocsp_timeout_seconds),
                max_cache: Duration::from_secs(r.ocsp_max_cache_seconds),
                allow_private: r.allow_private_addresses,
                retry: Duration::from_secs(r.retry_seconds),
            },
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

    /// A label value (an issuer name): short, from a small alphabet.
    fn label(&self, key: &'static str, name: &str) -> Result<(), ConfigError> {
        let ok = !name.is_empty()
            && name.len() <= MAX_ISSUER_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(())
        } else {
            Err(self.invalid(
                key,
                format!(
                    "`{}` must be 1 to {MAX_ISSUER_LEN} characters from A-Z a-z 0-9 - _ .",
                    name.escape_debug()
                ),
            ))
        }
    }

    /// `[[revocation.issuer]]`: distinct names (not `default`), subjects that parse and are
    /// not named twice.
    fn issuers(&self, r: &RevocationSection) -> Result<Vec<IssuerPolicy>, ConfigError> {
        let mut out: Vec<IssuerPolicy> = Vec::with_capacity(r.issuer.len());
        for entry in &r.issuer {
            self.label("revocation.issuer.name", &entry.name)?;
            if entry.name == "default" || out.iter().any(|i| i.name == entry.name) {
                return Err(self.invalid(
                    "revocation.issuer.name",
                    format!("`{}` is reserved or named twice", entry.name),
                ));
            }
            let dn = Dn::parse(&entry.subject, ParseMode::default()).map_err(|e| {
                self.invalid(
                    "revocation.issuer.subject",
                    format!("`{}`: {e}", entry.subject.escape_debug()),
                )
            })?;
            let named_before = out.iter().any(|i| {
                i.subject
                    .as_ref()
                    .is_some_and(|s| match_dn(s, &dn, &MatchMode::StrictOrder, &[]).is_ok())
            });
            if dn.is_empty() || named_before {
                return Err(self.invalid(
                    "revocation.issuer.subject",
                    format!("`{}` is empty or named twice", entry.subject.escape_debug()),
                ));
            }
            out.push(IssuerPolicy {
                name: entry.name.clone(),
                subject: Some(dn),
                mode: entry.mode,
                order: entry.order.unwrap_or(r.order),
            });
        }
        Ok(out)
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
