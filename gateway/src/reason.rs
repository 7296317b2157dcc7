//! Why a request was refused: one closed set of reasons, each with its stable id (the metric's
//! `reason` label, the audit record's `reasons`, `explain`'s findings), the HTTP status and the
//! RFC 7591 / RFC 6750 `error` code. A policy rule is a reason too ([`Reason::Rule`]).
//!
//! Every answer the gateway gives itself is built from a `Reason`
//! ([`crate::rejection::Rejection`]), so an id cannot be answered with two statuses, and
//! the table of ids in `docs/request-path.md` is checked against [`Reason::ALL`].

use std::fmt;

use dcrgate_jose::jws::JwsError;
use dcrgate_policies::{ErrorCode, Rule};

/// `error` of a refusal caused by the gateway's own dependencies (RFC 6749 §4.1.2.1).
pub const TEMPORARILY_UNAVAILABLE: &str = "temporarily_unavailable";

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident => ($id:literal, $status:literal, $error:expr) ),+ $(,)?) => {
        /// Why the gateway answered a request itself.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Reason {
            /// A policy rule is broken.
            Rule(Rule),
            $( $(#[$doc])* $variant, )+
        }

        impl Reason {
            /// Every reason that is not a policy rule (the rules are in [`Rule::ALL`]).
            pub const GATEWAY: &'static [Reason] = &[$( Reason::$variant ),+];

            /// The stable id: metric label value, audit `reasons` member, `explain` finding.
            pub fn id(self) -> &'static str {
                match self {
                    Reason::Rule(rule) => rule.id(),
                    $( Reason::$variant => $id, )+
                }
            }

            /// The HTTP status the gateway answers with.
            pub fn status(self) -> u16 {
                match self {
                    Reason::Rule(rule) => rule.status(),
                    $( Reason::$variant => $status, )+
                }
            }

            /// The `error` member of the answer.
            pub fn error(self) -> &'static str {
                match self {
                    Reason::Rule(rule) => rule.error_code().as_str(),
                    $( Reason::$variant => $error, )+
                }
            }
        }
    };
}

const INVALID_REQUEST: &str = ErrorCode::InvalidRequest.as_str();
const INVALID_METADATA: &str = ErrorCode::InvalidClientMetadata.as_str();
const INVALID_TOKEN: &str = ErrorCode::InvalidToken.as_str();
const INVALID_SSA: &str = ErrorCode::InvalidSoftwareStatement.as_str();
const UNAVAILABLE: &str = TEMPORARILY_UNAVAILABLE;

