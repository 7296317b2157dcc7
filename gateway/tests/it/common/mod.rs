//! Integration test harness: a real `dcrgate run` subprocess in front of the sandbox's stand-in
//! registry and TPP key host, with a sample TPP and an mTLS client. Everything listens on
//! 127.0.0.1; every certificate and key is generated here; every wait is bounded.
//!
//! Every module of the one integration-test binary shares it.
#![allow(dead_code)]

pub mod put;
pub mod redis;

pub use put::Put;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dcrgate_certs::{RsaSigningKey, SubjectSpec};
use dcrgate_sandbox::client::TppClient;
use dcrgate_sandbox::http1::{read_response, RawResponse};
use dcrgate_sandbox::keyhost::{KeyHost, Serve};
use dcrgate_sandbox::pki::{signing_key, PkiFiles, SandboxPki};
use dcrgate_sandbox::registry::StandInRegistry;
use dcrgate_sandbox::tpp::{Signer, Tpp};
use dcrgate_sandbox::world::{free_port, SandboxConfig, AUDIENCE, JWKS_PATH, SEED_PROFILE};
use serde_json::{Map, Value};
use tempfile::TempDir;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The ClientId the sample TPP was given (distinctive, so tests can look for leaks of it).
pub const CLIENT_ID: &str = "tpp-client-7Qx4";
/// The bearer token the tests send (the gateway checks its form only).
pub const TOKEN: &str = "test-access-token.x_y~z";
/// The sample TPP's signing key id.
pub const KID: &str = "tpp-signing-key-1";
/// How long the gateway may take to become ready.
pub const READY_WITHIN: Duration = Duration::from_secs(15);
/// Bound on any single exchange a test makes.
pub const IO_TIMEOUT: Duration = Duration::from_secs(15);

/// The sample TPP's transport certificate subject.
pub fn tpp_subject() -> SubjectSpec {
    SubjectSpec::obwac("Example TPP Ltd", "PSDGB-FCA-123456", "0015800001HQQrZAAX")
}

/// The written PKI, profile and config of a gateway, in a temporary folder.
pub struct Files {
    /// The folder (removed on drop).
    pub dir: TempDir,
    /// The PEM files.
    pub pki: PkiFiles,
}

impl Files {
    /// Write `pki` and the seed profile into a new temporary folder.
    pub fn write(pki: &SandboxPki) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let files = pki.write(dir.path()).expect("PKI files");
        std::fs::write(dir.path().join("seed-update.toml"), SEED_PROFILE).expect("profile");
        Self { dir, pki: files }
    }

    /// The folder's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A `dcrgate run` child process, killed (and reaped) on drop.
pub struct GatewayProcess {
    child: Child,
    stderr: PathBuf,
    /// TLS listener port.
    pub listen: u16,
    /// Admin port.
    pub admin: u16,
}

impl GatewayProcess {
    fn spawn(
        config: &Path,
        env: &[(&str, &str)],
        stderr: PathBuf,
        listen: u16,
        admin: u16,
    ) -> Self {
        Self::spawn_env(config, &[], env, stderr, listen, admin)
    }

    /// `dcrgate run --config CONFIG EXTRA...`.
    pub fn spawn_with(
        config: &Path,
        extra: &[&str],
        stderr: PathBuf,
        listen: u16,
        admin: u16,
    ) -> Self {
        Self::spawn_env(config, extra, &[], stderr, listen, admin)
    }

