//! `dcrgate explain`: an offline verdict on a request object and a transport certificate, for a
//! TPP support desk.
//!
//! The checks the gateway makes before it fetches anything are run on the files a TPP sent: the
//! ClientId's form, the body size, the request object's JWS header rules, the software
//! statement's form and every policy rule, each reported as passed, failed or not applicable.
//! Nothing is fetched and no signature is verified. A software statement is decoded without
//! verification and used as if verified, so that its rules are explained too.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dcrgate_policies::dn::{attribute_name, match_dn, Dn, MatchMode, ParseMode};
use dcrgate_policies::evaluate::{evaluate, RequestFacts};
use dcrgate_policies::profile::SUPPORTED_ALGORITHMS;
use dcrgate_policies::{
    ErrorCode, HostAllowlist, Presence, Profile, ProfileError, RegistrationClaims, RotationMode,
    Rule, SoftwareStatement, Violation,
};
use serde::Serialize;
use serde_json::{Map, Value};
use url::{Host, Url};

use crate::audit::rfc3339;
use crate::config::{Config, ConfigError, ConfigFile, Limits};
use crate::jose::jws::{parse_compact, parse_unsigned, JwsError};
use crate::proxy::rejection::Rejection;
use crate::tls::identity::{ClientIdentity, IdentityError};
use crate::trust::ssa::MAX_SSA_LEN;
use crate::trust::SsaError;

/// The shipped seed profile, used when neither `--policy` nor `--config` names one.
pub const SEED_PROFILE: &str = include_str!("../../policies/profiles/seed-update.toml");

/// What the explanation cannot vouch for.
pub const SIGNATURE_NOTE: &str = "signature not verified (offline)";

/// What the software statement's decoding does not prove.
pub const SSA_NOTE: &str = "decoded WITHOUT verification (offline): its signature and issuer \
                            were not checked; its claims are used as if verified";

/// The command line, as given (`dcrgate explain` flattens it into its arguments).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ExplainArgs {
    /// The request object (compact JWS) as the TPP sent it.
    #[arg(long, value_name = "FILE")]
    pub jwt: PathBuf,
    /// The TPP transport certificate, PEM (first certificate) or DER.
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,
    /// A policy profile (TOML) [default: the profile of --config, else the seed profile].
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// The ClientId of the path [default: the JWT's client_id claim].
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// An accepted aud value (repeatable) [default: from --config, else the JWT's aud].
    #[arg(long = "audience", value_name = "AUD")]
    pub audiences: Vec<String>,
    /// A key set host pattern (repeatable) [default: from --config, else the hosts of the
    /// key set URLs the JWT names].
    #[arg(long = "key-set-host", value_name = "HOST")]
    pub key_set_hosts: Vec<String>,
    /// A gateway configuration to take audiences, key set hosts and the profile from.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// An input that cannot be explained: the message names the file (or option) at fault.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// A file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The request object file does not hold a decodable compact JWS.
    #[error("{path}: not a JWT: {source}")]
    NotJwt {
        /// The file.
        path: PathBuf,
        /// What does not decode.
        source: JwsError,
    },
    /// A PEM file without a certificate.
    #[error("{path}: not a certificate: no -----BEGIN CERTIFICATE----- block in this PEM file")]
    NoPemCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A PEM certificate block that does not decode.
    #[error("{path}: not a certificate: bad PEM: {source}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// The PEM error.
        source: std::io::Error,
    },
    /// Neither PEM nor a DER X.509 certificate.
    #[error("{path}: not an X.509 certificate (PEM or DER): {source}")]
    NotCertificate {
        /// The file.
        path: PathBuf,
        /// Why.
        source: IdentityError,
    },
    /// The profile does not load.
    #[error("{path}: not a usable policy profile: {source}")]
    Profile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: ProfileError,
    },
    /// The gateway configuration does not load (the message names file and key).
    #[error(transparent)]
    Config(#[from] Box<ConfigError>),
    /// A `--key-set-host` pattern is not acceptable.
    #[error("--key-set-host {0}")]
    KeySetHost(String),
}

/// What a gateway configuration contributes.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The configuration file.
    pub path: PathBuf,
    /// `policy.audiences`.
    pub audiences: Vec<String>,
    /// `policy.key_set_hosts` as written.
    pub key_set_hosts: Vec<String>,
    /// `policy.key_set_hosts`, validated.
    pub key_hosts: HostAllowlist,
    /// Trusted directories: issuer and accepted algorithms.
    pub directories: Vec<(String, Vec<String>)>,
    /// `[limits]`.
    pub limits: Limits,
}

/// Everything an explanation is made from, read and checked.
#[derive(Debug)]
pub struct Inputs {
    /// The request object, whitespace trimmed.
    pub jwt: Vec<u8>,
    /// Its header, or why it does not decode.
    pub jwt_header: Result<Map<String, Value>, JwsError>,
    /// Its payload.
    pub jwt_payload: Map<String, Value>,
    /// The transport certificate.
    pub certificate: ClientIdentity,
    /// The policy profile.
    pub profile: Profile,
    /// Where the profile came from.
    pub profile_source: String,
    /// `--client-id`.
    pub client_id: Option<String>,
    /// `--audience` values.
    pub audiences: Vec<String>,
    /// `--key-set-host` patterns.
    pub key_set_hosts: Vec<String>,
    /// The gateway configuration, if one was given.
    pub deployment: Option<Deployment>,
}

impl Inputs {
    /// Read and check every input the arguments name.
    pub fn load(args: &ExplainArgs) -> Result<Self, ExplainError> {
        let jwt = read(&args.jwt)?;
        let cert = read(&args.cert)?;
        let mut deployment = None;
        let mut config_profile = None;
        if let Some(path) = &args.config {
            let config = Config::load(path).map_err(Box::new)?;
            let source = format!(
                "{} (named by {})",
                config.profile_path.display(),
                path.display()
            );
            config_profile = Some((config.profile.clone(), source));
            deployment = Some(Deployment::from_config(&config));
        }
        let (profile, profile_source) = match (&args.policy, config_profile) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|source| ExplainError::Read {
                    path: path.clone(),
                    source,
                })?;
                let profile =
                    Profile::from_toml_str(&text).map_err(|source| ExplainError::Profile {
                        path: path.clone(),
                        source,
                    })?;
                (profile, path.display().to_string())
            }
            (None, Some(from_config)) => from_config,
            (None, None) => (
                Profile::from_toml_str(SEED_PROFILE).map_err(|source| ExplainError::Profile {
                    path: PathBuf::from("policies/profiles/seed-update.toml"),
                    source,
                })?,
                "built in: policies/profiles/seed-update.toml".to_owned(),
            ),
        };
        if !args.key_set_hosts.is_empty() {
            HostAllowlist::new(&args.key_set_hosts).map_err(ExplainError::KeySetHost)?;
        }
        let mut inputs =
            Self::from_parts(&jwt, &args.jwt, &cert, &args.cert, profile, profile_source)?;
        inputs.client_id.clone_from(&args.client_id);
        inputs.audiences.clone_from(&args.audiences);
        inputs.key_set_hosts.clone_from(&args.key_set_hosts);
        inputs.deployment = deployment;
        Ok(inputs)
    }

    /// Inputs from file contents (`jwt_path` and `cert_path` name them in errors); no client
    /// id, audiences, key set hosts or configuration yet.
    pub fn from_parts(
        jwt: &[u8],
        jwt_path: &Path,
        cert: &[u8],
        cert_path: &Path,
        profile: Profile,
        profile_source: String,
    ) -> Result<Self, ExplainError> {
        let jwt = jwt.trim_ascii().to_vec();
        let decoded = decode_tolerant(&jwt).map_err(|source| ExplainError::NotJwt {
            path: jwt_path.to_owned(),
            source,
        })?;
        let certificate = certificate(cert, cert_path)?;
        Ok(Self {
            jwt,
            jwt_header: decoded.header,
            jwt_payload: decoded.payload,
            certificate,
            profile,
            profile_source,
            client_id: None,
            audiences: Vec::new(),
            key_set_hosts: Vec::new(),
            deployment: None,
        })
    }
}

