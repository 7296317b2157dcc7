//! Software statement (SSA) claims: what a trusted directory says about a TPP's software.
//!
//! Decoded from the payload of an SSA whose signature the gateway has already verified against
//! a trusted directory's key set (or, where a profile allows it, an unsigned one). The rules
//! that compare it with the request live in [`crate::evaluate`].

use serde_json::{Map, Value};

use crate::claims::{numeric_date, string, string_array, string_or_array, ClaimError};
use crate::profile::KeySetClaim;

/// The SSA claims dcrgate's rules look at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SoftwareStatement {
    /// `iss`: the directory (or, in Open Banking, the organisation) that issued it.
    pub iss: Option<String>,
    /// `iat`.
    pub iat: Option<i64>,
    /// `exp`.
    pub exp: Option<i64>,
    /// `software_id`.
    pub software_id: Option<String>,
    /// `software_jwks_endpoint`.
    pub software_jwks_endpoint: Option<String>,
    /// `org_jwks_endpoint`.
    pub org_jwks_endpoint: Option<String>,
    /// `software_jwks_revoked_endpoint`: the software's revoked keys.
    pub software_jwks_revoked_endpoint: Option<String>,
    /// `org_jwks_revoked_endpoint`: the organisation's revoked keys.
    pub org_jwks_revoked_endpoint: Option<String>,
    /// `software_redirect_uris`.
    pub software_redirect_uris: Option<Vec<String>>,
    /// `software_roles` (array, or a space-separated string).
    pub software_roles: Option<Vec<String>>,
    /// `org_id`.
    pub org_id: Option<String>,
}

impl SoftwareStatement {
    /// Decode from the SSA payload; known claims with the wrong type are an error.
    pub fn from_json(obj: &Map<String, Value>) -> Result<Self, ClaimError> {
        Ok(Self {
            iss: string(obj, "iss")?,
            iat: numeric_date(obj, "iat")?,
            exp: numeric_date(obj, "exp")?,
            software_id: string(obj, "software_id")?,
            software_jwks_endpoint: string(obj, "software_jwks_endpoint")?,
            org_jwks_endpoint: string(obj, "org_jwks_endpoint")?,
            software_jwks_revoked_endpoint: string(obj, "software_jwks_revoked_endpoint")?,
            org_jwks_revoked_endpoint: string(obj, "org_jwks_revoked_endpoint")?,
            software_redirect_uris: string_array(obj, "software_redirect_uris")?,
            software_roles: string_or_array(obj, "software_roles", |s| {
                s.split(' ')
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            })?,
            org_id: string(obj, "org_id")?,
        })
    }

    /// The revoked key set URLs the SSA names, with the claim each came from.
    pub fn revoked_key_set_urls(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            (
                "software_jwks_revoked_endpoint",
                self.software_jwks_revoked_endpoint.as_deref(),
            ),
            (
                "org_jwks_revoked_endpoint",
                self.org_jwks_revoked_endpoint.as_deref(),
            ),
        ]
        .into_iter()
        .filter_map(|(claim, url)| Some((claim, url?)))
    }

    /// The key set URL named by the first of `claims` the SSA carries, and which claim it was.
    pub fn key_set_url(&self, claims: &[KeySetClaim]) -> Option<(KeySetClaim, &str)> {
        claims.iter().find_map(|c| {
            let v = match c {
                KeySetClaim::SoftwareJwksEndpoint => self.software_jwks_endpoint.as_deref(),
                KeySetClaim::OrgJwksEndpoint => self.org_jwks_endpoint.as_deref(),
            };
            v.map(|url| (*c, url))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_open_banking_shape() {
        let v = json!({
            "iss": "OpenBanking Ltd", "iat": 1700000000, "software_id": "s1",
            "software_jwks_endpoint": "https://k/s1.jwks", "org_jwks_endpoint": "https://k/o.jwks",
            "software_redirect_uris": ["https://tpp/cb"], "software_roles": ["AISP", "PISP"],
            "org_id": "0015800001041REAAY"
        });
        let s = SoftwareStatement::from_json(v.as_object().unwrap()).unwrap();
        assert_eq!(s.software_roles.as_deref().unwrap(), ["AISP", "PISP"]);
        assert_eq!(
            s.key_set_url(&[
                KeySetClaim::OrgJwksEndpoint,
                KeySetClaim::SoftwareJwksEndpoint
            ]),
            Some((KeySetClaim::OrgJwksEndpoint, "https://k/o.jwks"))
        );
        let roles = json!({"software_roles": "AISP CBPII"});
        let s = SoftwareStatement::from_json(roles.as_object().unwrap()).unwrap();
        assert_eq!(s.software_roles.unwrap(), ["AISP", "CBPII"]);
    }

    #[test]
    fn wrong_types_are_refused() {
        let v = json!({"software_redirect_uris": "https://tpp/cb"});
        let e = SoftwareStatement::from_json(v.as_object().unwrap()).unwrap_err();
        assert!(e.to_string().contains("software_redirect_uris"));
    }
}