reasons! {
    // The request line and head (proxy::route, proxy::framing, proxy::envelope).
    /// No such endpoint.
    RouteNotFound => ("route_not_found", 404, INVALID_REQUEST),
    /// A method or lifecycle route that is not served.
    MethodNotAllowed => ("method_not_allowed", 405, INVALID_REQUEST),
    /// An absolute-form request target.
    AbsoluteForm => ("absolute_form", 400, INVALID_REQUEST),
    /// A query string on a registration endpoint.
    QueryNotAllowed => ("query_not_allowed", 400, INVALID_REQUEST),
    /// A ClientId of the wrong form or length.
    BadClientId => ("bad_client_id", 400, INVALID_REQUEST),
    /// `Content-Length` that is not one decimal number.
    ContentLengthInvalid => ("content_length_invalid", 400, INVALID_REQUEST),
    /// A transfer coding other than `chunked`.
    TransferEncodingUnsupported => ("transfer_encoding_unsupported", 501, INVALID_REQUEST),
    /// `Connection` nominates an end-to-end header the gateway checks or forwards.
    ConnectionNominatesHeader => ("connection_nominates_header", 400, INVALID_REQUEST),
    /// An `Expect` other than `100-continue`.
    ExpectationFailed => ("expectation_failed", 417, INVALID_REQUEST),
    /// Too many header fields or bytes.
    HeaderTooLarge => ("header_too_large", 431, INVALID_REQUEST),
    // The connection (proxy::admit).
    /// No verified client certificate on the connection.
    NoClientIdentity => ("no_client_identity", 403, ErrorCode::AccessDenied.as_str()),
    /// The connection's certificate was revoked, or its CA removed, since its handshake.
    CertificateNoLongerTrusted => ("certificate_no_longer_trusted", 403, ErrorCode::AccessDenied.as_str()),
    /// The certificate's OCSP responder (or CRL) says it is revoked.
    CertificateRevoked => ("certificate_revoked", 403, ErrorCode::AccessDenied.as_str()),
    /// Its issuer's policy is `require` and neither OCSP nor a CRL gives its status.
    CertificateRevocationUnknown => ("certificate_revocation_unknown", 403, ErrorCode::AccessDenied.as_str()),
    // trusted_front_proxy mode (proxy::front_proxy).
    /// `Client-Cert` / `Client-Cert-Chain` from a connection that is not the front proxy.
    ClientCertHeaderRefused => ("client_cert_header_refused", 400, INVALID_REQUEST),
    /// The front proxy's certificate from an address outside `front_proxy.source_addresses`.
    FrontProxyAddressRefused => ("front_proxy_address_refused", 403, ErrorCode::AccessDenied.as_str()),
    /// The front proxy passed no client certificate on.
    FrontProxyCertificateMissing => ("front_proxy_certificate_missing", 403, ErrorCode::AccessDenied.as_str()),
    /// `Client-Cert` / `Client-Cert-Chain` are not RFC 9440 byte sequences, or too large.
    ClientCertHeaderMalformed => ("client_cert_header_malformed", 400, INVALID_REQUEST),
    /// The certificate the front proxy passed on does not verify (CA bundle, CRLs, usage).
    ClientCertNotTrusted => ("client_cert_not_trusted", 403, ErrorCode::AccessDenied.as_str()),
    /// The client certificate's rate limit.
    RateLimitedClient => ("rate_limited_client", 429, UNAVAILABLE),
    /// The gateway's rate limit.
    RateLimitedGlobal => ("rate_limited_global", 429, UNAVAILABLE),
    // The bearer token's form (proxy::envelope).
    /// No `Authorization` header.
    BearerMissing => ("bearer_missing", 401, INVALID_TOKEN),
    /// Not one `Authorization: Bearer <token>`.
    BearerMalformed => ("bearer_malformed", 401, INVALID_TOKEN),
    // The body (proxy::envelope).
    /// A body on `GET` or `DELETE`.
    BodyNotAllowed => ("body_not_allowed", 400, INVALID_REQUEST),
    /// Not `application/jwt` or `application/jose`.
    ContentType => ("content_type", 415, INVALID_REQUEST),
    /// Larger than `limits.max_body_bytes`.
    BodyTooLarge => ("body_too_large", 413, INVALID_REQUEST),
    /// The body could not be read.
    BodyUnreadable => ("body_unreadable", 400, INVALID_REQUEST),
    /// The body did not arrive within `limits.body_timeout_ms`.
    BodyTimeout => ("body_timeout", 408, INVALID_REQUEST),
    // The request object's JWS (Reason::from_jws).
    /// Not a well-formed compact JWS.
    JwsMalformed => ("jws_malformed", 400, INVALID_METADATA),
    /// `alg` missing or not one the profile allows.
    JwsAlg => ("jws_alg", 400, INVALID_METADATA),
    /// `alg: none`.
    JwsAlgNone => ("jws_alg_none", 400, INVALID_METADATA),
    /// A symmetric `alg` (HS*).
    JwsAlgSymmetric => ("jws_alg_symmetric", 400, INVALID_METADATA),
    /// `kid` missing or too long.
    JwsKid => ("jws_kid", 400, INVALID_METADATA),
    /// `crit`, unencoded payload or a nested JWT.
    JwsUnsupported => ("jws_unsupported", 400, INVALID_METADATA),
    /// Key material in the header (`jwk`, `jku`, `x5u`, `x5c`).
    JwsHeaderKey => ("jws_header_key", 400, INVALID_METADATA),
    // The TPP key set and the signature (proxy::rejection).
    /// The key set has no usable key with this `kid`.
    UnknownKid => ("unknown_kid", 400, INVALID_METADATA),
    /// The key host did not answer in time.
    KeySetTimeout => ("key_set_timeout", 504, UNAVAILABLE),
    /// The key set could not be fetched or used.
    KeySetUnavailable => ("key_set_unavailable", 502, UNAVAILABLE),
    /// The request object's signature does not verify.
    SignatureInvalid => ("signature_invalid", 400, INVALID_METADATA),
    // Bearer token verification (BearerError::reason).
    /// Not a JWT the gateway accepts.
    TokenMalformed => ("token_malformed", 401, INVALID_TOKEN),
    /// The token's signature does not verify.
    TokenSignature => ("token_signature", 401, INVALID_TOKEN),
    /// The authorization server's key set is unavailable.
    TokenKeysUnavailable => ("token_keys_unavailable", 503, UNAVAILABLE),
    /// Wrong `iss`.
    TokenIssuer => ("token_issuer", 401, INVALID_TOKEN),
    /// No acceptable `aud`.
    TokenAudience => ("token_audience", 401, INVALID_TOKEN),
    /// `exp` missing or passed.
    TokenExpired => ("token_expired", 401, INVALID_TOKEN),
    /// `nbf` in the future.
    TokenNotYetValid => ("token_not_yet_valid", 401, INVALID_TOKEN),
    /// Introspection says the token is not active.
    TokenInactive => ("token_inactive", 401, INVALID_TOKEN),
    /// Issued to another client (or to none).
    TokenClient => ("token_client", 401, INVALID_TOKEN),
    /// Bound to another certificate.
    TokenCnfMismatch => ("token_cnf_mismatch", 401, INVALID_TOKEN),
    /// Not bound to a certificate where the profile requires it.
    TokenCnfMissing => ("token_cnf_missing", 401, INVALID_TOKEN),
    /// The introspection endpoint could not answer.
    TokenIntrospectionUnavailable => ("token_introspection_unavailable", 503, UNAVAILABLE),
    /// No verifier for the route's bearer mode.
    TokenNotConfigured => ("token_not_configured", 503, UNAVAILABLE),
    // Software statements (SsaError::reason).
    /// Not a well-formed statement (form, length, claim types).
    SsaMalformed => ("ssa_malformed", 400, INVALID_SSA),
    /// Unsigned where the profile does not allow it.
    SsaUnsigned => ("ssa_unsigned", 400, INVALID_SSA),
    /// The issuer is not a trusted directory.
    SsaUntrustedIssuer => ("ssa_untrusted_issuer", 400, ErrorCode::UnapprovedSoftwareStatement.as_str()),
    /// The directory is trusted, but not for this `alg`.
    SsaAlg => ("ssa_alg", 400, INVALID_SSA),
    /// The directory's key set has no key with this `kid`.
    SsaUnknownKid => ("ssa_unknown_kid", 400, INVALID_SSA),
    /// The directory's key set is unavailable.
    SsaKeysUnavailable => ("ssa_keys_unavailable", 503, UNAVAILABLE),
    /// The statement's signature does not verify.
    SsaSignatureInvalid => ("ssa_signature_invalid", 400, INVALID_SSA),
    // The directory's own revocation (trust::directory::check).
    /// The request object's signing key is listed in the SSA's revoked key sets.
    SigningKeyRevoked => ("signing_key_revoked", 403, ErrorCode::AccessDenied.as_str()),
    /// The transport certificate is not a `use: tls` key of the SSA's software key set.
    TransportCertificateNotListed => ("transport_certificate_not_listed", 403, ErrorCode::AccessDenied.as_str()),
    /// The transport certificate is listed in the SSA's revoked key sets.
    TransportCertificateRevoked => ("transport_certificate_revoked", 403, ErrorCode::AccessDenied.as_str()),
    /// A key set the profile requires for these checks could not be had (fail closed).
    DirectoryRevocationUnavailable => ("directory_revocation_unavailable", 503, UNAVAILABLE),
    // Replay (proxy::admit).
    /// The `jti` was used before.
    JtiReplayed => ("jti_replayed", 400, INVALID_METADATA),
    /// The replay store could not answer (fail closed).
    ReplayStoreUnavailable => ("replay_store_unavailable", 503, UNAVAILABLE),
    /// The shared rate limiter's Redis did not answer and `rate_limits.on_store_error = "reject"`.
    RateLimitStoreUnavailable => ("rate_limit_store_unavailable", 503, UNAVAILABLE),
    // Forwarding (proxy::fail_to_proxy).
    /// The registry did not answer in time.
    UpstreamTimeout => ("upstream_timeout", 504, UNAVAILABLE),
    /// The registry could not be reached.
    UpstreamUnavailable => ("upstream_unavailable", 502, UNAVAILABLE),
    /// A failure of the gateway itself.
    Internal => ("internal", 500, INVALID_REQUEST),
}