impl Deployment {
    /// The parts of a loaded configuration an explanation uses.
    pub fn from_config(config: &Config) -> Self {
        // Config keeps the allowlist compiled; the patterns as written are shown to the reader.
        let key_set_hosts = std::fs::read_to_string(&config.path)
            .ok()
            .and_then(|text| toml::from_str::<ConfigFile>(&text).ok())
            .map(|file| file.policy.key_set_hosts)
            .unwrap_or_default();
        Self {
            path: config.path.clone(),
            audiences: config.audiences.clone(),
            key_set_hosts,
            key_hosts: config.key_hosts.clone(),
            directories: config
                .directories
                .iter()
                .map(|d| (d.issuer.clone(), d.algorithms.clone()))
                .collect(),
            limits: config.limits.clone(),
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ExplainError> {
    std::fs::read(path).map_err(|source| ExplainError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The first certificate of a PEM file, or a DER certificate.
fn certificate(bytes: &[u8], path: &Path) -> Result<ClientIdentity, ExplainError> {
    let pem = bytes.windows(11).any(|w| w == b"-----BEGIN ");
    let der = if pem {
        match rustls_pemfile::certs(&mut &bytes[..]).next() {
            Some(Ok(der)) => der.as_ref().to_vec(),
            Some(Err(source)) => {
                return Err(ExplainError::Pem {
                    path: path.to_owned(),
                    source,
                })
            }
            None => {
                return Err(ExplainError::NoPemCertificate {
                    path: path.to_owned(),
                })
            }
        }
    } else {
        bytes.to_vec()
    };
    ClientIdentity::from_der(&der).map_err(|source| ExplainError::NotCertificate {
        path: path.to_owned(),
        source,
    })
}

/// A compact JWS decoded without its rules: the payload must be a JSON object, the header is
/// kept even when it does not decode.
struct Tolerant {
    header: Result<Map<String, Value>, JwsError>,
    payload: Map<String, Value>,
}

/// Decode the parts of a compact JWS leniently (padding and the standard base64 alphabet
/// tolerated, duplicate JSON members allowed): what a TPP sent is shown even when the gateway
/// would refuse its form.
fn decode_tolerant(token: &[u8]) -> Result<Tolerant, JwsError> {
    let parts: Vec<&[u8]> = token.trim_ascii().split(|b| *b == b'.').collect();
    let [header, payload, _signature] = parts[..] else {
        return Err(JwsError::NotCompact);
    };
    Ok(Tolerant {
        header: decode_part(header, "header"),
        payload: decode_part(payload, "payload")?,
    })
}

fn decode_part(part: &[u8], name: &'static str) -> Result<Map<String, Value>, JwsError> {
    let cleaned: Vec<u8> = part
        .iter()
        .filter(|b| **b != b'=')
        .map(|b| match b {
            b'+' => b'-',
            b'/' => b'_',
            b => *b,
        })
        .collect();
    if cleaned.is_empty() {
        return Err(JwsError::NotCompact);
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(cleaned)
        .map_err(|_| JwsError::Base64(name))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(JwsError::Json {
            part: name,
            reason: "not an object".into(),
        }),
        Err(e) => Err(JwsError::Json {
            part: name,
            reason: e.to_string(),
        }),
    }
}

/// Now, in seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn rfc3339_seconds(secs: i64) -> String {
    let s = rfc3339(secs, 0);
    s.strip_suffix(".000Z")
        .map_or(s.clone(), |t| format!("{t}Z"))
}

/// A check the gateway makes before the policy (route, envelope, JWS, software statement).
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The gateway's reason id (`jws_alg_none`, `ssa_unsigned`, ...).
    pub id: &'static str,
    /// The HTTP status the gateway would answer.
    pub status: u16,
    /// The `error` member it would answer.
    pub error: &'static str,
    /// What is wrong.
    pub message: String,
}

impl Finding {
    fn from_violation(v: &Violation) -> Self {
        Self {
            id: v.rule.id(),
            status: v.rule.status(),
            error: v.rule.error_code().as_str(),
            message: v.message.clone(),
        }
    }
}

impl From<Rejection> for Finding {
    fn from(r: Rejection) -> Self {
        Self {
            id: r.reason,
            status: r.status,
            error: r.error,
            message: r.description,
        }
    }
}

/// Where a setting's values came from.
#[derive(Debug, Clone, Serialize)]
pub struct Setting {
    /// The values used.
    pub values: Vec<String>,
    /// Where they came from (and what that means offline).
    pub source: String,
}

/// The request object as decoded.
#[derive(Debug, Clone, Serialize)]
pub struct RequestObject {
    /// The header, when it decodes.
    pub header: Option<Map<String, Value>>,
    /// The claims.
    pub claims: Map<String, Value>,
    /// `ok`, or the header rule broken.
    pub header_rules: String,
}

/// The software statement as decoded (never verified here).
#[derive(Debug, Clone, Serialize)]
pub struct SoftwareStatementReport {
    /// Always false: nothing is verified offline.
    pub verified: bool,
    /// What that means.
    pub note: &'static str,
    /// Its `alg`.
    pub alg: Option<String>,
    /// Its `iss`.
    pub issuer: Option<String>,
    /// Whether its issuer is a trusted directory, as far as can be told offline.
    pub trust: String,
    /// Its claims, when they decode.
    pub claims: Option<Map<String, Value>>,
}

/// The transport certificate.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateReport {
    /// The subject, canonical RFC 4514.
    pub subject: String,
    /// SHA-256 of the DER, base64url (RFC 8705 `x5t#S256`).
    pub sha256_thumbprint: String,
    /// notAfter, RFC 3339.
    pub not_after: String,
    /// Whether notAfter has passed.
    pub expired: bool,
}

/// The `tls_client_auth_dn` claim.
#[derive(Debug, Clone, Serialize)]
pub struct DnClaimReport {
    /// The claim as sent.
    pub claim: Option<String>,
    /// Canonical RFC 4514, when it parses.
    pub canonical: Option<String>,
    /// `strict` or `lenient`: the profile's parse mode.
    pub parse_mode: &'static str,
    /// Why it does not parse, or why it is absent.
    pub error: Option<String>,
}

/// The comparison of the claimed DN with the certificate subject.
#[derive(Debug, Clone, Serialize)]
pub struct DnMatchReport {
    /// The profile's match mode.
    pub mode: String,
    /// Whether they match.
    pub matched: bool,
    /// What differs.
    pub mismatch: Option<String>,
}

/// A certificate rotation decision.
#[derive(Debug, Clone, Serialize)]
pub struct RotationReport {
    /// `deny` or `same-organisation`.
    pub mode: &'static str,
    /// `accepted` or `denied`.
    pub decision: &'static str,
}

/// How one rule fared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The rule holds.
    Pass,
    /// The rule is broken.
    Fail,
    /// The rule does not apply to this request.
    Skip,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Skip => "SKIP",
        }
    }
}

