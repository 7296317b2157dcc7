//! `dcrgate probe`, run as the real binary: against dcrgate in front of the stand-in registry
//! (bearer tokens in `jwt` mode, a client credentials grant at a stand-in token endpoint read
//! from a discovery document, `jti` replay on) every scenario passes, read-only and with
//! `--allow-writes`, and the registry receives the compliant writes alone; against the bare
//! stand-in registry, which accepts anything, every negative scenario fails and the exit code
//! is 1. The JSON and JUnit outputs carry the same results.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{cert_thumbprint, Harness, CLIENT_ID, KID};
use dcrgate_certs::RsaSigningKey;
use dcrgate_sandbox::auth_server::{AuthServer, AuthServerOptions};
use dcrgate_sandbox::keyhost::Serve;
use dcrgate_sandbox::pki::pkcs8_pem;
use dcrgate_sandbox::registry::StandInRegistry;
use dcrgate_sandbox::tpp::{now, Signer};
use dcrgate_sandbox::world::{AUDIENCE, SEED_PROFILE, UK_PROFILE};
use serde_json::{json, Value};

const AS_ISSUER: &str = "https://as.sandbox.example";
const AS_AUDIENCE: &str = "https://bank.example/register";
const DIRECTORY: &str = "Sandbox Directory Ltd";
const DIRECTORY_JWKS: &str = "/directory/signing.jwks";
const SSA_JWKS: &str = "/directory/software/sw-probe.jwks";

/// What a probe run left: exit code, stdout, stderr.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\n{}", self.stdout, self.stderr))
    }
}

/// `dcrgate probe ARGS`, bounded (90 s), off the async runtime so the stand-ins keep serving.
async fn probe(args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().expect("temp dir");
        let (out, err) = (dir.path().join("stdout"), dir.path().join("stderr"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_dcrgate"))
            .arg("probe")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("spawn dcrgate probe");
        let deadline = Instant::now() + Duration::from_secs(90);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let run = Run {
            code: status.and_then(|s| s.code()),
            stdout: std::fs::read_to_string(&out).unwrap_or_default(),
            stderr: std::fs::read_to_string(&err).unwrap_or_default(),
        };
        assert!(status.is_some(), "the probe did not finish: {}", run.stdout);
        run
    })
    .await
    .expect("probe thread")
}

/// Results by scenario name: (result, got) from the JSON report.
fn json_results(report: &Value) -> Vec<(String, String, String)> {
    report["scenarios"]
        .as_array()
        .expect("scenarios")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().expect("name").to_owned(),
                s["result"].as_str().expect("result").to_owned(),
                s["got"].as_str().expect("got").to_owned(),
            )
        })
        .collect()
}

/// A small XML reader for the JUnit file: checks that every element is closed in order and
/// returns each test case's name with PASS, FAIL or SKIP.
fn junit_results(xml: &str) -> Vec<(String, String)> {
    let mut stack: Vec<String> = Vec::new();
    let mut cases: Vec<(String, String)> = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find('<') {
        let end = rest[start..].find('>').expect("an unclosed tag") + start;
        let tag = &rest[start + 1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('?') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name.trim()), "{xml}");
            continue;
        }
        let self_closing = tag.ends_with('/');
        let name = tag
            .trim_end_matches('/')
            .split_whitespace()
            .next()
            .expect("an element name")
            .to_owned();
        assert!(!tag.contains('<'), "{tag}");
        match name.as_str() {
            "testcase" => {
                let attr = tag.split(" name=\"").nth(1).expect("a name attribute");
                let case = attr.split('"').next().expect("a closing quote").to_owned();
                cases.push((case, "PASS".to_owned()));
            }
            "failure" | "skipped" => {
                assert_eq!(stack.last().map(String::as_str), Some("testcase"), "{xml}");
                if let Some(last) = cases.last_mut() {
                    last.1 = if name == "failure" { "FAIL" } else { "SKIP" }.to_owned();
                }
            }
            _ => {}
        }
        if !self_closing {
            stack.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed elements {stack:?}");
    cases
}

/// The JSON and JUnit reports agree, scenario by scenario.
fn assert_same_results(report: &Value, junit: &Path) {
    let xml = std::fs::read_to_string(junit).expect("the JUnit file");
    let from_json: Vec<(String, String)> = json_results(report)
        .into_iter()
        .map(|(n, r, _)| (n, r))
        .collect();
    assert_eq!(junit_results(&xml), from_json, "{xml}");
    let failed = from_json.iter().filter(|(_, r)| r == "FAIL").count();
    assert_eq!(report["failed"], json!(failed));
    assert!(xml.contains(&format!("failures=\"{failed}\"")), "{xml}");
}