    /// `dcrgate run --config CONFIG EXTRA...` with these environment variables.
    pub fn spawn_env(
        config: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
        stderr: PathBuf,
        listen: u16,
        admin: u16,
    ) -> Self {
        let log = std::fs::File::create(&stderr).expect("stderr file");
        let child = Command::new(env!("CARGO_BIN_EXE_dcrgate"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .args(extra)
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn dcrgate");
        Self {
            child,
            stderr,
            listen,
            admin,
        }
    }

    /// What the gateway wrote to stderr so far.
    pub fn stderr_log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send `signal` (e.g. `"HUP"`, `"TERM"`, `"QUIT"`) to the process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Wait (bounded) for the process to exit; its exit status, or `None` if it did not.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Poll `/healthz` until 200, then check the TLS listener is this gateway's (the handshake
    /// succeeds with this test's CA and client certificate) and the process is still up.
    pub async fn wait_ready(&mut self, client: &TppClient) -> Result<(), String> {
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if !self.running() {
                return Err("the gateway exited".into());
            }
            let healthy = admin_get(self.admin, "/healthz")
                .await
                .is_ok_and(|r| r.status == 200);
            if healthy {
                let tls = tokio::time::timeout(Duration::from_secs(2), client.connect()).await;
                if matches!(tls, Ok(Ok(_))) && self.running() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("not ready within {READY_WITHIN:?}"))
    }
}

/// Where each gateway's last `/metrics` is kept when the variable is set: the catalogue
/// coverage check (`metrics_coverage`) reads the union of what every test's traffic emitted.
pub const METRICS_SEEN_DIR: &str = "DCRGATE_METRICS_SEEN_DIR";

/// `GET /metrics` on the admin port with blocking I/O (for `Drop`), bounded by 2 s per step.
fn scrape_blocking(admin: u16) -> Option<String> {
    use std::io::{Read, Write};
    let addr = SocketAddr::from(([127, 0, 0, 1], admin));
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .ok()?;
    // Read the head, then as many body bytes as it announces (or to the close).
    let mut out = Vec::new();
    let mut buf = [0u8; 16384];
    let (head_len, body_len) = loop {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        out.extend_from_slice(&buf[..n]);
        if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())?;
            break (end + 4, len);
        }
    };
    while out.len() < head_len + body_len {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8(out).ok()?;
    let (head, body) = text.split_at(head_len);
    (head.split(' ').nth(1) == Some("200")).then(|| body.to_owned())
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        if let Some(dir) = std::env::var_os(METRICS_SEEN_DIR) {
            if let Some(text) = scrape_blocking(self.admin) {
                let file = std::path::Path::new(&dir).join(format!(
                    "{}-{}.prom",
                    std::process::id(),
                    self.child.id()
                ));
                let _ = std::fs::create_dir_all(&dir);
                let _ = std::fs::write(file, text);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- dcrgate stderr ----\n{}\n------------------------",
                self.stderr_log()
            );
        }
    }
}

/// What a configuration tweak may use before the gateway starts.
pub struct Setup<'a> {
    /// The config folder (relative paths in the config resolve against it).
    pub dir: &'a Path,
    /// The running key host.
    pub key_host: &'a KeyHost,
}

impl Setup<'_> {
    /// Write `contents` to `name` in the config folder.
    pub fn write(&self, name: &str, contents: &str) {
        std::fs::write(self.dir.join(name), contents).expect("write into the config folder");
    }
}

/// The series counting configuration reloads that ended with `result` (ok, invalid).
fn reloads_series(result: &str) -> String {
    format!("dcrgate_config_reloads_total{{result=\"{result}\"}}")
}

/// A running gateway subprocess with its sandbox.
pub struct Harness {
    /// The gateway process (dropped first: it is killed before the stand-ins stop).
    pub gateway: GatewayProcess,
    /// The stand-in legacy registry (the upstream).
    pub registry: StandInRegistry,
    /// The TPP key host (serves the TPP's key set at [`JWKS_PATH`]).
    pub key_host: KeyHost,
    /// The sample TPP.
    pub tpp: Tpp,
    /// The development PKI.
    pub pki: SandboxPki,
    /// An mTLS client presenting the TPP's transport certificate.
    pub client: TppClient,
    /// The TPP's key set URL on the key host.
    pub jwks_uri: String,
    /// Config, profile, PEM files and the gateway's stderr.
    pub files: Files,
    /// The configuration the gateway runs with.
    pub config: SandboxConfig,
}

/// A second gateway process with the same configuration (another replica), and a client for it.
pub struct Replica {
    /// The process.
    pub gateway: GatewayProcess,
    /// An mTLS client presenting the TPP's transport certificate to it.
    pub client: TppClient,
}

