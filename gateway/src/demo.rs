//! `dcrgate demo`: the whole path on loopback with nothing set up beforehand. Generates a
//! development PKI, starts a stand-in registry and a TPP key host, starts the gateway, sends one
//! compliant update and several non-compliant ones, prints what happened to each and why, then
//! keeps running with curl commands and the `dcrgate probe` command to paste. Ctrl-C stops
//! everything.
//!
//! The world around the gateway (PKI, stand-ins, the sample TPP) comes from `dcrgate-sandbox`;
//! this module starts the gateway in it and tells the story.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use dcrgate_certs::SubjectSpec;
use dcrgate_sandbox::client::{put_request, TppClient};
use dcrgate_sandbox::http1::RawResponse;
use dcrgate_sandbox::keyhost::{KeyHost, Serve};
use dcrgate_sandbox::pki::{pkcs8_pem, signing_key, write_private, SandboxPki};
use dcrgate_sandbox::registry::StandInRegistry;
use dcrgate_sandbox::tpp::{unsigned, Tpp};
use dcrgate_sandbox::world::{
    free_port, wait_for_port, SandboxConfig, AUDIENCE, JWKS_PATH, SEED_PROFILE,
};
use dcrgate_sandbox::SandboxError;
use serde_json::{json, Value};

use crate::config::Config;

struct Scenario {
    title: &'static str,
    request: Vec<u8>,
}

fn scenarios(tpp: &Tpp, jwks_uri: &str) -> Vec<Scenario> {
    let good = tpp.claims(AUDIENCE, jwks_uri);
    let with = |f: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut c = good.clone();
        if let Some(m) = c.as_object_mut() {
            f(m);
        }
        c
    };
    let put = |body: String| {
        put_request(
            &tpp.client_id,
            Some("demo-access-token"),
            "application/jwt",
            body.as_bytes(),
            &[],
        )
    };
    vec![
        Scenario { title: "compliant update", request: put(tpp.sign(&good)) },
        Scenario {
            title: "tls_client_auth_dn names another organisation",
            request: put(tpp.sign(&with(&|m| {
                m.insert("tls_client_auth_dn".into(), json!("CN=0015800001HQQrZAAX,organizationIdentifier=PSDGB-FCA-999999,O=Other Ltd,C=GB"));
            }))),
        },
        Scenario {
            title: "http redirect URI",
            request: put(tpp.sign(&with(&|m| {
                m.insert("redirect_uris".into(), json!(["http://tpp.example/callback"]));
            }))),
        },
        Scenario {
            title: "scope outside the allowed set",
            request: put(tpp.sign(&with(&|m| {
                m.insert("scope".into(), json!("openid accounts admin"));
            }))),
        },
        Scenario {
            title: "unsigned request object (alg none)",
            request: put(unsigned(&json!({"alg": "none", "kid": tpp.signer.key.kid}), &good, b"")),
        },
        Scenario {
            title: "key set URL on a host not on the allowlist",
            request: put(tpp.sign(&with(&|m| {
                m.insert("jwks_uri".into(), json!("https://169.254.169.254/latest/meta-data"));
            }))),
        },
        Scenario {
            title: "expired request object",
            request: put(tpp.sign(&with(&|m| {
                m.insert("iat".into(), json!(dcrgate_sandbox::tpp::now() - 7200));
                m.insert("exp".into(), json!(dcrgate_sandbox::tpp::now() - 3600));
            }))),
        },
        Scenario {
            title: "no bearer token",
            request: put_request(&tpp.client_id, None, "application/jwt", tpp.sign(&good).as_bytes(), &[]),
        },
        Scenario {
            title: "JSON body instead of a JWT",
            request: put_request(&tpp.client_id, Some("demo-access-token"), "application/json", b"{}", &[]),
        },
        Scenario {
            title: "GET on the update route",
            request: format!("GET /register/{} HTTP/1.1\r\nHost: localhost\r\n\r\n", tpp.client_id).into_bytes(),
        },
    ]
}

fn summary(r: &RawResponse) -> String {
    match (r.status, r.json()) {
        (200..=299, Some(v)) => format!("{} forwarded; the registry answered {v}", r.status),
        (status, Some(v)) => format!(
            "{status} {}: {}",
            v.get("error").and_then(Value::as_str).unwrap_or("?"),
            v.get("error_description")
                .and_then(Value::as_str)
                .unwrap_or("")
        ),
        (status, None) => format!("{status} {}", String::from_utf8_lossy(&r.body)),
    }
}