/// One policy rule's result.
#[derive(Debug, Clone, Serialize)]
pub struct RuleResult {
    /// The rule id.
    pub id: &'static str,
    /// Pass, fail or skip.
    pub result: Outcome,
    /// On failure: the HTTP status.
    pub status: Option<u16>,
    /// On failure: the `error` code.
    pub error: Option<&'static str>,
    /// On failure, every violation's message; on skip, why the rule does not apply.
    pub messages: Vec<String>,
    /// The profile puts the rule in shadow: a violation is recorded, not enforced.
    pub shadow: bool,
}

/// The overall verdict.
#[derive(Debug, Clone, Serialize)]
pub struct VerdictReport {
    /// `accept` or `reject`.
    pub outcome: &'static str,
    /// On rejection: the status the gateway would answer.
    pub status: Option<u16>,
    /// On rejection: the `error` code.
    pub error: Option<&'static str>,
    /// On rejection: the rule or check id that decides.
    pub decided_by: Option<&'static str>,
    /// On rejection: its message.
    pub description: Option<String>,
    /// On acceptance: rules in shadow that are broken (recorded as `would_reject`, not
    /// enforced).
    pub would_reject: Vec<&'static str>,
}

/// The explanation: what was read, every check and rule, and the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always [`SIGNATURE_NOTE`].
    pub signature: &'static str,
    /// The profile's name.
    pub profile: String,
    /// Where the profile came from.
    pub profile_source: String,
    /// The path ClientId used.
    pub client_id: Option<String>,
    /// Where it came from.
    pub client_id_source: String,
    /// Now, RFC 3339 UTC.
    pub now: String,
    /// The accepted `aud` values.
    pub audiences: Setting,
    /// The key set host allowlist.
    pub key_set_hosts: Setting,
    /// The request object.
    pub request_object: RequestObject,
    /// The software statement, when the request carries one.
    pub software_statement: Option<SoftwareStatementReport>,
    /// The transport certificate.
    pub certificate: CertificateReport,
    /// The DN claim.
    pub tls_client_auth_dn: DnClaimReport,
    /// The DN comparison, when the claim parses.
    pub dn_match: Option<DnMatchReport>,
    /// The rotation decision, when the DNs differ.
    pub rotation: Option<RotationReport>,
    /// Checks before the policy that fail.
    pub findings: Vec<Finding>,
    /// Every policy rule, in `Rule::ALL` order.
    pub rules: Vec<RuleResult>,
    /// The key set URL the gateway would fetch.
    pub key_set_url: Option<String>,
    /// The verdict.
    pub verdict: VerdictReport,
}

/// The software statement examined offline.
struct SsaExamined {
    report: SoftwareStatementReport,
    statement: Option<SoftwareStatement>,
    findings: Vec<Finding>,
    claims_violation: Option<Violation>,
}

