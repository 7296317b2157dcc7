//! Policy profiles: the TOML files operators write under `policies/`.
//!
//! Layered as in River: the file format ([`ProfileFile`], unknown keys refused) is validated
//! into the model the rules read ([`Profile`]). Every default is the strict choice; a profile
//! only has to say where it is more permissive.

use serde::Deserialize;

use crate::dn::{attribute_oid, MatchMode, ParseMode};
use crate::verdict::Rule;

/// JWS algorithms a profile may list: asymmetric only. `none` and HMAC are never accepted.
pub const SUPPORTED_ALGORITHMS: [&str; 2] = ["PS256", "ES256"];

/// Why a profile file is refused; `key` is the dotted TOML path of the offending setting.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Not TOML, an unknown key, or a value of the wrong type (the message names the key).
    #[error("{0}")]
    Syntax(#[from] toml::de::Error),
    /// A well-typed value that is not acceptable.
    #[error("key `{key}`: {reason}")]
    Invalid {
        /// The dotted TOML path.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// The profile file as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileFile {
    /// Short name, used in logs and `check` output.
    pub name: String,
    /// What the profile is for.
    #[serde(default)]
    pub description: String,
    /// The request object (the JWS the TPP sends).
    #[serde(default)]
    pub request: RequestSection,
    /// Registration metadata rules.
    #[serde(default)]
    pub claims: ClaimsSection,
    /// Redirect URI rules.
    #[serde(default)]
    pub redirect_uris: RedirectSection,
    /// The other URL-valued metadata members.
    #[serde(default)]
    pub url_claims: UrlClaimsSection,
    /// How `tls_client_auth_dn` is compared with the certificate.
    #[serde(default)]
    pub dn: DnSection,
    /// Software statements (SSAs) signed by a trusted directory.
    #[serde(default)]
    pub software_statement: SoftwareStatementSection,
    /// `jti` replay protection.
    #[serde(default)]
    pub replay: ReplaySection,
    /// Transport certificate rotation.
    #[serde(default)]
    pub rotation: RotationSection,
    /// The directory's own revocation: revoked key sets, transport certificates as keys.
    #[serde(default)]
    pub directory_revocation: DirectoryRevocationSection,
    /// Bearer access tokens on the management routes.
    #[serde(default)]
    pub bearer: BearerSection,
    /// Rules evaluated and recorded but not enforced, while a bank adopts the profile.
    #[serde(default)]
    pub shadow: ShadowSection,
}

/// `[shadow]`: evaluate, record `would_reject`, forward anyway.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShadowSection {
    /// Every policy rule in shadow.
    pub all: bool,
    /// Rule ids in shadow (see the rule list in docs/policy-profiles.md), e.g.
    /// `["dn_mismatch", "scope"]`.
    pub rules: Vec<String>,
}

/// `[request]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestSection {
    /// JWS `alg` values accepted for the request object.
    pub algorithms: Vec<String>,
    /// Longest accepted `exp - iat`, seconds.
    pub max_lifetime_seconds: i64,
    /// Clock skew tolerated on `exp`, `iat` and `nbf`, seconds.
    pub clock_leeway_seconds: i64,
    /// Whether `iat` must be present.
    pub require_iat: bool,
}

impl Default for RequestSection {
    fn default() -> Self {
        Self {
            algorithms: vec!["PS256".into()],
            max_lifetime_seconds: 3600,
            clock_leeway_seconds: 60,
            require_iat: true,
        }
    }
}

