//! The registration rules: a pure function from (profile, claims, request facts) to a verdict.
//!
//! Every rule is evaluated and every violation reported, so a TPP fixes its request in one
//! round trip. Time is an argument, never read from a clock.
//!
//! One file on purpose (≈770 lines): every rule the verdict can name, in the order it checks
//! them, so a reviewer reads the whole registration policy in one place; the parts that stand
//! alone (claims, DN, URIs, networks) are their own modules.

use serde_json::{Map, Value};
use url::Url;

use crate::claims::RegistrationClaims;
use crate::dn::{match_dn, Dn, MatchMode};
use crate::key_url::{check_key_set_url, HostAllowlist};
use crate::profile::{Presence, Profile, RotationMode, UrlClaimPolicy};
use crate::ssa::SoftwareStatement;
use crate::uri::{check_uri, is_invisible_format, UriRules};
use crate::verdict::{Rule, Verdict, Violation};

/// What the gateway knows about the request besides its claims.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The ClientId from the request path (none when registering a new client).
    pub client_id: Option<&'a str>,
    /// Now, in seconds since the epoch.
    pub now: i64,
    /// The `aud` values that name this server (at least one must be in the request's `aud`).
    pub audiences: &'a [String],
    /// Hosts the TPP key set may be fetched from.
    pub key_hosts: &'a HostAllowlist,
    /// The subject of the verified client certificate.
    pub presented_dn: &'a Dn,
    /// The request's software statement, decoded after its signature was verified against a
    /// trusted directory (or accepted unsigned where the profile allows it). `None` when the
    /// request carries none, or the profile refuses them.
    pub software_statement: Option<&'a SoftwareStatement>,
}

/// How a DN that differs from the presented certificate's was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationDecision {
    /// Accepted as a rotation to a certificate of the same organisation.
    Accepted,
    /// Refused: rotation is off, or the organisation differs.
    Denied,
}

impl RotationDecision {
    /// A closed-set label for metrics and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            RotationDecision::Accepted => "accepted",
            RotationDecision::Denied => "denied",
        }
    }
}

/// What the gateway must record so the request object cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayKey {
    /// `{iss or software_id or ClientId}:{jti as a lowercase UUID}`.
    pub id: String,
    /// The request object's `exp`: the `jti` is remembered until then.
    pub expires_at: i64,
}

/// The verdict, and where to fetch the TPP's key set from when the URL passed its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Accept, or every violation found.
    pub verdict: Verdict,
    /// The checked key set URL (https, allowlisted): from the verified software statement when
    /// there is one, else from the request.
    pub key_set_url: Option<Url>,
    /// Set when `tls_client_auth_dn` differs from the presented certificate's subject.
    pub rotation: Option<RotationDecision>,
    /// Which of the profile's `rotation.attributes` alternatives decided the rotation (an
    /// index into [`Profile::rotation_alternatives`]); `None` when none applied.
    pub rotation_alternative: Option<usize>,
    /// Set when the profile requires replay protection and the `jti` is acceptable.
    pub replay: Option<ReplayKey>,
    /// The software's id, from the software statement or else the request, for audit records.
    pub software_id: Option<String>,
}

/// Decode the claims from a JSON object and evaluate them.
pub fn evaluate_json(
    profile: &Profile,
    payload: &Map<String, Value>,
    facts: &RequestFacts<'_>,
) -> Evaluation {
    match RegistrationClaims::from_json(payload) {
        Ok(claims) => evaluate(profile, &claims, facts),
        Err(e) => Evaluation {
            verdict: Verdict::from_violations(vec![Violation::new(
                Rule::ClaimsMalformed,
                e.to_string(),
            )]),
            key_set_url: None,
            rotation: None,
            rotation_alternative: None,
            replay: None,
            software_id: None,
        },
    }
}