/// `probe.toml`: the sample TPP's settings for `dcrgate probe` against the demo gateway (paths
/// relative to the demo folder).
fn probe_config(listen: u16, tpp: &Tpp, jwks_uri: &str) -> String {
    let mut t = toml::Table::new();
    let mut set = |k: &str, v: toml::Value| {
        t.insert(k.to_owned(), v);
    };
    set("endpoint", format!("https://localhost:{listen}").into());
    set("client_id", tpp.client_id.clone().into());
    set("cert", "tpp.pem".into());
    set("key", "tpp.key".into());
    set("ca", "server-ca.pem".into());
    set("signing_key", "tpp-signing.key".into());
    set("kid", tpp.signer.key.kid.clone().into());
    set("jwks_uri", jwks_uri.into());
    set("audience", AUDIENCE.into());
    set("token", "demo-access-token".into());
    set(
        "redirect_uris",
        toml::Value::Array(vec!["https://tpp.example/callback".into()]),
    );
    set("org_name", "Example TPP Ltd".into());
    toml::to_string(&t).unwrap_or_default()
}

/// Run the demo; returns when the gateway stops (Ctrl-C).
pub fn run(dir: Option<PathBuf>) -> Result<(), DemoError> {
    let dir = dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("dcrgate-demo-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).map_err(SandboxError::from)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(SandboxError::from)?;

    println!(
        "dcrgate demo: generating a development PKI and a sample TPP in {}",
        dir.display()
    );
    let pki = SandboxPki::generate()?;
    let files = pki.write(&dir)?;
    let tpp = Tpp::new(
        &pki,
        "demo-client-1",
        SubjectSpec::obwac("Example TPP Ltd", "PSDGB-FCA-123456", "0015800001HQQrZAAX"),
        signing_key("demo-signing-key-1")?,
    )?;
    std::fs::write(dir.join("tpp.pem"), &tpp.transport.cert_pem).map_err(SandboxError::from)?;
    // A second certificate of the same TPP, revoked on the TPP CA's CRL.
    let revoked = pki.transport_cert(&tpp.subject)?;
    let crl = pki
        .client_ca
        .crl(&[&revoked.serial], 86_400)
        .map_err(SandboxError::from)?;
    std::fs::write(dir.join("tpp-ca.crl.pem"), crl).map_err(SandboxError::from)?;
    write_private(&dir.join("tpp.key"), &tpp.transport.key_pem)?;
    std::fs::write(dir.join("seed-update.toml"), SEED_PROFILE).map_err(SandboxError::from)?;

    let registry = rt
        .block_on(StandInRegistry::start())
        .map_err(SandboxError::from)?;
    let key_host = rt.block_on(KeyHost::start(
        &pki.key_host.cert_pem,
        &pki.key_host.key_pem,
    ))?;
    key_host.set(JWKS_PATH, Serve::Json(tpp.jwks()));
    let jwks_uri = key_host.url(JWKS_PATH);

    let (listen, admin) = (
        free_port().map_err(SandboxError::from)?,
        free_port().map_err(SandboxError::from)?,
    );
    let mut crl_entry = toml::Table::new();
    crl_entry.insert("issuer".into(), "tpp-ca".into());
    crl_entry.insert("file".into(), "tpp-ca.crl.pem".into());
    let config_path =
        SandboxConfig::new(listen, admin, registry.addr(), &files, "seed-update.toml")
            .set("revocation", "mode", "require")
            .push("revocation", "crl", crl_entry)
            .write(&dir, "dcrgate.toml")
            .map_err(SandboxError::from)?;
    write_private(
        &dir.join("tpp-signing.key"),
        &pkcs8_pem(&tpp.signer.key.pkcs8_der),
    )?;
    std::fs::write(
        dir.join("probe.toml"),
        probe_config(listen, &tpp, &jwks_uri),
    )
    .map_err(SandboxError::from)?;
    let request_path = dir.join("request.jwt");
    std::fs::write(&request_path, tpp.sign(&tpp.claims(AUDIENCE, &jwks_uri)))
        .map_err(SandboxError::from)?;

    let config = Config::load(&config_path).map_err(Box::new)?;
    let server = crate::server::build(config, false)?;
    let gateway_addr = SocketAddr::from(([127, 0, 0, 1], listen));
    let client = TppClient::new(
        &pki.server_ca.cert_pem(),
        Some(&tpp.transport),
        gateway_addr,
    )?;
    let revoked_client = TppClient::new(&pki.server_ca.cert_pem(), Some(&revoked), gateway_addr)?;
    let cases = scenarios(&tpp, &jwks_uri);
    let client_id = tpp.client_id.clone();
    let d = dir.clone();
    rt.spawn(async move {
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], admin));
        // The admin listener and the TPP listener start separately: wait for both.
        let both = move || {
            wait_for_port(admin_addr, Duration::from_secs(20))?;
            wait_for_port(gateway_addr, Duration::from_secs(20))
        };
        if !matches!(tokio::task::spawn_blocking(both).await, Ok(Ok(()))) {
            return;
        }
        println!("\n  gateway       https://localhost:{listen}  (mTLS: client CA {})", d.join("client-ca.pem").display());
        println!("  admin         http://127.0.0.1:{admin}/metrics");
        println!("  registry      http://{}  (stand-in)", registry.addr());
        println!("  TPP key set   {jwks_uri}");
        println!("  TPP subject   {}\n", tpp.subject.to_rfc4514());
        for (i, case) in cases.iter().enumerate() {
            let result = match client.send(&case.request).await {
                Ok(r) => summary(&r),
                Err(e) => format!("no response: {e}"),
            };
            println!("  {:>2}. {:<48} -> {result}", i + 1, case.title);
        }
        // The compliant update again, from the TPP's revoked certificate.
        let result = match revoked_client.send(&cases[0].request).await {
            Ok(r) => summary(&r),
            Err(_) => "refused at the TLS handshake: revoked on the TPP CA's CRL (revocation.mode = require)".to_owned(),
        };
        println!("  {:>2}. {:<48} -> {result}", cases.len() + 1, "compliant update, revoked transport certificate");
        let seen = registry.requests();
        println!("\n  The stand-in registry received {} request(s):", seen.len());
        for r in &seen {
            println!(
                "    {} {}  X-DCRGate-Client-DN: {}  X-DCRGate-Client-Cert-SHA256: {}",
                r.method,
                r.target,
                r.header("x-dcrgate-client-dn").unwrap_or("-"),
                r.header("x-dcrgate-client-cert-sha256").unwrap_or("-")
            );
        }
        let p = |f: &str| d.join(f).display().to_string();
        println!("\n  Try it yourself (Ctrl-C stops everything):");
        println!(
            "    curl --cacert {} --cert {} --key {} -X PUT https://localhost:{listen}/register/{client_id} \\\n      -H 'Authorization: Bearer demo-access-token' -H 'Content-Type: application/jwt' --data-binary @{}",
            p("server-ca.pem"), p("tpp.pem"), p("tpp.key"), p("request.jwt")
        );
        println!("    curl --cacert {} https://localhost:{listen}/register/{client_id}   # no client certificate: the handshake fails", p("server-ca.pem"));
        println!("    curl http://127.0.0.1:{admin}/metrics");
        println!("    dcrgate check --config {}", p("dcrgate.toml"));
        println!("\n  Probe it as a TPP would, scenario by scenario (read-only; --allow-writes adds the updates):");
        println!("    dcrgate probe --config {}", p("probe.toml"));
        println!("  The demo leaves bearer tokens to the stand-in registry (bearer = \"upstream\"), which takes any, so");
        println!("  foreign_bearer_token and update_other_client_id fail here (with --allow-writes replayed_jti too:");
        println!("  the seed profile keeps no jti).");
        // Keep the stand-ins alive as long as the runtime runs.
        std::future::pending::<()>().await;
        drop((registry, key_host));
    });
    crate::server::run(server, None);
    println!("dcrgate demo stopped");
    Ok(())
}

/// The demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A sandbox component.
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    /// The generated configuration.
    #[error(transparent)]
    Config(#[from] Box<crate::config::ConfigError>),
    /// Starting the gateway.
    #[error(transparent)]
    Start(#[from] crate::server::StartError),
}
