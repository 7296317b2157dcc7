//! A sample TPP: a transport certificate, an RSA signing key published as a JWK set, and
//! request objects signed PS256 on ring, compliant or deliberately not.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dcrgate_certs::{IssuedCert, RsaSigningKey, SubjectSpec};
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PSS_SHA256};
use serde_json::{json, Value};

use crate::pki::SandboxPki;
use crate::SandboxError;

/// A PS256 signer with a published key: a TPP's request-object key, a directory's SSA key or an
/// authorization server's token key.
#[derive(Clone)]
pub struct Signer {
    /// The signing key (its `kid` goes in every header).
    pub key: RsaSigningKey,
    key_pair: Arc<RsaKeyPair>,
}

impl Signer {
    /// A signer for `key`.
    pub fn new(key: RsaSigningKey) -> Result<Self, SandboxError> {
        let key_pair = RsaKeyPair::from_pkcs8(&key.pkcs8_der)
            .map_err(|e| SandboxError::Signing(e.to_string()))?;
        Ok(Self {
            key,
            key_pair: Arc::new(key_pair),
        })
    }

    /// A signer with a fresh 2048-bit key named `kid`.
    pub fn generate(kid: &str) -> Result<Self, SandboxError> {
        Self::new(crate::pki::signing_key(kid)?)
    }

    /// Its public JWK set.
    pub fn jwks(&self) -> String {
        RsaSigningKey::jwks(&[&self.key])
    }

    /// Sign `claims` PS256 with the usual header (`alg`, `kid`, `typ`).
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with_header(
            &json!({"alg": "PS256", "kid": self.key.kid, "typ": "JWT"}),
            claims,
        )
    }

    /// Sign arbitrary header and claims JSON with a PS256 signature (whatever the header says).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        self.sign_raw(header.to_string().as_bytes(), claims.to_string().as_bytes())
    }

    /// Sign raw header and payload bytes (e.g. JSON with duplicate members) with PS256.
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let mut sig = vec![0u8; self.key_pair.public().modulus_len()];
        // Signing with a valid key into a buffer of the modulus length cannot fail.
        let _ = self.key_pair.sign(
            &RSA_PSS_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        );
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

/// A random (version 4) UUID, lower case.
pub fn uuid_v4() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    // The system random source does not fail on supported platforms; zeros would still be a
    // well-formed UUID.
    let _ = SystemRandom::new().fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// A sample TPP.
pub struct Tpp {
    /// The ClientId the bank gave it.
    pub client_id: String,
    /// Its transport certificate's subject.
    pub subject: SubjectSpec,
    /// Its transport certificate.
    pub transport: IssuedCert,
    /// Its request-object signer.
    pub signer: Signer,
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Tpp {
    /// A TPP with a fresh transport certificate from `pki` and the given signing key.
    pub fn new(
        pki: &SandboxPki,
        client_id: &str,
        subject: SubjectSpec,
        key: RsaSigningKey,
    ) -> Result<Self, SandboxError> {
        let transport = pki.transport_cert(&subject)?;
        Ok(Self {
            client_id: client_id.to_owned(),
            subject,
            transport,
            signer: Signer::new(key)?,
        })
    }

    /// Its public JWK set.
    pub fn jwks(&self) -> String {
        self.signer.jwks()
    }

    /// Claims of a compliant update (seed profile), valid for the next 50 minutes.
    pub fn claims(&self, audience: &str, jwks_uri: &str) -> Value {
        let now = now();
        json!({
            "iss": self.client_id,
            "aud": audience,
            "iat": now,
            "exp": now + 3000,
            "jti": uuid_v4(),
            "client_id": self.client_id,
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_dn": self.subject.to_rfc4514(),
            "id_token_signed_response_alg": "PS256",
            "request_object_signing_alg": "PS256",
            "redirect_uris": ["https://tpp.example/callback"],
            "jwks_uri": jwks_uri,
            "org_name": "Example TPP Ltd",
            "scope": "openid accounts payments",
        })
    }

    /// Sign `claims` PS256 with the usual header (`alg`, `kid`, `typ`).
    pub fn sign(&self, claims: &Value) -> String {
        self.signer.sign(claims)
    }

    /// Sign arbitrary header and claims JSON with a PS256 signature (whatever the header says).
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        self.signer.sign_with_header(header, claims)
    }

    /// Sign raw header and payload bytes (e.g. JSON with duplicate members) with PS256.
    pub fn sign_raw(&self, header: &[u8], payload: &[u8]) -> String {
        self.signer.sign_raw(header, payload)
    }
}

/// A compact JWS with the given header and payload JSON and a literal signature part.
pub fn unsigned(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}
