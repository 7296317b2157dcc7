//! What can be known of a software statement before its directory's keys are fetched: its
//! length, whether it is unsigned (and the profile allows that), its JWS header rules, the
//! trusted directory that issued it and accepts its `alg`, and its claims' types. The verifier
//! ([`super::ssa`]) runs these first; `dcrgate explain` runs the same functions offline
//! (through [`crate::checks`]).

use dcrgate_jose::jws::{parse_compact, parse_unsigned, CompactJws};
use dcrgate_policies::SoftwareStatement;
use serde_json::{Map, Value};

use super::error::SsaError;
pub use super::error::MAX_SSA_LEN;

/// A directory as far as the offline checks need it: its `iss` and the algorithms accepted
/// from it.
pub trait TrustedIssuer {
    /// The `iss` its statements carry.
    fn issuer(&self) -> &str;
    /// The JWS algorithms accepted from it.
    fn algorithms(&self) -> &[String];
}

/// A software statement whose form passed.
#[derive(Debug)]
pub enum SsaForm {
    /// `alg: none`, where the profile allows it: its claims.
    Unsigned(Map<String, Value>),
    /// Signed: to be verified with its directory's keys.
    Signed(CompactJws),
}

/// A software statement's form, before anything is fetched: its length, whether it is
/// unsigned (and the profile allows that), and its JWS header rules with `algorithms` (those
/// of every trusted directory; none means no directory is trusted).
pub fn software_statement_form(
    compact: &str,
    allow_unsigned: bool,
    algorithms: &[String],
) -> Result<SsaForm, SsaError> {
    if compact.len() > MAX_SSA_LEN {
        return Err(SsaError::TooLong);
    }
    if let Some(payload) = parse_unsigned(compact.as_bytes())? {
        if !allow_unsigned {
            return Err(SsaError::Unsigned);
        }
        return Ok(SsaForm::Unsigned(payload));
    }
    // No directory configured: nothing can be trusted (parse_compact needs a non-empty list).
    if algorithms.is_empty() {
        return Err(SsaError::UntrustedIssuer);
    }
    Ok(SsaForm::Signed(parse_compact(
        compact.as_bytes(),
        algorithms,
    )?))
}

/// The trusted directory that issued a signed statement, and accepts its `alg`.
pub fn directory_for<'d, D: TrustedIssuer>(
    jws: &CompactJws,
    directories: &'d [D],
) -> Result<&'d D, SsaError> {
    let iss = jws
        .payload
        .get("iss")
        .and_then(Value::as_str)
        .ok_or(SsaError::UntrustedIssuer)?;
    let directory = directories
        .iter()
        .find(|d| d.issuer() == iss)
        .ok_or(SsaError::UntrustedIssuer)?;
    if !directory.algorithms().contains(&jws.alg) {
        return Err(SsaError::AlgNotAllowed(jws.alg.chars().take(16).collect()));
    }
    Ok(directory)
}

/// A software statement's claims: a known claim of the wrong type is `ssa_malformed`.
pub fn software_statement_claims(
    payload: &Map<String, Value>,
) -> Result<SoftwareStatement, SsaError> {
    Ok(SoftwareStatement::from_json(payload)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir(&'static str, Vec<String>);
    impl TrustedIssuer for Dir {
        fn issuer(&self) -> &str {
            self.0
        }
        fn algorithms(&self) -> &[String] {
            &self.1
        }
    }

    fn jws(iss: Option<&str>, alg: &str) -> CompactJws {
        let mut payload = Map::new();
        if let Some(iss) = iss {
            payload.insert("iss".into(), Value::from(iss));
        }
        CompactJws {
            alg: alg.into(),
            kid: "k".into(),
            typ: None,
            payload,
            signing_input: Vec::new(),
            signature: Vec::new(),
        }
    }

    #[test]
    fn the_directory_must_name_the_issuer_and_accept_the_alg() {
        let dirs = [Dir("OpenBanking Ltd", vec!["PS256".into()])];
        assert!(directory_for(&jws(Some("OpenBanking Ltd"), "PS256"), &dirs).is_ok());
        for (iss, alg, want) in [
            (None, "PS256", SsaError::UntrustedIssuer),
            (Some("openbanking ltd"), "PS256", SsaError::UntrustedIssuer),
            (
                Some("OpenBanking Ltd"),
                "ES256",
                SsaError::AlgNotAllowed("ES256".into()),
            ),
        ] {
            assert_eq!(directory_for(&jws(iss, alg), &dirs).err(), Some(want));
        }
    }

    #[test]
    fn without_a_directory_no_signed_statement_is_trusted() {
        // A well-formed signed statement: header {"alg":"PS256","kid":"k"}, payload {}.
        let token = "eyJhbGciOiJQUzI1NiIsImtpZCI6ImsifQ.e30.c2ln";
        assert_eq!(
            software_statement_form(token, true, &[]).err(),
            Some(SsaError::UntrustedIssuer)
        );
        let too_long = "a".repeat(MAX_SSA_LEN + 1);
        assert_eq!(
            software_statement_form(&too_long, true, &["PS256".into()]).err(),
            Some(SsaError::TooLong)
        );
    }
}