/// `[claims]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimsSection {
    /// Accepted `token_endpoint_auth_method` values.
    pub token_endpoint_auth_methods: Vec<String>,
    /// Accepted `id_token_signed_response_alg` values.
    pub id_token_signed_response_algs: Vec<String>,
    /// Accepted `request_object_signing_alg` values.
    pub request_object_signing_algs: Vec<String>,
    /// Scopes a TPP may ask for.
    pub allowed_scopes: Vec<String>,
    /// Scopes that must be present.
    pub required_scopes: Vec<String>,
    /// Whether `org_name` must be present and non-empty.
    pub require_org_name: bool,
    /// Accepted `response_types` members (order of the space-separated values in one member
    /// does not matter: `id_token code` is `code id_token`). Absent `response_types` is
    /// accepted (RFC 7591 default `code`).
    pub response_types: Vec<String>,
    /// Accepted `grant_types` members (absent: accepted, RFC 7591 default
    /// `authorization_code`).
    pub grant_types: Vec<String>,
    /// Accepted `application_type` values (absent: accepted).
    pub application_types: Vec<String>,
    /// Accepted `token_endpoint_auth_signing_alg` values, where the member is present.
    pub token_endpoint_auth_signing_algs: Vec<String>,
}

impl Default for ClaimsSection {
    fn default() -> Self {
        Self {
            token_endpoint_auth_methods: vec!["tls_client_auth".into()],
            id_token_signed_response_algs: vec!["PS256".into()],
            request_object_signing_algs: vec!["PS256".into()],
            allowed_scopes: ["openid", "accounts", "payments", "fundsconfirmations"]
                .map(String::from)
                .to_vec(),
            required_scopes: vec!["openid".into()],
            require_org_name: true,
            response_types: ["code", "code id_token"].map(String::from).to_vec(),
            grant_types: ["authorization_code", "client_credentials", "refresh_token"]
                .map(String::from)
                .to_vec(),
            application_types: ["web", "mobile", "native"].map(String::from).to_vec(),
            token_endpoint_auth_signing_algs: vec!["PS256".into()],
        }
    }
}

/// `[redirect_uris]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedirectSection {
    /// Every redirect URI must be https.
    pub require_https: bool,
    /// Whether loopback hosts are allowed (never for server-side TPPs).
    pub allow_loopback: bool,
    /// Longest redirect URI accepted, bytes.
    pub max_length: usize,
}

impl Default for RedirectSection {
    fn default() -> Self {
        Self {
            require_https: true,
            allow_loopback: false,
            max_length: 2048,
        }
    }
}

/// What a profile does with one URL-valued metadata member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UrlClaimPolicy {
    /// Accepted when it is an acceptable URL (https, no userinfo, no fragment, no loopback or
    /// non-public IP literal, within the length bound).
    Allow,
    /// Never accepted.
    Refuse,
}

/// `[url_claims]`: each URL-valued member of RFC 7591 §2 besides `redirect_uris` and the key
/// set URL. The registry stores these and later fetches them (`request_uris`,
/// `sector_identifier_uri`) or shows them to users (`logo_uri`, `client_uri`, `policy_uri`,
/// `tos_uri`, `initiate_login_uri`); language-tagged forms (`logo_uri#fr`) follow their member.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UrlClaimsSection {
    /// `request_uris` (the server fetches them: refused by default).
    pub request_uris: UrlClaimPolicy,
    /// `sector_identifier_uri` (the server fetches it: refused by default).
    pub sector_identifier_uri: UrlClaimPolicy,
    /// `initiate_login_uri`.
    pub initiate_login_uri: UrlClaimPolicy,
    /// `logo_uri`.
    pub logo_uri: UrlClaimPolicy,
    /// `client_uri`.
    pub client_uri: UrlClaimPolicy,
    /// `policy_uri`.
    pub policy_uri: UrlClaimPolicy,
    /// `tos_uri`.
    pub tos_uri: UrlClaimPolicy,
    /// Longest value accepted, bytes.
    pub max_length: usize,
}

impl Default for UrlClaimsSection {
    fn default() -> Self {
        Self {
            request_uris: UrlClaimPolicy::Refuse,
            sector_identifier_uri: UrlClaimPolicy::Refuse,
            initiate_login_uri: UrlClaimPolicy::Allow,
            logo_uri: UrlClaimPolicy::Allow,
            client_uri: UrlClaimPolicy::Allow,
            policy_uri: UrlClaimPolicy::Allow,
            tos_uri: UrlClaimPolicy::Allow,
            max_length: 2048,
        }
    }
}

