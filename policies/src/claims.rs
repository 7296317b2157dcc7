//! The registration claims of a DCR request object, as TPPs actually send them.
//!
//! Accepts the aliases seen in the field (`tls_client_auth_dn` / `tls_client_auth_subject_dn`,
//! `jwks_uri` / `org_jwks_endpoint`), `scope` as a space-separated string or an array, and `aud`
//! as a string or an array. NumericDate claims must be JSON numbers: a string `exp` is refused
//! rather than coerced (type confusion there is a known JWT library vulnerability class).

use serde_json::{Map, Value};

/// A claim is present but has the wrong JSON type or an unusable value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// The claim has the wrong JSON type.
    #[error("claim `{claim}` must be {expected}")]
    WrongType {
        /// The claim's name.
        claim: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// Two aliases of the same claim are both present with different values.
    #[error("claims `{first}` and `{second}` are both present and differ")]
    ConflictingAliases {
        /// The preferred name.
        first: &'static str,
        /// The alias.
        second: &'static str,
    },
}

/// The claims dcrgate's rules look at, decoded from the request object's payload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegistrationClaims {
    /// `iss`.
    pub iss: Option<String>,
    /// `aud`, normalised to a list.
    pub aud: Vec<String>,
    /// `iat`, seconds since the epoch.
    pub iat: Option<i64>,
    /// `exp`, seconds since the epoch.
    pub exp: Option<i64>,
    /// `nbf`, seconds since the epoch.
    pub nbf: Option<i64>,
    /// `jti`.
    pub jti: Option<String>,
    /// `client_id`.
    pub client_id: Option<String>,
    /// `software_id`.
    pub software_id: Option<String>,
    /// `token_endpoint_auth_method`.
    pub token_endpoint_auth_method: Option<String>,
    /// `tls_client_auth_dn` or its alias `tls_client_auth_subject_dn`.
    pub tls_client_auth_dn: Option<String>,
    /// `id_token_signed_response_alg`.
    pub id_token_signed_response_alg: Option<String>,
    /// `request_object_signing_alg`.
    pub request_object_signing_alg: Option<String>,
    /// `redirect_uris`.
    pub redirect_uris: Option<Vec<String>>,
    /// `jwks_uri` or its alias `org_jwks_endpoint`.
    pub jwks_uri: Option<String>,
    /// `org_name`.
    pub org_name: Option<String>,
    /// `scope`, split into its members.
    pub scope: Option<Vec<String>>,
    /// `software_statement`, the compact JWS as sent.
    pub software_statement: Option<String>,
    /// Whether an inline `jwks` member is present (RFC 7591 §2: never beside `jwks_uri`).
    pub inline_jwks: bool,
    /// `response_types`.
    pub response_types: Option<Vec<String>>,
    /// `grant_types`.
    pub grant_types: Option<Vec<String>>,
    /// `application_type`.
    pub application_type: Option<String>,
    /// `token_endpoint_auth_signing_alg`.
    pub token_endpoint_auth_signing_alg: Option<String>,
    /// Every URL-valued metadata member other than `redirect_uris` and the key set URL, in
    /// member order, language-tagged forms (`logo_uri#fr`) included.
    pub url_claims: Vec<UrlClaim>,
    /// The `tls_client_auth_san_*` members present (RFC 8705 §2.1.2), by name.
    pub san_claims: Vec<String>,
}

/// The URL-valued members of RFC 7591 §2 and OpenID Connect Dynamic Registration that a
/// registry stores and later follows or shows, besides `redirect_uris` and `jwks_uri`.
pub const URL_CLAIMS: [&str; 7] = [
    "request_uris",
    "sector_identifier_uri",
    "initiate_login_uri",
    "logo_uri",
    "client_uri",
    "policy_uri",
    "tos_uri",
];

