//! `dcrgate explain`: the offline verdict a support desk gets from a TPP's request object and
//! transport certificate, run as the real binary on files generated with the sandbox PKI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dcrgate_certs::SubjectSpec;
use dcrgate_policies::Rule;
use dcrgate_sandbox::pki::{signing_key, SandboxPki};
use dcrgate_sandbox::tpp::{now, unsigned, Signer, Tpp};
use dcrgate_sandbox::world::{SandboxConfig, AUDIENCE, SEED_PROFILE, UK_PROFILE};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::common::{Harness, Put, Samples};

const CLIENT_ID: &str = "tpp-client-7Qx4";
const KID: &str = "tpp-signing-key-1";
const JWKS_URI: &str = "https://keys.tpp.example/tpp/jwks.json";

fn subject() -> SubjectSpec {
    SubjectSpec::obwac("Example TPP Ltd", "PSDGB-FCA-123456", "0015800001HQQrZAAX")
}

/// A sample TPP and a folder for the files handed to `dcrgate explain`.
struct Desk {
    dir: TempDir,
    pki: SandboxPki,
    tpp: Tpp,
    cert: PathBuf,
}

impl Desk {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = SandboxPki::generate().expect("PKI");
        let tpp =
            Tpp::new(&pki, CLIENT_ID, subject(), signing_key(KID).expect("key")).expect("TPP");
        let cert = dir.path().join("tpp-transport.pem");
        std::fs::write(&cert, &tpp.transport.cert_pem).expect("write certificate");
        Self {
            dir,
            pki,
            tpp,
            cert,
        }
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write");
        path
    }

    /// Compliant seed-profile claims.
    fn claims(&self) -> Value {
        self.tpp.claims(AUDIENCE, JWKS_URI)
    }

    /// The TPP's published key set, written as a JWKS file.
    fn jwks(&self) -> PathBuf {
        self.write("tpp.jwks", &self.tpp.jwks())
    }

    /// Sign `claims` and write them as `name` (with the trailing newline an editor adds).
    fn jwt(&self, name: &str, claims: &Value) -> PathBuf {
        self.write(name, &format!("{}\n", self.tpp.sign(claims)))
    }
}

fn explain(jwt: &Path, cert: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dcrgate"))
        .arg("explain")
        .arg("--jwt")
        .arg(jwt)
        .arg("--cert")
        .arg(cert)
        .args(extra)
        .output()
        .expect("run dcrgate explain")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The value after `prefix` on the line that starts with it.
fn line_value<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{text}"))
        .trim()
}

/// The `PASS` / `FAIL` / `SKIP` lines of the policy rules.
fn rule_lines(text: &str) -> Vec<&str> {
    let ids: Vec<&str> = Rule::ALL.iter().map(|r| r.id()).collect();
    text.lines()
        .filter(|l| {
            let mut words = l.split([' ', ':']);
            let verdict = words.next().unwrap_or("");
            let id = words.next().unwrap_or("");
            ["PASS", "FAIL", "SKIP"].contains(&verdict) && ids.contains(&id)
        })
        .collect()
}