impl UrlClaimsSection {
    /// The policy for a member named in [`crate::claims::URL_CLAIMS`] (unknown: refused).
    pub fn policy(&self, claim: &str) -> UrlClaimPolicy {
        match claim {
            "request_uris" => self.request_uris,
            "sector_identifier_uri" => self.sector_identifier_uri,
            "initiate_login_uri" => self.initiate_login_uri,
            "logo_uri" => self.logo_uri,
            "client_uri" => self.client_uri,
            "policy_uri" => self.policy_uri,
            "tos_uri" => self.tos_uri,
            _ => UrlClaimPolicy::Refuse,
        }
    }
}

/// `[dn]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnSection {
    /// `strict-order`, `any-order` or `attribute-subset`.
    #[serde(rename = "match")]
    pub match_mode: MatchMode,
    /// For `attribute-subset`: the attributes compared (names like `O` or dotted OIDs).
    pub attributes: Vec<String>,
    /// Accept RFC 2253/1779 leniencies (spaces around separators, quoted values, `OID.`).
    pub lenient: bool,
}

impl Default for DnSection {
    fn default() -> Self {
        Self {
            match_mode: MatchMode::AnyOrder,
            attributes: Vec::new(),
            lenient: true,
        }
    }
}

/// Whether a request must, may or must not carry a `software_statement`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Presence {
    /// Every request carries one.
    Required,
    /// A request may carry one; when it does, it is verified and its rules apply.
    #[default]
    Optional,
    /// A request carrying one is refused.
    Refused,
}

/// Which SSA claim names the TPP's key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySetClaim {
    /// `software_jwks_endpoint`: the software's own key set.
    SoftwareJwksEndpoint,
    /// `org_jwks_endpoint`: the organisation's key set.
    OrgJwksEndpoint,
}

impl KeySetClaim {
    /// The claim's name.
    pub fn name(self) -> &'static str {
        match self {
            KeySetClaim::SoftwareJwksEndpoint => "software_jwks_endpoint",
            KeySetClaim::OrgJwksEndpoint => "org_jwks_endpoint",
        }
    }
}

/// `[software_statement]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SoftwareStatementSection {
    /// `required`, `optional` or `refused`.
    pub presence: Presence,
    /// Accept an unsigned SSA (`alg: none`). Off: every SSA is signed by a trusted directory.
    pub allow_unsigned: bool,
    /// The request's `iss` must equal the SSA's `software_id`.
    pub require_iss_is_software_id: bool,
    /// Oldest accepted SSA (`now - iat`), seconds; 0 for no bound beyond `exp`.
    pub max_age_seconds: i64,
    /// SSA claims that name the TPP key set, in order of preference.
    pub key_set_claims: Vec<KeySetClaim>,
    /// Scopes any software may ask for whatever its roles.
    pub always_allowed_scopes: Vec<String>,
    /// `software_roles` member → the scopes it grants.
    pub roles: std::collections::BTreeMap<String, Vec<String>>,
}

impl Default for SoftwareStatementSection {
    fn default() -> Self {
        Self {
            presence: Presence::Optional,
            allow_unsigned: false,
            require_iss_is_software_id: false,
            max_age_seconds: 0,
            key_set_claims: vec![
                KeySetClaim::SoftwareJwksEndpoint,
                KeySetClaim::OrgJwksEndpoint,
            ],
            always_allowed_scopes: vec!["openid".into()],
            roles: [
                ("AISP", "accounts"),
                ("PISP", "payments"),
                ("CBPII", "fundsconfirmations"),
            ]
            .into_iter()
            .map(|(r, s)| (r.to_owned(), vec![s.to_owned()]))
            .collect(),
        }
    }
}

/// `[replay]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplaySection {
    /// Every request object carries a UUID `jti`, and a `jti` is accepted once within its `exp`.
    pub require_jti: bool,
}

