//! The shared Redis as banks run it, against real `redis-server` processes on 127.0.0.1:
//! TLS with a private CA and client certificates (`rediss://`), ACL users, and Sentinel with a
//! real failover. Certificates are generated here; every wait is bounded.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::redis::{RedisServer, Sentinel};
use dcrgate::config::file::{RedisSection, ReplaySection};
use dcrgate::config::Validator;
use dcrgate::replay::{ReplayStore, Seen, StoreError, StoreKind};
use dcrgate::shared_redis::SharedRedis;
use dcrgate_certs::{Authority, SubjectSpec};
use tempfile::TempDir;

const MINUTE: Duration = Duration::from_secs(60);

/// A replay store on the `[redis]` section given as TOML (paths relative to `dir`).
fn store_in(dir: &Path, redis_toml: &str) -> Result<ReplayStore, String> {
    let section: RedisSection = toml::from_str(redis_toml).map_err(|e| e.to_string())?;
    let config_path = dir.join("dcrgate.toml");
    let validator = Validator::new(&config_path);
    let redis = validator
        .redis(&section)
        .map_err(|e| e.to_string())?
        .map(|r| SharedRedis::new(&r));
    let replay = ReplaySection {
        store: StoreKind::Redis,
        ..ReplaySection::default()
    };
    let settings = validator
        .replay(&replay, redis.as_ref().and_then(SharedRedis::settings))
        .map_err(|e| e.to_string())?;
    Ok(ReplayStore::new(&settings, redis.as_ref()))
}

async fn check(store: &ReplayStore, id: &str) -> Result<Seen, StoreError> {
    tokio::time::timeout(Duration::from_secs(5), store.check_and_record(id, MINUTE))
        .await
        .unwrap_or_else(|_| panic!("check_and_record hung"))
}

/// A folder with a server CA, a server certificate for 127.0.0.1, a client CA and a client
/// certificate, and a CA that signed neither.
struct TlsFiles {
    dir: TempDir,
}

