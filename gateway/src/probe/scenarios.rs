//! The probe's scenarios: what a TPP sends, what a compliant DCR endpoint must answer (status
//! and RFC 7591 `error`), and the one-line change a bank makes when it answers otherwise. The
//! answers are dcrgate's own (docs/request-path.md, "Status codes"), which follow RFC 7591,
//! RFC 6750 and the OB DCR 3.3 specification.

use serde_json::{json, Map, Value};

/// Which group a scenario belongs to, deciding when it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// `PUT /register/{ClientId}`: always.
    Update,
    /// Only with `--ssa`.
    SoftwareStatement,
    /// `POST /register`, `GET`, `DELETE /register/{ClientId}`: only with `--lifecycle`.
    Lifecycle,
    /// Only with `--discovery`.
    Discovery,
}

/// The answer a compliant endpoint gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// A 2xx; `preferred` is the one the specification names (a different 2xx passes, noted).
    Success {
        /// The status the specification names.
        preferred: u16,
    },
    /// This status and RFC 7591 `error`; with `optional`, a body without `error` passes too
    /// (RFC 6750 §3.1: a request with no credentials gets no error code).
    Refused {
        /// The status.
        status: u16,
        /// The `error` member.
        error: &'static str,
        /// Whether an answer without an `error` member passes.
        optional: bool,
    },
    /// The discovery document's `registration_endpoint` is `<endpoint>/register`.
    RegistrationEndpoint,
}

const fn refused(status: u16, error: &'static str) -> Expect {
    Expect::Refused {
        status,
        error,
        optional: false,
    }
}

impl Expect {
    /// As printed in the table ("400 invalid_client_metadata", "2xx (200)").
    pub fn label(&self) -> String {
        match self {
            Expect::Success { preferred } => format!("2xx ({preferred})"),
            Expect::Refused {
                status,
                error,
                optional: false,
            } => format!("{status} {error}"),
            Expect::Refused { status, error, .. } => format!("{status} {error} or none"),
            Expect::RegistrationEndpoint => "registration_endpoint".to_owned(),
        }
    }
}

/// What each scenario does. Each variant's documentation says what is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The discovery document names `<endpoint>/register` as its `registration_endpoint`.
    DiscoveryRegistrationEndpoint,
    /// A compliant update: PS256 with the published key, every claim as the profile wants.
    CompliantUpdate,
    /// `exp` an hour ago (`iat` two hours ago).
    Expired,
    /// `iat` an hour in the future.
    NotYetValid,
    /// `aud` naming another authorization server.
    WrongAudience,
    /// Signed RS256 with the published key.
    SignedRs256,
    /// `alg: none`, no signature.
    AlgNone,
    /// Signed PS256 with a freshly generated key under a `kid` the TPP never published.
    UnpublishedKey,
    /// `tls_client_auth_dn` naming another organisation's certificate.
    DnOfAnotherCertificate,
    /// Every redirect URI with `http:` instead of `https:`.
    RedirectNotHttps,
    /// A redirect URI the software statement does not list.
    RedirectNotInSsa,
    /// `scope` with a scope outside the allowed set.
    ScopeOutsideAllowed,
    /// `response_types` including `token`.
    ResponseTypesToken,
    /// `token_endpoint_auth_signing_alg: RS256`.
    TokenAuthSigningAlgRs256,
    /// A compliant update without `Authorization`.
    NoBearerToken,
    /// A compliant update with a random bearer token no server issued.
    ForeignBearerToken,
    /// A compliant update sent to another (random) ClientId's path with this client's token.
    UpdateOtherClientId,
    /// A compliant update sent twice with the same `jti`: the second must be refused.
    ReplayedJti,
    /// The claims as `application/json` instead of a JWT.
    JsonContentType,
    /// A 1 MiB body.
    OversizedBody,
    /// A compliant `POST /register` (no `client_id` claim, no bearer token).
    Create,
    /// `POST /register` with an expired request object.
    CreateExpired,
    /// `POST /register` with `response_types` `id_token token`.
    CreateResponseTypesToken,
    /// `GET /register/{ClientId}` with the bearer token.
    Read,
    /// `GET /register/{ClientId}` with a random bearer token.
    ReadForeignBearerToken,
    /// `GET` on another (random) ClientId with this client's token.
    ReadOtherClientId,
    /// `DELETE /register/{ClientId}` with the bearer token.
    Delete,
    /// `GET /register/{ClientId}` after the delete.
    ReadAfterDelete,
}