/// Decode a software statement as the gateway would before verifying it, noting every check
/// that can be made offline.
fn examine_ssa(compact: &str, profile: &Profile, deployment: Option<&Deployment>) -> SsaExamined {
    let bytes = compact.as_bytes();
    let fail = |e: SsaError| Finding::from(Rejection::from_ssa(&e));
    let mut findings = Vec::new();
    if compact.len() > MAX_SSA_LEN {
        findings.push(fail(SsaError::TooLong));
    }
    let tolerant = decode_tolerant(bytes);
    let header = tolerant.as_ref().ok().and_then(|t| t.header.as_ref().ok());
    let alg = header
        .and_then(|h| h.get("alg"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut trust = String::new();
    let payload = match parse_unsigned(bytes) {
        Ok(Some(payload)) => {
            trust = "unsigned (alg none): no issuer signature".into();
            if !profile.software_statement.allow_unsigned {
                findings.push(fail(SsaError::Unsigned));
            }
            Some(payload)
        }
        Ok(None) => {
            let algorithms: Vec<String> = match deployment {
                Some(d) if !d.directories.is_empty() => {
                    let set: BTreeSet<&String> =
                        d.directories.iter().flat_map(|(_, a)| a).collect();
                    set.into_iter().cloned().collect()
                }
                _ => SUPPORTED_ALGORITHMS.map(String::from).to_vec(),
            };
            match parse_compact(bytes, &algorithms) {
                Ok(jws) => {
                    trust = trust_of(&jws.payload, &jws.alg, deployment, &mut findings);
                    Some(jws.payload)
                }
                Err(e) => {
                    findings.push(fail(SsaError::Jws(e)));
                    tolerant.ok().map(|t| t.payload)
                }
            }
        }
        Err(e) => {
            findings.push(fail(SsaError::Jws(e)));
            tolerant.ok().map(|t| t.payload)
        }
    };
    if trust.is_empty() {
        trust = "not checked: the statement's form is refused".into();
    }
    let issuer = payload
        .as_ref()
        .and_then(|p| p.get("iss"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let (statement, claims_violation) = match payload.as_ref().map(SoftwareStatement::from_json) {
        Some(Ok(s)) => (Some(s), None),
        Some(Err(e)) => (
            None,
            Some(Violation::new(
                Rule::SoftwareStatementClaims,
                SsaError::Claims(e).to_string(),
            )),
        ),
        None => (None, None),
    };
    SsaExamined {
        report: SoftwareStatementReport {
            verified: false,
            note: SSA_NOTE,
            alg,
            issuer,
            trust,
            claims: payload,
        },
        statement,
        findings,
        claims_violation,
    }
}

/// Whether a signed statement's issuer is a directory the configuration trusts for its `alg`.
fn trust_of(
    payload: &Map<String, Value>,
    alg: &str,
    deployment: Option<&Deployment>,
    findings: &mut Vec<Finding>,
) -> String {
    let Some(d) = deployment else {
        return "not checked offline (pass --config to check the issuer against \
                policy.directories)"
            .into();
    };
    let iss = payload.get("iss").and_then(Value::as_str);
    let directory = iss.and_then(|iss| d.directories.iter().find(|(i, _)| i == iss));
    match directory {
        None => {
            findings.push(Rejection::from_ssa(&SsaError::UntrustedIssuer).into());
            format!(
                "the issuer is not a trusted directory in {}",
                d.path.display()
            )
        }
        Some((_, algorithms)) if !algorithms.iter().any(|a| a == alg) => {
            findings.push(
                Rejection::from_ssa(&SsaError::AlgNotAllowed(alg.chars().take(16).collect()))
                    .into(),
            );
            format!(
                "the issuer is a trusted directory in {}, but not for alg {alg}; \
                 signature not verified (offline)",
                d.path.display()
            )
        }
        Some(_) => format!(
            "the issuer is a trusted directory in {}; signature not verified (offline)",
            d.path.display()
        ),
    }
}

/// The host of a URL as the allowlist compares it.
fn url_host(raw: &str) -> Option<String> {
    match Url::parse(raw).ok()?.host()? {
        Host::Domain(d) => Some(d.to_ascii_lowercase()),
        Host::Ipv4(ip) => Some(ip.to_string()),
        Host::Ipv6(ip) => Some(format!("[{ip}]")),
    }
}

fn parse_mode_name(mode: ParseMode) -> &'static str {
    match mode {
        ParseMode::Strict => "strict",
        ParseMode::Lenient => "lenient",
    }
}

fn match_mode_name(profile: &Profile) -> String {
    match profile.dn_match {
        MatchMode::StrictOrder => "strict-order".into(),
        MatchMode::AnyOrder => "any-order".into(),
        MatchMode::AttributeSubset => format!(
            "attribute-subset on {}",
            attribute_names(&profile.dn_attributes)
        ),
    }
}

fn attribute_names(oids: &[String]) -> String {
    oids.iter()
        .map(|o| attribute_name(o).unwrap_or(o.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What decides whether a rule applies.
struct Applicability<'a> {
    profile: &'a Profile,
    claims: Option<&'a RegistrationClaims>,
    path_client_id: bool,
    client_id_from_claim: bool,
    audiences_known: bool,
    dn_parsed: bool,
    ssa_carried: bool,
    ssa_decoded: bool,
    ssa_used: bool,
}

impl Applicability<'_> {
    /// Why `rule` does not apply, or `None` when it does.
    fn skip_reason(&self, rule: Rule) -> Option<&'static str> {
        let Some(c) = self.claims else {
            return (rule != Rule::ClaimsMalformed).then_some("the claims do not decode");
        };
        let p = self.profile;
        let no_ssa = if !self.ssa_carried {
            "no software statement"
        } else if p.software_statement.presence == Presence::Refused {
            "this profile refuses software statements"
        } else {
            "the software statement does not decode"
        };
        match rule {
            Rule::OrgName if !p.claims.require_org_name => {
                Some("org_name is not required by this profile")
            }
            Rule::Lifetime if c.iat.is_none() || c.exp.is_none() => Some("needs both iat and exp"),
            Rule::Audience if !self.audiences_known => {
                Some("the accepted audiences are not known offline; pass --audience or --config")
            }
            Rule::ClientId if c.client_id.is_none() => Some("the JWT has no client_id claim"),
            Rule::ClientId if !self.path_client_id => Some("no path ClientId"),
            Rule::ClientId if self.client_id_from_claim => {
                Some("the ClientId was taken from this claim; pass --client-id to check it")
            }
            Rule::KeySetUrl if self.ssa_used => {
                Some("the key set comes from the software statement")
            }
            Rule::DnMismatch if !self.dn_parsed => Some("no parseable tls_client_auth_dn"),
            Rule::SoftwareStatementClaims if !self.ssa_decoded => Some(no_ssa),
            Rule::SoftwareStatementTime
            | Rule::SoftwareId
            | Rule::SoftwareRedirectUris
            | Rule::SoftwareRoles
            | Rule::SoftwareKeySet
            | Rule::KeySetConflict
                if !self.ssa_used =>
            {
                Some(no_ssa)
            }
            Rule::SoftwareRedirectUris if c.redirect_uris.is_none() => {
                Some("the request has no redirect_uris")
            }
            Rule::SoftwareRoles if c.scope.is_none() => Some("the request has no scope"),
            Rule::KeySetConflict if c.jwks_uri.is_none() => Some("the request has no jwks_uri"),
            Rule::Jti if !p.replay.require_jti => Some("jti is not required by this profile"),
            _ => None,
        }
    }
}

/// Explain what the gateway would decide on `inputs` at `now` (seconds since the epoch).
pub fn explain(inputs: &Inputs, now: i64) -> Report {
    let profile = &inputs.profile;
    let payload = &inputs.jwt_payload;
    let (client_id, client_id_source) = path_client_id(inputs);
    let (mut findings, header_rules) = envelope_checks(inputs, client_id.as_deref());

    // The claims and the software statement (decoded, never verified).
    let claims = RegistrationClaims::from_json(payload);
    let claims_ok = claims.as_ref().ok();
    let ssa = claims_ok
        .and_then(|c| c.software_statement.as_deref())
        .filter(|_| profile.software_statement.presence != Presence::Refused)
        .map(|compact| examine_ssa(compact, profile, inputs.deployment.as_ref()));
    if let Some(s) = &ssa {
        findings.extend(s.findings.iter().cloned());
    }
    let statement = ssa.as_ref().and_then(|s| s.statement.as_ref());
    let (audiences, audiences_known) = audiences_setting(inputs, claims_ok);
    let (key_set_hosts, key_hosts) = key_hosts_setting(inputs, claims_ok, statement);

    // The DN claim against the certificate.
    let raw_dn = match claims_ok {
        Some(c) => c.tls_client_auth_dn.clone(),
        None => ["tls_client_auth_dn", "tls_client_auth_subject_dn"]
            .iter()
            .find_map(|k| payload.get(*k).and_then(Value::as_str))
            .map(str::to_owned),
    };
    let presented = &inputs.certificate.dn;
    let (tls_client_auth_dn, dn_match) = dn_reports(raw_dn, profile, presented);

    // The policy, as the gateway runs it.
    let evaluation = claims_ok.map(|c| {
        let facts = RequestFacts {
            client_id: client_id.as_deref(),
            now,
            audiences: &audiences.values,
            key_hosts: &key_hosts,
            presented_dn: presented,
            software_statement: statement,
        };
        evaluate(profile, c, &facts)
    });
    // Failures that stop the gateway before the policy: claims that do not decode, or a
    // software statement whose claims do not.
    let pre_policy = match &claims {
        Err(e) => Some(Violation::new(Rule::ClaimsMalformed, e.to_string())),
        Ok(_) => ssa.as_ref().and_then(|s| s.claims_violation.clone()),
    };
    let policy = evaluation
        .as_ref()
        .map(|e| e.verdict.violations())
        .unwrap_or_default();
    let violations: Vec<&Violation> = pre_policy.iter().chain(policy).collect();
    let applicability = Applicability {
        profile,
        claims: claims_ok,
        path_client_id: client_id.is_some(),
        client_id_from_claim: inputs.client_id.is_none(),
        audiences_known,
        dn_parsed: tls_client_auth_dn.canonical.is_some(),
        ssa_carried: claims_ok.is_some_and(|c| c.software_statement.is_some()),
        ssa_decoded: ssa.as_ref().is_some_and(|s| s.report.claims.is_some()),
        ssa_used: statement.is_some(),
    };
    let rules = Rule::ALL
        .iter()
        .map(|&rule| rule_result(rule, &violations, &applicability))
        .collect();
    let key_set_url = evaluation.as_ref().and_then(|e| e.key_set_url.as_ref());
    let verdict = decide(profile, &findings, pre_policy.as_ref(), policy, key_set_url);

    let rotation = evaluation
        .as_ref()
        .and_then(|e| e.rotation)
        .map(|decision| RotationReport {
            mode: match profile.rotation {
                RotationMode::Deny => "deny",
                RotationMode::SameOrganisation => "same-organisation",
            },
            decision: decision.as_str(),
        });
    let cert = &inputs.certificate;
    Report {
        signature: SIGNATURE_NOTE,
        profile: profile.name.clone(),
        profile_source: inputs.profile_source.clone(),
        client_id,
        client_id_source,
        now: rfc3339_seconds(now),
        audiences,
        key_set_hosts,
        request_object: RequestObject {
            header: inputs.jwt_header.as_ref().ok().cloned(),
            claims: payload.clone(),
            header_rules,
        },
        software_statement: ssa.map(|s| s.report),
        certificate: CertificateReport {
            subject: cert.canonical_dn.clone(),
            sha256_thumbprint: cert.thumbprint.clone(),
            not_after: rfc3339_seconds(cert.not_after),
            expired: cert.not_after < now,
        },
        tls_client_auth_dn,
        dn_match,
        rotation,
        findings,
        rules,
        key_set_url: key_set_url.map(Url::to_string),
        verdict,
    }
}

/// The ClientId of the path, and where it came from.
fn path_client_id(inputs: &Inputs) -> (Option<String>, String) {
    let claim = inputs.jwt_payload.get("client_id").and_then(Value::as_str);
    match (&inputs.client_id, claim) {
        (Some(id), _) => (Some(id.clone()), "from --client-id".into()),
        (None, Some(id)) => (
            Some(id.to_owned()),
            "from the JWT's client_id claim; pass --client-id to check the claim against the \
             ClientId of the path"
                .into(),
        ),
        (None, None) => (
            None,
            "none: no --client-id and the JWT has no client_id claim; evaluated as a \
             registration without a path ClientId"
                .into(),
        ),
    }
}

/// The checks before the claims: the ClientId's form, the body size and the JWS header rules.
/// Returns the failures and `ok` or the header rule broken.
fn envelope_checks(inputs: &Inputs, client_id: Option<&str>) -> (Vec<Finding>, String) {
    let limits = inputs
        .deployment
        .as_ref()
        .map_or_else(Limits::default, |d| d.limits.clone());
    let mut findings = Vec::new();
    if let Some(id) = client_id {
        let max = limits.max_client_id_length;
        if !crate::proxy::route::is_valid_client_id(id, max) {
            findings.push(Finding {
                id: "bad_client_id",
                status: 400,
                error: ErrorCode::InvalidRequest.as_str(),
                message: format!("ClientId must be 1 to {max} characters from A-Z a-z 0-9 - . _ ~"),
            });
        }
    }
    if inputs.jwt.len() > limits.max_body_bytes {
        findings.push(Finding {
            id: "body_too_large",
            status: 413,
            error: ErrorCode::InvalidRequest.as_str(),
            message: format!(
                "the request body is larger than {} bytes ({} bytes)",
                limits.max_body_bytes,
                inputs.jwt.len()
            ),
        });
    }
    let header_rules = match parse_compact(&inputs.jwt, &inputs.profile.request.algorithms) {
        Ok(_) => "ok".to_owned(),
        Err(e) => {
            let finding = Finding::from(Rejection::from_jws(&e));
            let text = finding.message.clone();
            findings.push(finding);
            text
        }
    };
    (findings, header_rules)
}

/// The accepted audiences: given, configured, or (offline) whatever the JWT carries. The flag
/// says whether they are known.
fn audiences_setting(inputs: &Inputs, claims: Option<&RegistrationClaims>) -> (Setting, bool) {
    if !inputs.audiences.is_empty() {
        let given = Setting {
            values: inputs.audiences.clone(),
            source: "from --audience".into(),
        };
        return (given, true);
    }
    if let Some(d) = &inputs.deployment {
        let configured = Setting {
            values: d.audiences.clone(),
            source: format!("from {}", d.path.display()),
        };
        return (configured, true);
    }
    let carried = Setting {
        values: claims.map(|c| c.aud.clone()).unwrap_or_default(),
        source: "not known offline: whatever aud the JWT carries is accepted; pass --audience \
                 or --config to check it"
            .into(),
    };
    (carried, false)
}

/// The key set host allowlist: given, configured, or (offline) the hosts the request names.
fn key_hosts_setting(
    inputs: &Inputs,
    claims: Option<&RegistrationClaims>,
    statement: Option<&SoftwareStatement>,
) -> (Setting, HostAllowlist) {
    if !inputs.key_set_hosts.is_empty() {
        let given = Setting {
            values: inputs.key_set_hosts.clone(),
            source: "from --key-set-host".into(),
        };
        // Checked when the inputs were loaded; an unusable list allows nothing.
        let list = HostAllowlist::new(&inputs.key_set_hosts).unwrap_or_default();
        return (given, list);
    }
    if let Some(d) = &inputs.deployment {
        let configured = Setting {
            values: d.key_set_hosts.clone(),
            source: format!("from {}", d.path.display()),
        };
        return (configured, d.key_hosts.clone());
    }
    let mut named: Vec<&str> = Vec::new();
    named.extend(claims.and_then(|c| c.jwks_uri.as_deref()));
    if let Some(s) = statement {
        named.extend(s.software_jwks_endpoint.as_deref());
        named.extend(s.org_jwks_endpoint.as_deref());
    }
    let mut hosts: Vec<String> = Vec::new();
    for host in named.into_iter().filter_map(url_host) {
        if !hosts.contains(&host) && HostAllowlist::new(&[host.as_str()]).is_ok() {
            hosts.push(host);
        }
    }
    let named_by = if statement.is_some() {
        "the hosts of the key set URLs the JWT and its software statement name"
    } else {
        "the host of the JWT's jwks_uri"
    };
    let list = HostAllowlist::new(&hosts).unwrap_or_default();
    let assumed = Setting {
        values: hosts,
        source: format!(
            "{named_by}: offline, the allowlist is not known; pass --key-set-host or --config \
             to check it"
        ),
    };
    (assumed, list)
}

/// The DN claim, canonical, and its comparison with the certificate subject.
fn dn_reports(
    raw: Option<String>,
    profile: &Profile,
    presented: &Dn,
) -> (DnClaimReport, Option<DnMatchReport>) {
    let parsed = raw.as_deref().map(|r| Dn::parse(r, profile.dn_parse));
    let (canonical, error, dn_match) = match &parsed {
        None => (
            None,
            Some(
                "absent: the JWT has neither tls_client_auth_dn nor tls_client_auth_subject_dn"
                    .to_owned(),
            ),
            None,
        ),
        Some(Err(e)) => (None, Some(format!("does not parse: {e}")), None),
        Some(Ok(claimed)) => {
            let result = match_dn(
                claimed,
                presented,
                &profile.dn_match,
                &profile.dn_attributes,
            );
            let report = DnMatchReport {
                mode: match_mode_name(profile),
                matched: result.is_ok(),
                mismatch: result.err().map(|m| m.to_string()),
            };
            (Some(claimed.to_rfc4514()), None, Some(report))
        }
    };
    let claim = DnClaimReport {
        claim: raw,
        canonical,
        parse_mode: parse_mode_name(profile.dn_parse),
        error,
    };
    (claim, dn_match)
}

/// One rule: failed with its messages, not applicable, or passed.
fn rule_result(
    rule: Rule,
    violations: &[&Violation],
    applicability: &Applicability<'_>,
) -> RuleResult {
    let shadow = applicability.profile.is_shadowed(rule);
    let messages: Vec<String> = violations
        .iter()
        .filter(|v| v.rule == rule)
        .map(|v| v.message.clone())
        .collect();
    if !messages.is_empty() {
        return RuleResult {
            id: rule.id(),
            result: Outcome::Fail,
            status: Some(rule.status()),
            error: Some(rule.error_code().as_str()),
            messages,
            shadow,
        };
    }
    let skip = applicability.skip_reason(rule);
    RuleResult {
        id: rule.id(),
        result: if skip.is_some() {
            Outcome::Skip
        } else {
            Outcome::Pass
        },
        status: None,
        error: None,
        messages: skip.into_iter().map(str::to_owned).collect(),
        shadow,
    }
}

/// The gateway stops at the first failed check, in its order: route, envelope, JWS, claims,
/// software statement, then the policy (whose verdict puts identity failures first). Policy
/// rules in shadow do not stop it when every violation is in shadow.
fn decide(
    profile: &Profile,
    findings: &[Finding],
    pre_policy: Option<&Violation>,
    policy: &[Violation],
    key_set_url: Option<&Url>,
) -> VerdictReport {
    let all_shadowed = policy.iter().all(|v| profile.is_shadowed(v.rule));
    let would_reject: Vec<&'static str> = if all_shadowed {
        policy.iter().map(|v| v.rule.id()).collect()
    } else {
        Vec::new()
    };
    // With every violation in shadow the gateway still needs a key set to verify the
    // signature, unless the key set URL rule itself is in shadow (then it forwards unverified).
    let forwarded_unverified = profile.is_shadowed(Rule::KeySetUrl) && !would_reject.is_empty();
    let no_key_set = pre_policy.is_none() && key_set_url.is_none() && !forwarded_unverified;
    let decisive = findings
        .first()
        .cloned()
        .or_else(|| pre_policy.map(Finding::from_violation))
        .or_else(|| {
            policy
                .first()
                .filter(|_| !all_shadowed)
                .map(Finding::from_violation)
        })
        .or_else(|| {
            no_key_set.then(|| Finding {
                id: "jwks_uri",
                status: 400,
                error: ErrorCode::InvalidClientMetadata.as_str(),
                message: "no acceptable key set URL".into(),
            })
        });
    match decisive {
        Some(f) => VerdictReport {
            outcome: "reject",
            status: Some(f.status),
            error: Some(f.error),
            decided_by: Some(f.id),
            description: Some(f.message),
            would_reject: Vec::new(),
        },
        None => VerdictReport {
            outcome: "accept",
            status: None,
            error: None,
            decided_by: None,
            description: None,
            would_reject,
        },
    }
}

/// Pretty JSON, each line indented by two spaces.
fn indented_json(value: &Value) -> String {
    let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
    pretty.lines().map(|l| format!("  {l}\n")).collect()
}

impl Report {
    /// Whether the gateway would accept the request, as far as can be told offline.
    pub fn accepted(&self) -> bool {
        self.verdict.outcome == "accept"
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// The report as text for a reader at a support desk.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = self.write_text(&mut out);
        out
    }

    fn write_text(&self, out: &mut String) -> std::fmt::Result {
        writeln!(
            out,
            "dcrgate explain: offline verdict; {SIGNATURE_NOTE}, nothing fetched"
        )?;
        writeln!(out, "Profile:  {} ({})", self.profile, self.profile_source)?;
        match &self.client_id {
            Some(id) => writeln!(out, "ClientId: {id} ({})", self.client_id_source)?,
            None => writeln!(out, "ClientId: {}", self.client_id_source)?,
        }
        writeln!(out, "Now:      {}", self.now)?;
        writeln!(out)?;

        let ro = &self.request_object;
        match &ro.header {
            Some(h) => writeln!(out, "Request object header: {}", Value::Object(h.clone()))?,
            None => writeln!(out, "Request object header: does not decode")?,
        }
        writeln!(out, "Request object header rules: {}", ro.header_rules)?;
        writeln!(
            out,
            "Request object claims (decoded; signature not verified):"
        )?;
        let mut shown = ro.claims.clone();
        if let Some(Value::String(s)) = shown.get("software_statement") {
            let placeholder = format!("<compact JWS, {} bytes: decoded below>", s.len());
            shown.insert("software_statement".into(), Value::String(placeholder));
        }
        out.push_str(&indented_json(&Value::Object(shown)));
        match &self.software_statement {
            None => writeln!(out, "Software statement: none")?,
            Some(s) => {
                writeln!(out, "Software statement: {}", s.note)?;
                writeln!(
                    out,
                    "  alg {}, iss {}",
                    s.alg.as_deref().unwrap_or("(none)"),
                    s.issuer.as_deref().unwrap_or("(none)")
                )?;
                writeln!(out, "  issuer trust: {}", s.trust)?;
                match &s.claims {
                    Some(c) => {
                        writeln!(out, "Software statement claims (not verified):")?;
                        out.push_str(&indented_json(&Value::Object(c.clone())));
                    }
                    None => writeln!(out, "  its claims do not decode")?,
                }
            }
        }
        let list = |s: &Setting| {
            if s.values.is_empty() {
                "(none)".to_owned()
            } else {
                s.values.join(", ")
            }
        };
        writeln!(
            out,
            "Audiences: {} ({})",
            list(&self.audiences),
            self.audiences.source
        )?;
        writeln!(
            out,
            "Key set hosts: {} ({})",
            list(&self.key_set_hosts),
            self.key_set_hosts.source
        )?;
        writeln!(out)?;

        let c = &self.certificate;
        writeln!(
            out,
            "Certificate: x5t#S256 {}, not after {}{} (chain not checked offline)",
            c.sha256_thumbprint,
            c.not_after,
            if c.expired { " (EXPIRED)" } else { "" }
        )?;
        writeln!(
            out,
            "Certificate subject (canonical RFC 4514): {}",
            c.subject
        )?;
        let dn = &self.tls_client_auth_dn;
        match (&dn.canonical, &dn.error) {
            (Some(canonical), _) => {
                writeln!(out, "tls_client_auth_dn (canonical RFC 4514): {canonical}")?
            }
            (None, Some(error)) => {
                write!(out, "tls_client_auth_dn (canonical RFC 4514): {error}")?;
                match &dn.claim {
                    Some(claim) => writeln!(
                        out,
                        " ({} RFC 4514 parsing; the claim is {claim:?})",
                        dn.parse_mode
                    )?,
                    None => writeln!(out)?,
                }
            }
            (None, None) => writeln!(out, "tls_client_auth_dn (canonical RFC 4514): (none)")?,
        }
        match &self.dn_match {
            Some(m) if m.matched => writeln!(out, "DN match ({}): match", m.mode)?,
            Some(m) => writeln!(
                out,
                "DN match ({}): MISMATCH — {}",
                m.mode,
                m.mismatch.as_deref().unwrap_or("")
            )?,
            None => writeln!(
                out,
                "DN match: not checked (no parseable tls_client_auth_dn)"
            )?,
        }
        if let Some(r) = &self.rotation {
            writeln!(out, "Certificate rotation ({}): {}", r.mode, r.decision)?;
        }
        writeln!(out)?;

        if !self.findings.is_empty() {
            writeln!(out, "Checks before the policy:")?;
            for f in &self.findings {
                writeln!(
                    out,
                    "FAIL {} ({} {}): {}",
                    f.id, f.status, f.error, f.message
                )?;
            }
            writeln!(out)?;
        }
        writeln!(out, "Policy rules ({}):", self.profile)?;
        for r in &self.rules {
            match r.result {
                Outcome::Fail => {
                    let shadow = if r.shadow {
                        ", in shadow: recorded, not enforced"
                    } else {
                        ""
                    };
                    for m in &r.messages {
                        writeln!(
                            out,
                            "FAIL {} ({} {}{shadow}): {m}",
                            r.id,
                            r.status.unwrap_or(400),
                            r.error.unwrap_or("")
                        )?;
                    }
                }
                Outcome::Skip => writeln!(
                    out,
                    "SKIP {} ({})",
                    r.id,
                    r.messages.first().map_or("not applicable", String::as_str)
                )?,
                Outcome::Pass => writeln!(out, "{} {}", r.result.label(), r.id)?,
            }
        }
        writeln!(out)?;

        match &self.key_set_url {
            Some(url) => writeln!(
                out,
                "Key set URL (would be fetched; nothing is fetched offline): {url}"
            )?,
            None => writeln!(out, "Key set URL: none acceptable")?,
        }
        let v = &self.verdict;
        match (v.status, v.error, v.decided_by) {
            (Some(status), Some(error), Some(by)) => {
                writeln!(out, "Verdict: REJECT — {status} {error} ({by})")?
            }
            _ => {
                writeln!(out, "Verdict: ACCEPT (offline checks)")?;
                if !v.would_reject.is_empty() {
                    writeln!(
                        out,
                        "Shadow rules would reject (recorded as would_reject, forwarded): {}",
                        v.would_reject.join(", ")
                    )?;
                }
                writeln!(
                    out,
                    "Online, the gateway also checks the certificate chain, the bearer token, the \
                     request object's signature with the key set{}, and that the jti is used \
                     once where the profile requires it.",
                    if self.software_statement.is_some() {
                        ", the software statement's signature against its directory"
                    } else {
                        ""
                    }
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dcrgate_certs::SubjectSpec;
    use dcrgate_sandbox::pki::SandboxPki;
    use dcrgate_sandbox::tpp::unsigned;
    use serde_json::json;

    const NOW: i64 = 1_750_000_000;

    fn subject() -> SubjectSpec {
        SubjectSpec::obwac("Example TPP Ltd", "PSDGB-FCA-123456", "0015800001HQQrZAAX")
    }

    fn claims() -> Value {
        json!({
            "iss": "tpp-1",
            "aud": "https://bank.example/",
            "iat": NOW - 10,
            "exp": NOW + 3000,
            "client_id": "tpp-1",
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_dn": subject().to_rfc4514(),
            "id_token_signed_response_alg": "PS256",
            "request_object_signing_alg": "PS256",
            "redirect_uris": ["https://tpp.example/callback"],
            "jwks_uri": "https://keys.tpp.example/jwks",
            "org_name": "Example TPP Ltd",
            "scope": "openid accounts",
        })
    }

    fn jwt(claims: &Value) -> String {
        unsigned(
            &json!({"alg": "PS256", "kid": "k1", "typ": "JWT"}),
            claims,
            b"not a real signature",
        )
    }

    fn seed() -> Profile {
        Profile::from_toml_str(SEED_PROFILE).expect("seed profile")
    }

    fn inputs_for(jwt: &str, profile: Profile) -> Inputs {
        let pki = SandboxPki::generate().expect("PKI");
        let cert = pki.transport_cert(&subject()).expect("certificate");
        Inputs::from_parts(
            jwt.as_bytes(),
            Path::new("request.jwt"),
            cert.cert_pem.as_bytes(),
            Path::new("tpp.pem"),
            profile,
            "test".into(),
        )
        .expect("inputs")
    }

    fn rule<'a>(report: &'a Report, id: &str) -> &'a RuleResult {
        report
            .rules
            .iter()
            .find(|r| r.id == id)
            .unwrap_or_else(|| panic!("no rule {id}"))
    }

    #[test]
    fn compliant_request_is_accepted_and_ssa_rules_skip() {
        let report = explain(&inputs_for(&jwt(&claims()), seed()), NOW);
        assert!(report.accepted(), "{}", report.render_text());
        assert_eq!(report.rules.len(), Rule::ALL.len());
        assert_eq!(rule(&report, "ssa_time").result, Outcome::Skip);
        assert_eq!(rule(&report, "client_id").result, Outcome::Skip);
        assert_eq!(rule(&report, "aud").result, Outcome::Skip);
        assert_eq!(rule(&report, "scope").result, Outcome::Pass);
        assert_eq!(report.key_set_hosts.values, ["keys.tpp.example"]);
        assert_eq!(
            report.key_set_url.as_deref(),
            Some("https://keys.tpp.example/jwks")
        );
        assert_eq!(
            report.tls_client_auth_dn.canonical.as_deref(),
            Some(report.certificate.subject.as_str())
        );
        let text = report.render_text();
        assert!(text.contains(SIGNATURE_NOTE), "{text}");
        assert!(text.contains("Now:      2025-06-15T15:06:40Z"), "{text}");
    }

    #[test]
    fn header_rule_failure_still_explains_the_claims() {
        let token = unsigned(&json!({"alg": "none"}), &claims(), b"");
        let report = explain(&inputs_for(&token, seed()), NOW);
        assert!(!report.accepted());
        assert_eq!(report.findings[0].id, "jws_alg_none");
        assert_eq!(report.verdict.decided_by, Some("jws_alg_none"));
        assert_eq!(report.verdict.status, Some(400));
        // The claims were still evaluated: every rule passes or does not apply.
        assert!(report.rules.iter().all(|r| r.result != Outcome::Fail));
        assert!(report.render_text().contains("unsigned JWS (alg none)"));
    }

    #[test]
    fn explicit_client_id_and_audience_are_checked() {
        let mut inputs = inputs_for(&jwt(&claims()), seed());
        inputs.client_id = Some("someone-else".into());
        inputs.audiences = vec!["https://other-bank.example/".into()];
        let report = explain(&inputs, NOW);
        assert_eq!(rule(&report, "client_id").result, Outcome::Fail);
        assert_eq!(rule(&report, "aud").result, Outcome::Fail);
        assert_eq!(report.client_id_source, "from --client-id");
    }

    #[test]
    fn malformed_claims_skip_the_other_rules() {
        let mut c = claims();
        c["exp"] = json!("tomorrow");
        let report = explain(&inputs_for(&jwt(&c), seed()), NOW);
        assert_eq!(rule(&report, "claims_malformed").result, Outcome::Fail);
        assert_eq!(rule(&report, "scope").result, Outcome::Skip);
        assert_eq!(report.verdict.decided_by, Some("claims_malformed"));
        // The DN is still compared from the raw claim.
        assert!(report.dn_match.as_ref().is_some_and(|m| m.matched));
    }

    #[test]
    fn unsigned_software_statement_is_decoded_and_refused_where_the_profile_says() {
        let ssa = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(
                json!({"iss": "dir", "iat": NOW, "software_id": "tpp-1",
                       "software_jwks_endpoint": "https://keys.tpp.example/jwks",
                       "software_redirect_uris": ["https://tpp.example/callback"],
                       "software_roles": ["AISP"]})
                .to_string()
            )
        );
        let mut c = claims();
        c["software_statement"] = json!(ssa);
        let report = explain(&inputs_for(&jwt(&c), seed()), NOW);
        let s = report.software_statement.as_ref().expect("decoded");
        assert!(!s.verified);
        assert_eq!(s.alg.as_deref(), Some("none"));
        assert_eq!(report.findings[0].id, "ssa_unsigned");
        assert_eq!(report.verdict.error, Some("invalid_software_statement"));
        assert_eq!(rule(&report, "ssa_roles").result, Outcome::Pass);
        assert_eq!(rule(&report, "jwks_uri").result, Outcome::Skip);
        assert!(report.render_text().contains("WITHOUT verification"));
    }

    #[test]
    fn shadow_rules_are_recorded_not_enforced() {
        let shadow = || {
            Profile::from_toml_str("name = \"trial\"\n[shadow]\nrules = [\"scope\"]")
                .expect("profile")
        };
        let mut c = claims();
        c["scope"] = json!("openid admin");
        let report = explain(&inputs_for(&jwt(&c), shadow()), NOW);
        assert!(report.accepted(), "{}", report.render_text());
        assert_eq!(report.verdict.would_reject, ["scope"]);
        let scope = rule(&report, "scope");
        assert_eq!((scope.result, scope.shadow), (Outcome::Fail, true));
        let text = report.render_text();
        assert!(text.contains("in shadow: recorded, not enforced"), "{text}");
        assert!(text.contains("Shadow rules would reject"), "{text}");
        // A violation outside the shadow stops the request, and the first violation decides.
        c["exp"] = json!(NOW - 3600);
        let report = explain(&inputs_for(&jwt(&c), shadow()), NOW);
        assert!(!report.accepted());
        assert_eq!(report.verdict.decided_by, Some("scope"));
        assert!(report.verdict.would_reject.is_empty());
    }

    #[test]
    fn tolerant_decoding_accepts_padding_and_the_standard_alphabet() {
        use base64::engine::general_purpose::STANDARD;
        let token = format!(
            "{}.{}.sig",
            STANDARD.encode(r#"{"alg":"PS256","kid":"k?>"}"#),
            STANDARD.encode(r#"{"a":"??>"}"#)
        );
        let t = decode_tolerant(token.as_bytes()).expect("decodes");
        assert_eq!(t.payload["a"], "??>");
        assert!(t.header.is_ok());
        assert!(matches!(
            decode_tolerant(b"only.two"),
            Err(JwsError::NotCompact)
        ));
        assert!(decode_tolerant(b"a.!!!.c").is_err());
    }

    #[test]
    fn bad_inputs_name_the_file() {
        let pki = SandboxPki::generate().expect("PKI");
        let cert = pki.transport_cert(&subject()).expect("certificate");
        let token = jwt(&claims());
        let e = Inputs::from_parts(
            b"hello",
            Path::new("req.txt"),
            cert.cert_pem.as_bytes(),
            Path::new("c.pem"),
            seed(),
            String::new(),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("req.txt: not a JWT"), "{e}");
        let e = Inputs::from_parts(
            token.as_bytes(),
            Path::new("req.jwt"),
            cert.key_pem.as_bytes(),
            Path::new("key.pem"),
            seed(),
            String::new(),
        )
        .unwrap_err();
        assert!(
            e.to_string().starts_with("key.pem: not a certificate"),
            "{e}"
        );
        let e = Inputs::from_parts(
            token.as_bytes(),
            Path::new("req.jwt"),
            b"junk",
            Path::new("c.der"),
            seed(),
            String::new(),
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("c.der: not an X.509"), "{e}");
        // DER works as well as PEM.
        assert!(Inputs::from_parts(
            token.as_bytes(),
            Path::new("req.jwt"),
            &cert.cert_der,
            Path::new("c.der"),
            seed(),
            String::new(),
        )
        .is_ok());
    }

    #[test]
    fn json_report_has_the_rules_and_verdict() {
        let report = explain(&inputs_for(&jwt(&claims()), seed()), NOW);
        let v: Value = serde_json::from_str(&report.to_json().expect("json")).expect("parses");
        assert_eq!(v["verdict"]["outcome"], "accept");
        assert_eq!(v["rules"].as_array().map(Vec::len), Some(Rule::ALL.len()));
        assert_eq!(v["rules"][0]["id"], "claims_malformed");
        assert_eq!(v["rules"][0]["result"], "pass");
        assert_eq!(v["signature"], SIGNATURE_NOTE);
    }
}
