//! The directory's own revocation under the UK profile (`[directory_revocation]`): the signing
//! key in the software statement's revoked key sets, the transport certificate missing from the
//! software key set or listed as revoked, and key sets that cannot be had under `prefer` and
//! `require`. Every refusal is shown not to reach the registry.

use crate::common;
use crate::software_statements::{Chain, SSA_JWKS};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use common::{assert_rejection, Harness};
use dcrgate_sandbox::keyhost::Serve;
use dcrgate_sandbox::world::UK_PROFILE;
use serde_json::{json, Value};

const REVOKED_JWKS: &str = "/directory/software/sw-5Tz9/revoked.jwks";
const ORG_REVOKED_JWKS: &str = "/directory/org/revoked.jwks";

/// A chain whose profile sets `[directory_revocation]` to these modes.
async fn chain(revoked_keys: &str, transport_certificate: &str) -> Chain {
    let profile = UK_PROFILE
        .replace(
            "revoked_keys = \"prefer\"",
            &format!("revoked_keys = \"{revoked_keys}\""),
        )
        .replace(
            "transport_certificate = \"off\"",
            &format!("transport_certificate = \"{transport_certificate}\""),
        );
    Chain::start_with(move |_, s| s.write("uk.toml", &profile)).await
}

fn keys(h: &Harness) -> Vec<Value> {
    let set: Value = serde_json::from_str(&h.tpp.jwks()).expect("the TPP's key set");
    set["keys"].as_array().expect("keys").clone()
}

fn set(keys: Vec<Value>) -> Serve {
    Serve::Json(json!({ "keys": keys }).to_string())
}

/// The TPP's signing keys and its transport certificate as a `use` key.
fn with_transport(h: &Harness, use_: &str) -> Serve {
    let mut k = keys(h);
    k.push(json!({
        "kty": "RSA", "kid": "transport", "use": use_,
        "x5c": [STANDARD.encode(&h.tpp.transport.cert_der)]
    }));
    set(k)
}

/// A request whose SSA names `revoked` (and the org's revoked set when `org` is set).
fn request(c: &Chain, revoked: Option<String>, org: Option<String>) -> String {
    let ssa = c.ssa_with(|m| {
        if let Some(u) = revoked {
            m.insert("software_jwks_revoked_endpoint".into(), json!(u));
        }
        if let Some(u) = org {
            m.insert("org_jwks_revoked_endpoint".into(), json!(u));
        }
    });
    c.h.tpp.sign(&c.request_with_ssa(&ssa))
}