/// One scenario of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// What it does.
    pub kind: Kind,
    /// Its name in reports.
    pub name: &'static str,
    /// What is sent, in a few words.
    pub sends: &'static str,
    /// The answer a compliant endpoint gives.
    pub expect: Expect,
    /// The OB UK DCR conformance check it corresponds to.
    pub conformance: &'static str,
    /// When it runs.
    pub group: Group,
    /// Whether it may write at a compliant endpoint (runs only with `--allow-writes`).
    pub writes: bool,
    /// What a bank changes when it fails.
    pub hint: &'static str,
}

#[allow(clippy::too_many_arguments)]
const fn s(
    kind: Kind,
    name: &'static str,
    sends: &'static str,
    expect: Expect,
    conformance: &'static str,
    group: Group,
    writes: bool,
    hint: &'static str,
) -> Scenario {
    Scenario {
        kind,
        name,
        sends,
        expect,
        conformance,
        group,
        writes,
        hint,
    }
}

use Group::{Discovery, Lifecycle, SoftwareStatement, Update};

/// Every scenario, in the order they run.
#[rustfmt::skip]
pub const CATALOGUE: &[Scenario] = &[
    s(Kind::DiscoveryRegistrationEndpoint, "discovery_registration_endpoint",
      "GET the discovery document", Expect::RegistrationEndpoint, "DCR-001", Discovery, false,
      "publish registration_endpoint = <endpoint>/register in the OpenID discovery document"),
    s(Kind::CompliantUpdate, "compliant_update",
      "PUT a compliant PS256 request object", Expect::Success { preferred: 200 }, "DCR-008",
      Update, true,
      "accept a compliant update: the error_description names the check that refused it"),
    s(Kind::Expired, "expired_request_object",
      "exp an hour ago", refused(400, "invalid_client_metadata"), "DCR-004", Update, false,
      "refuse request objects whose exp has passed"),
    s(Kind::NotYetValid, "not_yet_valid_request_object",
      "iat an hour in the future", refused(400, "invalid_client_metadata"), "DCR-004", Update,
      false, "refuse request objects issued in the future (beyond a small clock leeway)"),
    s(Kind::WrongAudience, "wrong_audience",
      "aud of another server", refused(400, "invalid_client_metadata"), "DCR-004", Update,
      false, "check that aud names the bank's issuer and refuse any other audience"),
    s(Kind::SignedRs256, "signed_rs256",
      "alg RS256, the published key", refused(400, "invalid_client_metadata"), "DCR-004",
      Update, false,
      "take the algorithm from policy (PS256), never from the header; refuse RS256"),
    s(Kind::AlgNone, "alg_none",
      "alg none, no signature", refused(400, "invalid_client_metadata"), "DCR-004", Update,
      false, "refuse unsigned request objects (alg none, in any case)"),
    s(Kind::UnpublishedKey, "unpublished_signing_key",
      "PS256 with a key and kid never published", refused(400, "invalid_client_metadata"),
      "DCR-004", Update, false,
      "verify the signature with the TPP's published key set and refuse an unknown kid"),
    s(Kind::DnOfAnotherCertificate, "tls_client_auth_dn_of_another_certificate",
      "tls_client_auth_dn of another organisation", refused(403, "access_denied"), "DCR-004",
      Update, false,
      "compare tls_client_auth_dn with the presented certificate's subject (RFC 4514 structure)"),
    s(Kind::RedirectNotHttps, "redirect_uri_not_https",
      "redirect_uris with http:", refused(400, "invalid_redirect_uri"), "DCR-004", Update,
      false, "refuse redirect URIs that are not https"),
    s(Kind::RedirectNotInSsa, "redirect_uri_not_in_ssa",
      "a redirect URI the SSA does not list", refused(400, "invalid_redirect_uri"), "DCR-004",
      SoftwareStatement, false,
      "refuse redirect URIs missing from the software statement's software_redirect_uris"),
    s(Kind::ScopeOutsideAllowed, "scope_outside_allowed",
      "scope with an unknown scope added", refused(400, "invalid_client_metadata"), "DCR-004",
      Update, false, "refuse scopes outside the allowed set (and the SSA's roles)"),
    s(Kind::ResponseTypesToken, "response_types_token",
      "response_types [code, token]", refused(400, "invalid_client_metadata"), "DCR-011",
      Update, false, "allow response_types code and code id_token only (OB DCR 3.3)"),
    s(Kind::TokenAuthSigningAlgRs256, "token_endpoint_auth_signing_alg_rs256",
      "token_endpoint_auth_signing_alg RS256", refused(400, "invalid_client_metadata"),
      "DCR-004", Update, false,
      "check token_endpoint_auth_signing_alg against the allowed algorithms (PS256)"),
    s(Kind::NoBearerToken, "no_bearer_token",
      "no Authorization header",
      Expect::Refused { status: 401, error: "invalid_token", optional: true }, "DCR-007",
      Update, false, "require Authorization: Bearer on the update and answer 401 without it"),
    s(Kind::ForeignBearerToken, "foreign_bearer_token",
      "a random bearer token", refused(401, "invalid_token"), "DCR-007", Update, false,
      "validate the bearer token (issued by the bank, active) and refuse others with 401"),
    s(Kind::UpdateOtherClientId, "update_other_client_id",
      "PUT to a random ClientId with this token", refused(401, "invalid_token"), "DCR-009",
      Update, false,
      "check the token was issued to the path's ClientId; answer 401 for any other ClientId"),
    s(Kind::ReplayedJti, "replayed_jti",
      "a compliant update sent twice, same jti", refused(400, "invalid_client_metadata"),
      "DCR-008", Update, true, "record each jti until the request object's exp and refuse reuse"),
    s(Kind::JsonContentType, "json_content_type",
      "the claims as application/json", refused(415, "invalid_request"), "DCR-004", Update,
      false, "accept application/jwt (or application/jose) bodies only; answer 415"),
    s(Kind::OversizedBody, "oversized_body",
      "a 1 MiB body", refused(413, "invalid_request"), "DCR-004", Update, false,
      "bound the body size and refuse larger bodies with 413, before reading them"),
    s(Kind::Create, "lifecycle_create",
      "POST /register, compliant", Expect::Success { preferred: 201 }, "DCR-002", Lifecycle,
      true, "accept a compliant POST /register and answer 201 with the registration"),
    s(Kind::CreateExpired, "create_expired_request_object",
      "POST /register, exp an hour ago", refused(400, "invalid_client_metadata"), "DCR-004",
      Lifecycle, false, "refuse expired request objects on POST /register too"),
    s(Kind::CreateResponseTypesToken, "create_response_types_token",
      "POST /register, response_types [id_token token]",
      refused(400, "invalid_client_metadata"), "DCR-011", Lifecycle, false,
      "allow response_types code and code id_token only on POST /register too"),
    s(Kind::Read, "lifecycle_read",
      "GET /register/{ClientId}", Expect::Success { preferred: 200 }, "DCR-005", Lifecycle,
      false, "serve GET /register/{ClientId} to its client with a valid token"),
    s(Kind::ReadForeignBearerToken, "read_foreign_bearer_token",
      "GET with a random bearer token", refused(401, "invalid_token"), "DCR-007", Lifecycle,
      false, "validate the bearer token on GET and refuse others with 401"),
    s(Kind::ReadOtherClientId, "read_other_client_id",
      "GET a random ClientId with this token", refused(401, "invalid_token"), "DCR-010",
      Lifecycle, false, "refuse reading another ClientId's registration with 401"),
    s(Kind::Delete, "lifecycle_delete",
      "DELETE /register/{ClientId}", Expect::Success { preferred: 204 }, "DCR-003", Lifecycle,
      true, "serve DELETE /register/{ClientId} and answer 204"),
    s(Kind::ReadAfterDelete, "read_after_delete",
      "GET /register/{ClientId} after the delete",
      Expect::Refused { status: 401, error: "invalid_token", optional: true }, "DCR-003",
      Lifecycle, false, "end a deleted client's access: GET after DELETE must be 401"),
];

