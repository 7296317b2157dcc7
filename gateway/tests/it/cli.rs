//! `dcrgate check`: a good configuration passes; a bad one fails with a message that names the
//! file and the key at fault.

use crate::common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::Files;
use dcrgate_sandbox::pki::SandboxPki;
use dcrgate_sandbox::world::{SandboxConfig, SEED_PROFILE};

/// A sandbox configuration (nothing needs to listen for `check`) written into `files`.
fn config(files: &Files) -> SandboxConfig {
    SandboxConfig::new(
        18443,
        19090,
        "127.0.0.1:18080".parse().expect("addr"),
        &files.pki,
        "seed-update.toml",
    )
}

fn check(config: &Path) -> Output {
    check_with(&[], config)
}

fn check_with(flags: &[&str], config: &Path) -> Output {
    common::dcrgate_check(flags, config)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn check_accepts_a_good_config() {
    let files = Files::write(&SandboxPki::generate().expect("PKI"));
    let path = config(&files)
        .write(files.path(), "good.toml")
        .expect("write");
    let out = check(&path);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ok"), "{stdout}");
    assert!(stdout.contains("seed-update"), "{stdout}");
}

#[test]
fn check_refuses_an_unknown_key_naming_file_and_key() {
    let files = Files::write(&SandboxPki::generate().expect("PKI"));
    let mut cfg = config(&files);
    cfg.set("limits", "max_body_size", 1024);
    let path = cfg.write(files.path(), "unknown-key.toml").expect("write");
    let out = check(&path);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("unknown-key.toml"), "{err}");
    assert!(err.contains("max_body_size"), "{err}");
}

#[test]
fn check_refuses_an_empty_key_set_allowlist() {
    let files = Files::write(&SandboxPki::generate().expect("PKI"));
    let mut cfg = config(&files);
    cfg.set("policy", "key_set_hosts", toml::Value::Array(Vec::new()));
    let path = cfg.write(files.path(), "no-hosts.toml").expect("write");
    let out = check(&path);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("no-hosts.toml"), "{err}");
    assert!(err.contains("policy.key_set_hosts"), "{err}");
}

#[test]
fn check_refuses_a_symmetric_algorithm_in_the_profile() {
    let files = Files::write(&SandboxPki::generate().expect("PKI"));
    let original = r#"algorithms = ["PS256"]"#;
    assert!(SEED_PROFILE.contains(original));
    let profile = SEED_PROFILE.replace(original, r#"algorithms = ["HS256"]"#);
    std::fs::write(files.path().join("hmac-profile.toml"), profile).expect("write profile");
    let mut cfg = config(&files);
    cfg.set("policy", "profile", "hmac-profile.toml");
    let path = cfg.write(files.path(), "hmac.toml").expect("write");
    let out = check(&path);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("hmac-profile.toml"), "{err}");
    assert!(err.contains("request.algorithms"), "{err}");
}

#[test]
fn check_refuses_a_missing_certificate_file() {
    let files = Files::write(&SandboxPki::generate().expect("PKI"));
    let mut cfg = config(&files);
    cfg.set("listener", "certificate", "absent.pem");
    let path = cfg.write(files.path(), "absent.toml").expect("write");
    let out = check(&path);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("absent.toml"), "{err}");
    assert!(err.contains("listener.certificate"), "{err}");
}

#[test]
fn run_refuses_a_bad_config_without_starting() {
    let files = Files::write(&SandboxPki::generate().expect("PKI"));
    let mut cfg = config(&files);
    cfg.set("policy", "key_set_hosts", toml::Value::Array(Vec::new()));
    let path = cfg.write(files.path(), "bad-run.toml").expect("write");
    let log = files.path().join("run.stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dcrgate"))
        .arg("run")
        .arg("--config")
        .arg(&path)
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(&log).expect("log")))
        .spawn()
        .expect("spawn dcrgate run");
    // Bounded wait: a gateway that started anyway is killed and the test fails.
    let mut status = None;
    for _ in 0..200 {
        if let Some(s) = child.try_wait().expect("wait") {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let err = std::fs::read_to_string(&log).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("dcrgate run kept running: {err}"));
    assert!(!status.success());
    assert!(err.contains("policy.key_set_hosts"), "{err}");
}

