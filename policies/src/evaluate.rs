//! The registration rules: a pure function from (profile, claims, request facts) to a verdict.
//!
//! Every rule is evaluated and every violation reported, so a TPP fixes its request in one
//! round trip. Time is an argument, never read from a clock.

use serde_json::{Map, Value};
use url::Url;

use crate::claims::RegistrationClaims;
use crate::dn::{match_dn, Dn};
use crate::key_url::{check_key_set_url, HostAllowlist};
use crate::profile::Profile;
use crate::redirect::check_redirect_uri;
use crate::verdict::{Rule, Verdict, Violation};

/// What the gateway knows about the request besides its claims.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    /// The ClientId from the request path.
    pub client_id: &'a str,
    /// Now, in seconds since the epoch.
    pub now: i64,
    /// The `aud` values that name this server (at least one must be in the request's `aud`).
    pub audiences: &'a [String],
    /// Hosts the TPP key set may be fetched from.
    pub key_hosts: &'a HostAllowlist,
    /// The subject of the verified client certificate.
    pub presented_dn: &'a Dn,
}

/// The verdict, and where to fetch the TPP's key set from when the URL passed its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Accept, or every violation found.
    pub verdict: Verdict,
    /// The checked key set URL (https, allowlisted), if the request named an acceptable one.
    pub key_set_url: Option<Url>,
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
    if let Some(id) = &claims.client_id {
        if id != facts.client_id {
            v.push(Violation::new(
                Rule::ClientId,
                "client_id does not match the ClientId in the request path",
            ));
        }
    }
    let key_set_url = match claims.jwks_uri.as_deref() {
        None => {
            v.push(Violation::new(
                Rule::KeySetUrl,
                "jwks_uri (or org_jwks_endpoint) is required to verify the request signature",
            ));
            None
        }
        Some(raw) => match check_key_set_url(raw, facts.key_hosts) {
            Ok(url) => Some(url),
            Err(e) => {
                v.push(Violation::new(Rule::KeySetUrl, e.to_string()));
                None
            }
        },
    };
    check_dn(&mut v, profile, claims, facts.presented_dn);
    Evaluation {
        verdict: Verdict::from_violations(v),
        key_set_url,
    }
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
            let problems: Vec<String> = uris
                .iter()
                .filter_map(|u| {
                    check_redirect_uri(clip(u), rules.require_https, rules.allow_loopback).err()
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
                format!("lifetime exp - iat = {lifetime}s exceeds the maximum of {max}s"),
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
) {
    let Some(raw) = claims.tls_client_auth_dn.as_deref() else {
        v.push(Violation::new(
            Rule::DnClaim,
            "tls_client_auth_dn (or tls_client_auth_subject_dn) is required",
        ));
        return;
    };
    let claimed = match Dn::parse(raw, profile.dn_parse) {
        Ok(dn) => dn,
        Err(e) => {
            v.push(Violation::new(
                Rule::DnClaim,
                format!("tls_client_auth_dn is not an RFC 4514 DN: {e}"),
            ));
            return;
        }
    };
    if let Err(mismatch) = match_dn(
        &claimed,
        presented,
        &profile.dn_match,
        &profile.dn_attributes,
    ) {
        v.push(Violation::new(
            Rule::DnMismatch,
            format!(
                "tls_client_auth_dn does not match the client certificate subject {presented}: {mismatch}"
            ),
        ));
    }
}

/// Cap echoed client values so an error description stays short.
fn clip(s: &str) -> &str {
    const MAX: usize = 200;
    if s.len() <= MAX {
        return s;
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