impl TlsFiles {
    fn new() -> Self {
        let dir = TempDir::new().expect("temp dir");
        let server_ca = Authority::new("Redis server CA").expect("ca");
        let server = server_ca.issue_server(&["127.0.0.1"]).expect("server cert");
        let client_ca = Authority::new("Redis client CA").expect("ca");
        let client = client_ca
            .issue_client(&SubjectSpec::common_name("dcrgate-replica"))
            .expect("client cert");
        let stranger = Authority::new("Redis server CA").expect("same name, other key");
        for (name, text) in [
            ("server-ca.pem", server_ca.cert_pem()),
            ("server.pem", server.cert_pem),
            ("server.key", server.key_pem),
            ("client-ca.pem", client_ca.cert_pem()),
            ("client.pem", client.cert_pem),
            ("client.key", client.key_pem),
            ("stranger-ca.pem", stranger.cert_pem()),
        ] {
            std::fs::write(dir.path().join(name), text).expect("write");
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    fn server(&self, auth_clients: bool) -> RedisServer {
        RedisServer::start_tls(
            &self.path("server.pem"),
            &self.path("server.key"),
            &self.path("client-ca.pem"),
            auth_clients,
        )
    }
}

#[tokio::test]
async fn rediss_verifies_the_server_against_the_configured_ca_and_presents_a_client_certificate() {
    let files = TlsFiles::new();
    let dir = files.dir.path();
    let server = files.server(true);
    let url = format!("rediss://127.0.0.1:{}/0", server.port);

    let good = store_in(
        dir,
        &format!(
            "url = \"{url}\"\nca_file = \"server-ca.pem\"\ncertificate = \"client.pem\"\n\
             private_key = \"client.key\""
        ),
    )
    .expect("valid");
    assert_eq!(check(&good, "tls-1").await, Ok(Seen::First));
    assert_eq!(check(&good, "tls-1").await, Ok(Seen::Replayed));

    // No client certificate: the server refuses the handshake.
    let no_cert = store_in(
        dir,
        &format!("url = \"{url}\"\nca_file = \"server-ca.pem\""),
    )
    .expect("valid");
    let err = check(&no_cert, "tls-2")
        .await
        .expect_err("client certificate required");
    assert!(
        matches!(err, StoreError::Connect(_) | StoreError::Io(_)),
        "{err:?}"
    );

    // A CA of the same name with another key, or the system's roots: the server is not trusted.
    for roots in ["ca_file = \"stranger-ca.pem\"\n", ""] {
        let untrusted = store_in(
            dir,
            &format!(
                "url = \"{url}\"\n{roots}certificate = \"client.pem\"\nprivate_key = \"client.key\""
            ),
        )
        .expect("valid");
        let err = check(&untrusted, "tls-3")
            .await
            .expect_err("server not trusted");
        assert!(matches!(err, StoreError::Connect(_)), "{roots}: {err:?}");
    }

    // Plain TCP to the TLS port gets nowhere, and nothing was recorded by any refused attempt.
    let plain = store_in(
        dir,
        &format!("url = \"redis://127.0.0.1:{}/0\"", server.port),
    )
    .expect("valid");
    assert!(check(&plain, "tls-4").await.is_err());
    assert_eq!(check(&good, "tls-2").await, Ok(Seen::First));
    assert_eq!(check(&good, "tls-3").await, Ok(Seen::First));
}

#[tokio::test]
async fn a_tls_server_without_client_authentication_needs_only_the_ca() {
    let files = TlsFiles::new();
    let server = files.server(false);
    let store = store_in(
        files.dir.path(),
        &format!(
            "url = \"rediss://127.0.0.1:{}\"\nca_file = \"server-ca.pem\"",
            server.port
        ),
    )
    .expect("valid");
    assert_eq!(check(&store, "x").await, Ok(Seen::First));
    assert_eq!(store.ping().await, Ok(()));
}

#[tokio::test]
async fn tls_files_are_checked_by_validation() {
    let files = TlsFiles::new();
    let dir = files.dir.path();
    let refused = |toml: &str| store_in(dir, toml).expect_err(toml);
    // A key that is not the certificate's.
    let e =
        refused("url = \"rediss://h\"\ncertificate = \"client.pem\"\nprivate_key = \"server.key\"");
    assert!(e.contains("redis.certificate"), "{e}");
    // A CA file that holds no certificate.
    let e = refused("url = \"rediss://h\"\nca_file = \"client.key\"");
    assert!(e.contains("redis.ca_file"), "{e}");
    // TLS files with a plain URL would be silently unused.
    let e = refused("url = \"redis://h\"\nca_file = \"server-ca.pem\"");
    assert!(e.contains("redis.ca_file"), "{e}");
}

#[tokio::test]
async fn acl_users_authenticate_and_are_held_to_their_keys() {
    let server = RedisServer::start(&[]);
    for rules in [
        &["gw", "on", ">gw-secret", "~dcrgate:jti:*", "+@all"][..],
        &["other", "on", ">other-secret", "~elsewhere:*", "+@all"],
        &["default", "off"],
    ] {
        let command: Vec<&str> = ["ACL", "SETUSER"].iter().chain(rules).copied().collect();
        assert_eq!(server.raw(&command), "+OK", "{command:?}");
    }
    let dir = TempDir::new().expect("dir");
    let url = |credentials: &str| format!("url = \"{}\"", server.url(credentials, "/0"));

    let gw = store_in(dir.path(), &url("gw:gw-secret@")).expect("valid");
    assert_eq!(check(&gw, "a").await, Ok(Seen::First));
    assert_eq!(check(&gw, "a").await, Ok(Seen::Replayed));
    assert_eq!(gw.ping().await, Ok(()));

    for credentials in ["gw:wrong@", ":gw-secret@", ""] {
        let store = store_in(dir.path(), &url(credentials)).expect("valid");
        let err = check(&store, "b").await.expect_err(credentials);
        assert_eq!(err.kind(), "auth", "{credentials}: {err:?}");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
    // A user whose ACL does not cover the replay keys is refused the write.
    let other = store_in(dir.path(), &url("other:other-secret@")).expect("valid");
    let err = check(&other, "c").await.expect_err("keys outside its ACL");
    assert_eq!(err.kind(), "auth", "{err:?}");
    assert_eq!(
        check(&gw, "c").await,
        Ok(Seen::First),
        "nothing was recorded for c"
    );
}

#[tokio::test]
async fn sentinel_names_the_master_and_a_failover_is_followed() {
    let mut master = RedisServer::start(&[]);
    let replica = RedisServer::start(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let sentinel = Sentinel::start(master.port);
    let dir = TempDir::new().expect("dir");
    let store = store_in(
        dir.path(),
        &format!(
            "url = \"redis://sentinel-names-the-address/0\"\nsentinel_master = \"dcrgate\"\n\
             sentinels = [\"redis://127.0.0.1:{}\"]",
            sentinel.port
        ),
    )
    .expect("valid");

    assert_eq!(check(&store, "before").await, Ok(Seen::First));
    assert_eq!(
        master.raw(&["EXISTS", "dcrgate:jti:before"]),
        ":1",
        "written to the master"
    );
    // Wait (bounded) until the replica has it, then take the master away.
    let deadline = Instant::now() + Duration::from_secs(10);
    while replica.raw(&["EXISTS", "dcrgate:jti:before"]) != ":1" {
        assert!(Instant::now() < deadline, "replication did not happen");
        std::thread::sleep(Duration::from_millis(50));
    }
    master.stop();

    // The sentinel promotes the replica; the store follows it without a restart.
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut attempts = 0;
    loop {
        attempts += 1;
        match check(&store, "after").await {
            Ok(seen) => {
                assert_eq!(seen, Seen::First);
                break;
            }
            Err(e) => assert!(
                Instant::now() < deadline,
                "no failover followed after {attempts} attempts: {e:?}; sentinel log:\n{}",
                sentinel.log()
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        replica.raw(&["EXISTS", "dcrgate:jti:after"]),
        ":1",
        "written to the new master"
    );
    assert_eq!(
        check(&store, "before").await,
        Ok(Seen::Replayed),
        "the record survived"
    );
}
