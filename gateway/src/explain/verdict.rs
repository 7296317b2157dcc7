//! The explanation itself: the gateway's checks and policy run on the inputs, each rule
//! passed, failed or not applicable, and the verdict the gateway would reach.

use dcrgate_policies::dn::{attribute_name, match_dn, Dn, MatchMode, ParseMode};
use dcrgate_policies::evaluate::{evaluate, Evaluation, RequestFacts};
use dcrgate_policies::{
    HostAllowlist, Presence, Profile, RegistrationClaims, RotationMode, Rule, SoftwareStatement,
    Violation,
};
use serde_json::Value;
use url::{Host, Url};

use super::inputs::Inputs;
use super::report::{
    CertificateReport, DnClaimReport, DnMatchReport, Finding, Outcome, Report, RequestObject,
    RotationReport, RuleResult, Setting, VerdictReport,
};
use super::signatures::Signatures;
use super::ssa::examine_ssa;
use crate::audit::rfc3339;
use crate::checks;
pub use crate::clock::unix_now as now;
use crate::config::Limits;
use crate::rejection::Rejection;

fn rfc3339_seconds(secs: i64) -> String {
    let s = rfc3339(secs, 0);
    s.strip_suffix(".000Z")
        .map_or(s.clone(), |t| format!("{t}Z"))
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
    explain_with(inputs, now, Signatures::unchecked(inputs))
}

/// [`explain`], with the signatures and the bearer token verified where the inputs give key
/// material (`--jwks`, `--directory-jwks` or the configuration's directories, `--token`).
pub async fn explain_verified(inputs: &Inputs, now: i64) -> Report {
    let (client_id, _) = path_client_id(inputs);
    let signatures = super::signatures::examine(inputs, client_id.as_deref(), now).await;
    explain_with(inputs, now, signatures)
}