/// One URL-valued metadata member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlClaim {
    /// The member as named in [`URL_CLAIMS`].
    pub claim: &'static str,
    /// The member's name as sent (`logo_uri#fr` for a language-tagged form).
    pub name: String,
    /// Its value(s): `request_uris` is an array, the others one string.
    pub values: Vec<String>,
}

impl RegistrationClaims {
    /// Decode the claims dcrgate uses from a JSON object. Unknown claims are ignored here (the
    /// registry may know them); known claims with the wrong type are an error.
    pub fn from_json(obj: &Map<String, Value>) -> Result<Self, ClaimError> {
        Ok(Self {
            iss: string(obj, "iss")?,
            aud: string_or_array(obj, "aud", |s| vec![s.to_owned()])?.unwrap_or_default(),
            iat: numeric_date(obj, "iat")?,
            exp: numeric_date(obj, "exp")?,
            nbf: numeric_date(obj, "nbf")?,
            jti: string(obj, "jti")?,
            client_id: string(obj, "client_id")?,
            software_id: string(obj, "software_id")?,
            token_endpoint_auth_method: string(obj, "token_endpoint_auth_method")?,
            tls_client_auth_dn: aliased(obj, "tls_client_auth_dn", "tls_client_auth_subject_dn")?,
            id_token_signed_response_alg: string(obj, "id_token_signed_response_alg")?,
            request_object_signing_alg: string(obj, "request_object_signing_alg")?,
            redirect_uris: string_array(obj, "redirect_uris")?,
            jwks_uri: aliased(obj, "jwks_uri", "org_jwks_endpoint")?,
            org_name: string(obj, "org_name")?,
            scope: string_or_array(obj, "scope", |s| {
                s.split(' ')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            })?,
            software_statement: string(obj, "software_statement")?,
            inline_jwks: obj.get("jwks").is_some_and(|v| !v.is_null()),
            response_types: string_array(obj, "response_types")?,
            grant_types: string_array(obj, "grant_types")?,
            application_type: string(obj, "application_type")?,
            token_endpoint_auth_signing_alg: string(obj, "token_endpoint_auth_signing_alg")?,
            url_claims: url_claims(obj)?,
            san_claims: obj
                .iter()
                .filter(|(k, v)| k.starts_with("tls_client_auth_san_") && !v.is_null())
                .map(|(k, _)| k.clone())
                .collect(),
        })
    }
}

fn url_claims(obj: &Map<String, Value>) -> Result<Vec<UrlClaim>, ClaimError> {
    let mut out = Vec::new();
    for (name, value) in obj {
        // RFC 7591 §2.2: human-facing members may carry a BCP 47 tag after `#`.
        let base = name.split('#').next().unwrap_or_default();
        let Some(claim) = URL_CLAIMS.iter().copied().find(|c| *c == base) else {
            continue;
        };
        let values = match value {
            Value::Null => continue,
            Value::String(s) if claim != "request_uris" => vec![s.clone()],
            Value::Array(items) if claim == "request_uris" => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or(ClaimError::WrongType {
                    claim,
                    expected: "an array of strings",
                })?,
            _ => {
                return Err(ClaimError::WrongType {
                    claim,
                    expected: if claim == "request_uris" {
                        "an array of strings"
                    } else {
                        "a string"
                    },
                })
            }
        };
        out.push(UrlClaim {
            claim,
            name: name.clone(),
            values,
        });
    }
    Ok(out)
}

pub(crate) fn string(
    obj: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<String>, ClaimError> {
    match obj.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ClaimError::WrongType {
            claim,
            expected: "a string",
        }),
    }
}

fn aliased(
    obj: &Map<String, Value>,
    first: &'static str,
    second: &'static str,
) -> Result<Option<String>, ClaimError> {
    match (string(obj, first)?, string(obj, second)?) {
        (Some(a), Some(b)) if a != b => Err(ClaimError::ConflictingAliases { first, second }),
        (Some(a), _) => Ok(Some(a)),
        (None, b) => Ok(b),
    }
}

