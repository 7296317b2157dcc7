//! Verdicts: accept, or reject with every violation found.
//!
//! Each [`Rule`] has a stable id (used as a metric label and in audit records, so the set is
//! closed and small), the RFC 7591 error code it maps to and the HTTP status the gateway answers
//! with.

use std::fmt;

/// RFC 7591 §3.2.2 error codes (plus the OAuth codes the gateway uses for non-registration
/// failures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The value of one or more redirection URIs is invalid.
    InvalidRedirectUri,
    /// The value of one of the client metadata fields is invalid.
    InvalidClientMetadata,
    /// The software statement presented is invalid.
    InvalidSoftwareStatement,
    /// The software statement presented is not approved for use by this server.
    UnapprovedSoftwareStatement,
    /// The request is malformed (RFC 6749 §5.2).
    InvalidRequest,
    /// The access token is missing or malformed (RFC 6750 §3.1).
    InvalidToken,
    /// The presented client identity is not allowed to make this change.
    AccessDenied,
}

impl ErrorCode {
    /// The code as it appears in the JSON `error` member.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::InvalidClientMetadata => "invalid_client_metadata",
            ErrorCode::InvalidSoftwareStatement => "invalid_software_statement",
            ErrorCode::UnapprovedSoftwareStatement => "unapproved_software_statement",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::AccessDenied => "access_denied",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A registration rule the policy enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// A known claim has the wrong JSON type, or two aliases conflict.
    ClaimsMalformed,
    /// `token_endpoint_auth_method` missing or not allowed.
    TokenEndpointAuthMethod,
    /// `id_token_signed_response_alg` missing or not allowed.
    IdTokenSignedResponseAlg,
    /// `request_object_signing_alg` missing or not allowed.
    RequestObjectSigningAlg,
    /// `scope` missing, outside the allowed set, or without a required member.
    Scope,
    /// `redirect_uris` missing, empty, or a member is not acceptable.
    RedirectUris,
    /// `org_name` missing or empty.
    OrgName,
    /// `exp` missing or passed.
    Expiry,
    /// `iat` missing or in the future, or `nbf` in the future.
    IssuedAt,
    /// `exp - iat` longer than the profile allows.
    Lifetime,
    /// `aud` does not name this server.
    Audience,
    /// `client_id` present and not the ClientId of the path.
    ClientId,
    /// No `jwks_uri` (or alias) to fetch the TPP's keys from.
    KeySetUrl,
    /// `tls_client_auth_dn` missing or not a parseable DN.
    DnClaim,
    /// `tls_client_auth_dn` does not name the presented certificate's subject (and, where the
    /// profile allows rotation, not a certificate of the same organisation either).
    DnMismatch,
    /// `software_statement` required but absent, refused but present, or not verified.
    SoftwareStatement,
    /// The SSA's `iat` / `exp` window does not hold.
    SoftwareStatementTime,
    /// `software_id` (or the request's `iss`) does not agree with the SSA.
    SoftwareId,
    /// A `redirect_uris` member is not in the SSA's `software_redirect_uris`.
    SoftwareRedirectUris,
    /// A requested scope is not granted by the SSA's `software_roles`.
    SoftwareRoles,
    /// The SSA names no acceptable key set URL.
    SoftwareKeySet,
    /// The request's `jwks_uri` differs from the key set the SSA names.
    KeySetConflict,
    /// `jti` required but missing, or not a UUID.
    Jti,
    /// `response_types` has a member the profile does not allow.
    ResponseTypes,
    /// `grant_types` has a member the profile does not allow.
    GrantTypes,
    /// `application_type` is not one the profile allows.
    ApplicationType,
    /// `token_endpoint_auth_signing_alg` is present and not allowed.
    TokenEndpointAuthSigningAlg,
    /// An inline `jwks` member: key material the gateway cannot vet (RFC 7591 §2 also forbids
    /// it beside `jwks_uri`).
    InlineJwks,
    /// A URL-valued metadata member (`logo_uri`, `request_uris`, ...) is refused by the
    /// profile or is not an acceptable URL.
    MetadataUri,
    /// `tls_client_auth_san_*` beside the subject DN (RFC 8705 §2.1.2: exactly one).
    TlsClientAuthSan,
}

impl Rule {
    /// Every rule, for metric pre-registration and documentation.
    pub const ALL: [Rule; 30] = [
        Rule::ClaimsMalformed,
        Rule::TokenEndpointAuthMethod,
        Rule::IdTokenSignedResponseAlg,
        Rule::RequestObjectSigningAlg,
        Rule::Scope,
        Rule::RedirectUris,
        Rule::OrgName,
        Rule::Expiry,
        Rule::IssuedAt,
        Rule::Lifetime,
        Rule::Audience,
        Rule::ClientId,
        Rule::KeySetUrl,
        Rule::DnClaim,
        Rule::DnMismatch,
        Rule::SoftwareStatement,
        Rule::SoftwareStatementTime,
        Rule::SoftwareId,
        Rule::SoftwareRedirectUris,
        Rule::SoftwareRoles,
        Rule::SoftwareKeySet,
        Rule::KeySetConflict,
        Rule::Jti,
        Rule::ResponseTypes,
        Rule::GrantTypes,
        Rule::ApplicationType,
        Rule::TokenEndpointAuthSigningAlg,
        Rule::InlineJwks,
        Rule::MetadataUri,
        Rule::TlsClientAuthSan,
    ];