fn assert_code(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

#[test]
fn explain_accepts_a_compliant_request() {
    let desk = Desk::new();
    let jwt = desk.jwt("request.jwt", &desk.claims());
    let jwks = desk.jwks();
    let out = explain(&jwt, &desk.cert, &["--jwks", &jwks.to_string_lossy()]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("Verdict: ACCEPT"), "{text}");
    assert!(
        text.contains(&format!(
            "Request object signature: VERIFIED: PS256 signature verified with kid {KID}"
        )),
        "{text}"
    );
    // Without the key set, the same request is never reported as accepted.
    let out = explain(&jwt, &desk.cert, &[]);
    assert_code(&out, 3);
    let text = stdout(&out);
    assert!(
        text.contains("Request object signature: NOT CHECKED"),
        "{text}"
    );
    assert!(text.contains("Verdict: NOT CHECKED"), "{text}");
    assert!(!text.contains("Verdict: ACCEPT"), "{text}");
    assert!(text.contains("Profile:  seed-update"), "{text}");
    assert!(
        text.contains(&format!(
            "ClientId: {CLIENT_ID} (from the JWT's client_id claim"
        )),
        "{text}"
    );
    let presented = line_value(&text, "Certificate subject (canonical RFC 4514):");
    let claimed = line_value(&text, "tls_client_auth_dn (canonical RFC 4514):");
    assert_eq!(presented, subject().to_rfc4514());
    assert_eq!(presented, claimed);
    assert!(text.contains("DN match (any-order): match"), "{text}");
    let rules = rule_lines(&text);
    assert_eq!(rules.len(), Rule::ALL.len(), "{text}");
    assert!(
        rules
            .iter()
            .all(|l| l.starts_with("PASS ") || l.starts_with("SKIP ")),
        "{text}"
    );
    // No software statement: its rules do not apply; the aud is not known offline.
    assert!(text.contains("SKIP ssa_redirect_uris"), "{text}");
    assert!(text.contains("SKIP aud"), "{text}");
    assert!(
        text.contains(&format!(
            "Key set URL (would be fetched; nothing is fetched offline): {JWKS_URI}"
        )),
        "{text}"
    );
    assert!(
        text.contains(
            "keys.tpp.example (the host of the JWT's jwks_uri: offline, the allowlist is not known"
        ),
        "{text}"
    );
}

#[test]
fn explain_names_the_attribute_of_a_dn_mismatch() {
    let desk = Desk::new();
    let mut claims = desk.claims();
    claims["tls_client_auth_dn"] =
        json!(
            SubjectSpec::obwac("Example TPP Ltd", "PSDGB-FCA-999999", "0015800001HQQrZAAX")
                .to_rfc4514()
        );
    let jwt = desk.jwt("other-org.jwt", &claims);
    let out = explain(&jwt, &desk.cert, &[]);
    assert_code(&out, 1);
    let text = stdout(&out);
    let mismatch = line_value(&text, "DN match (any-order): MISMATCH —");
    for needle in [
        "organizationIdentifier",
        "PSDGB-FCA-999999",
        "PSDGB-FCA-123456",
    ] {
        assert!(mismatch.contains(needle), "{needle} in {mismatch}");
    }
    assert!(
        text.contains("Certificate rotation (deny): denied"),
        "{text}"
    );
    assert!(
        text.contains("FAIL dn_mismatch (403 access_denied): "),
        "{text}"
    );
    assert!(
        text.contains("Verdict: REJECT — 403 access_denied (dn_mismatch)"),
        "{text}"
    );
}

#[test]
fn explain_lists_every_violation_with_its_rule() {
    let desk = Desk::new();
    let mut claims = desk.claims();
    let t = now();
    claims["redirect_uris"] = json!(["http://tpp.example/callback"]);
    claims["scope"] = json!("openid accounts admin");
    claims["iat"] = json!(t - 7200);
    claims["exp"] = json!(t - 3600);
    let jwt = desk.jwt("several.jwt", &claims);
    let out = explain(&jwt, &desk.cert, &[]);
    assert_code(&out, 1);
    let text = stdout(&out);
    for line in [
        "FAIL redirect_uris (400 invalid_redirect_uri): redirect_uris: `http://tpp.example/callback` does not use https",
        "FAIL scope (400 invalid_client_metadata): scope admin not allowed",
        "FAIL exp (400 invalid_client_metadata): the request object expired",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    let failed = rule_lines(&text)
        .iter()
        .filter(|l| l.starts_with("FAIL "))
        .count();
    assert_eq!(failed, 3, "{text}");
    assert!(text.contains("Verdict: REJECT — 400 "), "{text}");
}

#[test]
fn explain_matches_an_equivalent_dn_spelling() {
    let desk = Desk::new();
    let mut claims = desk.claims();
    // Certificate order, different case, spaces around the separators.
    claims["tls_client_auth_dn"] = json!(
        "C=GB, O=example tpp ltd, organizationIdentifier = PSDGB-FCA-123456, CN=0015800001HQQrZAAX"
    );
    let jwt = desk.jwt("spelling.jwt", &claims);
    let out = explain(&jwt, &desk.cert, &[]);
    assert_code(&out, 3);
    let text = stdout(&out);
    assert!(text.contains("DN match (any-order): match"), "{text}");
    assert_eq!(
        line_value(&text, "tls_client_auth_dn (canonical RFC 4514):"),
        "C=GB,O=example tpp ltd,organizationIdentifier=PSDGB-FCA-123456,CN=0015800001HQQrZAAX"
    );

    // strict-order accepts the exact reverse too; the profile comes from --policy.
    let strict = SEED_PROFILE.replace(r#"match = "any-order""#, r#"match = "strict-order""#);
    assert_ne!(strict, SEED_PROFILE);
    let policy = desk.write("strict.toml", &strict);
    let out = explain(&jwt, &desk.cert, &["--policy", &policy.to_string_lossy()]);
    assert_code(&out, 3);
    assert!(stdout(&out).contains("DN match (strict-order): match"));
}

#[test]
fn explain_applies_the_uk_profile_to_an_unverified_software_statement() {
    let desk = Desk::new();
    let directory = Signer::generate("directory-key-1").expect("directory key");
    let t = now();
    let ssa = directory.sign(&json!({
        "iss": "OpenBanking Ltd",
        "iat": t - 60,
        "software_id": "sw-4711",
        "org_id": "0015800001041REAAY",
        "software_jwks_endpoint": "https://keystore.openbanking.org.uk/org/sw-4711.jwks",
        "software_redirect_uris": ["https://tpp.example/registered-callback"],
        "software_roles": ["AISP", "PISP"],
    }));
    let mut claims = desk.claims();
    claims["iss"] = json!("sw-4711");
    claims["software_id"] = json!("sw-4711");
    claims["software_statement"] = json!(ssa);
    if let Some(c) = claims.as_object_mut() {
        c.remove("jwks_uri");
    }
    let jwt = desk.jwt("uk.jwt", &claims);
    let policy = desk.write("uk-ob-dcr-3.3.toml", UK_PROFILE);
    let out = explain(&jwt, &desk.cert, &["--policy", &policy.to_string_lossy()]);
    assert_code(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("Profile:  uk-ob-dcr-3.3"), "{text}");
    assert!(
        text.contains("Software statement: decoded; its claims are used whether or not"),
        "{text}"
    );
    assert!(text.contains("not verified"), "{text}");
    assert!(
        text.contains(
            "FAIL ssa_redirect_uris (400 invalid_redirect_uri): redirect_uris not in the \
             software statement's software_redirect_uris: https://tpp.example/callback"
        ),
        "{text}"
    );
    // Everything else the SSA decides holds: roles grant the scopes, iss is the software_id,
    // the key set comes from the SSA.
    for pass in [
        "PASS ssa_roles",
        "PASS software_id",
        "PASS ssa_jwks",
        "PASS jti",
    ] {
        assert!(text.lines().any(|l| l == pass), "{pass}\n{text}");
    }
    assert!(text.contains("SKIP jwks_uri"), "{text}");
    assert!(
        text.contains(
            "Key set URL (would be fetched; nothing is fetched offline): \
             https://keystore.openbanking.org.uk/org/sw-4711.jwks"
        ),
        "{text}"
    );
    assert!(
        text.contains("Verdict: REJECT — 400 invalid_redirect_uri (ssa_redirect_uris)"),
        "{text}"
    );
}

#[test]
fn explain_reports_a_jws_header_problem_and_still_explains_the_claims() {
    let desk = Desk::new();
    let header = json!({"alg": "PS256", "kid": KID, "jku": "https://evil.example/jwks"});
    let jwt = desk.write(
        "jku.jwt",
        &desk.tpp.sign_with_header(&header, &desk.claims()),
    );
    let out = explain(&jwt, &desk.cert, &[]);
    assert_code(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("FAIL jws_header_key (400 invalid_client_metadata): request object: the JWS header member jku is not accepted"), "{text}");
    assert!(text.contains(CLIENT_ID), "the claims are shown: {text}");
    assert!(
        rule_lines(&text).iter().all(|l| !l.starts_with("FAIL ")),
        "{text}"
    );
    assert!(
        text.contains("Verdict: REJECT — 400 invalid_client_metadata (jws_header_key)"),
        "{text}"
    );
}

#[test]
fn explain_prints_json() {
    let desk = Desk::new();
    let mut claims = desk.claims();
    claims["scope"] = json!("openid admin");
    let jwt = desk.jwt("request.jwt", &claims);
    let out = explain(&jwt, &desk.cert, &["--format", "json"]);
    assert_code(&out, 1);
    let v: Value = serde_json::from_str(&stdout(&out)).expect("stdout is JSON");
    assert_eq!(v["verdict"]["outcome"], "reject");
    assert_eq!(v["verdict"]["status"], 400);
    assert_eq!(v["verdict"]["error"], "invalid_client_metadata");
    assert_eq!(v["signatures"]["request_object"]["status"], "not_checked");
    let rules = v["rules"].as_array().expect("rules array");
    assert_eq!(rules.len(), Rule::ALL.len());
    for r in rules {
        for key in ["id", "result", "status", "error", "messages"] {
            assert!(r.get(key).is_some(), "{key} in {r}");
        }
    }
    let scope = rules.iter().find(|r| r["id"] == "scope").expect("scope");
    assert_eq!(scope["result"], "fail");
    assert_eq!(scope["status"], 400);
    assert_eq!(scope["error"], "invalid_client_metadata");
    assert!(scope["messages"][0]
        .as_str()
        .is_some_and(|m| m.contains("admin")));
    assert_eq!(
        v["certificate"]["subject"],
        v["tls_client_auth_dn"]["canonical"]
    );
}

#[test]
fn explain_takes_audiences_and_key_set_hosts_from_a_config() {
    let desk = Desk::new();
    let files = desk.pki.write(desk.dir.path()).expect("PKI files");
    desk.write("seed-update.toml", SEED_PROFILE);
    let config = SandboxConfig::new(
        18443,
        19090,
        "127.0.0.1:18080".parse().expect("addr"),
        &files,
        "seed-update.toml",
    )
    .write(desk.dir.path(), "dcrgate.toml")
    .expect("config");
    let jwt = desk.jwt("request.jwt", &desk.claims());
    let out = explain(&jwt, &desk.cert, &["--config", &config.to_string_lossy()]);
    assert_code(&out, 1);
    let text = stdout(&out);
    assert!(text.lines().any(|l| l == "PASS aud"), "{text}");
    assert!(
        text.contains(
            "FAIL jwks_uri (400 invalid_client_metadata): key set host keys.tpp.example is not \
             on the allowlist"
        ),
        "{text}"
    );
    // An explicit --key-set-host overrides the configuration's allowlist.
    let out = explain(
        &jwt,
        &desk.cert,
        &[
            "--config",
            &config.to_string_lossy(),
            "--key-set-host",
            "*.tpp.example",
        ],
    );
    assert_code(&out, 3);
    // The certificate chain was checked against the configuration's client CA bundle.
    assert!(
        stdout(&out).contains("Certificate chain: trusted: chains to listener.client_ca"),
        "{}",
        stdout(&out)
    );

    let broken = desk.write("broken.toml", "[listener]\naddress = 1\n");
    let out = explain(&jwt, &desk.cert, &["--config", &broken.to_string_lossy()]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("broken.toml"), "{}", stderr(&out));
}

#[test]
fn explain_refuses_unusable_inputs_naming_the_file() {
    let desk = Desk::new();
    let jwt = desk.jwt("request.jwt", &desk.claims());

    let missing = desk.dir.path().join("no-such-request.jwt");
    let out = explain(&missing, &desk.cert, &[]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("no-such-request.jwt: cannot read"),
        "{}",
        stderr(&out)
    );

    let not_jwt = desk.write("notes.txt", "the TPP says it sent the usual request\n");
    let out = explain(&not_jwt, &desk.cert, &[]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("notes.txt: not a JWT"),
        "{}",
        stderr(&out)
    );

    let key = desk.write("tpp-transport.key", &desk.tpp.transport.key_pem);
    let out = explain(&jwt, &key, &[]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("tpp-transport.key: not a certificate"),
        "{}",
        stderr(&out)
    );

    let garbage = desk.write("tpp-transport.der", "definitely not DER");
    let out = explain(&jwt, &garbage, &[]);
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("tpp-transport.der: not an X.509 certificate"),
        "{}",
        stderr(&out)
    );

    let missing_cert = desk.dir.path().join("absent.pem");
    let out = explain(&jwt, &missing_cert, &[]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("absent.pem"), "{}", stderr(&out));

    let bad_profile = desk.write(
        "typo-profile.toml",
        "name = \"x\"\n[claims]\nalowed_scopes = []\n",
    );
    let out = explain(
        &jwt,
        &desk.cert,
        &["--policy", &bad_profile.to_string_lossy()],
    );
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains("typo-profile.toml"),
        "{}",
        stderr(&out)
    );

    // A DER certificate is read as well as PEM.
    let der = desk.dir.path().join("tpp-transport.cer");
    std::fs::write(&der, &desk.tpp.transport.cert_der).expect("write DER");
    assert_code(&explain(&jwt, &der, &[]), 3);
}

/// The reason ids whose `dcrgate_rejections_total` series grew between two scrapes.
fn grown(before: &Samples, after: &Samples) -> Vec<String> {
    let mut ids: Vec<String> = after
        .0
        .iter()
        .filter(|(series, value)| {
            series.starts_with("dcrgate_rejections_total{")
                && before.get(series).unwrap_or(0.0) < **value
        })
        .filter_map(|(series, _)| {
            let rest = series.split("reason=\"").nth(1)?;
            Some(rest.split('"').next()?.to_owned())
        })
        .collect();
    ids.sort();
    ids
}

/// `explain` runs the gateway's own checks: on the same request object and certificate, with
/// the gateway's configuration, it reaches the gateway's verdict (accept, or the status, `error`
/// and reason id the gateway answers and counts) for every class of request it can decide
/// offline.
#[tokio::test]
async fn explain_decides_as_the_gateway_does() {
    let h = Harness::start().await;
    let config = h.files.path().join("dcrgate.toml");
    let cert = h.files.path().join("explain-tpp.pem");
    std::fs::write(&cert, &h.tpp.transport.cert_pem).expect("certificate");
    let kid = h.tpp.signer.key.kid.clone();
    let too_large = "x".repeat(dcrgate::config::Limits::default().max_body_bytes);
    let claims = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| h.claims_with(|c| f(c));
    let cases: Vec<(&str, String)> = vec![
        ("compliant", h.tpp.sign(&h.claims())),
        (
            "scope",
            h.tpp.sign(&claims(&|c| {
                c.insert("scope".into(), json!("openid admin"));
            })),
        ),
        (
            "redirect",
            h.tpp.sign(&claims(&|c| {
                c.insert("redirect_uris".into(), json!(["http://tpp.example/cb"]));
            })),
        ),
        (
            "dn",
            h.tpp.sign(&claims(&|c| {
                let other = SubjectSpec::obwac("Other Ltd", "PSDGB-FCA-999999", "001580000OTHER");
                c.insert("tls_client_auth_dn".into(), json!(other.to_rfc4514()));
            })),
        ),
        (
            "aud",
            h.tpp.sign(&claims(&|c| {
                c.insert("aud".into(), json!("https://another-bank.example/"));
            })),
        ),
        (
            "client_id",
            h.tpp.sign(&claims(&|c| {
                c.insert("client_id".into(), json!("someone-else"));
            })),
        ),
        (
            "exp",
            h.tpp.sign(&claims(&|c| {
                c.insert("exp".into(), json!(now() - 3600));
            })),
        ),
        (
            "inline jwks",
            h.tpp.sign(&claims(&|c| {
                c.insert("jwks".into(), json!({"keys": []}));
            })),
        ),
        (
            "two violations",
            h.tpp.sign(&claims(&|c| {
                c.insert("scope".into(), json!("openid admin"));
                c.insert("exp".into(), json!(now() - 3600));
            })),
        ),
        (
            "alg none",
            unsigned(&json!({"alg": "none"}), &h.claims(), b""),
        ),
        (
            "RS256",
            unsigned(&json!({"alg": "RS256", "kid": kid}), &h.claims(), b"sig"),
        ),
        (
            "no kid",
            unsigned(&json!({"alg": "PS256"}), &h.claims(), b"sig"),
        ),
        (
            "too large",
            h.tpp.sign(&claims(&|c| {
                c.insert("org_name".into(), json!(too_large));
            })),
        ),
    ];
    for (name, jwt) in cases {
        let before = Samples::parse(&h.metrics_text().await);
        let mut request = Put::jwt(&jwt).bytes();
        if name == "too large" {
            // The head alone: the gateway answers the declared length without reading the body
            // (a client still writing it could see the connection close under it).
            let head = request
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .expect("a head");
            request.truncate(head + 4);
        }
        let answer = h.send(&request).await;
        let file = h.files.path().join("explain-request.jwt");
        std::fs::write(&file, &jwt).expect("request object");
        let args = dcrgate::explain::ExplainArgs {
            jwt: file,
            cert: cert.clone(),
            client_id: Some(CLIENT_ID.to_owned()),
            config: Some(config.clone()),
            ..Default::default()
        };
        let inputs = dcrgate::explain::Inputs::load(&args).expect("explainable inputs");
        let report = dcrgate::explain::explain(&inputs, now());
        if answer.status == 200 {
            assert!(
                report.passes_what_was_checked(),
                "{name}: the gateway forwarded it\n{}",
                report.render_text()
            );
            continue;
        }
        let body = answer.json().unwrap_or_default();
        let verdict = &report.verdict;
        assert_eq!(
            verdict.status,
            Some(answer.status),
            "{name}: {body}\n{}",
            report.render_text()
        );
        assert_eq!(verdict.error, body["error"].as_str(), "{name}: {body}");
        let (after, _) = h.metrics_when(|s| !grown(&before, s).is_empty()).await;
        let counted = grown(&before, &after);
        assert_eq!(
            counted,
            [verdict.decided_by.unwrap_or("-")],
            "{name}: {body}"
        );
    }
    // The compliant request alone reached the registry.
    assert_eq!(h.registry.count(), 1, "{:?}", h.registry.requests());
}

#[test]
fn explain_verifies_the_signature_and_names_a_forgery_or_an_unknown_key() {
    let desk = Desk::new();
    let jwks = desk.jwks();
    let jwks = jwks.to_string_lossy();
    // The same kid, another key: a forgery.
    let forger = Signer::generate(KID).expect("forger key");
    let forged = desk.write("forged.jwt", &forger.sign(&desk.claims()));
    let out = explain(&forged, &desk.cert, &["--jwks", &jwks]);
    assert_code(&out, 1);
    let text = stdout(&out);
    assert!(text.contains("Request object signature: FAILED"), "{text}");
    assert!(
        text.contains("Verdict: REJECT — 400 invalid_client_metadata (signature_invalid)"),
        "{text}"
    );
    // A kid the key set does not have.
    let stranger = Signer::generate("never-published").expect("key");
    let unknown = desk.write("unknown.jwt", &stranger.sign(&desk.claims()));
    let out = explain(&unknown, &desk.cert, &["--jwks", &jwks, "--format", "json"]);
    assert_code(&out, 1);
    let v: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(v["signatures"]["request_object"]["status"], "failed");
    assert_eq!(v["verdict"]["decided_by"], "unknown_kid");
    // A policy rejection is reported as such even when the signature verifies.
    let mut claims = desk.claims();
    claims["scope"] = json!("openid admin");
    let jwt = desk.jwt("scope.jwt", &claims);
    let out = explain(&jwt, &desk.cert, &["--jwks", &jwks, "--format", "json"]);
    assert_code(&out, 1);
    let v: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(v["signatures"]["request_object"]["status"], "verified");
    assert_eq!(v["verdict"]["decided_by"], "scope");
    // An http URL is refused as a key set source.
    let out = explain(
        &jwt,
        &desk.cert,
        &["--jwks", "http://keys.tpp.example/jwks"],
    );
    assert_code(&out, 2);
    assert!(stderr(&out).contains("must be https"), "{}", stderr(&out));
}

#[test]
fn explain_at_judges_the_request_at_the_time_it_was_sent() {
    let desk = Desk::new();
    let jwks = desk.jwks();
    let jwks = jwks.to_string_lossy();
    // Sent two hours ago, valid for 50 minutes then.
    let sent = now() - 7200;
    let mut claims = desk.claims();
    claims["iat"] = json!(sent);
    claims["exp"] = json!(sent + 3000);
    let jwt = desk.jwt("old.jwt", &claims);
    let out = explain(&jwt, &desk.cert, &["--jwks", &jwks]);
    assert_code(&out, 1);
    assert!(stdout(&out).contains("(exp)"), "{}", stdout(&out));
    let at = sent.to_string();
    let out = explain(&jwt, &desk.cert, &["--jwks", &jwks, "--at", &at]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(text.contains("Verdict: ACCEPT"), "{text}");
    let out = explain(&jwt, &desk.cert, &["--at", "yesterday"]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("--at yesterday"), "{}", stderr(&out));
}

#[test]
fn explain_checks_the_chain_against_the_configured_client_ca() {
    let desk = Desk::new();
    let files = desk.pki.write(desk.dir.path()).expect("PKI files");
    desk.write("seed-update.toml", SEED_PROFILE);
    let config = SandboxConfig::new(
        18443,
        19090,
        "127.0.0.1:18080".parse().expect("addr"),
        &files,
        "seed-update.toml",
    )
    .write(desk.dir.path(), "dcrgate.toml")
    .expect("config");
    let config = config.to_string_lossy().into_owned();
    // The same subject from another CA of the same name (another key): the signature on the
    // certificate does not verify under the trusted CA's key.
    let other = SandboxPki::generate().expect("another PKI");
    let rogue =
        Tpp::new(&other, CLIENT_ID, subject(), signing_key(KID).expect("key")).expect("TPP");
    let rogue_cert = desk.write("rogue.pem", &rogue.transport.cert_pem);
    let jwt = desk.jwt("request.jwt", &desk.claims());
    let hosts = ["--key-set-host", "*.tpp.example"];
    let out = explain(
        &jwt,
        &rogue_cert,
        &["--config", &config, hosts[0], hosts[1]],
    );
    assert_code(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains("Certificate chain: refused: the TLS handshake fails: bad_certificate"),
        "{text}"
    );
    assert!(
        text.contains("Verdict: REJECT — the TLS handshake fails (tls_handshake)"),
        "{text}"
    );
    // The genuine certificate chains, and a time after its notAfter makes it expired.
    let out = explain(&jwt, &desk.cert, &["--config", &config, hosts[0], hosts[1]]);
    assert_code(&out, 3);
    let late = (now() + 3 * 366 * 86_400).to_string();
    let out = explain(
        &jwt,
        &desk.cert,
        &["--config", &config, hosts[0], hosts[1], "--at", &late],
    );
    assert_code(&out, 1);
    assert!(
        stdout(&out).contains("Certificate chain: refused: the TLS handshake fails: expired"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn explain_verifies_a_software_statement_against_the_directory_key_set() {
    let desk = Desk::new();
    let directory = Signer::generate("directory-key-1").expect("directory key");
    let t = now();
    let ssa_claims = json!({
        "iss": "OpenBanking Ltd",
        "iat": t - 60,
        "software_id": "sw-4711",
        "software_jwks_endpoint": "https://keystore.openbanking.org.uk/org/sw-4711.jwks",
        "software_redirect_uris": ["https://tpp.example/callback"],
        "software_roles": ["AISP", "PISP"],
    });
    let request = |ssa: &str| {
        let mut claims = desk.claims();
        claims["iss"] = json!("sw-4711");
        claims["software_statement"] = json!(ssa);
        if let Some(c) = claims.as_object_mut() {
            c.remove("jwks_uri");
        }
        claims
    };
    let policy = desk.write("uk-ob-dcr-3.3.toml", UK_PROFILE);
    let directory_jwks = desk.write("directory.jwks", &directory.jwks());
    let jwks = desk.jwks();
    let args = |extra: &[&str]| {
        let mut a = vec![
            "--policy".to_owned(),
            policy.to_string_lossy().into_owned(),
            "--jwks".to_owned(),
            jwks.to_string_lossy().into_owned(),
        ];
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };
    let genuine = desk.jwt("uk.jwt", &request(&directory.sign(&ssa_claims)));
    let dir_arg = directory_jwks.to_string_lossy().into_owned();
    let with_directory = args(&["--directory-jwks", &dir_arg]);
    let refs: Vec<&str> = with_directory.iter().map(String::as_str).collect();
    let out = explain(&genuine, &desk.cert, &refs);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert!(
        text.contains(
            "Software statement signature: VERIFIED: signed by directory `OpenBanking Ltd`"
        ),
        "{text}"
    );
    // Without the directory's keys: NOT CHECKED, not ACCEPT.
    let without = args(&[]);
    let refs: Vec<&str> = without.iter().map(String::as_str).collect();
    let out = explain(&genuine, &desk.cert, &refs);
    assert_code(&out, 3);
    assert!(
        stdout(&out).contains("NOT CHECKED: the software statement's signature"),
        "{}",
        stdout(&out)
    );
    // A statement signed by someone else with the directory's kid.
    let forger = Signer::generate("directory-key-1").expect("forger");
    let forged = desk.jwt("forged-ssa.jwt", &request(&forger.sign(&ssa_claims)));
    let refs: Vec<&str> = with_directory.iter().map(String::as_str).collect();
    let out = explain(&forged, &desk.cert, &refs);
    assert_code(&out, 1);
    let text = stdout(&out);
    assert!(
        text.contains("Software statement signature: FAILED"),
        "{text}"
    );
    assert!(text.contains("(ssa_signature_invalid)"), "{text}");
}