/// `dcrgate run` with a listening address another process holds: start-up fails at once,
/// non-zero, naming the setting and the address (pingora alone would retry the bind for ever
/// while the process looked alive).
#[test]
fn run_fails_when_an_address_is_taken_naming_it() {
    let files = Files::write(&SandboxPki::generate().expect("PKI"));
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port to hold");
    let port = taken.local_addr().expect("addr").port();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    };
    for (key, listen, admin) in [
        ("listener.address", port, free()),
        ("admin.address", free(), port),
    ] {
        let cfg = SandboxConfig::new(
            listen,
            admin,
            "127.0.0.1:18080".parse().expect("addr"),
            &files.pki,
            "seed-update.toml",
        );
        let path = cfg.write(files.path(), "taken.toml").expect("write");
        let mut child = Command::new(env!("CARGO_BIN_EXE_dcrgate"))
            .arg("run")
            .arg("--config")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("dcrgate run");
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait") {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let out = child.wait_with_output().expect("output");
        let err = stderr(&out);
        let status =
            status.unwrap_or_else(|| panic!("{key}: still running with the address taken"));
        assert!(!status.success(), "{key}: exited 0");
        assert!(
            err.contains(key) && err.contains(&format!("127.0.0.1:{port}")),
            "{key}: {err}"
        );
    }
    drop(taken);
}

/// `check` refuses what `run` could not use: an expired served certificate, a leaf or an
/// expired CA as the client CA bundle, and an audit file that cannot be opened.
#[test]
fn check_refuses_what_run_could_not_use() {
    use dcrgate_certs::{Authority, SubjectSpec};
    let pki = SandboxPki::generate().expect("PKI");
    type Spoil<'a> = Box<dyn Fn(&Files, &mut SandboxConfig) + 'a>;
    let cases: Vec<(&str, Spoil<'_>)> = vec![
        (
            "listener.certificate",
            Box::new(|files: &Files, _: &mut SandboxConfig| {
                let old = pki
                    .server_ca
                    .issue_client_valid(
                        &SubjectSpec::common_name("gateway"),
                        time::Duration::days(-1),
                    )
                    .expect("certificate");
                std::fs::write(files.path().join("gateway.pem"), &old.cert_pem).expect("write");
                dcrgate_sandbox::pki::write_private(
                    &files.path().join("gateway.key"),
                    &old.key_pem,
                )
                .expect("write");
            }),
        ),
        (
            "listener.client_ca",
            Box::new(|files: &Files, _: &mut SandboxConfig| {
                let leaf = pki
                    .client_ca
                    .issue_client(&SubjectSpec::common_name("tpp"))
                    .expect("certificate");
                std::fs::write(files.path().join("client-ca.pem"), &leaf.cert_pem).expect("write");
            }),
        ),
        (
            "listener.client_ca",
            Box::new(|files: &Files, _: &mut SandboxConfig| {
                let expired = Authority::expired("old TPP CA").expect("CA");
                std::fs::write(files.path().join("client-ca.pem"), expired.cert_pem())
                    .expect("write");
            }),
        ),
        (
            "audit.path",
            Box::new(|_: &Files, cfg: &mut SandboxConfig| {
                cfg.set("audit", "path", "no-such-folder/audit.jsonl");
            }),
        ),
    ];
    for (key, spoil) in cases {
        let files = Files::write(&pki);
        let mut cfg = config(&files);
        spoil(&files, &mut cfg);
        let path = cfg.write(files.path(), "spoilt.toml").expect("write");
        let out = check(&path);
        let err = stderr(&out);
        assert!(!out.status.success(), "{key}: accepted");
        assert!(err.contains(key), "{key}: {err}");
    }
}

/// `audit.path = "-"` (standard output, for containers) is a valid sink.
#[test]
fn check_accepts_standard_output_as_the_audit_sink() {
    let files = Files::write(&SandboxPki::generate().expect("PKI"));
    let mut cfg = config(&files);
    cfg.set("audit", "path", "-");
    let path = cfg.write(files.path(), "stdout-audit.toml").expect("write");
    let out = check(&path);
    assert!(out.status.success(), "{}", stderr(&out));
}

