//! dcrgate-bench-env: the sandbox pieces the end-to-end benchmark needs, in one process.
//!
//! Writes into `--dir`: the development PKI (ECDSA P-256 server and client certificates, the
//! same files nginx and dcrgate are given), the transport certificates and keys of a sample TPP
//! (`tpp.pem`) and of a hostile one (`hostile.pem`), the seed profile, gateway configurations
//! (`server.threads` 1 and 2, bearer mode `upstream`, rate limits off, the upstream stub as
//! registry), raw request files (a compliant update from the TPP, hostile variants from the
//! other certificate), and `ports.env`; then serves the TPP key set from a sandbox key host on
//! 127.0.0.1 and writes `ready`. On SIGUSR1 and at exit (SIGTERM, SIGINT) it writes the key
//! host's fetch counts to `keyhost-hits.json`.
//!
//! For the hostile-cost run (`benches/hostile.sh`) it also serves a hostile key set (a hundred
//! 4096-bit RSA keys under one `kid`) and writes forged requests naming it: one whose signature
//! has the modulus' length (the most expensive verification a key set can ask for) and one
//! with a 1024-byte signature. With `--hostile-urls N`, once the file `go-urls` appears, it
//! sends N such forged requests each naming its own URL of that set (`?v=1` ... `?v=N`, all on
//! the allowlisted key host) and writes `hostile-urls.json`.
//!
//! With `--identities N` it also publishes N key set URLs (one RSA key under N paths: generating
//! N RSA keys would take minutes and the gateway caches per URL, not per key) and issues N
//! distinct transport certificates; once the file `go` appears it sends one compliant update
//! per identity, re-sends a sample to check they are cached, and writes `identities.json`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use dcrgate_certs::{IssuedCert, SubjectSpec};
use dcrgate_sandbox::client::{put_request, TppClient};
use dcrgate_sandbox::keyhost::{KeyHost, Serve};
use dcrgate_sandbox::pki::{signing_key, write_private, SandboxPki};
use dcrgate_sandbox::tpp::{Signer, Tpp};
use dcrgate_sandbox::world::{free_port, wait_for_port, SandboxConfig, AUDIENCE, SEED_PROFILE};
use dcrgate_sandbox::SandboxError;
use serde_json::{json, Value};
use tokio::signal::unix::{signal, SignalKind};

/// Where the benchmark TPP's key set is served.
const JWKS_PATH: &str = "/bench-tpp/jwks.json";
/// Where the hostile key set is served.
const HOSTILE_SET_PATH: &str = "/hostile/hundred.json";
/// The `kid` its hundred keys share.
const HOSTILE_KID: &str = "hostile-100";

/// The benchmark TPP's ClientId.
const CLIENT_ID: &str = "bench-tpp-1";
/// The bearer token sent (bearer mode `upstream` checks its form only).
const TOKEN: &str = "bench-access-token";

#[derive(Parser, Debug)]
#[command(
    name = "dcrgate-bench-env",
    about = "Dev PKI, TPP key host, gateway configs and request files for the benchmarks"
)]
struct Args {
    /// Folder for the generated files (created).
    #[arg(long)]
    dir: PathBuf,
    /// Extra distinct TPP identities (certificate + key set URL) to send one update each.
    #[arg(long, default_value_t = 0)]
    identities: usize,
    /// Concurrent connections for the identity run.
    #[arg(long, default_value_t = 16)]
    identity_concurrency: usize,
    /// Forged requests naming distinct hostile key set URLs, sent once `go-urls` appears.
    #[arg(long, default_value_t = 0)]
    hostile_urls: usize,
    /// Port of the upstream stub (default: a free one, written to ports.env).
    #[arg(long)]
    stub_port: Option<u16>,
}