/// Evaluate decoded claims against a profile.
pub fn evaluate(
    profile: &Profile,
    claims: &RegistrationClaims,
    facts: &RequestFacts<'_>,
) -> Evaluation {
    let mut v = Vec::new();
    let c = &profile.claims;
    one_of(
        &mut v,
        Rule::TokenEndpointAuthMethod,
        "token_endpoint_auth_method",
        claims.token_endpoint_auth_method.as_deref(),
        &c.token_endpoint_auth_methods,
    );
    one_of(
        &mut v,
        Rule::IdTokenSignedResponseAlg,
        "id_token_signed_response_alg",
        claims.id_token_signed_response_alg.as_deref(),
        &c.id_token_signed_response_algs,
    );
    one_of(
        &mut v,
        Rule::RequestObjectSigningAlg,
        "request_object_signing_alg",
        claims.request_object_signing_alg.as_deref(),
        &c.request_object_signing_algs,
    );
    check_scope(&mut v, profile, claims);
    check_redirect_uris(&mut v, profile, claims);
    check_metadata(&mut v, profile, claims);
    check_url_claims(&mut v, profile, claims);
    if c.require_org_name
        && claims
            .org_name
            .as_deref()
            .is_none_or(|s| s.trim().is_empty())
    {
        v.push(Violation::new(Rule::OrgName, "org_name is required"));
    }
    check_times(&mut v, profile, claims, facts.now);
    check_audience(&mut v, claims, facts.audiences);
    if let (Some(id), Some(path_id)) = (&claims.client_id, facts.client_id) {
        if id != path_id {
            v.push(Violation::new(
                Rule::ClientId,
                "client_id does not match the ClientId in the request path",
            ));
        }
    }
    let ssa = check_software_statement(&mut v, profile, claims, facts);
    let key_set_url = match ssa {
        Some(ssa) => ssa_key_set_url(&mut v, profile, claims, ssa, facts.key_hosts),
        None => request_key_set_url(&mut v, claims, facts.key_hosts),
    };
    let (rotation, rotation_alternative) =
        match check_dn(&mut v, profile, claims, facts.presented_dn) {
            Some((decision, alternative)) => (Some(decision), alternative),
            None => (None, None),
        };
    let replay = check_jti(&mut v, profile, claims, facts);
    let software_id = ssa
        .and_then(|s| s.software_id.clone())
        .or_else(|| claims.software_id.clone());
    Evaluation {
        verdict: Verdict::from_violations(v),
        key_set_url,
        rotation,
        rotation_alternative,
        replay,
        software_id,
    }
}

fn request_key_set_url(
    v: &mut Vec<Violation>,
    claims: &RegistrationClaims,
    hosts: &HostAllowlist,
) -> Option<Url> {
    match claims.jwks_uri.as_deref() {
        None => {
            v.push(Violation::new(
                Rule::KeySetUrl,
                "jwks_uri (or org_jwks_endpoint) is required to verify the request signature",
            ));
            None
        }
        Some(raw) => match check_key_set_url(raw, hosts) {
            Ok(url) => Some(url),
            Err(e) => {
                v.push(Violation::new(Rule::KeySetUrl, e.to_string()));
                None
            }
        },
    }
}