/// What happens when `tls_client_auth_dn` names a different certificate than the presented one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RotationMode {
    /// The DN must match the presented certificate.
    #[default]
    Deny,
    /// A different DN is accepted when the configured attributes match the presented
    /// certificate: the TPP is moving to a new certificate of the same organisation.
    SameOrganisation,
}

/// `[rotation]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RotationSection {
    /// `deny` or `same-organisation`.
    pub mode: RotationMode,
    /// For `same-organisation`: the attributes that must be equal in both DNs (names or OIDs).
    pub attributes: RotationAttributes,
}

/// `rotation.attributes`: one set of attributes, or ordered alternatives of which the first
/// whose attributes are all present in the presented certificate decides (e.g.
/// `[["organizationIdentifier", "O"], ["OU", "O"]]` for OBWAC/eIDAS and legacy Open Banking
/// certificates).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RotationAttributes {
    /// One set: `["organizationIdentifier", "O"]`.
    One(Vec<String>),
    /// Ordered alternatives: `[["organizationIdentifier", "O"], ["OU", "O"]]`.
    Alternatives(Vec<Vec<String>>),
}

impl RotationAttributes {
    /// The alternatives, in order (one set is one alternative).
    pub fn alternatives(&self) -> Vec<&[String]> {
        match self {
            RotationAttributes::One(set) => vec![set.as_slice()],
            RotationAttributes::Alternatives(sets) => sets.iter().map(Vec::as_slice).collect(),
        }
    }
}

impl Default for RotationSection {
    fn default() -> Self {
        Self {
            mode: RotationMode::Deny,
            attributes: RotationAttributes::One(vec!["organizationIdentifier".into(), "O".into()]),
        }
    }
}

/// How a check that needs a key set the directory publishes behaves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DirectoryCheck {
    /// Not checked.
    #[default]
    Off,
    /// Checked when the key set can be had; when it cannot (not named, not fetchable), the
    /// request goes on, counted as `unavailable` and logged.
    Prefer,
    /// Checked; a key set that cannot be had refuses the request (503).
    Require,
}

impl DirectoryCheck {
    /// Whether the check runs at all.
    pub fn is_on(self) -> bool {
        self != DirectoryCheck::Off
    }
}

/// `[directory_revocation]`: the Open Banking directory's revocation as the software
/// statement names it. Both checks read key sets fetched and cached like the TPP's own.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryRevocationSection {
    /// Refuse a request whose signing key (by `kid` or RFC 7638 thumbprint) is listed in the
    /// SSA's `software_jwks_revoked_endpoint` or `org_jwks_revoked_endpoint`.
    pub revoked_keys: DirectoryCheck,
    /// Require the presented transport certificate to be listed as a `use: tls` key (`x5c`
    /// or `x5t#S256`) in the SSA's `software_jwks_endpoint`, and not in its revoked key sets.
    pub transport_certificate: DirectoryCheck,
}

impl DirectoryRevocationSection {
    /// Whether either check runs.
    pub fn is_on(&self) -> bool {
        self.revoked_keys.is_on() || self.transport_certificate.is_on()
    }
}

/// `[bearer]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BearerSection {
    /// Access tokens must be certificate-bound (`cnf.x5t#S256`, RFC 8705). Off: a token without
    /// `cnf` is accepted, but a token with one must match the presented certificate.
    pub require_certificate_binding: bool,
}

