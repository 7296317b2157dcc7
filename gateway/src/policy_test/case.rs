//! One case file: what is sent, when, with which certificate, and the verdict expected.
//!
//! ```toml
//! description = "a scope outside the profile's list is refused"
//! at = "2026-01-01T00:00:00Z"          # or unix seconds
//! certificate_subject = "CN=tpp-software-1,OU=0015800001HQQrZAAX,O=OpenBanking,C=GB"
//! audiences = ["https://bank.example"] # default: the claims' aud
//! [claims]                             # or: jwt = "request.jwt"
//! client_id = "tpp-client-1"
//! scope = "openid accounts telepathy"
//! # ...
//! [expect]
//! verdict = "reject"
//! rules = ["scope"]                    # every failing rule and check id, in any order
//! status = 400
//! error = "invalid_client_metadata"
//! ```
//!
//! The profile is `profile = "..."` (relative to the case file) or, for a case in
//! `policies/cases/<name>/`, `policies/profiles/<name>.toml`.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dcrgate_certs::{Attribute, Authority, SubjectSpec};
use dcrgate_policies::dn::{Dn, ParseMode};
use serde::Deserialize;
use serde_json::{json, Map, Value};

/// A case file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// What the case shows.
    #[serde(default)]
    pub description: String,
    /// The profile (relative to the case file) [default: from the folder name].
    pub profile: Option<PathBuf>,
    /// The time of the request: unix seconds or `YYYY-MM-DDTHH:MM:SSZ`.
    pub at: At,
    /// The path's ClientId [default: the claims' `client_id`].
    pub client_id: Option<String>,
    /// Accepted `aud` values [default: the claims' `aud`].
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Key set host patterns [default: the hosts of the key set URLs the request names].
    #[serde(default)]
    pub key_set_hosts: Vec<String>,
    /// The transport certificate's subject, RFC 4514 (C, O, OU, CN, organizationIdentifier);
    /// a certificate with it is generated for the case.
    pub certificate_subject: Option<String>,
    /// Or a PEM certificate file (relative to the case file).
    pub certificate: Option<PathBuf>,
    /// The request object's JWS header [default: `{"alg": "PS256", "kid": "case"}`].
    pub header: Option<Map<String, Value>>,
    /// The request object's claims.
    pub claims: Option<Map<String, Value>>,
    /// Or a compact JWS file (relative to the case file).
    pub jwt: Option<PathBuf>,
    /// Claims of a software statement put in the claims' `software_statement`.
    pub ssa_claims: Option<Map<String, Value>>,
    /// Its header [default: `{"alg": "PS256", "kid": "directory"}`].
    pub ssa_header: Option<Map<String, Value>>,
    /// The expected verdict.
    pub expect: Expect,
}

/// The time of the request.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum At {
    /// Unix seconds.
    Seconds(i64),
    /// `YYYY-MM-DDTHH:MM:SSZ`.
    Text(String),
}

impl At {
    /// Unix seconds, or `None` when the text is not `YYYY-MM-DDTHH:MM:SSZ`.
    pub fn seconds(&self) -> Option<i64> {
        match self {
            At::Seconds(s) => Some(*s),
            At::Text(t) => crate::clock::parse_time(t),
        }
    }
}

/// The verdict a case expects.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `accept` or `reject`.
    pub verdict: Verdict,
    /// Every failing rule and check id (rules in shadow included), in any order.
    #[serde(default)]
    pub rules: Vec<String>,
    /// On rejection: the status.
    pub status: Option<u16>,
    /// On rejection: the RFC 7591 `error`.
    pub error: Option<String>,
    /// On acceptance: the rules in shadow that are broken (recorded as `would_reject`).
    #[serde(default)]
    pub would_reject: Vec<String>,
}

/// `accept` or `reject`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The gateway forwards it.
    Accept,
    /// The gateway answers it with an error.
    Reject,
}

impl Verdict {
    /// `accept` or `reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Reject => "reject",
        }
    }
}