impl Replica {
    /// Send raw request bytes on a new mTLS connection; the replica must answer.
    pub async fn send(&self, raw: &[u8]) -> RawResponse {
        self.client.send(raw).await.expect("the replica answers")
    }
}

impl Harness {
    /// A gateway with the sandbox configuration as is.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A gateway whose sandbox configuration `tweak` adjusts (called once per start attempt).
    pub async fn start_with(tweak: impl Fn(&mut SandboxConfig)) -> Self {
        Self::start_setup(|cfg, _| tweak(cfg)).await
    }

    /// Like [`Harness::start_with`], and `tweak` also sees the config folder (to write profiles
    /// or key sets into) and the key host (to name URLs on it).
    pub async fn start_setup(tweak: impl Fn(&mut SandboxConfig, &Setup<'_>)) -> Self {
        Self::start_env(&[], tweak).await
    }

    /// Like [`Harness::start_setup`], the gateway running with these environment variables.
    pub async fn start_env(
        env: &[(&str, &str)],
        tweak: impl Fn(&mut SandboxConfig, &Setup<'_>),
    ) -> Self {
        let pki = SandboxPki::generate().expect("PKI");
        let files = Files::write(&pki);
        let tpp = Tpp::new(
            &pki,
            CLIENT_ID,
            tpp_subject(),
            signing_key(KID).expect("RSA key"),
        )
        .expect("TPP");
        let registry = StandInRegistry::start().await.expect("registry");
        let key_host = KeyHost::start(&pki.key_host.cert_pem, &pki.key_host.key_pem)
            .await
            .expect("key host");
        key_host.set(JWKS_PATH, Serve::Json(tpp.jwks()));
        let jwks_uri = key_host.url(JWKS_PATH);

        // free_port() releases the port before the gateway binds it, so a parallel test could
        // take it in between; the gateway then exits and the start is retried on new ports.
        let mut failures = Vec::new();
        for attempt in 1..=3 {
            let (listen, admin) = (free_port().expect("port"), free_port().expect("port"));
            let mut cfg = SandboxConfig::new(
                listen,
                admin,
                registry.addr(),
                &files.pki,
                "seed-update.toml",
            );
            tweak(
                &mut cfg,
                &Setup {
                    dir: files.path(),
                    key_host: &key_host,
                },
            );
            let config_path = cfg.write(files.path(), "dcrgate.toml").expect("config");
            let client = TppClient::new(
                &pki.server_ca.cert_pem(),
                Some(&tpp.transport),
                SocketAddr::from(([127, 0, 0, 1], listen)),
            )
            .expect("client");
            let mut gateway = GatewayProcess::spawn(
                &config_path,
                env,
                files.path().join(format!("gateway-{attempt}.stderr")),
                listen,
                admin,
            );
            match gateway.wait_ready(&client).await {
                Ok(()) => {
                    return Harness {
                        gateway,
                        registry,
                        key_host,
                        tpp,
                        pki,
                        client,
                        jwks_uri,
                        files,
                        config: cfg,
                    }
                }
                Err(e) => {
                    failures.push(format!("attempt {attempt}: {e}\n{}", gateway.stderr_log()))
                }
            }
        }
        panic!("the gateway did not start:\n{}", failures.join("\n"));
    }

    /// Start another gateway process on this configuration (new ports), as a second replica.
    pub async fn spawn_replica(&self) -> Replica {
        let mut failures = Vec::new();
        for attempt in 1..=3 {
            let (listen, admin) = (free_port().expect("port"), free_port().expect("port"));
            let mut cfg = self.config.clone();
            cfg.set("listener", "address", format!("127.0.0.1:{listen}"));
            cfg.set("admin", "address", format!("127.0.0.1:{admin}"));
            let path = cfg
                .write(self.files.path(), "replica.toml")
                .expect("config");
            let client = TppClient::new(
                &self.pki.server_ca.cert_pem(),
                Some(&self.tpp.transport),
                SocketAddr::from(([127, 0, 0, 1], listen)),
            )
            .expect("client");
            let mut gateway = GatewayProcess::spawn(
                &path,
                &[],
                self.files.path().join(format!("replica-{attempt}.stderr")),
                listen,
                admin,
            );
            match gateway.wait_ready(&client).await {
                Ok(()) => return Replica { gateway, client },
                Err(e) => {
                    failures.push(format!("attempt {attempt}: {e}\n{}", gateway.stderr_log()))
                }
            }
        }
        panic!("the replica did not start:\n{}", failures.join("\n"));
    }

    /// The gateway's TLS listener.
    pub fn gateway_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.gateway.listen))
    }

    /// Claims of a compliant update naming the harness key set URL.
    pub fn claims(&self) -> Value {
        self.tpp.claims(AUDIENCE, &self.jwks_uri)
    }

    /// Compliant claims changed by `f`.
    pub fn claims_with(&self, f: impl FnOnce(&mut Map<String, Value>)) -> Value {
        let mut c = self.claims();
        f(c.as_object_mut().expect("claims are an object"));
        c
    }

    /// A compliant signed update.
    pub fn compliant_jwt(&self) -> String {
        self.tpp.sign(&self.claims())
    }

    /// `PUT /register/{CLIENT_ID}` with the bearer token and `application/jwt`.
    pub async fn put_jwt(&self, jwt: &str) -> RawResponse {
        self.put(Put::jwt(jwt)).await
    }

    /// Send `put` on a new mTLS connection; the gateway must answer.
    pub async fn put(&self, put: Put) -> RawResponse {
        self.send(&put.bytes()).await
    }

    /// Send raw request bytes on a new mTLS connection; the gateway must answer.
    pub async fn send(&self, raw: &[u8]) -> RawResponse {
        match self.client.send(raw).await {
            Ok(r) => r,
            Err(e) => panic!(
                "no response to {:?}: {e}",
                String::from_utf8_lossy(&raw[..raw.len().min(200)])
            ),
        }
    }

    /// The admin listener's answer to `GET path`.
    pub async fn admin_get(&self, path: &str) -> RawResponse {
        admin_get(self.gateway.admin, path)
            .await
            .expect("admin answers")
    }

    /// The Prometheus text from `/metrics`.
    pub async fn metrics_text(&self) -> String {
        let r = self.admin_get("/metrics").await;
        assert_eq!(r.status, 200);
        String::from_utf8(r.body).expect("metrics are UTF-8")
    }

    /// Poll `/metrics` (bounded, 5 s) until `ready` holds for the parsed samples, and return
    /// them. Counters are updated in the request's logging phase, just after the response.
    pub async fn metrics_when(&self, ready: impl Fn(&Samples) -> bool) -> (Samples, String) {
        let mut last = (Samples::default(), String::new());
        for _ in 0..100 {
            let text = self.metrics_text().await;
            let samples = Samples::parse(&text);
            if ready(&samples) {
                return (samples, text);
            }
            last = (samples, text);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        last
    }

    /// Write [`Harness::config`] to the configuration file, then [`Harness::hangup`] and wait
    /// until the new configuration is running.
    pub async fn reconfigure(&self) {
        self.config
            .write(self.files.path(), "dcrgate.toml")
            .expect("config");
        self.hangup("ok").await;
    }

    /// `dcrgate_config_reloads_total{result}` now.
    pub async fn reload_count(&self, result: &str) -> f64 {
        Samples::parse(&self.metrics_text().await)
            .get(&reloads_series(result))
            .unwrap_or(0.0)
    }

    /// Send SIGHUP after changing watched files and wait (bounded) until the reload it causes
    /// has ended with `result`. The file watcher may notice the change before the signal
    /// arrives and reload as well, so the count may grow by one or by two: this waits for it to
    /// pass its value before the signal and then to settle (no change for 300 ms), so that no
    /// reload of this change is still under way when it returns.
    pub async fn hangup(&self, result: &str) {
        let before = self.reload_count(result).await;
        self.gateway.signal("HUP");
        let mut seen = before;
        let mut steady = 0;
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let now = self.reload_count(result).await;
            steady = if now == seen { steady + 1 } else { 0 };
            seen = now;
            if seen > before && steady == 6 {
                return;
            }
        }
        let text = self.metrics_text().await;
        panic!(
            "no {result} reload settled after SIGHUP (count {before} before, {seen} now): {text}"
        );
    }

    /// Wait (bounded) until `dcrgate_config_reloads_total{result}` reaches `n`.
    pub async fn wait_reloads(&self, result: &str, n: f64) {
        self.assert_metric_becomes(&reloads_series(result), n).await;
    }

    /// Wait (bounded, as [`Harness::metrics_when`]) until `series` reads `want`; fail with
    /// the whole exposition if it never does.
    pub async fn assert_metric_becomes(&self, series: &str, want: f64) {
        let (samples, text) = self.metrics_when(|s| s.get(series) == Some(want)).await;
        assert_eq!(samples.get(series), Some(want), "{series}: {text}");
    }

    /// The registry has not seen any request.
    pub fn assert_not_forwarded(&self) {
        assert_eq!(
            self.registry.count(),
            0,
            "the registry saw {:?}",
            self.registry.requests()
        );
    }
}