/// A validated profile, ready for [`crate::evaluate`].
#[derive(Debug, Clone)]
pub struct Profile {
    /// The profile's name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// `[request]`.
    pub request: RequestSection,
    /// `[claims]`.
    pub claims: ClaimsSection,
    /// `[redirect_uris]`.
    pub redirect_uris: RedirectSection,
    /// `[url_claims]`.
    pub url_claims: UrlClaimsSection,
    /// DN comparison mode.
    pub dn_match: MatchMode,
    /// DN attribute OIDs compared in `attribute-subset` mode.
    pub dn_attributes: Vec<String>,
    /// DN string parse mode.
    pub dn_parse: ParseMode,
    /// `[software_statement]`.
    pub software_statement: SoftwareStatementSection,
    /// `[replay]`.
    pub replay: ReplaySection,
    /// Rotation mode.
    pub rotation: RotationMode,
    /// Attribute OID sets compared in `same-organisation` rotation, in order: the first set
    /// whose attributes are all present in the presented certificate decides.
    pub rotation_alternatives: Vec<Vec<String>>,
    /// `[directory_revocation]`.
    pub directory_revocation: DirectoryRevocationSection,
    /// `[bearer]`.
    pub bearer: BearerSection,
    /// Rules in shadow: evaluated and recorded, not enforced.
    pub shadow: Vec<Rule>,
}

impl Profile {
    /// Whether a violation of `rule` is recorded as `would_reject` instead of enforced. Never
    /// for a rule that is not [`Rule::shadowable`], whatever the profile says.
    pub fn is_shadowed(&self, rule: Rule) -> bool {
        rule.shadowable() && self.shadow.contains(&rule)
    }
}