/// A case that cannot be evaluated; the message names the file.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// The file cannot be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not a case.
    #[error("{path}: not a case: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl CaseError {
    fn invalid(path: &Path, message: impl Into<String>) -> Self {
        CaseError::Invalid {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// What a case sends, ready for the explanation.
#[derive(Debug)]
pub struct Prepared {
    /// The request object, compact JWS.
    pub jwt: Vec<u8>,
    /// The transport certificate, PEM.
    pub certificate_pem: Vec<u8>,
    /// The profile file.
    pub profile_path: PathBuf,
    /// The time of the request.
    pub at: i64,
}

impl Case {
    /// Reads the case at `path`.
    pub fn load(path: &Path) -> Result<Self, CaseError> {
        let text = std::fs::read_to_string(path).map_err(|source| CaseError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| CaseError::invalid(path, e.to_string()))
    }

    /// The profile the case is for: its `profile`, or the one its folder is named after.
    pub fn profile_path(&self, path: &Path) -> Result<PathBuf, CaseError> {
        let folder = path.parent().unwrap_or(Path::new("."));
        if let Some(p) = &self.profile {
            return Ok(folder.join(p));
        }
        let name = folder
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| CaseError::invalid(path, "no profile: set profile = \"...\""))?;
        let profiles = folder
            .parent()
            .and_then(Path::parent)
            .map(|p| p.join("profiles"))
            .ok_or_else(|| CaseError::invalid(path, "no profile: set profile = \"...\""))?;
        Ok(profiles.join(format!("{name}.toml")))
    }

    /// The request object, certificate and time the case describes (`path` is its file).
    pub fn prepare(&self, path: &Path) -> Result<Prepared, CaseError> {
        let folder = path.parent().unwrap_or(Path::new("."));
        let at = self
            .at
            .seconds()
            .ok_or_else(|| CaseError::invalid(path, "at: unix seconds or YYYY-MM-DDTHH:MM:SSZ"))?;
        let jwt = match (&self.claims, &self.jwt) {
            (Some(claims), None) => {
                let mut claims = claims.clone();
                if let Some(ssa) = &self.ssa_claims {
                    let header = self
                        .ssa_header
                        .clone()
                        .unwrap_or_else(|| header_of("directory"));
                    claims.insert("software_statement".into(), json!(compact(&header, ssa)));
                }
                let header = self.header.clone().unwrap_or_else(|| header_of("case"));
                compact(&header, &claims).into_bytes()
            }
            (None, Some(file)) => {
                let file = folder.join(file);
                std::fs::read(&file).map_err(|source| CaseError::Read { path: file, source })?
            }
            _ => {
                return Err(CaseError::invalid(
                    path,
                    "set exactly one of [claims] and jwt",
                ))
            }
        };
        let certificate_pem = match (&self.certificate_subject, &self.certificate) {
            (Some(subject), None) => generate_certificate(subject)
                .map_err(|m| CaseError::invalid(path, format!("certificate_subject: {m}")))?,
            (None, Some(file)) => {
                let file = folder.join(file);
                std::fs::read(&file).map_err(|source| CaseError::Read { path: file, source })?
            }
            _ => {
                return Err(CaseError::invalid(
                    path,
                    "set exactly one of certificate_subject and certificate",
                ))
            }
        };
        Ok(Prepared {
            jwt,
            certificate_pem,
            profile_path: self.profile_path(path)?,
            at,
        })
    }
}

fn header_of(kid: &str) -> Map<String, Value> {
    let mut h = Map::new();
    h.insert("alg".into(), json!("PS256"));
    h.insert("kid".into(), json!(kid));
    h
}

/// A compact JWS of `header` and `payload` with a placeholder signature (none for
/// `"alg": "none"`, as an unsecured JWS has).
fn compact(header: &Map<String, Value>, payload: &Map<String, Value>) -> String {
    let part =
        |v: &Map<String, Value>| URL_SAFE_NO_PAD.encode(Value::Object(v.clone()).to_string());
    let signature = if header.get("alg").and_then(Value::as_str) == Some("none") {
        String::new()
    } else {
        URL_SAFE_NO_PAD.encode(b"not-a-signature: policy cases are not signed")
    };
    format!("{}.{}.{signature}", part(header), part(payload))
}

/// A certificate (PEM) whose subject is `subject`, issued by a throwaway CA.
fn generate_certificate(subject: &str) -> Result<Vec<u8>, String> {
    let dn = Dn::parse(subject, ParseMode::Strict).map_err(|e| e.to_string())?;
    let mut attributes = Vec::new();
    // RFC 4514 writes the last RDN first; certificates hold them in ASN.1 order.
    for rdn in dn.rdns().iter().rev() {
        let [ava] = rdn.avas() else {
            return Err("multi-valued RDNs cannot be generated: give a certificate file".into());
        };
        let value = ava.value().to_owned();
        attributes.push(match ava.oid() {
            "2.5.4.6" => Attribute::Country(value),
            "2.5.4.10" => Attribute::Organization(value),
            "2.5.4.11" => Attribute::OrganizationalUnit(value),
            "2.5.4.3" => Attribute::CommonName(value),
            "2.5.4.97" => Attribute::OrganizationIdentifier(value),
            other => {
                return Err(format!(
                    "attribute {other} cannot be generated (C, O, OU, CN, organizationIdentifier): \
                     give a certificate file instead"
                ))
            }
        });
    }
    let ca = Authority::new("dcrgate policy test CA").map_err(|e| e.to_string())?;
    let issued = ca
        .issue_client(&SubjectSpec { attributes })
        .map_err(|e| e.to_string())?;
    Ok(issued.cert_pem.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_has_the_subject_asked_for() {
        let subject = "CN=tpp-1,2.5.4.97=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB";
        let pem = generate_certificate(subject).expect("certificate");
        let der = rustls_pemfile::certs(&mut &pem[..])
            .next()
            .expect("one")
            .expect("pem");
        let dn = Dn::from_certificate_der(der.as_ref()).expect("subject");
        let wanted = Dn::parse(subject, ParseMode::Strict).expect("dn");
        assert_eq!(dn.to_rfc4514(), wanted.to_rfc4514());
        assert!(generate_certificate("CN=x,L=London").is_err());
    }
}