/// The environment could not be set up.
#[derive(Debug, thiserror::Error)]
enum EnvError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) -> Result<(), EnvError> {
    // Write then rename, so a reader polling for the file never sees half of it.
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// A TPP sharing `signer` with a fresh transport certificate for `subject`.
fn tpp_with(
    client_id: String,
    subject: SubjectSpec,
    transport: IssuedCert,
    signer: &Signer,
) -> Tpp {
    Tpp {
        client_id,
        subject,
        transport,
        signer: signer.clone(),
    }
}

/// The compliant update from `tpp`, and hostile requests from `hostile`: a TPP with a valid
/// transport certificate of its own that names the victim's key set URL, unknown kids, a key set
/// URL off the allowlist, garbage, and an oversized declared body.
fn request_files(dir: &Path, tpp: &Tpp, hostile: &Tpp, jwks_uri: &str) -> Result<(), EnvError> {
    let good = tpp.claims(AUDIENCE, jwks_uri);
    let put = |body: &[u8]| put_request(&tpp.client_id, Some(TOKEN), "application/jwt", body, &[]);
    let hostile_put = |body: &[u8]| {
        put_request(
            &hostile.client_id,
            Some(TOKEN),
            "application/jwt",
            body,
            &[],
        )
    };
    let bad = hostile.claims(AUDIENCE, jwks_uri);
    let mut off_allowlist = bad.clone();
    off_allowlist["jwks_uri"] = json!("https://169.254.169.254/latest/meta-data/jwks.json");
    let unknown_kid = hostile.sign_with_header(
        &json!({"alg": "PS256", "kid": "bench-unknown-kid", "typ": "JWT"}),
        &bad,
    );
    // Random-looking, not a JWS: three dot-separated parts that are not base64url JSON.
    let garbage: String = (0..1500u32)
        .map(|i| match i {
            500 | 1000 => '.',
            _ => char::from(b'!' + ((i.wrapping_mul(2_654_435_761) >> 7) % 90) as u8),
        })
        .collect();
    let oversized = format!(
        "PUT /register/{} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/jwt\r\n\
         Content-Length: 1048576\r\nAuthorization: Bearer {TOKEN}\r\n\r\n",
        hostile.client_id
    );
    let hostile_set = hostile.claims(AUDIENCE, &hostile_set_url(jwks_uri, None));
    let files: [(&str, Vec<u8>); 7] = [
        (
            "hostile-cpu-4096.http",
            hostile_put(forged(&hostile_set, 512).as_bytes()),
        ),
        (
            "hostile-cpu-long-sig.http",
            hostile_put(forged(&hostile_set, 1024).as_bytes()),
        ),
        ("compliant.http", put(tpp.sign(&good).as_bytes())),
        ("hostile-garbage.http", hostile_put(garbage.as_bytes())),
        (
            "hostile-unknown-kid.http",
            hostile_put(unknown_kid.as_bytes()),
        ),
        (
            "hostile-off-allowlist.http",
            hostile_put(hostile.sign(&off_allowlist).as_bytes()),
        ),
        ("hostile-oversized.http", oversized.into_bytes()),
    ];
    let requests = dir.join("requests");
    std::fs::create_dir_all(&requests)?;
    for (name, bytes) in files {
        write(&requests.join(name), bytes)?;
    }
    Ok(())
}

/// The hostile key set's URL on the key host serving `jwks_uri`, with `?v=N` when given.
fn hostile_set_url(jwks_uri: &str, v: Option<usize>) -> String {
    let origin = jwks_uri.split("/bench-tpp/").next().unwrap_or(jwks_uri);
    match v {
        Some(v) => format!("{origin}{HOSTILE_SET_PATH}?v={v}"),
        None => format!("{origin}{HOSTILE_SET_PATH}"),
    }
}

/// A hundred RSA keys with made-up 4096-bit moduli, all under [`HOSTILE_KID`].
fn hostile_key_set() -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let keys: Vec<String> = (0..100u8)
        .map(|i| {
            let mut n = vec![0xA7u8 ^ i; 512];
            n[0] |= 0x80;
            n[511] |= 1;
            format!(
                r#"{{"kty":"RSA","use":"sig","kid":"{HOSTILE_KID}","n":"{}","e":"AQAB"}}"#,
                URL_SAFE_NO_PAD.encode(n)
            )
        })
        .collect();
    format!(r#"{{"keys":[{}]}}"#, keys.join(","))
}

/// A JWS naming [`HOSTILE_KID`] over `claims` with a `len`-byte made-up signature.
fn forged(claims: &Value, len: usize) -> String {
    dcrgate_sandbox::tpp::unsigned(
        &json!({"alg": "PS256", "kid": HOSTILE_KID, "typ": "JWT"}),
        claims,
        &vec![0x5Au8; len],
    )
}

/// Send one forged request per hostile key set URL; status counts and errors.
async fn send_hostile_urls(
    hostile: Arc<Tpp>,
    jwks_uri: Arc<String>,
    server_ca: Arc<String>,
    gateway: SocketAddr,
    n: usize,
    concurrency: usize,
) -> (BTreeMap<u16, usize>, BTreeMap<String, usize>) {
    let next = Arc::new(AtomicUsize::new(0));
    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, usize>::new()));
    let errors = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (hostile, jwks_uri, server_ca) = (hostile.clone(), jwks_uri.clone(), server_ca.clone());
        let (next, statuses, errors) = (next.clone(), statuses.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let client = match TppClient::new(&server_ca, Some(&hostile.transport), gateway) {
                Ok(c) => c,
                Err(e) => return bump(&errors, e.to_string()),
            };
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let claims = hostile.claims(AUDIENCE, &hostile_set_url(&jwks_uri, Some(i)));
                let body = forged(&claims, 512);
                match client
                    .put(
                        &hostile.client_id,
                        Some(TOKEN),
                        "application/jwt",
                        body.as_bytes(),
                    )
                    .await
                {
                    Ok(r) => {
                        if let Ok(mut g) = statuses.lock() {
                            *g.entry(r.status).or_default() += 1;
                        }
                    }
                    Err(e) => bump(&errors, e.to_string()),
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let s = statuses.lock().map(|g| g.clone()).unwrap_or_default();
    let e = errors.lock().map(|g| g.clone()).unwrap_or_default();
    (s, e)
}

/// The N extra identities: transport certificates and key set paths.
struct Identities {
    certs: Vec<(SubjectSpec, IssuedCert)>,
}

fn identity_path(i: usize) -> String {
    format!("/tpp/{i}/jwks.json")
}

impl Identities {
    fn generate(pki: &SandboxPki, n: usize) -> Result<Self, EnvError> {
        let certs = (0..n)
            .map(|i| {
                let subject = SubjectSpec::obwac(
                    &format!("Bench TPP {i} Ltd"),
                    &format!("PSDGB-FCA-{:06}", 100_000 + i),
                    &format!("0015800001BENCH{i:05}"),
                );
                let cert = pki.transport_cert(&subject)?;
                Ok((subject, cert))
            })
            .collect::<Result<Vec<_>, SandboxError>>()?;
        Ok(Self { certs })
    }
}

/// Send one compliant update per identity in `indices`; returns (status counts, errors).
async fn send_updates(
    identities: Arc<Identities>,
    indices: Arc<Vec<usize>>,
    signer: Signer,
    server_ca: Arc<String>,
    key_host: Arc<KeyHost>,
    gateway: SocketAddr,
    concurrency: usize,
) -> (BTreeMap<u16, usize>, BTreeMap<String, usize>) {
    let next = Arc::new(AtomicUsize::new(0));
    let statuses = Arc::new(Mutex::new(BTreeMap::<u16, usize>::new()));
    let errors = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (identities, indices, signer, server_ca, key_host) = (
            identities.clone(),
            indices.clone(),
            signer.clone(),
            server_ca.clone(),
            key_host.clone(),
        );
        let (next, statuses, errors) = (next.clone(), statuses.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = indices.get(k) else { break };
                let Some((subject, cert)) = identities.certs.get(i) else {
                    break;
                };
                let tpp = tpp_with(
                    format!("bench-tpp-id-{i}"),
                    subject.clone(),
                    cert.clone(),
                    &signer,
                );
                let claims = tpp.claims(AUDIENCE, &key_host.url(&identity_path(i)));
                // RSA signing takes about a millisecond: keep it off the async workers.
                let jwt = match tokio::task::spawn_blocking(move || (tpp.sign(&claims), tpp)).await
                {
                    Ok(v) => v,
                    Err(e) => {
                        bump(&errors, format!("sign: {e}"));
                        continue;
                    }
                };
                let (jwt, tpp) = jwt;
                let outcome = match TppClient::new(&server_ca, Some(&tpp.transport), gateway) {
                    Ok(client) => {
                        client
                            .put(
                                &tpp.client_id,
                                Some(TOKEN),
                                "application/jwt",
                                jwt.as_bytes(),
                            )
                            .await
                    }
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok(r) => {
                        if let Ok(mut g) = statuses.lock() {
                            *g.entry(r.status).or_default() += 1;
                        }
                    }
                    Err(e) => bump(&errors, e.to_string()),
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let s = statuses.lock().map(|g| g.clone()).unwrap_or_default();
    let e = errors.lock().map(|g| g.clone()).unwrap_or_default();
    (s, e)
}

fn bump(map: &Mutex<BTreeMap<String, usize>>, key: String) {
    if let Ok(mut g) = map.lock() {
        *g.entry(key).or_default() += 1;
    }
}

fn hits_json(key_host: &KeyHost, identities: usize) -> Value {
    let mut out = json!({
        "total": key_host.total_hits(),
        "paths": { JWKS_PATH: key_host.hits(JWKS_PATH) },
    });
    if identities > 0 {
        let (mut never, mut once, mut more, mut max) = (0usize, 0usize, 0usize, 0usize);
        for i in 0..identities {
            let h = key_host.hits(&identity_path(i));
            match h {
                0 => never += 1,
                1 => once += 1,
                _ => more += 1,
            }
            max = max.max(h);
        }
        out["identity_paths"] =
            json!({ "count": identities, "never": never, "once": once, "more": more, "max": max });
    }
    out
}

async fn run(args: Args) -> Result<(), EnvError> {
    let dir = args.dir.clone();
    std::fs::create_dir_all(&dir)?;
    let pki = SandboxPki::generate()?;
    let files = pki.write(&dir)?;
    let tpp = Tpp::new(
        &pki,
        CLIENT_ID,
        SubjectSpec::obwac("Example TPP Ltd", "PSDGB-FCA-123456", "0015800001HQQrZAAX"),
        signing_key("bench-signing-key-1")?,
    )?;
    std::fs::write(dir.join("tpp.pem"), &tpp.transport.cert_pem)?;
    write_private(&dir.join("tpp.key"), &tpp.transport.key_pem)?;
    let hostile_subject = SubjectSpec::obwac(
        "Hostile Example Ltd",
        "PSDGB-FCA-666666",
        "0015800001HOSTILE1",
    );
    let hostile = tpp_with(
        "bench-tpp-hostile".into(),
        hostile_subject.clone(),
        pki.transport_cert(&hostile_subject)?,
        &tpp.signer,
    );
    std::fs::write(dir.join("hostile.pem"), &hostile.transport.cert_pem)?;
    write_private(&dir.join("hostile.key"), &hostile.transport.key_pem)?;
    std::fs::write(dir.join("seed-update.toml"), SEED_PROFILE)?;

    let key_host = Arc::new(KeyHost::start(&pki.key_host.cert_pem, &pki.key_host.key_pem).await?);
    key_host.set(JWKS_PATH, Serve::Json(tpp.jwks()));
    key_host.set(HOSTILE_SET_PATH, Serve::Json(hostile_key_set()));
    let jwks_uri = key_host.url(JWKS_PATH);
    request_files(&dir, &tpp, &hostile, &jwks_uri)?;

    let identities = if args.identities > 0 {
        let started = Instant::now();
        let ids = Identities::generate(&pki, args.identities)?;
        let jwks = tpp.jwks();
        for i in 0..args.identities {
            key_host.set(&identity_path(i), Serve::Json(jwks.clone()));
        }
        eprintln!(
            "dcrgate-bench-env: {} identities and key set URLs in {:.1} s",
            args.identities,
            started.elapsed().as_secs_f64()
        );
        Some(Arc::new(ids))
    } else {
        None
    };

    let gateway_port = free_port()?;
    let admin_port = free_port()?;
    let stub_port = match args.stub_port {
        Some(p) => p,
        None => free_port()?,
    };
    let nginx_port = free_port()?;
    let stub = SocketAddr::from(([127, 0, 0, 1], stub_port));
    let mut config = SandboxConfig::new(gateway_port, admin_port, stub, &files, "seed-update.toml");
    config.set("server", "grace_period_seconds", 1i64);
    // The load generator is one client certificate sending thousands of requests a second:
    // the per-certificate (5/s) and global (500/s) limits would answer most of them 429.
    config.set("rate_limits", "per_client_per_second", 0.0);
    config.set("rate_limits", "global_per_second", 0.0);
    if args.identities > 0 {
        // Room for every identity's key set: the default capacity is 10 000 entries and
        // 16 MiB, and a host may fill 2 000 of them (here all are on the one key host).
        config.set(
            "key_sets",
            "cache_capacity",
            (2 * args.identities + 100) as i64,
        );
        config.set(
            "key_sets",
            "max_urls_per_host",
            (args.identities + 100) as i64,
        );
        config.set("key_sets", "cache_max_bytes", 64i64 * 1024 * 1024);
    }
    for threads in [1i64, 2] {
        config.set("server", "threads", threads);
        config.write(&dir, &format!("dcrgate-threads{threads}.toml"))?;
    }
    write(
        &dir.join("ports.env"),
        format!(
            "GATEWAY_PORT={gateway_port}\nADMIN_PORT={admin_port}\nSTUB_PORT={stub_port}\n\
             NGINX_PORT={nginx_port}\nKEYHOST_PORT={}\n",
            key_host.addr().port()
        ),
    )?;
    write(&dir.join("ready"), format!("{}\n", std::process::id()))?;
    eprintln!(
        "dcrgate-bench-env: ready in {} (key host {})",
        dir.display(),
        key_host.addr()
    );

    if let Some(ids) = identities.clone() {
        let signer = tpp.signer.clone();
        let server_ca = Arc::new(pki.server_ca.cert_pem());
        let key_host = key_host.clone();
        let dir = dir.clone();
        let concurrency = args.identity_concurrency;
        tokio::spawn(async move {
            let gateway = SocketAddr::from(([127, 0, 0, 1], gateway_port));
            let waited = tokio::task::spawn_blocking(move || {
                wait_for_port(gateway, Duration::from_secs(300))
            })
            .await;
            if !matches!(waited, Ok(Ok(()))) {
                let _ = write(
                    &dir.join("identities.json"),
                    json!({"error": "the gateway did not start listening"}).to_string(),
                );
                return;
            }
            // run.sh reads the gateway's idle memory first, then creates `go`.
            let go = dir.join("go");
            while !go.exists() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let n = ids.certs.len();
            let started = Instant::now();
            let all = Arc::new((0..n).collect::<Vec<_>>());
            let (statuses, errors) = send_updates(
                ids.clone(),
                all,
                signer.clone(),
                server_ca.clone(),
                key_host.clone(),
                gateway,
                concurrency,
            )
            .await;
            let seconds = started.elapsed().as_secs_f64();
            // A second update from every 10th identity: served from the cache, no new fetch.
            let fetches_before = key_host.total_hits();
            let sample = Arc::new((0..n).step_by(10).collect::<Vec<_>>());
            let sample_len = sample.len();
            let (re_statuses, re_errors) = send_updates(
                ids,
                sample,
                signer,
                server_ca,
                key_host.clone(),
                gateway,
                concurrency,
            )
            .await;
            let refetches = key_host.total_hits() - fetches_before;
            let result = json!({
                "identities": n,
                "statuses": statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "ok": statuses.get(&200).copied().unwrap_or(0),
                "errors": errors,
                "seconds": (seconds * 10.0).round() / 10.0,
                "recheck": {
                    "sent": sample_len,
                    "ok": re_statuses.get(&200).copied().unwrap_or(0),
                    "errors": re_errors,
                    "key_host_fetches": refetches,
                },
                "key_host": hits_json(&key_host, n),
            });
            let _ = write(&dir.join("identities.json"), result.to_string());
            eprintln!("dcrgate-bench-env: identity run done: {result}");
        });
    }

    if args.hostile_urls > 0 {
        let (hostile, dir) = (Arc::new(hostile), dir.clone());
        let (jwks_uri, server_ca) = (
            Arc::new(jwks_uri.clone()),
            Arc::new(pki.server_ca.cert_pem()),
        );
        let (n, concurrency) = (args.hostile_urls, args.identity_concurrency);
        let key_host = key_host.clone();
        tokio::spawn(async move {
            let gateway = SocketAddr::from(([127, 0, 0, 1], gateway_port));
            let go = dir.join("go-urls");
            while !go.exists() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let started = Instant::now();
            let fetches_before = key_host.total_hits();
            let (statuses, errors) =
                send_hostile_urls(hostile, jwks_uri, server_ca, gateway, n, concurrency).await;
            let result = json!({
                "urls": n,
                "statuses": statuses.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
                "errors": errors,
                "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
                "key_host_fetches": key_host.total_hits() - fetches_before,
            });
            let _ = write(&dir.join("hostile-urls.json"), result.to_string());
            eprintln!("dcrgate-bench-env: hostile URL run done: {result}");
        });
    }

    let n_ids = args.identities;
    let hits_file = dir.join("keyhost-hits.json");
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = usr1.recv() => {
                write(&hits_file, hits_json(&key_host, n_ids).to_string())?;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    let hits = hits_json(&key_host, n_ids);
    write(&hits_file, hits.to_string())?;
    eprintln!("dcrgate-bench-env: key host fetches: {hits}");
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dcrgate-bench-env: runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(run(args));
    rt.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dcrgate-bench-env: {e}");
            ExitCode::from(2)
        }
    }
}