impl Profile {
    /// Parse and validate a profile from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Self, ProfileError> {
        let file: ProfileFile = toml::from_str(text)?;
        Self::from_file(file)
    }

    /// Validate a parsed profile file.
    pub fn from_file(file: ProfileFile) -> Result<Self, ProfileError> {
        let invalid = |key, reason: String| ProfileError::Invalid { key, reason };
        if file.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty".into()));
        }
        let r = &file.request;
        if r.algorithms.is_empty() {
            return Err(invalid(
                "request.algorithms",
                "must list at least one algorithm".into(),
            ));
        }
        if let Some(bad) = r
            .algorithms
            .iter()
            .find(|a| !SUPPORTED_ALGORITHMS.contains(&a.as_str()))
        {
            return Err(invalid(
                "request.algorithms",
                format!(
                    "`{bad}` is not supported (supported: {})",
                    SUPPORTED_ALGORITHMS.join(", ")
                ),
            ));
        }
        if !(60..=86_400).contains(&r.max_lifetime_seconds) {
            return Err(invalid(
                "request.max_lifetime_seconds",
                format!("{} is outside 60..=86400", r.max_lifetime_seconds),
            ));
        }
        if !(0..=300).contains(&r.clock_leeway_seconds) {
            return Err(invalid(
                "request.clock_leeway_seconds",
                format!("{} is outside 0..=300", r.clock_leeway_seconds),
            ));
        }
        let c = &file.claims;
        for (key, list) in [
            (
                "claims.token_endpoint_auth_methods",
                &c.token_endpoint_auth_methods,
            ),
            (
                "claims.id_token_signed_response_algs",
                &c.id_token_signed_response_algs,
            ),
            (
                "claims.request_object_signing_algs",
                &c.request_object_signing_algs,
            ),
            ("claims.allowed_scopes", &c.allowed_scopes),
            ("claims.response_types", &c.response_types),
            ("claims.grant_types", &c.grant_types),
            ("claims.application_types", &c.application_types),
            (
                "claims.token_endpoint_auth_signing_algs",
                &c.token_endpoint_auth_signing_algs,
            ),
        ] {
            if list.is_empty() {
                return Err(invalid(key, "must not be empty".into()));
            }
        }
        if let Some(bad) = c
            .required_scopes
            .iter()
            .find(|s| !c.allowed_scopes.contains(s))
        {
            return Err(invalid(
                "claims.required_scopes",
                format!("`{bad}` is required but not in claims.allowed_scopes"),
            ));
        }
        let oids = |key: &'static str, names: &[String]| -> Result<Vec<String>, ProfileError> {
            names
                .iter()
                .map(|name| {
                    attribute_oid(name)
                        .ok_or_else(|| invalid(key, format!("unknown attribute type `{name}`")))
                })
                .collect()
        };
        let dn_attributes = oids("dn.attributes", &file.dn.attributes)?;
        if file.dn.match_mode == MatchMode::AttributeSubset && dn_attributes.is_empty() {
            return Err(invalid(
                "dn.attributes",
                "`match = \"attribute-subset\"` needs at least one attribute".into(),
            ));
        }
        let rotation_alternatives = file
            .rotation
            .attributes
            .alternatives()
            .into_iter()
            .map(|set| oids("rotation.attributes", set))
            .collect::<Result<Vec<_>, _>>()?;
        let same_org = file.rotation.mode == RotationMode::SameOrganisation;
        if same_org && rotation_alternatives.iter().all(Vec::is_empty) {
            return Err(invalid(
                "rotation.attributes",
                "`mode = \"same-organisation\"` needs at least one attribute".into(),
            ));
        }
        if rotation_alternatives.iter().any(Vec::is_empty) && rotation_alternatives.len() > 1 {
            return Err(invalid(
                "rotation.attributes",
                "every alternative needs at least one attribute".into(),
            ));
        }
        let ssa = &file.software_statement;
        if ssa.max_age_seconds < 0 {
            return Err(invalid(
                "software_statement.max_age_seconds",
                "must not be negative".into(),
            ));
        }
        if ssa.key_set_claims.is_empty() {
            return Err(invalid(
                "software_statement.key_set_claims",
                "must name at least one claim".into(),
            ));
        }
        if let Some(bad) = ssa
            .roles
            .values()
            .flatten()
            .chain(&ssa.always_allowed_scopes)
            .find(|s| !c.allowed_scopes.contains(s))
        {
            return Err(invalid(
                "software_statement.roles",
                format!("scope `{bad}` is not in claims.allowed_scopes"),
            ));
        }
        let dr = &file.directory_revocation;
        if dr.is_on() && ssa.presence == Presence::Refused {
            return Err(invalid(
                "directory_revocation",
                "the checks read key sets the software statement names, and \
                 software_statement.presence is \"refused\""
                    .into(),
            ));
        }
        for (key, max) in [
            ("redirect_uris.max_length", file.redirect_uris.max_length),
            ("url_claims.max_length", file.url_claims.max_length),
        ] {
            if !(64..=8192).contains(&max) {
                return Err(invalid(key, format!("{max} is outside 64..=8192")));
            }
        }
        let shadow = if file.shadow.all {
            Rule::ALL
                .iter()
                .copied()
                .filter(|r| r.shadowable())
                .collect()
        } else {
            file.shadow
                .rules
                .iter()
                .map(|id| {
                    let rule = Rule::ALL
                        .iter()
                        .copied()
                        .find(|r| r.id() == id)
                        .ok_or_else(|| {
                            invalid("shadow.rules", format!("unknown rule id `{id}`"))
                        })?;
                    if rule.shadowable() {
                        Ok(rule)
                    } else {
                        Err(invalid(
                            "shadow.rules",
                            format!(
                                "`{id}` is never in shadow: it decides what the signature is \
                                 verified against, replay, or the identity and server the \
                                 request is bound to"
                            ),
                        ))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        Ok(Profile {
            name: file.name,
            description: file.description,
            request: file.request,
            claims: file.claims,
            redirect_uris: file.redirect_uris,
            url_claims: file.url_claims,
            dn_match: file.dn.match_mode,
            dn_attributes,
            dn_parse: if file.dn.lenient {
                ParseMode::Lenient
            } else {
                ParseMode::Strict
            },
            software_statement: file.software_statement,
            replay: file.replay,
            rotation: file.rotation.mode,
            rotation_alternatives,
            directory_revocation: file.directory_revocation,
            bearer: file.bearer,
            shadow,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimal_profile_gets_strict_defaults() {
        let p = Profile::from_toml_str("name = \"x\"").unwrap();
        assert_eq!(p.request.algorithms, vec!["PS256"]);
        assert_eq!(p.claims.required_scopes, vec!["openid"]);
        assert_eq!(p.dn_match, MatchMode::AnyOrder);
        assert!(p.redirect_uris.require_https);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Profile::from_toml_str("name = \"x\"\n[claims]\nalowed_scopes = []\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("alowed_scopes"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        for (text, key) in [
            (
                "name = \"x\"\n[request]\nalgorithms = [\"HS256\"]",
                "request.algorithms",
            ),
            (
                "name = \"x\"\n[request]\nalgorithms = [\"none\"]",
                "request.algorithms",
            ),
            (
                "name = \"x\"\n[request]\nalgorithms = []",
                "request.algorithms",
            ),
            (
                "name = \"x\"\n[request]\nmax_lifetime_seconds = 10",
                "request.max_lifetime_seconds",
            ),
            (
                "name = \"x\"\n[claims]\nrequired_scopes = [\"admin\"]",
                "claims.required_scopes",
            ),
            (
                "name = \"x\"\n[dn]\nmatch = \"attribute-subset\"",
                "dn.attributes",
            ),
            (
                "name = \"x\"\n[dn]\nattributes = [\"bogus\"]",
                "dn.attributes",
            ),
            ("name = \"\"", "name"),
            (
                "name = \"x\"\n[software_statement]\npresence = \"refused\"\n\
                 [directory_revocation]\nrevoked_keys = \"prefer\"",
                "directory_revocation",
            ),
        ] {
            match Profile::from_toml_str(text) {
                Err(ProfileError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn directory_revocation_modes_parse_and_default_off() {
        let p = Profile::from_toml_str("name = \"x\"").unwrap();
        assert!(!p.directory_revocation.is_on());
        let p = Profile::from_toml_str(
            "name = \"x\"\n[directory_revocation]\ntransport_certificate = \"require\"",
        )
        .unwrap();
        assert_eq!(p.directory_revocation.revoked_keys, DirectoryCheck::Off);
        assert_eq!(
            p.directory_revocation.transport_certificate,
            DirectoryCheck::Require
        );
        for bad in ["on", "Require", "true"] {
            let text = format!("name = \"x\"\n[directory_revocation]\nrevoked_keys = \"{bad}\"");
            assert!(Profile::from_toml_str(&text).is_err(), "{bad}");
        }
    }

    #[test]
    fn shadow_rules_are_rule_ids() {
        let p =
            Profile::from_toml_str("name = \"x\"\n[shadow]\nrules = [\"dn_mismatch\", \"scope\"]")
                .unwrap();
        assert!(p.is_shadowed(Rule::DnMismatch) && p.is_shadowed(Rule::Scope));
        assert!(!p.is_shadowed(Rule::Expiry));
        let all = Profile::from_toml_str("name = \"x\"\n[shadow]\nall = true").unwrap();
        assert!(Rule::ALL
            .iter()
            .all(|r| all.is_shadowed(*r) == r.shadowable()));
        for never in Rule::ALL.iter().filter(|r| !r.shadowable()) {
            let text = format!("name = \"x\"\n[shadow]\nrules = [\"{}\"]", never.id());
            match Profile::from_toml_str(&text) {
                Err(ProfileError::Invalid { key, reason }) => {
                    assert_eq!(key, "shadow.rules");
                    assert!(reason.contains("never in shadow"), "{reason}");
                }
                other => panic!("{}: {other:?}", never.id()),
            }
        }
        assert!(Profile::from_toml_str("name = \"x\"")
            .unwrap()
            .shadow
            .is_empty());
        match Profile::from_toml_str("name = \"x\"\n[shadow]\nrules = [\"dn\"]") {
            Err(ProfileError::Invalid { key, .. }) => assert_eq!(key, "shadow.rules"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_match_mode_is_a_syntax_error_naming_it() {
        let e = Profile::from_toml_str("name = \"x\"\n[dn]\nmatch = \"fuzzy\"").unwrap_err();
        assert!(e.to_string().contains("fuzzy"), "{e}");
    }

    #[test]
    fn shipped_profiles_load() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).unwrap();
                Profile::from_toml_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 1);
    }
}