/// `check --offline` validates everything but the resolution of `upstream.url`: a registry
/// name that resolves only where the gateway runs (a Kubernetes Service) passes it, and fails
/// the plain `check`, naming the key.
#[test]
fn check_offline_does_not_resolve_the_upstream_name() {
    let files = Files::write(&SandboxPki::generate().expect("PKI"));
    let mut cfg = config(&files);
    cfg.set("upstream", "url", "http://registry.dcrgate.invalid:8080");
    let path = cfg.write(files.path(), "cluster.toml").expect("write");
    let out = check(&path);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("upstream.url"), "{}", stderr(&out));
    let out = check_with(&["--offline"], &path);
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("registry.dcrgate.invalid (not resolved: --offline)"),
        "{stdout}"
    );
    // Everything else is still checked.
    cfg.set("limits", "max_body_size", 1024);
    let path = cfg.write(files.path(), "cluster-bad.toml").expect("write");
    let out = check_with(&["--offline"], &path);
    assert!(!out.status.success());
}

#[test]
fn version_names_the_version_the_commit_and_the_build_date_as_the_image_labels_do() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_dcrgate"))
            .args(args)
            .output()
            .expect("dcrgate runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let short = run(&["--version"]);
    let long = run(&["version"]);
    let version = env!("CARGO_PKG_VERSION");
    let field = |name: &str| {
        long.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name:?} line in {long}"))
            .trim()
            .to_owned()
    };
    assert_eq!(field("dcrgate "), version);
    let commit = field("commit ");
    assert!(
        commit == "unknown"
            || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{commit}"
    );
    let built = field("built ");
    assert!(dcrgate::clock::parse_time(&built).is_some(), "{built}");
    assert_eq!(
        short.trim(),
        format!("dcrgate {version} (commit {commit}, built {built})")
    );
    // The metrics carry the same three.
    let metrics = dcrgate::metrics::Metrics::new().expect("metrics");
    let text = String::from_utf8(metrics.render()).expect("utf-8");
    let info = text
        .lines()
        .find(|l| l.starts_with("dcrgate_build_info{"))
        .unwrap_or_else(|| panic!("no dcrgate_build_info in {text}"));
    for label in [
        format!("version=\"{version}\""),
        format!("commit=\"{commit}\""),
        format!("build_date=\"{built}\""),
    ] {
        assert!(info.contains(&label), "{label} not in {info}");
    }
    // The image is labelled with the same version.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let dockerfile = std::fs::read_to_string(root.join("deploy/Dockerfile")).expect("Dockerfile");
    assert!(
        dockerfile.contains(&format!("ARG DCRGATE_VERSION={version}")),
        "deploy/Dockerfile's DCRGATE_VERSION is not {version}"
    );
    for label in ["version", "revision", "created", "licenses"] {
        assert!(
            dockerfile.contains(&format!("org.opencontainers.image.{label}=")),
            "{label}"
        );
    }
    // The license the crates declare is the repository's LICENSE.
    let license = std::fs::read_to_string(root.join("LICENSE")).expect("LICENSE");
    assert!(license.contains("Apache License") && license.contains("Version 2.0"));
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains("license = \"Apache-2.0\""), "{manifest}");
    assert!(dockerfile.contains("org.opencontainers.image.licenses=\"Apache-2.0\""));
}

#[test]
fn check_refuses_a_profile_whose_request_objects_outlive_the_replay_store() {
    let files = Files::write(&SandboxPki::generate().expect("PKI"));
    for (lifetime, leeway, ok) in [
        (86_000, 200, true),
        (86_400, 60, false),
        (86_000, 201, false),
    ] {
        let profile = SEED_PROFILE
            .replace("require_jti = false", "require_jti = true")
            .replace(
                "max_lifetime_seconds = 3600",
                &format!("max_lifetime_seconds = {lifetime}"),
            )
            .replace(
                "clock_leeway_seconds = 60",
                &format!("clock_leeway_seconds = {leeway}"),
            );
        assert!(profile.contains("require_jti = true"));
        std::fs::write(files.path().join("long.toml"), &profile).expect("profile");
        let mut cfg = config(&files);
        cfg.set("policy", "profile", "long.toml");
        let path = cfg.write(files.path(), "long-config.toml").expect("config");
        let out = check(&path);
        if ok {
            assert!(out.status.success(), "{lifetime}+2*{leeway}: {out:?}");
        } else {
            assert_eq!(out.status.code(), Some(2), "{lifetime}+2*{leeway}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("policy.profile") && err.contains("replay store"),
                "{err}"
            );
        }
    }
}