/// Presence, then the SSA's own rules; returns the SSA when its rules apply.
fn check_software_statement<'a>(
    v: &mut Vec<Violation>,
    profile: &Profile,
    claims: &RegistrationClaims,
    facts: &RequestFacts<'a>,
) -> Option<&'a SoftwareStatement> {
    let rules = &profile.software_statement;
    let carried = claims.software_statement.is_some();
    match (rules.presence, carried, facts.software_statement) {
        (Presence::Required, false, _) => {
            v.push(Violation::new(
                Rule::SoftwareStatement,
                "software_statement is required",
            ));
            return None;
        }
        (Presence::Refused, true, _) => {
            v.push(Violation::new(
                Rule::SoftwareStatement,
                "software_statement is not accepted by this server",
            ));
            return None;
        }
        (_, false, _) => return None,
        // Fail closed: a statement the gateway did not verify is never trusted.
        (_, true, None) => {
            v.push(Violation::new(
                Rule::SoftwareStatement,
                "software_statement was not verified",
            ));
            return None;
        }
        (_, true, Some(_)) => {}
    }
    let ssa = facts.software_statement?;
    check_ssa_times(v, profile, ssa, facts.now);
    match ssa.software_id.as_deref() {
        None => v.push(Violation::new(
            Rule::SoftwareId,
            "the software statement has no software_id",
        )),
        Some(sid) => {
            if claims.software_id.as_deref().is_some_and(|r| r != sid) {
                v.push(Violation::new(
                    Rule::SoftwareId,
                    "software_id differs from the software statement's",
                ));
            }
            if rules.require_iss_is_software_id && claims.iss.as_deref() != Some(sid) {
                v.push(Violation::new(
                    Rule::SoftwareId,
                    "iss must be the software statement's software_id",
                ));
            }
        }
    }
    if let Some(uris) = &claims.redirect_uris {
        let listed = ssa.software_redirect_uris.as_deref().unwrap_or_default();
        let unlisted: Vec<&str> = uris
            .iter()
            .filter(|u| !listed.contains(u))
            .map(|u| clip(u))
            .collect();
        if !unlisted.is_empty() {
            v.push(Violation::new(
                Rule::SoftwareRedirectUris,
                format!(
                    "redirect_uris not in the software statement's software_redirect_uris: {}",
                    unlisted.join(", ")
                ),
            ));
        }
    }
    if let Some(scopes) = &claims.scope {
        let roles = ssa.software_roles.as_deref().unwrap_or_default();
        let granted = |s: &String| {
            rules.always_allowed_scopes.contains(s)
                || roles
                    .iter()
                    .filter_map(|r| rules.roles.get(r))
                    .any(|g| g.contains(s))
        };
        let denied: Vec<&str> = scopes
            .iter()
            .filter(|s| !granted(s))
            .map(|s| clip(s))
            .collect();
        if !denied.is_empty() {
            v.push(Violation::new(
                Rule::SoftwareRoles,
                format!(
                    "scope {} not granted by software_roles [{}]",
                    denied.join(" "),
                    roles.iter().map(|r| clip(r)).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    Some(ssa)
}

fn check_ssa_times(v: &mut Vec<Violation>, profile: &Profile, ssa: &SoftwareStatement, now: i64) {
    let leeway = profile.request.clock_leeway_seconds;
    let max_age = profile.software_statement.max_age_seconds;
    if let Some(exp) = ssa.exp {
        if exp.saturating_add(leeway) <= now {
            v.push(Violation::new(
                Rule::SoftwareStatementTime,
                format!(
                    "the software statement expired {}s ago",
                    now.saturating_sub(exp)
                ),
            ));
        }
    }
    match ssa.iat {
        None => v.push(Violation::new(
            Rule::SoftwareStatementTime,
            "the software statement has no iat",
        )),
        Some(iat) if iat.saturating_sub(leeway) > now => v.push(Violation::new(
            Rule::SoftwareStatementTime,
            format!(
                "the software statement's iat is {}s in the future",
                iat.saturating_sub(now)
            ),
        )),
        Some(iat) if max_age > 0 && now.saturating_sub(iat) > max_age.saturating_add(leeway) => v
            .push(Violation::new(
                Rule::SoftwareStatementTime,
                format!(
                    "the software statement was issued {}s ago, more than the {max_age}s allowed",
                    now.saturating_sub(iat)
                ),
            )),
        Some(_) => {}
    }
}

fn ssa_key_set_url(
    v: &mut Vec<Violation>,
    profile: &Profile,
    claims: &RegistrationClaims,
    ssa: &SoftwareStatement,
    hosts: &HostAllowlist,
) -> Option<Url> {
    let preferred = &profile.software_statement.key_set_claims;
    let Some((claim, raw)) = ssa.key_set_url(preferred) else {
        let names: Vec<&str> = preferred.iter().map(|c| c.name()).collect();
        v.push(Violation::new(
            Rule::SoftwareKeySet,
            format!(
                "the software statement names no key set ({})",
                names.join(" or ")
            ),
        ));
        return None;
    };
    if let Some(requested) = claims.jwks_uri.as_deref() {
        let named = [
            ssa.software_jwks_endpoint.as_deref(),
            ssa.org_jwks_endpoint.as_deref(),
        ];
        if !named.iter().flatten().any(|u| same_url(u, requested)) {
            v.push(Violation::new(
                Rule::KeySetConflict,
                "jwks_uri differs from the key set the software statement names",
            ));
        }
    }
    match check_key_set_url(raw, hosts) {
        Ok(url) => Some(url),
        Err(e) => {
            v.push(Violation::new(
                Rule::SoftwareKeySet,
                format!("the software statement's {}: {e}", claim.name()),
            ));
            None
        }
    }
}

fn same_url(a: &str, b: &str) -> bool {
    match (Url::parse(a), Url::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn check_jti(
    v: &mut Vec<Violation>,
    profile: &Profile,
    claims: &RegistrationClaims,
    facts: &RequestFacts<'_>,
) -> Option<ReplayKey> {
    if !profile.replay.require_jti {
        return None;
    }
    let Some(raw) = claims.jti.as_deref() else {
        v.push(Violation::new(Rule::Jti, "jti is required"));
        return None;
    };
    let Some(jti) = normalise_uuid(raw) else {
        v.push(Violation::new(Rule::Jti, "jti must be a UUID"));
        return None;
    };
    // exp is checked (and required) by the time rules; without it there is nothing to record.
    let expires_at = claims.exp?;
    let issuer = claims
        .iss
        .as_deref()
        .or(claims.software_id.as_deref())
        .or(facts.client_id)
        .unwrap_or("-");
    Some(ReplayKey {
        id: format!("{}:{jti}", clip(issuer)),
        expires_at,
    })
}

/// `8-4-4-4-12` hex digits, compared case-insensitively: returned in lower case.
pub fn normalise_uuid(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let ok = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    ok.then(|| s.to_ascii_lowercase())
}

fn one_of(
    v: &mut Vec<Violation>,
    rule: Rule,
    claim: &str,
    value: Option<&str>,
    allowed: &[String],
) {
    match value {
        None => v.push(Violation::new(
            rule,
            format!("{claim} is required (allowed: {})", allowed.join(", ")),
        )),
        Some(x) if !allowed.iter().any(|a| a == x) => v.push(Violation::new(
            rule,
            format!(
                "{claim} `{}` is not allowed (allowed: {})",
                clip(x),
                allowed.join(", ")
            ),
        )),
        Some(_) => {}
    }
}

fn check_scope(v: &mut Vec<Violation>, profile: &Profile, claims: &RegistrationClaims) {
    let allowed = &profile.claims.allowed_scopes;
    let Some(scopes) = &claims.scope else {
        v.push(Violation::new(
            Rule::Scope,
            format!("scope is required (a subset of: {})", allowed.join(" ")),
        ));
        return;
    };
    let unknown: Vec<&str> = scopes
        .iter()
        .filter(|s| !allowed.contains(s))
        .map(|s| clip(s))
        .collect();
    if !unknown.is_empty() {
        v.push(Violation::new(
            Rule::Scope,
            format!(
                "scope {} not allowed (allowed: {})",
                unknown.join(" "),
                allowed.join(" ")
            ),
        ));
    }
    let missing: Vec<&str> = profile
        .claims
        .required_scopes
        .iter()
        .filter(|r| !scopes.contains(r))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        v.push(Violation::new(
            Rule::Scope,
            format!("scope must include {}", missing.join(" ")),
        ));
    }
}

/// `response_types`, `grant_types`, `application_type`, `token_endpoint_auth_signing_alg`
/// (each checked where present), inline `jwks` and the `tls_client_auth_san_*` mix.
fn check_metadata(v: &mut Vec<Violation>, profile: &Profile, claims: &RegistrationClaims) {
    let c = &profile.claims;
    if let Some(types) = &claims.response_types {
        let allowed: Vec<String> = c.response_types.iter().map(|t| response_type(t)).collect();
        let refused: Vec<&str> = types
            .iter()
            .filter(|t| !allowed.contains(&response_type(t)))
            .map(|t| clip(t))
            .collect();
        if types.is_empty() || !refused.is_empty() {
            v.push(Violation::new(
                Rule::ResponseTypes,
                format!(
                    "response_types [{}] not allowed (allowed: {})",
                    refused.join(", "),
                    c.response_types.join(", ")
                ),
            ));
        }
    }
    if let Some(grants) = &claims.grant_types {
        let refused: Vec<&str> = grants
            .iter()
            .filter(|g| !c.grant_types.contains(g))
            .map(|g| clip(g))
            .collect();
        if grants.is_empty() || !refused.is_empty() {
            v.push(Violation::new(
                Rule::GrantTypes,
                format!(
                    "grant_types [{}] not allowed (allowed: {})",
                    refused.join(", "),
                    c.grant_types.join(", ")
                ),
            ));
        }
    }
    if let Some(t) = claims.application_type.as_deref() {
        one_of(
            v,
            Rule::ApplicationType,
            "application_type",
            Some(t),
            &c.application_types,
        );
    }
    if let Some(alg) = claims.token_endpoint_auth_signing_alg.as_deref() {
        one_of(
            v,
            Rule::TokenEndpointAuthSigningAlg,
            "token_endpoint_auth_signing_alg",
            Some(alg),
            &c.token_endpoint_auth_signing_algs,
        );
    }
    if claims.inline_jwks {
        v.push(Violation::new(
            Rule::InlineJwks,
            "an inline jwks is not accepted: publish the keys at jwks_uri (RFC 7591 §2: jwks and \
             jwks_uri must not both be present)",
        ));
    }
    if !claims.san_claims.is_empty() {
        let names: Vec<&str> = claims.san_claims.iter().map(|n| clip(n)).collect();
        v.push(Violation::new(
            Rule::TlsClientAuthSan,
            format!(
                "{} must not be sent: this server identifies clients by tls_client_auth_dn, and \
                 RFC 8705 §2.1.2 allows only one of them",
                names.join(", ")
            ),
        ));
    }
}

/// The space-separated values of one `response_types` member, in a canonical order.
fn response_type(t: &str) -> String {
    let mut parts: Vec<&str> = t.split(' ').filter(|p| !p.is_empty()).collect();
    parts.sort_unstable();
    parts.dedup();
    parts.join(" ")
}

fn check_url_claims(v: &mut Vec<Violation>, profile: &Profile, claims: &RegistrationClaims) {
    let section = &profile.url_claims;
    let rules = UriRules {
        require_https: true,
        allow_loopback: false,
        allow_fragment: false,
        max_length: section.max_length,
    };
    let mut problems = Vec::new();
    for claim in &claims.url_claims {
        let name = clip(&claim.name);
        if section.policy(claim.claim) == UrlClaimPolicy::Refuse {
            problems.push(format!("{name} is not accepted by this server"));
            continue;
        }
        for value in &claim.values {
            if let Err(e) = check_uri(value, &rules) {
                problems.push(format!("{name}: `{}` {e}", clip(value)));
            }
        }
    }
    if !problems.is_empty() {
        v.push(Violation::new(Rule::MetadataUri, problems.join("; ")));
    }
}

fn check_redirect_uris(v: &mut Vec<Violation>, profile: &Profile, claims: &RegistrationClaims) {
    let rules = &profile.redirect_uris;
    match &claims.redirect_uris {
        None => v.push(Violation::new(
            Rule::RedirectUris,
            "redirect_uris is required",
        )),
        Some(uris) if uris.is_empty() => v.push(Violation::new(
            Rule::RedirectUris,
            "redirect_uris must not be empty",
        )),
        Some(uris) => {
            let uri_rules = UriRules {
                require_https: rules.require_https,
                allow_loopback: rules.allow_loopback,
                allow_fragment: false,
                max_length: rules.max_length,
            };
            // The whole value is checked; only the message is clipped.
            let problems: Vec<String> = uris
                .iter()
                .filter_map(|u| {
                    check_uri(u, &uri_rules)
                        .err()
                        .map(|e| format!("`{}` {e}", clip(u)))
                })
                .collect();
            if !problems.is_empty() {
                v.push(Violation::new(
                    Rule::RedirectUris,
                    format!("redirect_uris: {}", problems.join("; ")),
                ));
            }
        }
    }
}

fn check_times(v: &mut Vec<Violation>, profile: &Profile, claims: &RegistrationClaims, now: i64) {
    let leeway = profile.request.clock_leeway_seconds;
    match claims.exp {
        None => v.push(Violation::new(Rule::Expiry, "exp is required")),
        Some(exp) if exp.saturating_add(leeway) <= now => v.push(Violation::new(
            Rule::Expiry,
            format!(
                "the request object expired {}s ago",
                now.saturating_sub(exp)
            ),
        )),
        Some(_) => {}
    }
    match claims.iat {
        None if profile.request.require_iat => {
            v.push(Violation::new(Rule::IssuedAt, "iat is required"))
        }
        Some(iat) if iat.saturating_sub(leeway) > now => v.push(Violation::new(
            Rule::IssuedAt,
            format!("iat is {}s in the future", iat.saturating_sub(now)),
        )),
        _ => {}
    }
    if let Some(nbf) = claims.nbf {
        if nbf.saturating_sub(leeway) > now {
            v.push(Violation::new(
                Rule::IssuedAt,
                format!("nbf is {}s in the future", nbf.saturating_sub(now)),
            ));
        }
    }
    if let (Some(iat), Some(exp)) = (claims.iat, claims.exp) {
        let max = profile.request.max_lifetime_seconds;
        let lifetime = exp.saturating_sub(iat);
        if lifetime <= 0 {
            v.push(Violation::new(Rule::Lifetime, "exp must be after iat"));
        } else if lifetime > max.saturating_add(leeway) {
            v.push(Violation::new(
                Rule::Lifetime,
                format!(
                    "lifetime exp - iat = {lifetime}s exceeds the maximum of {}s ({max}s and {leeway}s of clock leeway)",
                    max.saturating_add(leeway)
                ),
            ));
        }
    }
}

fn check_audience(v: &mut Vec<Violation>, claims: &RegistrationClaims, audiences: &[String]) {
    if claims.aud.is_empty() {
        v.push(Violation::new(Rule::Audience, "aud is required"));
    } else if !claims.aud.iter().any(|a| audiences.contains(a)) {
        v.push(Violation::new(
            Rule::Audience,
            "aud does not name this authorization server",
        ));
    }
}

fn check_dn(
    v: &mut Vec<Violation>,
    profile: &Profile,
    claims: &RegistrationClaims,
    presented: &Dn,
) -> Option<(RotationDecision, Option<usize>)> {
    let Some(raw) = claims.tls_client_auth_dn.as_deref() else {
        v.push(Violation::new(
            Rule::DnClaim,
            "tls_client_auth_dn (or tls_client_auth_subject_dn) is required",
        ));
        return None;
    };
    // RFC 4518 would map these away before comparing, but the registry stores the raw string:
    // a DN that looks like the certificate's and is not the same bytes is refused outright.
    if let Some((position, ch)) = raw
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() || is_invisible_format(*c))
    {
        v.push(Violation::new(
            Rule::DnClaim,
            format!(
                "tls_client_auth_dn contains U+{:04X} (a control, bidi or zero-width character) at character {position}",
                u32::from(ch)
            ),
        ));
        return None;
    }
    let claimed = match Dn::parse(raw, profile.dn_parse) {
        Ok(dn) => dn,
        Err(e) => {
            v.push(Violation::new(
                Rule::DnClaim,
                format!("tls_client_auth_dn is not an RFC 4514 DN: {e}"),
            ));
            return None;
        }
    };
    let Err(mismatch) = match_dn(
        &claimed,
        presented,
        &profile.dn_match,
        &profile.dn_attributes,
    ) else {
        return None;
    };
    let mut message = format!(
        "tls_client_auth_dn does not match the client certificate subject {presented}: {mismatch}"
    );
    let mut alternative = None;
    if profile.rotation == RotationMode::SameOrganisation {
        match same_organisation(&claimed, presented, &profile.rotation_alternatives) {
            Ok(index) => return Some((RotationDecision::Accepted, Some(index))),
            Err((index, why)) => {
                alternative = index;
                message.push_str(&format!(
                    "; not accepted as a certificate rotation either: {why}"
                ));
            }
        }
    }
    v.push(Violation::new(Rule::DnMismatch, message));
    Some((RotationDecision::Denied, alternative))
}

/// A rotation keeps the organisation. The first alternative whose attributes are all present
/// in the presented certificate decides (so two certificates that both lack an attribute never
/// count as the same organisation on it): the claimed DN must have the same values for each.
/// Returns the deciding alternative's index, or why none accepts (with the index of the one
/// that decided, if any).
fn same_organisation(
    claimed: &Dn,
    presented: &Dn,
    alternatives: &[Vec<String>],
) -> Result<usize, (Option<usize>, String)> {
    let names = |oids: &[String]| {
        oids.iter()
            .map(|o| crate::dn::attribute_name(o).unwrap_or(o.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let present = |oids: &Vec<String>| oids.iter().all(|o| !presented.values_of(o).is_empty());
    let Some(index) = alternatives.iter().position(present) else {
        let wanted: Vec<String> = alternatives.iter().map(|a| names(a)).collect();
        let why = match wanted.as_slice() {
            [one] => format!("the certificate subject does not carry all of {one}"),
            _ => format!(
                "the certificate subject carries none of the rotation attribute sets ({})",
                wanted.join("; ")
            ),
        };
        return Err((None, why));
    };
    let oids = &alternatives[index];
    match_dn(claimed, presented, &MatchMode::AttributeSubset, oids)
        .map(|()| index)
        .map_err(|m| (Some(index), format!("{m} (compared on {})", names(oids))))
}

/// Cap echoed client values so an error description stays short.
fn clip(s: &str) -> &str {
    crate::text::clip(s, 200)
}