impl Reason {
    /// Every reason: the policy rules, then the gateway's own.
    pub fn all() -> impl Iterator<Item = Reason> {
        Rule::ALL
            .iter()
            .map(|&rule| Reason::Rule(rule))
            .chain(Reason::GATEWAY.iter().copied())
    }

    /// The reason a JWS that breaks the request object's rules is refused with.
    pub fn from_jws(e: &JwsError) -> Reason {
        match e {
            JwsError::NotCompact
            | JwsError::Base64(_)
            | JwsError::Json { .. }
            | JwsError::EmptySignature => Reason::JwsMalformed,
            JwsError::MissingAlg | JwsError::AlgNotAllowed { .. } => Reason::JwsAlg,
            JwsError::AlgNone => Reason::JwsAlgNone,
            JwsError::AlgSymmetric(_) => Reason::JwsAlgSymmetric,
            JwsError::MissingKid | JwsError::KidTooLong => Reason::JwsKid,
            JwsError::Crit | JwsError::Unencoded | JwsError::Nested => Reason::JwsUnsupported,
            JwsError::HeaderKey(_) => Reason::JwsHeaderKey,
        }
    }

    /// Whether the forwarding failed: the request was admitted and the registry did not
    /// answer (the `upstream_error` outcome).
    pub fn is_upstream(self) -> bool {
        matches!(self, Reason::UpstreamTimeout | Reason::UpstreamUnavailable)
    }
}