/// The audit records in `path` (JSON lines), once there are at least `n` (bounded wait, 5 s);
/// what is there when the time runs out. A last line still being written is not read; a
/// complete line that is not JSON fails the test.
pub async fn audit_records(path: &Path, n: usize) -> Vec<Value> {
    let mut records = Vec::new();
    for _ in 0..100 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let complete = text.rsplit_once('\n').map_or("", |(done, _)| done);
        records = complete
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        if records.len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    records
}

/// `GET path` on the admin listener, bounded.
pub async fn admin_get(port: u16, path: &str) -> Result<RawResponse, String> {
    let exchange = async {
        let mut tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        tcp.write_all(req.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        read_response(&mut tcp).await.map_err(|e| e.to_string())
    };
    tokio::time::timeout(Duration::from_secs(2), exchange)
        .await
        .map_err(|_| "admin request timed out".to_owned())?
}

/// Check a gateway rejection: status, RFC 7591 JSON body with this `error`, a description, and
/// `Cache-Control: no-store`. Returns the description.
#[track_caller]
pub fn assert_rejection(r: &RawResponse, status: u16, error: &str) -> String {
    let body = String::from_utf8_lossy(&r.body);
    assert_eq!(r.status, status, "status; body {body}");
    assert_eq!(r.header("cache-control"), Some("no-store"), "{r:?}");
    assert!(
        r.header("content-type")
            .is_some_and(|v| v.starts_with("application/json")),
        "content type of {r:?}"
    );
    let json = r
        .json()
        .unwrap_or_else(|| panic!("body is not JSON: {body}"));
    assert_eq!(json["error"], error, "body {body}");
    let description = json["error_description"]
        .as_str()
        .unwrap_or_else(|| panic!("no error_description in {body}"));
    assert!(!description.is_empty());
    description.to_owned()
}

/// base64url(SHA-256(der)), unpadded: the RFC 8705 `x5t#S256` of a certificate.
pub fn cert_thumbprint(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, der).as_ref())
}

/// Sign `claims` PS256 with `key`, header `{"alg":"PS256","kid":<key.kid>,"typ":"JWT"}`.
pub fn sign_with_key(key: &RsaSigningKey, claims: &Value) -> String {
    Signer::new(key.clone()).expect("signer").sign(claims)
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind")
        .port()
}

/// Parsed Prometheus text: `name{labels}` (as printed) to value.
#[derive(Debug, Default, Clone)]
pub struct Samples(pub HashMap<String, f64>);

impl Samples {
    /// Parse every sample line (comments skipped).
    pub fn parse(text: &str) -> Self {
        let map = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (series, value) = l.rsplit_once(' ')?;
                Some((series.to_owned(), value.parse().ok()?))
            })
            .collect();
        Self(map)
    }

    /// The value of a series, e.g. `dcrgate_rejections_total{reason="dn_mismatch",route="register_update"}`.
    pub fn get(&self, series: &str) -> Option<f64> {
        self.0.get(series).copied()
    }
}

/// `dcrgate check` with `flags` before `--config config`.
pub fn dcrgate_check(flags: &[&str], config: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dcrgate"))
        .arg("check")
        .args(flags)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run dcrgate check")
}