/// The explanation with `signatures` as checked.
pub fn explain_with(inputs: &Inputs, now: i64, signatures: Signatures) -> Report {
    let profile = &inputs.profile;
    let payload = &inputs.jwt_payload;
    let (client_id, client_id_source) = path_client_id(inputs);
    let (mut findings, header_rules) = envelope_checks(inputs, client_id.as_deref());

    // The claims and the software statement (decoded, never verified).
    let claims = checks::registration_claims(payload);
    let claims_ok = claims.as_ref().ok();
    let ssa = claims_ok
        .and_then(|c| c.software_statement.as_deref())
        .filter(|_| profile.software_statement.presence != Presence::Refused)
        .map(|compact| examine_ssa(compact, profile, inputs.deployment.as_ref()));
    findings.extend(ssa.as_ref().and_then(|s| s.finding.clone()));
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

    // The policy, as the gateway runs it; claims that do not decode stop it first.
    let evaluation = claims.as_ref().map_err(Clone::clone).map(|c| {
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
    let violations: Vec<&Violation> = match &evaluation {
        Ok(e) => e.verdict.violations().iter().collect(),
        Err(v) => vec![v],
    };
    let applicability = Applicability {
        profile,
        claims: claims_ok,
        path_client_id: client_id.is_some(),
        client_id_from_claim: inputs.client_id.is_none(),
        audiences_known,
        dn_parsed: tls_client_auth_dn.canonical.is_some(),
        ssa_carried: claims_ok.is_some_and(|c| c.software_statement.is_some()),
        ssa_used: statement.is_some(),
    };
    let rules = Rule::ALL
        .iter()
        .map(|&rule| rule_result(rule, &violations, &applicability))
        .collect();
    let evaluation = evaluation.as_ref();
    let revocation =
        super::revocation::examine(&inputs.certificate_der, inputs.deployment.as_ref(), now);
    let chain = super::chain::examine(inputs, now);
    let verdict = if chain.refuses_handshake() {
        VerdictReport {
            outcome: "reject",
            status: None,
            error: None,
            decided_by: Some("tls_handshake"),
            description: Some(chain.detail.clone()),
            would_reject: Vec::new(),
        }
    } else if revocation.refuses_handshake {
        // Nothing else matters: the request never gets past the handshake.
        VerdictReport {
            outcome: "reject",
            status: None,
            error: None,
            decided_by: Some("revocation"),
            description: Some(revocation.detail.clone()),
            would_reject: Vec::new(),
        }
    } else {
        let decided = decide(profile, &findings, evaluation);
        with_signatures(decided, &signatures)
    };
    let key_set_url = evaluation.ok().and_then(|e| e.key_set_url.as_ref());

    let rotation = evaluation.ok().and_then(|e| {
        Some(RotationReport {
            mode: match profile.rotation {
                RotationMode::Deny => "deny",
                RotationMode::SameOrganisation => "same-organisation",
            },
            decision: e.rotation?.as_str(),
            compared_on: e
                .rotation_alternative
                .and_then(|i| profile.rotation_alternatives.get(i))
                .map(|oids| attribute_names(oids)),
        })
    });
    let cert = &inputs.certificate;
    Report {
        signatures,
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
            chain,
            revocation,
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

/// The policy's verdict with the signatures and the bearer token taken into account, in the
/// gateway's order: a refused bearer token decides before anything in the body; a failed
/// signature turns an acceptance into its rejection; what was not checked turns it into
/// `not_checked`, never `accept`.
fn with_signatures(decided: VerdictReport, signatures: &Signatures) -> VerdictReport {
    let reject = |f: &Finding| VerdictReport {
        outcome: "reject",
        status: Some(f.status),
        error: Some(f.error),
        decided_by: Some(f.id),
        description: Some(f.message.clone()),
        would_reject: Vec::new(),
    };
    if let Some(f) = signatures
        .bearer_token
        .as_ref()
        .and_then(|c| c.finding.as_ref())
    {
        return reject(f);
    }
    if decided.outcome != "accept" {
        return decided;
    }
    if let Some(f) = signatures.failure() {
        return reject(f);
    }
    let unchecked = signatures.unchecked_parts();
    if unchecked.is_empty() {
        return decided;
    }
    VerdictReport {
        outcome: "not_checked",
        description: Some(format!(
            "NOT CHECKED: {} (give --jwks{})",
            unchecked.join(" and "),
            if unchecked.len() > 1 {
                " and --directory-jwks"
            } else {
                ""
            }
        )),
        ..decided
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

/// The checks before the claims, the gateway's own: the ClientId's form, the body size and the
/// JWS header rules. Returns the failures and `ok` or the header rule broken.
fn envelope_checks(inputs: &Inputs, client_id: Option<&str>) -> (Vec<Finding>, String) {
    let limits = inputs
        .deployment
        .as_ref()
        .map_or_else(Limits::default, |d| d.limits.clone());
    let mut findings = Vec::new();
    if let Some(id) = client_id {
        findings.extend(
            checks::client_id(id, limits.max_client_id_length)
                .err()
                .map(Finding::from),
        );
    }
    findings.extend(
        checks::body_size(inputs.jwt.len(), limits.max_body_bytes)
            .err()
            .map(Finding::from),
    );
    let header_rules = match checks::request_object(&inputs.jwt, &inputs.profile.request.algorithms)
    {
        Ok(_) => "ok".to_owned(),
        Err(rejection) => {
            let finding = Finding::from(rejection);
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
/// software statement, then the policy as [`checks::policy_decision`] enforces it (the
/// verdict puts identity failures first; rules in shadow do not stop the request; no request
/// goes on without a key set URL).
fn decide(
    profile: &Profile,
    findings: &[Finding],
    evaluation: Result<&Evaluation, &Violation>,
) -> VerdictReport {
    let decision = match (findings.first(), evaluation) {
        (Some(first), _) => Err(first.clone()),
        (None, Err(malformed)) => Err(Finding::from(Rejection::from_violations([malformed]))),
        (None, Ok(e)) => checks::policy_decision(profile, e)
            .map(|pass| pass.would_reject)
            .map_err(Finding::from),
    };
    match decision {
        Err(f) => VerdictReport {
            outcome: "reject",
            status: Some(f.status),
            error: Some(f.error),
            decided_by: Some(f.id),
            description: Some(f.message),
            would_reject: Vec::new(),
        },
        Ok(would_reject) => VerdictReport {
            outcome: "accept",
            status: None,
            error: None,
            decided_by: None,
            description: None,
            would_reject: would_reject.into_iter().map(Rule::id).collect(),
        },
    }
}