/// The claims a scenario changes, applied to the compliant claims.
pub fn tweak_claims(kind: Kind, claims: &mut Map<String, Value>, now: i64) {
    match kind {
        Kind::Expired | Kind::CreateExpired => {
            claims.insert("iat".into(), json!(now - 7200));
            claims.insert("exp".into(), json!(now - 3600));
        }
        Kind::NotYetValid => {
            claims.insert("iat".into(), json!(now + 3600));
            claims.insert("exp".into(), json!(now + 3900));
        }
        Kind::WrongAudience => {
            claims.insert("aud".into(), json!("https://another-server.invalid/"));
        }
        Kind::DnOfAnotherCertificate => {
            claims.insert(
                "tls_client_auth_dn".into(),
                json!("CN=dcrgate-probe-other,OU=probe,O=Other Organisation Ltd,C=GB"),
            );
        }
        Kind::RedirectNotHttps => {
            let uris: Vec<Value> = claims
                .get("redirect_uris")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(|u| json!(u.replacen("https:", "http:", 1)))
                        .collect()
                })
                .unwrap_or_default();
            claims.insert("redirect_uris".into(), Value::Array(uris));
        }
        Kind::RedirectNotInSsa => {
            claims.insert(
                "redirect_uris".into(),
                json!(["https://not-in-the-ssa.invalid/callback"]),
            );
        }
        Kind::ScopeOutsideAllowed => {
            let scope = claims
                .get("scope")
                .and_then(Value::as_str)
                .unwrap_or("openid")
                .to_owned();
            claims.insert(
                "scope".into(),
                json!(format!("{scope} dcrgate_probe_admin")),
            );
        }
        Kind::ResponseTypesToken => {
            claims.insert("response_types".into(), json!(["code", "token"]));
        }
        Kind::CreateResponseTypesToken => {
            claims.insert("response_types".into(), json!(["id_token token"]));
        }
        Kind::TokenAuthSigningAlgRs256 => {
            claims.insert("token_endpoint_auth_signing_alg".into(), json!("RS256"));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_kind_is_listed_once() {
        let mut names: Vec<&str> = CATALOGUE.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len());
        let mut kinds: Vec<String> = CATALOGUE.iter().map(|s| format!("{:?}", s.kind)).collect();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), CATALOGUE.len());
    }

    #[test]
    fn every_conformance_check_is_covered() {
        for id in 1..=11 {
            let id = format!("DCR-{id:03}");
            // DCR-006 does not exist in the conformance tool's numbering.
            if id == "DCR-006" {
                continue;
            }
            assert!(
                CATALOGUE.iter().any(|s| s.conformance == id),
                "{id} not covered"
            );
        }
    }

    #[test]
    fn http_redirects_keep_the_rest_of_the_uri() {
        let mut c = Map::new();
        c.insert("redirect_uris".into(), json!(["https://tpp.example/cb"]));
        tweak_claims(Kind::RedirectNotHttps, &mut c, 0);
        assert_eq!(c["redirect_uris"], json!(["http://tpp.example/cb"]));
    }
}