/// The scenarios that write at a compliant endpoint.
const WRITES: &[&str] = &[
    "compliant_update",
    "replayed_jti",
    "lifecycle_create",
    "lifecycle_delete",
];

/// A gateway serving every route, bearer tokens in `jwt` mode, `jti` replay protection on; a
/// stand-in authorization server issuing the TPP a token at `/token` over mTLS and serving a
/// discovery document; the TPP's files and a probe.toml in the config folder.
struct Setup {
    h: Harness,
    auth: AuthServer,
    config: PathBuf,
    discovery: String,
}

/// With `directory`, the gateway runs the UK OB DCR 3.3 profile and trusts that directory
/// (whose key set the key host serves), instead of the seed profile with `jti` replay on.
async fn setup(directory: Option<&Signer>) -> Setup {
    let authority = Signer::generate("as-key-1").expect("AS key");
    let jwks = authority.jwks();
    let directory_jwks = directory.map(Signer::jwks);
    let h = Harness::start_setup(|cfg, s| {
        s.key_host.set("/as/jwks", Serve::Json(jwks.clone()));
        match &directory_jwks {
            Some(directory_jwks) => {
                s.write("uk.toml", UK_PROFILE);
                cfg.set("policy", "profile", "uk.toml");
                s.key_host
                    .set(DIRECTORY_JWKS, Serve::Json(directory_jwks.clone()));
                let mut d = toml::Table::new();
                d.insert("issuer".into(), DIRECTORY.into());
                d.insert("key_set_url".into(), s.key_host.url(DIRECTORY_JWKS).into());
                cfg.push("policy", "directories", d);
            }
            None => {
                s.write(
                    "seed-jti.toml",
                    &SEED_PROFILE.replace("require_jti = false", "require_jti = true"),
                );
                cfg.set("policy", "profile", "seed-jti.toml");
            }
        }
        cfg.set("routes.update", "bearer", "jwt");
        cfg.set("routes.create", "enabled", true);
        cfg.set("routes.read", "enabled", true);
        cfg.set("routes.read", "bearer", "jwt");
        cfg.set("routes.delete", "enabled", true);
        cfg.set("routes.delete", "bearer", "jwt");
        cfg.set("bearer.jwt", "issuer", AS_ISSUER);
        cfg.set("bearer.jwt", "audiences", vec![AS_AUDIENCE]);
        cfg.set("bearer.jwt", "key_set_url", s.key_host.url("/as/jwks"));
    })
    .await;
    let auth = AuthServer::start(
        &h.pki.key_host.cert_pem,
        &h.pki.key_host.key_pem,
        AuthServerOptions {
            client_ca_pem: Some(h.pki.client_ca.cert_pem()),
            ..Default::default()
        },
    )
    .await
    .expect("authorization server");
    auth.set_issued_token(&authority.sign(&json!({
        "iss": AS_ISSUER, "aud": AS_AUDIENCE, "iat": now(), "exp": now() + 600,
        "client_id": CLIENT_ID,
        "cnf": {"x5t#S256": cert_thumbprint(&h.tpp.transport.cert_der)}
    })));
    auth.set_discovery(json!({
        "issuer": AUDIENCE,
        "token_endpoint": auth.url("/token"),
        "registration_endpoint": format!("https://localhost:{}/register", h.gateway.listen),
    }));
    let dir = h.files.path();
    std::fs::write(dir.join("tpp.pem"), &h.tpp.transport.cert_pem).expect("cert");
    std::fs::write(dir.join("tpp.key"), &h.tpp.transport.key_pem).expect("key");
    std::fs::write(
        dir.join("signing.pem"),
        pkcs8_pem(&h.tpp.signer.key.pkcs8_der),
    )
    .expect("signing key");
    // Relative paths: resolved against the file's folder, wherever the probe runs.
    let toml = format!(
        r#"
endpoint = "https://localhost:{port}"
client_id = "{CLIENT_ID}"
cert = "tpp.pem"
key = "tpp.key"
ca = "server-ca.pem"
signing_key = "signing.pem"
kid = "{KID}"
jwks_uri = "{jwks}"
redirect_uris = ["https://tpp.example/callback"]
org_name = "Example TPP Ltd"
timeout_seconds = 10
"#,
        port = h.gateway.listen,
        jwks = h.jwks_uri,
    );
    let config = dir.join("probe.toml");
    std::fs::write(&config, toml).expect("probe.toml");
    let discovery = auth.url("/.well-known/openid-configuration");
    Setup {
        h,
        auth,
        config,
        discovery,
    }
}

