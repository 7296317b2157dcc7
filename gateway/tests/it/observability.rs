//! What an SRE scrapes and probes: `/readyz` (local state only), `dcrgate_dependency_up` (the
//! registry and key sets, shared by every replica), the
//! per-stage latency histograms and gauges, `promtool check metrics` on the real exposition,
//! and a real Prometheus server scraping the gateway on loopback with the series queryable.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{closed_port, Harness, Put};
use dcrgate_sandbox::client::TppClient;
use dcrgate_sandbox::keyhost::Serve;
use dcrgate_sandbox::world::free_port;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The value of `dcrgate_dependency_up{dependency}` once it is `want` (bounded wait).
async fn dependency_becomes(h: &Harness, dependency: &str, want: f64) -> String {
    let series = format!("dcrgate_dependency_up{{dependency=\"{dependency}\"}}");
    let (samples, text) = h.metrics_when(|s| s.get(&series) == Some(want)).await;
    assert_eq!(samples.get(&series), Some(want), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_dependency_down_is_a_metric_never_unreadiness() {
    let h = Harness::start_setup(|cfg, s| {
        s.key_host
            .set("/directory.jwks", Serve::Json(r#"{"keys":[]}"#.to_owned()));
        let mut d = toml::Table::new();
        d.insert("issuer".into(), "Sandbox Directory".into());
        d.insert(
            "key_set_url".into(),
            s.key_host.url("/directory.jwks").into(),
        );
        cfg.push("policy", "directories", d);
        cfg.set("key_sets", "cache_ttl_seconds", 1);
        cfg.set("server", "dependency_probe_seconds", 1);
    })
    .await;
    let r = h.admin_get("/readyz").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    dependency_becomes(&h, "registry", 1.0).await;
    dependency_becomes(&h, "directory_key_set", 1.0).await;
    assert!(
        h.key_host.hits("/directory.jwks") >= 1,
        "the probe fetched the anchor"
    );

    // The directory's key set goes away (and its cached copy expires): down, still ready.
    h.key_host.set("/directory.jwks", Serve::Status(500));
    let text = dependency_becomes(&h, "directory_key_set", 0.0).await;
    assert!(!text.contains("dependency=\"replay_store\""), "{text}");
    assert_eq!(h.admin_get("/readyz").await.status, 200);
    let log = h.gateway.stderr_log();
    assert!(
        log.contains("dependency down") && log.contains("Sandbox Directory"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_down_keeps_readyz_and_healthz_200_and_shows_in_the_metric() {
    let port = closed_port();
    let h = Harness::start_with(|cfg| {
        cfg.set("upstream", "url", format!("http://127.0.0.1:{port}"));
        cfg.set("server", "dependency_probe_seconds", 1);
    })
    .await;
    let r = h.admin_get("/readyz").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(h.admin_get("/healthz").await.status, 200);
    let text = dependency_becomes(&h, "registry", 0.0).await;
    // Nothing configured, nothing probed.
    for absent in [
        "directory_key_set",
        "authorization_server_key_set",
        "replay_store",
    ] {
        assert!(
            !text.contains(&format!("dependency=\"{absent}\"")),
            "{absent}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_crl_under_require_makes_the_replica_unready() {
    let mut h = Harness::start().await;
    let dir = h.files.path().to_owned();
    std::fs::write(
        dir.join("stale.crl.pem"),
        h.pki.client_ca.crl(&[], -3600).expect("CRL"),
    )
    .expect("CRL file");
    let mut crl = toml::Table::new();
    crl.insert("issuer".into(), "tpp-ca".into());
    crl.insert("file".into(), "stale.crl.pem".into());
    let crls = toml::Value::Array(vec![toml::Value::Table(crl)]);
    h.config
        .set("revocation", "mode", "prefer")
        .set("revocation", "crl", crls);
    h.reconfigure().await;
    // Under prefer a stale CRL refuses nothing: ready.
    assert_eq!(h.admin_get("/readyz").await.status, 200);
    h.config.set("revocation", "mode", "require");
    h.reconfigure().await;
    let r = h.admin_get("/readyz").await;
    assert_eq!(r.status, 503);
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains("CRL `tpp-ca`: past its nextUpdate"), "{body}");
    // And a new handshake with a certificate of that CA is refused, counted as unavailable.
    let fresh = TppClient::new(
        &h.pki.server_ca.cert_pem(),
        Some(&h.tpp.transport),
        h.gateway_addr(),
    )
    .expect("client");
    assert!(
        fresh
            .send(&Put::jwt(h.compliant_jwt()).bytes())
            .await
            .is_err(),
        "answered over a certificate whose revocation status is unavailable"
    );
    h.assert_not_forwarded();
    let series = r#"dcrgate_tls_handshakes_total{result="revocation_unavailable"}"#;
    h.assert_metric_becomes(series, 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stage_histograms_and_gauges_are_exported() {
    let h = Harness::start().await;
    let r = h.put_jwt(&h.compliant_jwt()).await;
    assert_eq!(r.status, 200);
    let count = |stage: &str| format!("dcrgate_stage_duration_seconds_count{{stage=\"{stage}\"}}");
    let (samples, text) = h
        .metrics_when(|s| s.get(&count("upstream")) == Some(1.0))
        .await;
    for stage in [
        "handshake_to_request",
        "policy",
        "key_set",
        "signature",
        "upstream",
    ] {
        assert_eq!(samples.get(&count(stage)), Some(1.0), "{stage}\n{text}");
    }
    assert_eq!(samples.get("dcrgate_key_set_age_seconds_count"), Some(1.0));
    let (_, cert) = x509_parser::parse_x509_certificate(&h.pki.gateway.cert_der).expect("cert");
    assert_eq!(
        samples.get("dcrgate_served_certificate_expiry_timestamp_seconds"),
        Some(cert.validity().not_after.timestamp() as f64)
    );
    assert_eq!(
        samples.get(r#"dcrgate_config_reloads_total{result="invalid"}"#),
        Some(0.0)
    );
    assert!(samples
        .get("dcrgate_config_last_reload_success_timestamp_seconds")
        .is_some_and(|t| t > 1.7e9));
}

fn tool(name: &str) -> Command {
    let c = Command::new(name);
    if which(name).is_none() {
        panic!(
            "`{name}` is not installed: these tests need Debian's `prometheus` package \
             (apt-get install prometheus), which .ci/run installs"
        );
    }
    c
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_the_real_exposition() {
    let h = Harness::start().await;
    let r = h.put_jwt(&h.compliant_jwt()).await;
    assert_eq!(r.status, 200);
    let text = h.metrics_text().await;
    let mut child = tool("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(text.as_bytes()).expect("write metrics");
    }
    let out = child.wait_with_output().expect("promtool output");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{said}"
    );
    assert!(said.trim().is_empty(), "promtool has remarks:\n{said}");
}

/// A Prometheus server child process, killed on drop.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn http_get(port: u16, target: &str) -> Option<String> {
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let req = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        tcp.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        tcp.read_to_end(&mut buf).await.ok()?;
        Some(String::from_utf8_lossy(&buf).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(3), exchange)
        .await
        .ok()
        .flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_gateway() {
    let h = Harness::start().await;
    let r = h.put_jwt(&h.compliant_jwt()).await;
    assert_eq!(r.status, 200);
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port().expect("port");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: dcrgate\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            h.gateway.admin
        ),
    )
    .expect("config");
    let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log");
    let child = tool("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("prometheus");
    let prometheus = Prometheus {
        child,
        port,
        _dir: dir,
    };
    let query = "/api/v1/query?query=dcrgate_requests_total%7Boutcome%3D%22accepted%22%7D";
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Some(body) = http_get(prometheus.port, query).await {
            if body.contains("\"route\":\"register_update\"") && body.contains("\"1\"]") {
                let up = http_get(
                    prometheus.port,
                    "/api/v1/query?query=up%7Bjob%3D%22dcrgate%22%7D",
                )
                .await
                .unwrap_or_default();
                assert!(up.contains("\"1\"]"), "up is not 1: {up}");
                return;
            }
            last = body;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let log =
        std::fs::read_to_string(prometheus._dir.path().join("prometheus.log")).unwrap_or_default();
    panic!("the series never became queryable; last answer:\n{last}\nprometheus log:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_and_the_authorization_server_key_set_are_dependencies_when_configured() {
    let mut redis = common::redis::RedisServer::start(&[]);
    let url = redis.url("", "/0");
    let h = Harness::start_setup(|cfg, s| {
        s.key_host
            .set("/as.jwks", Serve::Json(r#"{"keys":[]}"#.to_owned()));
        cfg.set("replay", "store", "redis");
        cfg.set("redis", "url", url.clone());
        cfg.set("routes.update", "bearer", "jwt");
        cfg.set("bearer.jwt", "issuer", "https://as.example");
        cfg.set("bearer.jwt", "audiences", vec!["dcrgate"]);
        cfg.set("bearer.jwt", "key_set_url", s.key_host.url("/as.jwks"));
        cfg.set("server", "dependency_probe_seconds", 1);
        // Short key set lifetimes, so that a key set going away shows within the wait.
        cfg.set("key_sets", "cache_ttl_seconds", 1);
        cfg.set("key_sets", "failure_ttl_seconds", 1);
        // The store is used (and so a dependency) only when the profile requires a jti.
        let profile = dcrgate_sandbox::world::SEED_PROFILE
            .replace("require_jti = false", "require_jti = true");
        assert!(profile.contains("require_jti = true"));
        s.write("seed-jti.toml", &profile);
        cfg.set("policy", "profile", "seed-jti.toml");
    })
    .await;
    dependency_becomes(&h, "replay_store", 1.0).await;
    dependency_becomes(&h, "authorization_server_key_set", 1.0).await;
    redis.stop();
    dependency_becomes(&h, "replay_store", 0.0).await;
    assert_eq!(
        h.admin_get("/readyz").await.status,
        200,
        "Redis down is not unreadiness"
    );
    // The authorization server's key set unusable: down in the metric, still ready.
    h.key_host.set("/as.jwks", Serve::Status(503));
    dependency_becomes(&h, "authorization_server_key_set", 0.0).await;
    assert_eq!(
        h.admin_get("/readyz").await.status,
        200,
        "the authorization server's key set down is not unreadiness"
    );
    h.key_host
        .set("/as.jwks", Serve::Json(r#"{"keys":[]}"#.to_owned()));
    dependency_becomes(&h, "authorization_server_key_set", 1.0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_trace_level_no_token_request_object_or_key_reaches_the_log() {
    let h = Harness::start_env(&[("RUST_LOG", "trace")], |_, _| {}).await;
    let jwt = h.compliant_jwt();
    // Accepted, refused by policy, refused for its token, and a malformed head.
    assert_eq!(h.put_jwt(&jwt).await.status, 200);
    let mut claims = h.claims();
    claims["scope"] = serde_json::json!("openid admin");
    let refused = h.tpp.sign(&claims);
    assert_eq!(h.put_jwt(&refused).await.status, 400);
    let r = h
        .put(common::Put::jwt(&jwt).bearer("another.secret-token"))
        .await;
    assert!(r.status == 200 || r.status == 401, "{}", r.status);
    let log = h.gateway.stderr_log();
    // The log is at trace: the gateway's own events are there.
    assert!(
        log.contains("DEBUG") && log.contains("request done"),
        "not at trace:\n{log}"
    );
    let signature = |t: &str| t.rsplit('.').next().unwrap_or_default().to_owned();
    let payload = |t: &str| t.split('.').nth(1).unwrap_or_default().to_owned();
    for (what, secret) in [
        ("the bearer token", common::TOKEN.to_owned()),
        ("the other bearer token", "another.secret-token".to_owned()),
        ("a request object's signature", signature(&jwt)),
        ("a request object's payload", payload(&jwt)),
        ("a refused request object's signature", signature(&refused)),
    ] {
        assert!(!log.contains(&secret), "{what} is in the log");
    }
    // No key material: the served key, the TPP's signing key.
    for pem in [&h.pki.gateway.key_pem, &h.tpp.transport.key_pem] {
        let body: Vec<&str> = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        for line in body.iter().filter(|l| l.len() > 20) {
            assert!(!log.contains(*line), "key material is in the log");
        }
    }
    assert!(!log.contains("PRIVATE KEY"), "key material is in the log");
}
