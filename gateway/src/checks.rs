//! The checks the proxy and `dcrgate explain` both run: pure functions of what a request
//! carries and what the configuration says, no I/O. The proxy calls them in its phases; the
//! offline explanation calls the very same functions, so the two cannot decide differently.
//!
//! - [`client_id`]: the ClientId of the path.
//! - [`body_size`]: the body against `limits.max_body_bytes`.
//! - [`request_object`] and [`registration_claims`]: the request object's JWS header rules
//!   and its claims.
//! - [`software_statement_form`], [`directory_for`] and [`software_statement_claims`]: what
//!   can be known of a software statement before its directory's keys are fetched.
//! - [`policy_decision`]: the policy's verdict as the gateway enforces it (rules in shadow
//!   recorded, not enforced; no request without a key set URL to verify its signature with).

use dcrgate_jose::jws::{parse_compact, CompactJws};
use dcrgate_policies::evaluate::Evaluation;
use dcrgate_policies::{Profile, RegistrationClaims, Rule, Violation};
use serde_json::{Map, Value};
use url::Url;

use crate::reason::Reason;
use crate::rejection::Rejection;
/// The software statement's offline checks live with its verifier (`trust::form`), which runs
/// them before it fetches a directory's keys.
pub use crate::trust::form::{
    directory_for, software_statement_claims, software_statement_form, SsaForm, TrustedIssuer,
    MAX_SSA_LEN,
};

/// Whether `id` is a ClientId the gateway routes: 1 to `max_len` RFC 3986 unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`), and not only dots, so it is safe in a path, a log and a
/// header.
pub fn is_valid_client_id(id: &str, max_len: usize) -> bool {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    !id.is_empty()
        && id.len() <= max_len
        && id.bytes().all(unreserved)
        && !id.bytes().all(|b| b == b'.')
}

/// The ClientId of the path: refused with `bad_client_id` unless [`is_valid_client_id`].
pub fn client_id(id: &str, max_len: usize) -> Result<(), Rejection> {
    if is_valid_client_id(id, max_len) {
        return Ok(());
    }
    Err(Rejection::new(
        Reason::BadClientId,
        format!("ClientId must be 1 to {max_len} characters from A-Z a-z 0-9 - . _ ~"),
    )
    .closing())
}

/// The body's length against the limit: refused with `body_too_large` (413) above `max`.
pub fn body_size(len: usize, max: usize) -> Result<(), Rejection> {
    if len <= max {
        return Ok(());
    }
    Err(body_too_large(max))
}

/// The answer to a body above `max` bytes (declared, read, or offline).
pub fn body_too_large(max: usize) -> Rejection {
    Rejection::new(
        Reason::BodyTooLarge,
        format!("the request body is larger than {max} bytes"),
    )
    .closing()
}

/// The request object's JWS: form and header rules, with the profile's algorithms.
pub fn request_object(body: &[u8], algorithms: &[String]) -> Result<CompactJws, Rejection> {
    parse_compact(body, algorithms).map_err(|e| Rejection::from_jws(&e))
}

/// The request object's claims: a known claim of the wrong type is `claims_malformed`.
pub fn registration_claims(payload: &Map<String, Value>) -> Result<RegistrationClaims, Violation> {
    RegistrationClaims::from_json(payload)
        .map_err(|e| Violation::new(Rule::ClaimsMalformed, e.to_string()))
}

/// A policy verdict the gateway goes on with.
#[derive(Debug)]
pub struct PolicyPass<'e> {
    /// The rules broken that the profile puts in shadow (recorded as `would_reject`).
    pub would_reject: Vec<Rule>,
    /// The key set URL the request's signature is verified with.
    pub key_set_url: &'e Url,
}

/// The policy's verdict as the gateway enforces it. The answer's status, `error`,
/// description and reason come from the enforced violations alone: a rule in shadow is the
/// operator's trial, not the TPP's problem. With every violation in shadow the request goes
/// on, but never without a key set URL to verify its signature with (in any mode).
pub fn policy_decision<'e>(
    profile: &Profile,
    evaluation: &'e Evaluation,
) -> Result<PolicyPass<'e>, Rejection> {
    let violations = evaluation.verdict.violations();
    let (shadowed, enforced): (Vec<&Violation>, Vec<&Violation>) =
        violations.iter().partition(|v| profile.is_shadowed(v.rule));
    if !enforced.is_empty() {
        return Err(Rejection::from_violations(enforced));
    }
    let Some(key_set_url) = evaluation.key_set_url.as_ref() else {
        return Err(Rejection::new(
            Reason::Rule(Rule::KeySetUrl),
            "no acceptable key set URL to verify the request signature with",
        ));
    };
    Ok(PolicyPass {
        would_reject: shadowed.iter().map(|v| v.rule).collect(),
        key_set_url,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ids_are_unreserved_characters_within_the_bound() {
        for ok in ["a", "tpp-client.7_~Q", &"x".repeat(64)] {
            assert!(client_id(ok, 64).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "a b",
            "é",
            "a%2F",
            "a\u{0}",
            &"x".repeat(65),
        ] {
            let r = client_id(bad, 64).unwrap_err();
            assert_eq!(
                (r.status(), r.reason.id(), r.close),
                (400, "bad_client_id", true)
            );
        }
    }

    #[test]
    fn the_body_bound_is_inclusive() {
        assert!(body_size(10, 10).is_ok());
        let r = body_size(11, 10).unwrap_err();
        assert_eq!((r.status(), r.reason.id()), (413, "body_too_large"));
    }
}