fn seen(registry: &StandInRegistry) -> Vec<String> {
    registry
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_dcrgate_every_scenario_passes_and_only_compliant_writes_reach_the_registry() {
    let s = setup(None).await;
    let config = s.config.to_str().expect("utf-8").to_owned();
    let target = format!("/register/{CLIENT_ID}");

    // Read-only (the default): the writing scenarios are skipped, the rest pass.
    let run = probe(vec![
        "--config".into(),
        config.clone(),
        "--discovery".into(),
        s.discovery.clone(),
        "--lifecycle".into(),
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    println!("{}", run.stdout);
    let rows: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains(" PASS ") || l.contains(" FAIL ") || l.contains(" SKIP "))
        .collect();
    assert_eq!(rows.len(), 28, "{}", run.stdout);
    for row in &rows {
        let name = row.split_whitespace().next().expect("a name");
        let expected = if WRITES.contains(&name)
            || name == "redirect_uri_not_in_ssa"
            || name == "read_after_delete"
        {
            " SKIP "
        } else {
            " PASS "
        };
        assert!(row.contains(expected), "{row}\n{}", run.stdout);
    }
    assert!(!run.stdout.contains("to pass:"), "{}", run.stdout);
    // One token, from a client credentials grant for the ClientId over mTLS.
    let grants = s.auth.token_requests();
    assert_eq!(grants.len(), 1);
    assert!(grants[0].contains(&("grant_type".into(), "client_credentials".into())));
    assert!(grants[0].contains(&("client_id".into(), CLIENT_ID.into())));
    // Only the lifecycle read reached the registry: every refusal was the gateway's.
    assert_eq!(seen(&s.h.registry), vec![format!("GET {target}")]);

    // With writes, in JSON and JUnit: every scenario but the SSA one runs and passes.
    let junit = s.h.files.path().join("probe-junit.xml");
    let run = probe(vec![
        "--config".into(),
        config,
        "--discovery".into(),
        s.discovery.clone(),
        "--lifecycle".into(),
        "--allow-writes".into(),
        "--format".into(),
        "json".into(),
        "--junit".into(),
        junit.to_str().expect("utf-8").into(),
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    for (name, result, got) in json_results(&report) {
        let expected = if name == "redirect_uri_not_in_ssa" {
            "SKIP"
        } else {
            "PASS"
        };
        assert_eq!(result, expected, "{name}: got {got}\n{}", run.stdout);
    }
    assert_eq!(report["failed"], 0);
    assert_eq!(report["skipped"], 1);
    assert_same_results(&report, &junit);
    // The registry received the compliant writes (the replayed request's first sending
    // included) and the reads, nothing else; the replay itself was refused by the gateway.
    assert_eq!(
        seen(&s.h.registry),
        vec![
            format!("GET {target}"),
            format!("PUT {target}"),
            format!("PUT {target}"),
            "POST /register".to_owned(),
            format!("GET {target}"),
            format!("DELETE {target}"),
            format!("GET {target}"),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_software_statement_under_the_uk_profile_every_scenario_passes() {
    let directory = Signer::generate("directory-key-1").expect("directory key");
    let s = setup(Some(&directory)).await;
    s.h.key_host.set(SSA_JWKS, Serve::Json(s.h.tpp.jwks()));
    let ssa = directory.sign(&json!({
        "iss": DIRECTORY,
        "iat": now() - 600,
        "software_id": "sw-probe",
        "software_jwks_endpoint": s.h.key_host.url(SSA_JWKS),
        "software_redirect_uris": ["https://tpp.example/callback"],
        "software_roles": ["AISP", "PISP"],
        "org_name": "Example TPP Ltd",
    }));
    let ssa_path = s.h.files.path().join("ssa.jwt");
    std::fs::write(&ssa_path, &ssa).expect("ssa");
    // The SSA names the key set, so the file's jwks_uri stays out of the claims; the discovery
    // document gives the token endpoint and the audience.
    let run = probe(vec![
        "--config".into(),
        s.config.to_str().expect("utf-8").into(),
        "--ssa".into(),
        ssa_path.to_str().expect("utf-8").into(),
        "--discovery".into(),
        s.discovery.clone(),
        "--allow-writes".into(),
        "--lifecycle".into(),
        "--format".into(),
        "json".into(),
    ])
    .await;
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let results = json_results(&run.json());
    assert!(
        results.iter().all(|(_, r, _)| r == "PASS"),
        "{}",
        run.stdout
    );
    assert_eq!(results.len(), 28);
    // Every forwarded request object carried the SSA, with iss its software_id.
    let writes: Vec<_> =
        s.h.registry
            .requests()
            .into_iter()
            .filter(|r| r.method == "PUT" || r.method == "POST")
            .collect();
    assert_eq!(writes.len(), 3);
    for w in writes {
        let body = String::from_utf8(w.body.to_vec()).expect("utf-8");
        let claims = dcrgate::probe::jws::unverified_claims(&body).expect("claims");
        assert_eq!(claims["software_statement"], json!(ssa));
        assert_eq!(claims["iss"], "sw-probe");
        assert!(claims.get("jwks_uri").is_none(), "{claims}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_the_bare_registry_every_negative_scenario_fails() {
    let registry = StandInRegistry::start().await.expect("registry");
    let dir = tempfile::tempdir().expect("temp dir");
    let key = RsaSigningKey::generate("bare-key-1", 2048).expect("key");
    let key_path = dir.path().join("signing.pem");
    std::fs::write(&key_path, pkcs8_pem(&key.pkcs8_der)).expect("key file");
    let junit = dir.path().join("junit.xml");
    let run = probe(vec![
        "--endpoint".into(),
        format!("http://{}", registry.addr()),
        "--client-id".into(),
        CLIENT_ID.into(),
        "--signing-key".into(),
        key_path.to_str().expect("utf-8").into(),
        "--kid".into(),
        "bare-key-1".into(),
        "--jwks-uri".into(),
        "https://tpp.example/jwks.json".into(),
        "--audience".into(),
        AUDIENCE.into(),
        "--token".into(),
        "a-fixed-token".into(),
        "--tls-client-auth-dn".into(),
        "CN=0015800001HQQrZAAX,O=Example TPP Ltd,C=GB".into(),
        "--redirect-uri".into(),
        "https://tpp.example/callback".into(),
        "--allow-writes".into(),
        "--lifecycle".into(),
        "--format".into(),
        "json".into(),
        "--junit".into(),
        junit.to_str().expect("utf-8").into(),
        "--timeout-seconds".into(),
        "5".into(),
    ])
    .await;
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_same_results(&report, &junit);
    let results = json_results(&report);
    let successes = ["compliant_update", "lifecycle_create", "lifecycle_read"];
    let skipped = ["discovery_registration_endpoint", "redirect_uri_not_in_ssa"];
    for (name, result, got) in &results {
        let expected = if successes.contains(&name.as_str())
            // The stand-in itself ends a deleted client's access.
            || name == "lifecycle_delete"
            || name == "read_after_delete"
        {
            "PASS"
        } else if skipped.contains(&name.as_str()) {
            "SKIP"
        } else {
            "FAIL"
        };
        assert_eq!(result, expected, "{name}: got {got}\n{}", run.stdout);
    }
    let failed = results.iter().filter(|(_, r, _)| r == "FAIL").count();
    assert_eq!(failed, 21, "{}", run.stdout);
    // Every failure says what to change; a 200 where 201 is named is noted.
    for s in report["scenarios"].as_array().expect("scenarios") {
        if s["result"] == "FAIL" {
            assert!(s["hint"].as_str().is_some_and(|h| !h.is_empty()), "{s}");
        }
        if s["name"] == "lifecycle_create" {
            assert_eq!(s["got"], "200");
            assert!(s["note"].as_str().is_some_and(|n| n.contains("201")), "{s}");
        }
    }

    // The same run as a table, for a reader: each failure with its hint under it.
    let text = probe(vec![
        "--endpoint".into(),
        format!("http://{}", registry.addr()),
        "--client-id".into(),
        "another-client".into(),
        "--signing-key".into(),
        key_path.to_str().expect("utf-8").into(),
        "--kid".into(),
        "bare-key-1".into(),
        "--jwks-uri".into(),
        "https://tpp.example/jwks.json".into(),
        "--audience".into(),
        AUDIENCE.into(),
        "--token".into(),
        "a-fixed-token".into(),
        "--tls-client-auth-dn".into(),
        "CN=0015800001HQQrZAAX,O=Example TPP Ltd,C=GB".into(),
        "--redirect-uri".into(),
        "https://tpp.example/callback".into(),
    ])
    .await;
    assert_eq!(text.code, Some(1), "{}\n{}", text.stdout, text.stderr);
    println!("{}", text.stdout);
    assert!(
        text.stdout
            .contains("-> to pass: refuse unsigned request objects (alg none, in any case)"),
        "{}",
        text.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_input_is_exit_code_2_naming_the_setting() {
    let run = probe(vec!["--endpoint".into(), "https://localhost:1".into()]).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("--client-id"), "{}", run.stderr);
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("probe.toml");
    std::fs::write(&config, "endpont = \"https://x\"\n").expect("file");
    let run = probe(vec![
        "--config".into(),
        config.to_str().expect("utf-8").into(),
    ])
    .await;
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("endpont"), "{}", run.stderr);
}