impl From<Rule> for Reason {
    fn from(rule: Rule) -> Self {
        Reason::Rule(rule)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.id() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_snake_case_and_statuses_are_errors() {
        let mut ids: Vec<&str> = Reason::all().map(Reason::id).collect();
        assert!(ids
            .iter()
            .all(|id| id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate reason ids");
        assert_eq!(n, Rule::ALL.len() + Reason::GATEWAY.len());
        for r in Reason::all() {
            assert!((400..=599).contains(&r.status()), "{r}");
        }
    }

    #[test]
    fn dependency_failures_are_temporarily_unavailable_and_nothing_else_is() {
        for r in Reason::all() {
            let dependency = matches!(r.status(), 429 | 502 | 503 | 504);
            assert_eq!(r.error() == TEMPORARILY_UNAVAILABLE, dependency, "{r}");
        }
    }

    #[test]
    fn token_refusals_are_401_invalid_token_unless_the_gateway_could_not_check() {
        let tokens = Reason::GATEWAY
            .iter()
            .filter(|r| r.id().starts_with("token_"));
        assert_eq!(tokens.clone().count(), 13);
        for r in tokens {
            assert!(
                (r.status(), r.error()) == (401, INVALID_TOKEN)
                    || (r.status(), r.error()) == (503, UNAVAILABLE),
                "{r}"
            );
        }
    }

    /// The table of reason ids in `docs/request-path.md`: every id once, with the status and
    /// `error` the gateway answers, and each function it names exists in the file it names.
    #[test]
    fn the_readme_table_is_every_reason_with_its_status_error_and_raising_function() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let doc = include_str!("../../docs/request-path.md");
        let section = doc
            .split("\n## Reason ids\n")
            .nth(1)
            .and_then(|rest| rest.split("\n## ").next())
            .expect("a Reason ids section in docs/request-path.md");
        let mut rows = Vec::new();
        for line in section.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
            let [id, status, error, raised] = cells[..] else {
                panic!("a row of four cells: {line}");
            };
            rows.push((
                id.trim_matches('`').to_owned(),
                status.parse::<u16>().expect("a status"),
                error.trim_matches('`').to_owned(),
            ));
            for site in raised.split(", ") {
                let (file, function) = site
                    .trim_matches('`')
                    .split_once("::")
                    .unwrap_or_else(|| panic!("`file::fn` in {line}"));
                let text = std::fs::read_to_string(format!("{root}/{file}"))
                    .unwrap_or_else(|e| panic!("{file} (row {id}): {e}"));
                assert!(
                    text.contains(&format!("fn {function}("))
                        || text.contains(&format!("fn {function}<")),
                    "{file} has no fn {function} (row {id})"
                );
            }
        }
        let want: Vec<(String, u16, String)> = Reason::all()
            .map(|r| (r.id().to_owned(), r.status(), r.error().to_owned()))
            .collect();
        assert_eq!(rows, want);
    }

    /// `docs/tpp-errors.md`, the TPPs' catalogue: every reason id (policy rules included) has
    /// an entry under an anchor of its own name whose heading gives the status and `error` the
    /// gateway answers with, and every status and `error` has its own anchored section.
    #[test]
    fn the_tpp_error_catalogue_has_an_entry_for_every_reason_rule_status_and_error() {
        let doc = include_str!("../../docs/tpp-errors.md");
        let mut missing = Vec::new();
        for r in Reason::all() {
            let entry = format!(
                "<a id=\"{id}\"></a>\n#### `{id}` — {status} `{error}`\n",
                id = r.id(),
                status = r.status(),
                error = r.error()
            );
            if doc.matches(&entry).count() != 1 {
                missing.push(entry);
            }
        }
        for rule in Rule::ALL {
            if !doc.contains(&format!("<a id=\"{}\"></a>", rule.id())) {
                missing.push(format!("rule {}", rule.id()));
            }
        }
        let mut sections: Vec<String> = Reason::all()
            .flat_map(|r| [format!("status-{}", r.status()), r.error().to_owned()])
            .collect();
        sections.sort();
        sections.dedup();
        for id in sections {
            if doc.matches(&format!("<a id=\"{id}\"></a>\n### ")).count() != 1 {
                missing.push(format!("section {id}"));
            }
        }
        assert!(
            missing.is_empty(),
            "docs/tpp-errors.md lacks:\n{}",
            missing.join("\n")
        );
    }
}