pub(crate) fn string_array(
    obj: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<Vec<String>>, ClaimError> {
    let wrong = ClaimError::WrongType {
        claim,
        expected: "an array of strings",
    };
    match obj.get(claim) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| wrong.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(wrong),
    }
}

pub(crate) fn string_or_array(
    obj: &Map<String, Value>,
    claim: &'static str,
    split: impl Fn(&str) -> Vec<String>,
) -> Result<Option<Vec<String>>, ClaimError> {
    match obj.get(claim) {
        Some(Value::String(s)) => Ok(Some(split(s))),
        Some(Value::Array(_)) => string_array(obj, claim),
        None | Some(Value::Null) => Ok(None),
        Some(_) => Err(ClaimError::WrongType {
            claim,
            expected: "a string or an array of strings",
        }),
    }
}

/// A NumericDate member (RFC 7519 §2): a JSON number of seconds since the epoch, possibly
/// fractional, taken down to the whole second; absent is `None`; any other JSON type (a string,
/// `null`, a boolean) or a number out of range is an error. The one date parser for request
/// objects, software statements and access tokens.
pub fn numeric_date(
    obj: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<i64>, ClaimError> {
    let wrong = ClaimError::WrongType {
        claim,
        expected: "a NumericDate (a JSON number of seconds since the epoch)",
    };
    match obj.get(claim) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64() {
                Ok(Some(i))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.floor() as i64)),
                    _ => Err(wrong),
                }
            }
        }
        Some(_) => Err(wrong),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<RegistrationClaims, ClaimError> {
        RegistrationClaims::from_json(v.as_object().unwrap())
    }

    #[test]
    fn scope_as_string_or_array() {
        let a = parse(json!({"scope": "openid  accounts"})).unwrap();
        let b = parse(json!({"scope": ["openid", "accounts"]})).unwrap();
        assert_eq!(a.scope, b.scope);
        assert_eq!(a.scope.unwrap(), vec!["openid", "accounts"]);
    }

    #[test]
    fn dn_alias_accepted_and_conflict_refused() {
        let c = parse(json!({"tls_client_auth_subject_dn": "CN=a"})).unwrap();
        assert_eq!(c.tls_client_auth_dn.as_deref(), Some("CN=a"));
        let e = parse(json!({"tls_client_auth_dn": "CN=a", "tls_client_auth_subject_dn": "CN=b"}));
        assert!(matches!(e, Err(ClaimError::ConflictingAliases { .. })));
        let same =
            parse(json!({"tls_client_auth_dn": "CN=a", "tls_client_auth_subject_dn": "CN=a"}));
        assert!(same.is_ok());
    }

    #[test]
    fn jwks_alias() {
        let c = parse(json!({"org_jwks_endpoint": "https://k/jwks"})).unwrap();
        assert_eq!(c.jwks_uri.as_deref(), Some("https://k/jwks"));
    }

    #[test]
    fn string_exp_is_refused() {
        let e = parse(json!({"exp": "1700000000"})).unwrap_err();
        assert_eq!(
            e,
            ClaimError::WrongType {
                claim: "exp",
                expected: "a NumericDate (a JSON number of seconds since the epoch)"
            }
        );
        assert_eq!(parse(json!({"exp": 17.9})).unwrap().exp, Some(17));
        assert!(parse(json!({"exp": 1e300})).is_err());
    }

    #[test]
    fn wrong_types_name_the_claim() {
        let e = parse(json!({"redirect_uris": "https://a"})).unwrap_err();
        assert!(e.to_string().contains("redirect_uris"));
        let e = parse(json!({"redirect_uris": ["https://a", 3]})).unwrap_err();
        assert!(e.to_string().contains("redirect_uris"));
        let e = parse(json!({"scope": 3})).unwrap_err();
        assert!(e.to_string().contains("scope"));
        let a = parse(json!({"aud": ["x", "y"]})).unwrap();
        assert_eq!(a.aud, vec!["x", "y"]);
    }
}
