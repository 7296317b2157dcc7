//! Shared inputs for dcrgate's benchmarks: a realistic OBWAC subject and a compliant
//! registration payload, so every benchmark measures the same request. Also what the
//! end-to-end binaries share: HTTP/1.1 message framing ([`http1`]), process CPU and memory
//! readings from `/proc` ([`procstat`]) and the report's SVG chart ([`chart`]).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod chart;
pub mod http1;
pub mod procstat;

use dcrgate_certs::{Authority, IssuedCert, SubjectSpec};
use serde_json::{json, Map, Value};

/// The benchmark TPP's transport certificate (the OBWAC subject of [`CERT_DN`]) from `ca`.
pub fn transport_cert(ca: &Authority) -> IssuedCert {
    ca.issue_client(&SubjectSpec::obwac(
        "Example TPP Ltd",
        "PSDGB-FCA-123456",
        "0015800001HQQrZAAX",
    ))
    .expect("client certificate")
}

/// The certificate subject (RFC 4514) of the benchmark TPP.
pub const CERT_DN: &str = "CN=0015800001HQQrZAAX,2.5.4.97=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB";

/// The same subject as a TPP typically writes it in `tls_client_auth_dn`: certificate order,
/// spaces after commas, a descriptor for 2.5.4.97.
pub const CLAIM_DN: &str =
    "C=GB, O=Example TPP Ltd, organizationIdentifier=PSDGB-FCA-123456, CN=0015800001HQQrZAAX";

/// A compliant registration payload, valid at `now`.
pub fn payload(now: i64) -> Map<String, Value> {
    let v = json!({
        "iss": "0015800001HQQrZAAX",
        "aud": "https://bank.example/",
        "iat": now - 10,
        "exp": now + 3000,
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_dn": CLAIM_DN,
        "id_token_signed_response_alg": "PS256",
        "request_object_signing_alg": "PS256",
        "redirect_uris": ["https://tpp.example/cb", "https://tpp.example/cb2"],
        "jwks_uri": "https://keystore.openbanking.org.uk/0015800001041RbAAI/0015800001HQQrZAAX.jwks",
        "org_name": "Example TPP Ltd",
        "scope": "openid accounts payments"
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}
