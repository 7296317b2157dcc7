//! The trust chain from a directory the bank chose down to the request, under the shipped UK
//! Open Banking DCR 3.3 profile: software statements verified before anything they name is
//! fetched, the TPP key set taken from the SSA, the SSA's rules, `jti` replay, and certificate
//! rotation. Every rejection is shown not to reach the registry.

use crate::common;

use common::{assert_rejection, Harness, Put, Setup, CLIENT_ID};
use dcrgate_sandbox::keyhost::Serve;
use dcrgate_sandbox::tpp::{now, unsigned, Signer};
use dcrgate_sandbox::world::{SandboxConfig, JWKS_PATH, UK_PROFILE};
use serde_json::{json, Value};

pub(crate) const DIRECTORY: &str = "Sandbox Directory Ltd";
const DIRECTORY_JWKS: &str = "/directory/signing.jwks";
pub(crate) const SSA_JWKS: &str = "/directory/software/sw-5Tz9.jwks";
const SOFTWARE_ID: &str = "sw-5Tz9";

/// A gateway on the UK profile trusting one directory, whose key set the key host serves.
pub(crate) struct Chain {
    pub(crate) h: Harness,
    directory: Signer,
}

impl Chain {
    async fn start() -> Self {
        Self::start_with(|_, _| {}).await
    }

