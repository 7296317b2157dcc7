//! `[revocation]`, validated: the mode and scope, and every CRL file readable and a parseable
//! certificate revocation list, each under a distinct issuer name (the metric label).

use super::file::RevocationSection;
use super::validate::Validator;
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
            let file = CrlFile {
                issuer: entry.issuer.clone(),
                path: self.file("revocation.crl.file", &entry.file)?,
            };
            crl::load(&file).map_err(|e| self.invalid("revocation.crl.file", e.to_string()))?;
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
        Ok(Revocation {
            mode: r.mode,
            scope: r.scope,
            crls,
        })
    }
}