    /// The stable id, used as a metric label value and in audit records.
    pub fn id(self) -> &'static str {
        match self {
            Rule::ClaimsMalformed => "claims_malformed",
            Rule::TokenEndpointAuthMethod => "token_endpoint_auth_method",
            Rule::IdTokenSignedResponseAlg => "id_token_signed_response_alg",
            Rule::RequestObjectSigningAlg => "request_object_signing_alg",
            Rule::Scope => "scope",
            Rule::RedirectUris => "redirect_uris",
            Rule::OrgName => "org_name",
            Rule::Expiry => "exp",
            Rule::IssuedAt => "iat",
            Rule::Lifetime => "lifetime",
            Rule::Audience => "aud",
            Rule::ClientId => "client_id",
            Rule::KeySetUrl => "jwks_uri",
            Rule::DnClaim => "tls_client_auth_dn",
            Rule::DnMismatch => "dn_mismatch",
            Rule::SoftwareStatement => "software_statement",
            Rule::SoftwareStatementTime => "ssa_time",
            Rule::SoftwareId => "software_id",
            Rule::SoftwareRedirectUris => "ssa_redirect_uris",
            Rule::SoftwareRoles => "ssa_roles",
            Rule::SoftwareKeySet => "ssa_jwks",
            Rule::KeySetConflict => "jwks_uri_conflict",
            Rule::Jti => "jti",
            Rule::ResponseTypes => "response_types",
            Rule::GrantTypes => "grant_types",
            Rule::ApplicationType => "application_type",
            Rule::TokenEndpointAuthSigningAlg => "token_endpoint_auth_signing_alg",
            Rule::InlineJwks => "jwks",
            Rule::MetadataUri => "metadata_uri",
            Rule::TlsClientAuthSan => "tls_client_auth_san",
        }
    }

    /// Whether a profile may put this rule in shadow. The rules that decide what the
    /// signature is verified against, whether the request can be replayed, and which identity
    /// and server the request is bound to are never in shadow: shadowing them would forward a
    /// request whose signature, software statement or replay check did not run, or bind it to
    /// something other than the presented certificate and this server.
    pub fn shadowable(self) -> bool {
        !matches!(
            self,
            Rule::ClaimsMalformed
                | Rule::Expiry
                | Rule::Audience
                | Rule::ClientId
                | Rule::KeySetUrl
                | Rule::KeySetConflict
                | Rule::InlineJwks
                | Rule::DnClaim
                | Rule::SoftwareStatement
                | Rule::SoftwareKeySet
                | Rule::Jti
        )
    }

    /// The RFC 7591 error code a violation of this rule is reported with.
    pub fn error_code(self) -> ErrorCode {
        match self {
            Rule::RedirectUris | Rule::SoftwareRedirectUris => ErrorCode::InvalidRedirectUri,
            Rule::DnMismatch => ErrorCode::AccessDenied,
            Rule::SoftwareStatement
            | Rule::SoftwareStatementTime
            | Rule::SoftwareId
            | Rule::SoftwareKeySet => ErrorCode::InvalidSoftwareStatement,
            _ => ErrorCode::InvalidClientMetadata,
        }
    }

    /// The HTTP status the gateway answers a violation of this rule with.
    pub fn status(self) -> u16 {
        match self {
            Rule::DnMismatch => 403,
            _ => 400,
        }
    }
}

/// One rule broken, with a sentence that says what and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule broken.
    pub rule: Rule,
    /// A human explanation naming the claim and the offending value where safe to echo.
    pub message: String,
}

impl Violation {
    /// A violation of `rule`.
    pub fn new(rule: Rule, message: impl Into<String>) -> Self {
        Self {
            rule,
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule.id(), self.message)
    }
}

/// The outcome of evaluating a request against a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every rule holds.
    Accept,
    /// At least one rule is broken; the first violation decides the status and error code.
    Reject(Vec<Violation>),
}

impl Verdict {
    /// Build a verdict from the violations found (none: accept).
    pub fn from_violations(mut violations: Vec<Violation>) -> Self {
        if violations.is_empty() {
            Verdict::Accept
        } else {
            // Identity failures (403) outrank metadata problems so a TPP sees the real blocker.
            violations.sort_by_key(|v| std::cmp::Reverse(v.rule.status()));
            Verdict::Reject(violations)
        }
    }

    /// Whether the request may proceed.
    pub fn is_accept(&self) -> bool {
        matches!(self, Verdict::Accept)
    }

    /// The violations (empty for an acceptance).
    pub fn violations(&self) -> &[Violation] {
        match self {
            Verdict::Accept => &[],
            Verdict::Reject(v) => v,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique() {
        let mut ids: Vec<_> = Rule::ALL.iter().map(|r| r.id()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), Rule::ALL.len());
    }

    #[test]
    fn never_shadowed_are_exactly_the_binding_rules() {
        let never: Vec<&str> = Rule::ALL
            .iter()
            .filter(|r| !r.shadowable())
            .map(|r| r.id())
            .collect();
        assert_eq!(
            never,
            [
                "claims_malformed",
                "exp",
                "aud",
                "client_id",
                "jwks_uri",
                "tls_client_auth_dn",
                "software_statement",
                "ssa_jwks",
                "jwks_uri_conflict",
                "jti",
                "jwks"
            ]
        );
        assert!(Rule::DnMismatch.shadowable() && Rule::Scope.shadowable());
    }

    #[test]
    fn identity_failure_outranks_metadata() {
        let v = Verdict::from_violations(vec![
            Violation::new(Rule::Scope, "x"),
            Violation::new(Rule::DnMismatch, "y"),
        ]);
        assert_eq!(v.violations()[0].rule, Rule::DnMismatch);
        assert_eq!(v.violations()[0].rule.status(), 403);
        assert!(Verdict::from_violations(vec![]).is_accept());
    }
}