    pub(crate) async fn start_with(extra: impl Fn(&mut SandboxConfig, &Setup<'_>)) -> Self {
        let directory = Signer::generate("directory-key-1").expect("directory key");
        let directory_jwks = directory.jwks();
        let h = Harness::start_setup(|cfg, s| {
            s.write("uk.toml", UK_PROFILE);
            cfg.set("policy", "profile", "uk.toml");
            cfg.set("audit", "path", "audit.jsonl");
            s.key_host
                .set(DIRECTORY_JWKS, Serve::Json(directory_jwks.clone()));
            let mut d = toml::Table::new();
            d.insert("issuer".into(), DIRECTORY.into());
            d.insert("key_set_url".into(), s.key_host.url(DIRECTORY_JWKS).into());
            cfg.push("policy", "directories", d);
            extra(cfg, s);
        })
        .await;
        h.key_host.set(SSA_JWKS, Serve::Json(h.tpp.jwks()));
        Self { h, directory }
    }

    fn ssa_claims(&self) -> Value {
        json!({
            "iss": DIRECTORY,
            "iat": now() - 600,
            "software_id": SOFTWARE_ID,
            "software_jwks_endpoint": self.h.key_host.url(SSA_JWKS),
            "software_redirect_uris": ["https://tpp.example/callback"],
            "software_roles": ["AISP", "PISP"],
            "org_id": "0015800001HQQrZAAX"
        })
    }

    pub(crate) fn ssa_with(&self, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut c = self.ssa_claims();
        f(c.as_object_mut().expect("object"));
        self.directory.sign(&c)
    }

    /// Request claims carrying `ssa`, with no jwks_uri of their own.
    pub(crate) fn request_with_ssa(&self, ssa: &str) -> Value {
        self.h.claims_with(|m| {
            m.remove("jwks_uri");
            m.insert("iss".into(), json!(SOFTWARE_ID));
            m.insert("software_statement".into(), json!(ssa));
        })
    }

    fn compliant(&self) -> String {
        let ssa = self.ssa_with(|_| {});
        self.h.tpp.sign(&self.request_with_ssa(&ssa))
    }

    /// The audit records written so far (bounded wait for at least `n`).
    async fn audit(&self, n: usize) -> Vec<Value> {
        common::audit_records(&self.h.files.path().join("audit.jsonl"), n).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_signed_ssa_names_the_key_set_and_the_request_is_forwarded() {
    let c = Chain::start().await;
    let r = c.h.put_jwt(&c.compliant()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(c.h.registry.count(), 1);
    assert_eq!(c.h.key_host.hits(DIRECTORY_JWKS), 1);
    assert_eq!(c.h.key_host.hits(SSA_JWKS), 1, "TPP keys come from the SSA");
    let audit = c.audit(1).await;
    let rec = audit.last().expect("an audit record");
    assert_eq!(rec["verdict"], "accepted");
    assert_eq!(rec["software_id"], SOFTWARE_ID);
    assert_eq!(rec["client_id"], CLIENT_ID);
    let text = serde_json::to_string(rec).expect("json");
    assert!(!text.contains("eyJ"), "no JWT in audit: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_or_forged_ssas_are_refused_before_anything_they_name_is_fetched() {
    let c = Chain::start().await;
    // An issuer the bank does not trust.
    let ssa = c.ssa_with(|m| {
        m.insert("iss".into(), json!("Rogue Directory"));
    });
    let r = c.h.put_jwt(&c.h.tpp.sign(&c.request_with_ssa(&ssa))).await;
    assert_rejection(&r, 400, "unapproved_software_statement");

    // The trusted issuer's name, signed with another key (same kid).
    let forger = Signer::generate("directory-key-1").expect("key");
    let forged = forger.sign(&c.ssa_claims());
    let r =
        c.h.put_jwt(&c.h.tpp.sign(&c.request_with_ssa(&forged)))
            .await;
    let d = assert_rejection(&r, 400, "invalid_software_statement");
    assert!(d.contains("signature"), "{d}");

    // Signed by a key the directory's key set does not list.
    let unlisted = Signer::generate("directory-key-9").expect("key");
    let r =
        c.h.put_jwt(
            &c.h.tpp
                .sign(&c.request_with_ssa(&unlisted.sign(&c.ssa_claims()))),
        )
        .await;
    let d = assert_rejection(&r, 400, "invalid_software_statement");
    assert!(d.contains("kid"), "{d}");

    // Unsigned, where the profile does not allow it.
    let none = unsigned(&json!({"alg": "none"}), &c.ssa_claims(), b"");
    let r = c.h.put_jwt(&c.h.tpp.sign(&c.request_with_ssa(&none))).await;
    let d = assert_rejection(&r, 400, "invalid_software_statement");
    assert!(d.contains("unsigned"), "{d}");

    // Garbage.
    let r =
        c.h.put_jwt(&c.h.tpp.sign(&c.request_with_ssa("not.a.jws")))
            .await;
    assert_rejection(&r, 400, "invalid_software_statement");

    c.h.assert_not_forwarded();
    assert_eq!(
        c.h.key_host.hits(SSA_JWKS),
        0,
        "an unverified SSA's URL was fetched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_ssa_rule_is_enforced() {
    let c = Chain::start().await;
    let good_ssa = c.ssa_with(|_| {});
    let cases: Vec<(&str, String, u16, &str, &str)> = vec![
        (
            "expired SSA",
            c.h.tpp.sign(&c.request_with_ssa(&c.ssa_with(|m| {
                m.insert("exp".into(), json!(now() - 3600));
            }))),
            400,
            "invalid_software_statement",
            "expired",
        ),
        (
            "iss is not software_id",
            c.h.tpp.sign(&c.h.claims_with(|m| {
                m.remove("jwks_uri");
                m.insert("software_statement".into(), json!(good_ssa));
            })),
            400,
            "invalid_software_statement",
            "software_id",
        ),
        (
            "software_id differs",
            c.h.tpp.sign(&{
                let mut v = c.request_with_ssa(&good_ssa);
                v["software_id"] = json!("another-software");
                v
            }),
            400,
            "invalid_software_statement",
            "software_id",
        ),
        (
            "second redirect not in the SSA",
            c.h.tpp.sign(&{
                let mut v = c.request_with_ssa(&good_ssa);
                v["redirect_uris"] =
                    json!(["https://tpp.example/callback", "https://evil.example/cb"]);
                v
            }),
            400,
            "invalid_redirect_uri",
            "evil.example",
        ),
        (
            "scope beyond software_roles",
            c.h.tpp.sign(&{
                let mut v = c.request_with_ssa(&good_ssa);
                v["scope"] = json!("openid accounts fundsconfirmations");
                v
            }),
            400,
            "invalid_client_metadata",
            "fundsconfirmations",
        ),
        (
            "conflicting jwks_uri",
            c.h.tpp.sign(&{
                let mut v = c.request_with_ssa(&good_ssa);
                v["jwks_uri"] = json!(c.h.jwks_uri);
                v
            }),
            400,
            "invalid_client_metadata",
            "jwks_uri",
        ),
        (
            "no SSA where required",
            c.h.tpp.sign(&c.h.claims_with(|m| {
                m.insert("iss".into(), json!(SOFTWARE_ID));
            })),
            400,
            "invalid_software_statement",
            "required",
        ),
    ];
    for (name, jwt, status, error, needle) in cases {
        let r = c.h.put_jwt(&jwt).await;
        let d = assert_rejection(&r, status, error);
        assert!(d.contains(needle), "{name}: {d}");
    }
    c.h.assert_not_forwarded();
    assert_eq!(
        c.h.key_host.hits(JWKS_PATH),
        0,
        "the request's own jwks_uri was fetched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_key_set_can_be_a_local_file_and_unsigned_ssas_pass_only_when_allowed() {
    let directory = Signer::generate("file-directory-key").expect("key");
    let jwks = directory.jwks();
    let profile = UK_PROFILE.replace("allow_unsigned = false", "allow_unsigned = true");
    let h = Harness::start_setup(|cfg, s| {
        s.write("uk-unsigned.toml", &profile);
        s.write("directory.jwks", &jwks);
        cfg.set("policy", "profile", "uk-unsigned.toml");
        let mut d = toml::Table::new();
        d.insert("issuer".into(), DIRECTORY.into());
        d.insert("key_set_file".into(), "directory.jwks".into());
        cfg.push("policy", "directories", d);
    })
    .await;
    h.key_host.set(SSA_JWKS, Serve::Json(h.tpp.jwks()));
    let ssa_claims = json!({
        "iss": DIRECTORY, "iat": now() - 60, "software_id": SOFTWARE_ID,
        "software_jwks_endpoint": h.key_host.url(SSA_JWKS),
        "software_redirect_uris": ["https://tpp.example/callback"],
        "software_roles": ["AISP", "PISP"]
    });
    for ssa in [
        directory.sign(&ssa_claims),
        unsigned(&json!({"alg": "none"}), &ssa_claims, b""),
    ] {
        let req = h.claims_with(|m| {
            m.remove("jwks_uri");
            m.insert("iss".into(), json!(SOFTWARE_ID));
            m.insert("software_statement".into(), json!(ssa));
        });
        let r = h.put_jwt(&h.tpp.sign(&req)).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!(h.registry.count(), 2);
    let (samples, _) = h
        .metrics_when(|s| {
            s.get("dcrgate_software_statements_total{result=\"unsigned\"}") == Some(1.0)
        })
        .await;
    assert_eq!(
        samples.get("dcrgate_software_statements_total{result=\"verified\"}"),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_jti_is_refused_and_case_does_not_make_it_new() {
    let c = Chain::start().await;
    let ssa = c.ssa_with(|_| {});
    let jti = "6c1e8a34-2f0b-4d7e-9a55-0e3f6b7c8d91";
    let first = c.h.tpp.sign(&{
        let mut v = c.request_with_ssa(&ssa);
        v["jti"] = json!(jti);
        v
    });
    let r = c.h.put_jwt(&first).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // The same request object again, then a new one reusing the jti in upper case.
    let r = c.h.put_jwt(&first).await;
    let d = assert_rejection(&r, 400, "invalid_client_metadata");
    assert!(d.contains("jti"), "{d}");
    let upper = c.h.tpp.sign(&{
        let mut v = c.request_with_ssa(&ssa);
        v["jti"] = json!(jti.to_uppercase());
        v
    });
    let r = c.h.put_jwt(&upper).await;
    assert_rejection(&r, 400, "invalid_client_metadata");
    // Not a UUID.
    let bad = c.h.tpp.sign(&{
        let mut v = c.request_with_ssa(&ssa);
        v["jti"] = json!("1234");
        v
    });
    let r = c.h.put_jwt(&bad).await;
    assert_rejection(&r, 400, "invalid_client_metadata");
    assert_eq!(c.h.registry.count(), 1, "only the first was forwarded");
    let (samples, _) =
        c.h.metrics_when(|s| {
            s.get("dcrgate_replay_checks_total{result=\"replayed\",store=\"memory\"}") == Some(2.0)
        })
        .await;
    assert_eq!(
        samples.get("dcrgate_replay_checks_total{result=\"first\",store=\"memory\"}"),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_to_a_certificate_of_the_same_organisation_is_accepted_and_audited() {
    let c = Chain::start().await;
    let ssa = c.ssa_with(|_| {});
    // Sent under the current certificate, naming the next one (same organizationIdentifier
    // and O, new CN).
    let next = "CN=0015800001HQQrZAAX-2027,2.5.4.97=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB";
    let rotate = c.h.tpp.sign(&{
        let mut v = c.request_with_ssa(&ssa);
        v["tls_client_auth_dn"] = json!(next);
        v
    });
    let r = c.h.put_jwt(&rotate).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // Another organisation's certificate: refused, naming the attribute.
    let other = c.h.tpp.sign(&{
        let mut v = c.request_with_ssa(&ssa);
        v["tls_client_auth_dn"] = json!("CN=x,2.5.4.97=PSDGB-FCA-999999,O=Example TPP Ltd,C=GB");
        v
    });
    let r = c.h.put_jwt(&other).await;
    let d = assert_rejection(&r, 403, "access_denied");
    assert!(
        d.contains("rotation") && d.contains("PSDGB-FCA-999999"),
        "{d}"
    );
    assert_eq!(c.h.registry.count(), 1);

    let audit = c.audit(2).await;
    let decisions: Vec<(&str, &str)> = audit
        .iter()
        .filter_map(|r| Some((r["verdict"].as_str()?, r["rotation"].as_str()?)))
        .collect();
    assert_eq!(
        decisions,
        vec![("accepted", "accepted"), ("rejected", "denied")]
    );
    let (samples, _) =
        c.h.metrics_when(|s| {
            s.get("dcrgate_certificate_rotations_total{decision=\"denied\"}") == Some(1.0)
        })
        .await;
    assert_eq!(
        samples.get("dcrgate_certificate_rotations_total{decision=\"accepted\"}"),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_deny_refuses_a_new_certificate_name() {
    let c = Chain::start_with(|cfg, s| {
        s.write(
            "uk-deny.toml",
            &UK_PROFILE.replace("mode = \"same-organisation\"", "mode = \"deny\""),
        );
        cfg.set("policy", "profile", "uk-deny.toml");
    })
    .await;
    let ssa = c.ssa_with(|_| {});
    let rotate = c.h.tpp.sign(&{
        let mut v = c.request_with_ssa(&ssa);
        v["tls_client_auth_dn"] =
            json!("CN=0015800001HQQrZAAX-2027,2.5.4.97=PSDGB-FCA-123456,O=Example TPP Ltd,C=GB");
        v
    });
    let r = c.h.put_jwt(&rotate).await;
    assert_rejection(&r, 403, "access_denied");
    c.h.assert_not_forwarded();
    let audit = c.audit(1).await;
    assert_eq!(audit[0]["rotation"], "denied");
    assert_eq!(audit[0]["reasons"], json!(["dn_mismatch"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_redis_refuse_a_jti_used_at_the_other() {
    let redis = common::redis::RedisServer::start(&[]);
    let url = redis.url("", "/0");
    let c = Chain::start_with(|cfg, _| {
        cfg.set("replay", "store", "redis");
        cfg.set("redis", "url", url.clone());
    })
    .await;
    let replica = c.h.spawn_replica().await;
    let jwt = c.compliant();
    let r = c.h.put_jwt(&jwt).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let raw = Put::jwt(&jwt).bytes();
    let r = replica.send(&raw).await;
    let d = assert_rejection(&r, 400, "invalid_client_metadata");
    assert!(d.contains("jti"), "{d}");
    // A new request object is accepted by the replica.
    let r = replica.send(&Put::jwt(c.compliant()).bytes()).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(c.h.registry.count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_closed_unless_configured_to_accept() {
    for (policy, status) in [("reject", 503), ("accept", 200)] {
        let port = common::closed_port();
        let c = Chain::start_with(|cfg, _| {
            cfg.set("replay", "store", "redis");
            cfg.set("redis", "url", format!("redis://127.0.0.1:{port}/0"));
            cfg.set("replay", "on_store_error", policy);
        })
        .await;
        let r = c.h.put_jwt(&c.compliant()).await;
        assert_eq!(
            r.status,
            status,
            "{policy}: {}",
            String::from_utf8_lossy(&r.body)
        );
        if status == 503 {
            assert_rejection(&r, 503, "temporarily_unavailable");
            c.h.assert_not_forwarded();
        } else {
            assert_eq!(c.h.registry.count(), 1);
        }
        let (samples, _) =
            c.h.metrics_when(|s| {
                s.get("dcrgate_replay_checks_total{result=\"error\",store=\"redis\"}") == Some(1.0)
            })
            .await;
        assert_eq!(
            samples.get("dcrgate_replay_checks_total{result=\"error\",store=\"redis\"}"),
            Some(1.0),
            "{policy}"
        );
    }
}

/// An ES256 key pair: its public JWK and a signer of compact JWS.
struct Es256 {
    pair: ring::signature::EcdsaKeyPair,
    kid: String,
}

impl Es256 {
    fn generate(kid: &str) -> Self {
        use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .expect("pair");
        Self {
            pair,
            kid: kid.to_owned(),
        }
    }

    fn jwks(&self) -> String {
        use base64::Engine;
        use ring::signature::KeyPair;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        // Uncompressed point: 0x04 || x || y.
        let point = self.pair.public_key().as_ref();
        json!({"keys": [{
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": self.kid,
            "x": b64.encode(&point[1..33]), "y": b64.encode(&point[33..65]),
        }]})
        .to_string()
    }

    fn sign(&self, claims: &Value) -> String {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = json!({"alg": "ES256", "kid": self.kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64.encode(header.to_string()),
            b64.encode(claims.to_string())
        );
        let rng = ring::rand::SystemRandom::new();
        let sig = self.pair.sign(&rng, input.as_bytes()).expect("sign");
        format!("{input}.{}", b64.encode(sig.as_ref()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_es256_request_object_is_accepted_under_the_uk_profile() {
    let c = Chain::start().await;
    let tpp = Es256::generate("tpp-ec-key-1");
    c.h.key_host.set(SSA_JWKS, Serve::Json(tpp.jwks()));
    let ssa = c.ssa_with(|_| {});
    let claims = c.request_with_ssa(&ssa);
    let r = c.h.put_jwt(&tpp.sign(&claims)).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(c.h.registry.count(), 1);
    // The same claims signed by another EC key under that kid: refused.
    let forger = Es256 {
        kid: "tpp-ec-key-1".into(),
        ..Es256::generate("x")
    };
    let mut again = c.request_with_ssa(&c.ssa_with(|_| {}));
    again["jti"] = json!("5d6c7b8a-9f0e-4d1c-8b2a-3e4f5a6b7c8d");
    let r = c.h.put_jwt(&forger.sign(&again)).await;
    assert_rejection(&r, 400, "invalid_client_metadata");
    assert_eq!(c.h.registry.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_directory_key_set_is_a_503_and_nothing_is_forwarded() {
    // The directory's key set cannot be had from the start (nothing is cached).
    let c = Chain::start_with(|_, s| s.key_host.set(DIRECTORY_JWKS, Serve::Status(503))).await;
    let r = c.h.put_jwt(&c.compliant()).await;
    let d = assert_rejection(&r, 503, "temporarily_unavailable");
    assert!(d.contains("try again later"), "{d}");
    c.h.assert_not_forwarded();
    // The TPP key set the SSA names is not fetched on an unverified statement's word.
    assert_eq!(c.h.key_host.hits(SSA_JWKS), 0);
    let audit = c.audit(1).await;
    assert_eq!(
        audit.last().map(|r| r["reasons"].clone()),
        Some(json!(["ssa_keys_unavailable"]))
    );
}

/// The SSA algorithms come from each directory's `algorithms`, not from the statement's header:
/// a directory allowing only ES256 accepts its ES256 statements and refuses a PS256 one signed by
/// an RSA key in its own key set; the default (PS256) directory refuses an ES256 statement.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssa_algorithms_are_each_directorys_own() {
    const EC_DIRECTORY: &str = "EC Directory Ltd";
    const EC_JWKS: &str = "/directory/ec.jwks";
    let ec = Es256::generate("ec-directory-key-1");
    let rsa_in_ec_set = Signer::generate("ec-directory-rsa-1").expect("key");
    // The EC directory's key set holds its EC key and an RSA key.
    let mut keys: Value = serde_json::from_str(&ec.jwks()).expect("jwks");
    let rsa: Value = serde_json::from_str(&rsa_in_ec_set.jwks()).expect("jwks");
    keys["keys"]
        .as_array_mut()
        .expect("keys")
        .extend(rsa["keys"].as_array().expect("keys").iter().cloned());
    let ec_set = keys.to_string();
    let c = Chain::start_with(move |cfg, s| {
        s.key_host.set(EC_JWKS, Serve::Json(ec_set.clone()));
        let mut d = toml::Table::new();
        d.insert("issuer".into(), EC_DIRECTORY.into());
        d.insert("key_set_url".into(), s.key_host.url(EC_JWKS).into());
        d.insert(
            "algorithms".into(),
            toml::Value::Array(vec!["ES256".into()]),
        );
        cfg.push("policy", "directories", d);
    })
    .await;
    let ec_claims = {
        let mut s = c.ssa_claims();
        s["iss"] = json!(EC_DIRECTORY);
        s
    };
    let send = |ssa: String, jti: &'static str| {
        let mut claims = c.request_with_ssa(&ssa);
        claims["jti"] = json!(jti);
        c.h.tpp.sign(&claims)
    };

    // The EC directory's own ES256 statement: accepted.
    let r =
        c.h.put_jwt(&send(
            ec.sign(&ec_claims),
            "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
        ))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(c.h.registry.count(), 1);

    // PS256, by an RSA key the EC directory's key set does hold: refused, ES256 only.
    let r =
        c.h.put_jwt(&send(
            rsa_in_ec_set.sign(&ec_claims),
            "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
        ))
        .await;
    let d = assert_rejection(&r, 400, "invalid_software_statement");
    assert!(d.contains("PS256"), "{d}");

    // ES256 under the PS256-only directory's name (its key id, too): refused.
    let impostor = Es256 {
        kid: "directory-key-1".into(),
        ..Es256::generate("x")
    };
    let r =
        c.h.put_jwt(&send(
            impostor.sign(&c.ssa_claims()),
            "2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a",
        ))
        .await;
    let d = assert_rejection(&r, 400, "invalid_software_statement");
    assert!(d.contains("ES256"), "{d}");

    assert_eq!(c.h.registry.count(), 1, "a refused statement was forwarded");
    // Only the accepted statement's key set was fetched.
    assert_eq!(c.h.key_host.hits(SSA_JWKS), 1);
}

/// With every rule in shadow, each shadowable rule a request breaks is counted under its own id
/// in `dcrgate_shadow_would_reject_total` and the request is forwarded; the rules that are never
/// in shadow stay enforced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_shadow_each_broken_rule_is_counted_under_its_id() {
    let profile = UK_PROFILE
        .replace("require_org_name = false", "require_org_name = true")
        .replace("all = false", "all = true");
    assert!(profile.contains("require_org_name = true") && profile.contains("all = true"));
    let c = Chain::start_with(move |_, s| s.write("uk.toml", &profile)).await;
    let ssa = c.ssa_with(|_| {});
    // One request breaking most shadowable rules at once.
    let mut many = c.request_with_ssa(&ssa);
    let iat = many["iat"].as_i64().expect("iat");
    for (k, v) in [
        ("token_endpoint_auth_method", json!("private_key_jwt")),
        ("id_token_signed_response_alg", json!("RS256")),
        ("request_object_signing_alg", json!("RS256")),
        ("scope", json!("openid admin fundsconfirmations")),
        ("exp", json!(iat + 7200)),
        ("response_types", json!(["token"])),
        ("grant_types", json!(["implicit"])),
        ("application_type", json!("native")),
        ("token_endpoint_auth_signing_alg", json!("RS256")),
        ("client_uri", json!("http://tpp.example/about")),
        ("tls_client_auth_san_dns", json!("tpp.example")),
        ("redirect_uris", json!(["https://tpp.example/elsewhere"])),
        ("software_id", json!("another-software")),
    ] {
        many[k] = v;
    }
    many.as_object_mut().expect("object").remove("org_name");
    // No iat.
    let mut no_iat = c.request_with_ssa(&ssa);
    no_iat["jti"] = json!("6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9e");
    no_iat.as_object_mut().expect("object").remove("iat");
    // A software statement issued in the future.
    let mut future_ssa = c.request_with_ssa(&c.ssa_with(|m| {
        m.insert("iat".into(), json!(now() + 3600));
    }));
    future_ssa["jti"] = json!("7b8c9d0e-1f2a-4b3c-9d4e-5f6a7b8c9d0f");
    for claims in [&many, &no_iat, &future_ssa] {
        let r = c.h.put_jwt(&c.h.tpp.sign(claims)).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!(c.h.registry.count(), 3, "forwarded in shadow");
    let rules = [
        "token_endpoint_auth_method",
        "id_token_signed_response_alg",
        "request_object_signing_alg",
        "scope",
        "ssa_roles",
        "org_name",
        "lifetime",
        "response_types",
        "grant_types",
        "application_type",
        "token_endpoint_auth_signing_alg",
        "metadata_uri",
        "tls_client_auth_san",
        "ssa_redirect_uris",
        "software_id",
        "iat",
        "ssa_time",
    ];
    let series = |rule: &str| format!("dcrgate_shadow_would_reject_total{{reason=\"{rule}\"}}");
    let (samples, text) =
        c.h.metrics_when(|s| {
            rules
                .iter()
                .all(|r| s.get(&series(r)).unwrap_or(0.0) >= 1.0)
        })
        .await;
    for rule in rules {
        assert!(
            samples.get(&series(rule)).unwrap_or(0.0) >= 1.0,
            "{rule} not counted: {text}"
        );
    }
    // A rule never in shadow is enforced all the same.
    let mut expired = c.request_with_ssa(&ssa);
    expired["jti"] = json!("8c9d0e1f-2a3b-4c4d-8e5f-6a7b8c9d0e1a");
    expired["exp"] = json!(now() - 600);
    let r = c.h.put_jwt(&c.h.tpp.sign(&expired)).await;
    assert_rejection(&r, 400, "invalid_client_metadata");
    assert_eq!(c.h.registry.count(), 3);
}

/// The rules the other tests reach only in shadow or not at all, enforced: each is a 400 under
/// its own reason id and never forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn algorithm_org_name_and_software_key_set_rules_are_enforced() {
    let profile = UK_PROFILE.replace("require_org_name = false", "require_org_name = true");
    let c = Chain::start_with(move |_, s| s.write("uk.toml", &profile)).await;
    let ssa = c.ssa_with(|_| {});
    type Edit = Box<dyn Fn(&mut Value)>;
    let cases: [(&str, Edit); 3] = [
        (
            "id_token_signed_response_alg",
            Box::new(|m| m["id_token_signed_response_alg"] = json!("RS256")),
        ),
        (
            "request_object_signing_alg",
            Box::new(|m| m["request_object_signing_alg"] = json!("ES384")),
        ),
        (
            "org_name",
            Box::new(|m| {
                m.as_object_mut().expect("object").remove("org_name");
            }),
        ),
    ];
    for (rule, edit) in &cases {
        let mut claims = c.request_with_ssa(&ssa);
        edit(&mut claims);
        let r = c.h.put_jwt(&c.h.tpp.sign(&claims)).await;
        let d = assert_rejection(&r, 400, "invalid_client_metadata");
        assert!(!d.is_empty(), "{rule}");
    }
    // The software statement names a key set on a host the bank does not allow.
    let elsewhere = c.ssa_with(|m| {
        m.insert(
            "software_jwks_endpoint".into(),
            json!("https://keys.elsewhere.example/sw.jwks"),
        );
    });
    let r =
        c.h.put_jwt(&c.h.tpp.sign(&c.request_with_ssa(&elsewhere)))
            .await;
    let d = assert_rejection(&r, 400, "invalid_software_statement");
    assert!(d.contains("allowlist"), "{d}");
    c.h.assert_not_forwarded();
    let series = |rule: &str| {
        format!("dcrgate_rejections_total{{reason=\"{rule}\",route=\"register_update\"}}")
    };
    let rules = [
        "id_token_signed_response_alg",
        "request_object_signing_alg",
        "org_name",
        "ssa_jwks",
    ];
    let (samples, text) =
        c.h.metrics_when(|s| rules.iter().all(|r| s.get(&series(r)) == Some(1.0)))
            .await;
    for rule in rules {
        assert_eq!(samples.get(&series(rule)), Some(1.0), "{rule}: {text}");
    }
}
