//! The report: what was read, every check and rule, and the verdict, as JSON (serde) or as
//! text for a support desk.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Map, Value};

use super::chain::ChainReport;
use super::revocation::RevocationReport;
use super::signatures::{Check, Signatures};
use crate::rejection::Rejection;

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

impl From<Rejection> for Finding {
    fn from(r: Rejection) -> Self {
        Self {
            id: r.reason.id(),
            status: r.status(),
            error: r.error(),
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
    /// Its chain against the configuration's client CA bundle.
    pub chain: ChainReport,
    /// Its revocation status under the configuration's CRLs.
    pub revocation: RevocationReport,
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
    /// The `rotation.attributes` alternative that decided (its attribute names), when one
    /// applied to the presented certificate.
    pub compared_on: Option<String>,
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
    /// The signatures and the bearer token: verified, failed or not checked.
    pub signatures: Signatures,
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

/// Pretty JSON, each line indented by two spaces.
fn indented_json(value: &Value) -> String {
    let pretty = serde_json::to_string_pretty(value).unwrap_or_default();
    pretty.lines().map(|l| format!("  {l}\n")).collect()
}

impl Report {
    /// Whether the gateway would accept the request: every check passed, the signatures
    /// included.
    pub fn accepted(&self) -> bool {
        self.verdict.outcome == "accept"
    }

    /// Whether every check that was made passed (`accept`, or `not_checked`: only key material
    /// was missing).
    pub fn passes_what_was_checked(&self) -> bool {
        matches!(self.verdict.outcome, "accept" | "not_checked")
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
            "dcrgate explain: the gateway's checks on what the TPP sent{}",
            if self.signatures.unchecked_parts().is_empty() {
                ""
            } else {
                "; without key material, signatures are NOT CHECKED"
            }
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
            "Request object claims (decoded; the signature is reported below):"
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
            "Certificate: x5t#S256 {}, not after {}{}",
            c.sha256_thumbprint,
            c.not_after,
            if c.expired { " (EXPIRED)" } else { "" }
        )?;
        writeln!(
            out,
            "Certificate chain: {}: {}",
            c.chain.status, c.chain.detail
        )?;
        writeln!(
            out,
            "Certificate revocation: {}: {}",
            c.revocation.status, c.revocation.detail
        )?;
        if let Some(policy) = &c.revocation.issuer_policy {
            writeln!(out, "Certificate issuer's revocation policy: {policy}")?;
        }
        if let Some(url) = &c.revocation.ocsp_responder {
            writeln!(out, "Certificate OCSP responder: {url}")?;
        }
        for url in &c.revocation.crl_distribution_points {
            writeln!(out, "Certificate CRL distribution point: {url}")?;
        }
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
            match &r.compared_on {
                Some(on) => writeln!(
                    out,
                    "Certificate rotation ({}): {}, compared on {on}",
                    r.mode, r.decision
                )?,
                None => writeln!(out, "Certificate rotation ({}): {}", r.mode, r.decision)?,
            }
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
        let line = |name: &str, c: &Check| {
            format!(
                "{name}: {}: {}",
                match c.status {
                    "verified" => "VERIFIED",
                    "failed" => "FAILED",
                    _ => "NOT CHECKED",
                },
                c.detail
            )
        };
        writeln!(
            out,
            "{}",
            line("Request object signature", &self.signatures.request_object)
        )?;
        if let Some(c) = &self.signatures.software_statement {
            writeln!(out, "{}", line("Software statement signature", c))?;
        }
        if let Some(c) = &self.signatures.bearer_token {
            writeln!(out, "{}", line("Bearer token", c))?;
        }
        let v = &self.verdict;
        if v.outcome == "not_checked" {
            writeln!(
                out,
                "Verdict: NOT CHECKED — every check that could be made passes; {}",
                v.description.as_deref().unwrap_or_default()
            )?;
            if !v.would_reject.is_empty() {
                writeln!(
                    out,
                    "Shadow rules would reject (recorded as would_reject, forwarded): {}",
                    v.would_reject.join(", ")
                )?;
            }
            return Ok(());
        }
        match (v.status, v.error, v.decided_by) {
            (Some(status), Some(error), Some(by)) => {
                writeln!(out, "Verdict: REJECT — {status} {error} ({by})")?
            }
            (None, None, Some(by)) => writeln!(
                out,
                "Verdict: REJECT — the TLS handshake fails ({by}): {}",
                v.description.as_deref().unwrap_or_default()
            )?,
            _ => {
                writeln!(out, "Verdict: ACCEPT")?;
                if !v.would_reject.is_empty() {
                    writeln!(
                        out,
                        "Shadow rules would reject (recorded as would_reject, forwarded): {}",
                        v.would_reject.join(", ")
                    )?;
                }
                writeln!(
                    out,
                    "Online, the gateway also checks that the jti is used once where the profile \
                     requires it{}.",
                    if self.signatures.bearer_token.is_none() {
                        ", and the bearer token (give --token)"
                    } else {
                        ""
                    }
                )?;
            }
        }
        Ok(())
    }
}