async fn counted(h: &Harness, check: &str, result: &str, n: f64) {
    let series = format!(
        "dcrgate_directory_revocation_checks_total{{check=\"{check}\",result=\"{result}\"}}"
    );
    let (samples, text) = h.metrics_when(|s| s.get(&series) == Some(n)).await;
    assert_eq!(samples.get(&series), Some(n), "{series}:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signing_key_in_a_revoked_set_is_refused_by_kid_or_by_thumbprint() {
    let c = chain("require", "off").await;
    let h = &c.h;
    let url = h.key_host.url(REVOKED_JWKS);
    // Nothing revoked yet: forwarded.
    h.key_host.set(REVOKED_JWKS, set(vec![]));
    let r = h.put_jwt(&request(&c, Some(url.clone()), None)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(h.registry.count(), 1);
    counted(h, "signing_key", "good", 1.0).await;

    // Listed by kid (a fresh URL: the revoked set above stays cached for its TTL).
    let kid_only = h.key_host.url("/revoked-by-kid.jwks");
    let kid = keys(h)[0]["kid"].as_str().expect("kid").to_owned();
    h.key_host
        .set("/revoked-by-kid.jwks", set(vec![json!({ "kid": kid })]));
    let r = h.put_jwt(&request(&c, Some(kid_only), None)).await;
    let d = assert_rejection(&r, 403, "access_denied");
    assert!(d.contains("revoked"), "{d}");

    // Listed under another kid: the RFC 7638 thumbprint still matches.
    let mut renamed = keys(h);
    renamed[0]["kid"] = json!("renamed-by-the-directory");
    h.key_host.set("/revoked-by-key.jwks", set(renamed));
    let by_key = h.key_host.url("/revoked-by-key.jwks");
    let r = h.put_jwt(&request(&c, Some(by_key), None)).await;
    assert_rejection(&r, 403, "access_denied");

    // In the organisation's revoked set, the software's own being clean.
    h.key_host.set(ORG_REVOKED_JWKS, set(keys(h)));
    let org = h.key_host.url(ORG_REVOKED_JWKS);
    let r = h.put_jwt(&request(&c, Some(url), Some(org))).await;
    assert_rejection(&r, 403, "access_denied");

    assert_eq!(
        h.registry.count(),
        1,
        "no refused request reached the registry"
    );
    counted(h, "signing_key", "revoked", 3.0).await;
    let (samples, _) = h.metrics_when(|_| true).await;
    assert_eq!(
        samples.get(
            r#"dcrgate_rejections_total{reason="signing_key_revoked",route="register_update"}"#
        ),
        Some(3.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_in_prefer_mode_and_with_every_rule_in_shadow() {
    let c = chain("prefer", "off").await;
    let h = &c.h;
    h.key_host.set(REVOKED_JWKS, set(keys(h)));
    let url = h.key_host.url(REVOKED_JWKS);
    let r = h.put_jwt(&request(&c, Some(url.clone()), None)).await;
    assert_rejection(&r, 403, "access_denied");
    h.assert_not_forwarded();

    let shadowed = UK_PROFILE.replace("all = false", "all = true");
    let c = Chain::start_with(move |_, s| s.write("uk.toml", &shadowed)).await;
    c.h.key_host.set(REVOKED_JWKS, set(keys(&c.h)));
    let url = c.h.key_host.url(REVOKED_JWKS);
    let r = c.h.put_jwt(&request(&c, Some(url), None)).await;
    assert_rejection(&r, 403, "access_denied");
    c.h.assert_not_forwarded();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_set_that_cannot_be_had_fails_closed_under_require_and_open_under_prefer() {
    for (mode, status) in [("require", 503), ("prefer", 200)] {
        let c = chain(mode, "off").await;
        let h = &c.h;
        h.key_host.set(REVOKED_JWKS, Serve::Status(500));
        let down = h.key_host.url(REVOKED_JWKS);
        // Not on an allowlisted host (never fetched), plain http, and none named at all.
        let cases = [
            Some(down),
            Some("https://directory.elsewhere.example/revoked.jwks".to_owned()),
            Some(h.key_host.url(REVOKED_JWKS).replace("https://", "http://")),
            None,
        ];
        let n = cases.len();
        for revoked in cases {
            let r = h.put_jwt(&request(&c, revoked.clone(), None)).await;
            assert_eq!(
                r.status,
                status,
                "{mode} {revoked:?}: {}",
                String::from_utf8_lossy(&r.body)
            );
            if status == 503 {
                assert_rejection(&r, 503, "temporarily_unavailable");
            }
        }
        let forwarded = if status == 200 { n } else { 0 };
        assert_eq!(h.registry.count(), forwarded, "{mode}");
        assert_eq!(
            h.key_host.hits(REVOKED_JWKS),
            1,
            "{mode}: fetched once, failure cached"
        );
        counted(h, "signing_key", "unavailable", n as f64).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transport_certificate_must_be_a_tls_key_of_the_software_and_not_revoked() {
    let c = chain("off", "require").await;
    let h = &c.h;
    h.key_host.set(REVOKED_JWKS, set(vec![]));
    let revoked = h.key_host.url(REVOKED_JWKS);

    // Published with use "tls": forwarded.
    h.key_host.set(SSA_JWKS, with_transport(h, "tls"));
    let r = h.put_jwt(&request(&c, Some(revoked.clone()), None)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(h.registry.count(), 1);
    counted(h, "transport_certificate", "good", 1.0).await;

    // By x5t#S256 only, on a second software key set URL.
    let digest = ring::digest::digest(&ring::digest::SHA256, &h.tpp.transport.cert_der);
    let mut k = keys(h);
    k.push(json!({"kty": "RSA", "kid": "t", "use": "tls",
                  "x5t#S256": URL_SAFE_NO_PAD.encode(digest.as_ref())}));
    h.key_host.set("/software/by-hash.jwks", set(k));
    let by_hash = h.key_host.url("/software/by-hash.jwks");
    let ssa = c.ssa_with(|m| {
        m.insert("software_jwks_endpoint".into(), json!(by_hash));
        m.insert("software_jwks_revoked_endpoint".into(), json!(revoked));
    });
    let r = h.put_jwt(&h.tpp.sign(&c.request_with_ssa(&ssa))).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(h.registry.count(), 2);

    // Missing, or published for signing only: refused.
    for (path, serve) in [
        ("/software/none.jwks", set(keys(h))),
        ("/software/sig.jwks", with_transport(h, "sig")),
    ] {
        h.key_host.set(path, serve);
        let url = h.key_host.url(path);
        let ssa = c.ssa_with(|m| {
            m.insert("software_jwks_endpoint".into(), json!(url));
            m.insert("software_jwks_revoked_endpoint".into(), json!(revoked));
        });
        let r = h.put_jwt(&h.tpp.sign(&c.request_with_ssa(&ssa))).await;
        let d = assert_rejection(&r, 403, "access_denied");
        assert!(d.contains("not a use \"tls\" key"), "{path}: {d}");
    }
    counted(h, "transport_certificate", "not_listed", 2.0).await;

    // Listed, and in the revoked set too.
    h.key_host
        .set("/revoked-cert.jwks", with_transport(h, "tls"));
    let revoked_cert = h.key_host.url("/revoked-cert.jwks");
    let r = h.put_jwt(&request(&c, Some(revoked_cert), None)).await;
    let d = assert_rejection(&r, 403, "access_denied");
    assert!(d.contains("revoked key set"), "{d}");
    assert_eq!(
        h.registry.count(),
        2,
        "no refused request reached the registry"
    );
    counted(h, "transport_certificate", "revoked", 1.0).await;
    let (samples, _) = h.metrics_when(|_| true).await;
    assert!(
        samples.get(r#"dcrgate_stage_duration_seconds_count{stage="directory_revocation"}"#)
            == Some(5.0),
        "every request of the five is timed, refused or not"
    );
}
