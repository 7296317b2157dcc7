//! The Redis replay store against a real `redis-server` started here on 127.0.0.1 (from
//! `DCRGATE_REDIS_SERVER` or `redis-server` on PATH; Debian package `redis-server`), and
//! against loopback stand-ins that misbehave: silent, closed, or answering garbage. Every wait
//! is bounded.

use crate::common;

use std::time::{Duration, Instant};

use common::redis::{free_port, RedisServer};

use dcrgate::config::file::{RedisSection, ReplaySection};
use dcrgate::config::Validator;
use dcrgate::replay::{ReplayStore, Seen, StoreError, StoreKind};
use dcrgate::shared_redis::SharedRedis;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

const MINUTE: Duration = Duration::from_secs(60);
/// The store timeout the tests use.
const TIMEOUT_MS: u64 = 500;
/// Slack on top of the store timeout before a call counts as hung.
const SLACK: Duration = Duration::from_millis(1500);

fn redis_store(url: &str, prefix: &str) -> ReplayStore {
    let cfg = ReplaySection {
        store: StoreKind::Redis,
        key_prefix: prefix.to_owned(),
        ..ReplaySection::default()
    };
    let redis = RedisSection {
        url: Some(url.to_owned()),
        timeout_ms: TIMEOUT_MS,
        ..RedisSection::default()
    };
    let validator = Validator::new(std::path::Path::new("dcrgate.toml"));
    let redis = validator
        .redis(&redis)
        .expect("a valid [redis] section")
        .map(|r| SharedRedis::new(&r));
    let settings = validator
        .replay(&cfg, redis.as_ref().and_then(SharedRedis::settings))
        .expect("a valid [replay] section");
    let store = ReplayStore::new(&settings, redis.as_ref());
    assert_eq!(store.kind(), "redis");
    store
}

/// `check_and_record`, which must answer (Ok or Err) within the timeout plus slack.
async fn check(store: &ReplayStore, id: &str, ttl: Duration) -> Result<Seen, StoreError> {
    let started = Instant::now();
    let bound = Duration::from_millis(TIMEOUT_MS) + SLACK;
    let result = tokio::time::timeout(bound, store.check_and_record(id, ttl))
        .await
        .unwrap_or_else(|_| panic!("check_and_record hung for more than {bound:?}"));
    assert!(started.elapsed() < bound);
    result
}

/// One raw command to the server (test-side, independent of the client under test); returns
/// the first reply line.
async fn raw(port: u16, args: &[&str]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let mut command = format!("*{}\r\n", args.len());
    for a in args {
        command.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(command.as_bytes()).await.expect("write");
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        BufReader::new(stream).read_line(&mut line),
    )
    .await
    .expect("raw reply in time")
    .expect("raw reply");
    line.trim_end().to_owned()
}

/// The key's remaining time to live, milliseconds.
async fn pttl(port: u16, key: &str) -> i64 {
    let line = raw(port, &["PTTL", key]).await;
    line.strip_prefix(':')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("PTTL answered {line:?}"))
}

#[tokio::test]
async fn first_then_replayed_with_prefixed_keys() {
    let server = RedisServer::start(&[]);
    let store = redis_store(&server.url("", ""), "dcrgate:jti:");
    let id = "https://issuer.example:3f2c9a1e-8b7d-4e6f-9a0b-1c2d3e4f5a6b";
    assert_eq!(check(&store, id, MINUTE).await, Ok(Seen::First));
    assert_eq!(check(&store, id, MINUTE).await, Ok(Seen::Replayed));
    assert_eq!(check(&store, id, MINUTE).await, Ok(Seen::Replayed));
    assert_eq!(
        check(&store, "https://issuer.example:other", MINUTE).await,
        Ok(Seen::First)
    );
    // The key is the prefix and the id, and holds "1".
    assert_eq!(
        raw(server.port, &["GET", &format!("dcrgate:jti:{id}")]).await,
        "$1"
    );
    // Another prefix is another namespace.
    let other = redis_store(&server.url("", ""), "other:");
    assert_eq!(check(&other, id, MINUTE).await, Ok(Seen::First));
}

#[tokio::test]
async fn a_released_id_is_first_again_and_other_prefixes_keep_theirs() {
    let server = RedisServer::start(&[]);
    let store = redis_store(&server.url("", ""), "dcrgate:jti:");
    let other = redis_store(&server.url("", ""), "other:");
    let id = "https://issuer.example:5a6b3f2c-9a1e-4e6f-8b7d-9a0b1c2d3e4f";
    assert_eq!(check(&store, id, MINUTE).await, Ok(Seen::First));
    assert_eq!(check(&other, id, MINUTE).await, Ok(Seen::First));
    store.release(id).await.expect("DEL");
    assert_eq!(
        raw(server.port, &["EXISTS", &format!("dcrgate:jti:{id}")]).await,
        ":0"
    );
    assert_eq!(check(&store, id, MINUTE).await, Ok(Seen::First));
    assert_eq!(check(&store, id, MINUTE).await, Ok(Seen::Replayed));
    assert_eq!(check(&other, id, MINUTE).await, Ok(Seen::Replayed));
}

#[tokio::test]
async fn two_replicas_sharing_redis_agree() {
    let server = RedisServer::start(&[]);
    let replica_a = redis_store(&server.url("", ""), "dcrgate:jti:");
    let replica_b = redis_store(&server.url("", ""), "dcrgate:jti:");
    assert_eq!(check(&replica_a, "iss:one", MINUTE).await, Ok(Seen::First));
    assert_eq!(
        check(&replica_b, "iss:one", MINUTE).await,
        Ok(Seen::Replayed)
    );
    assert_eq!(check(&replica_b, "iss:two", MINUTE).await, Ok(Seen::First));
    assert_eq!(
        check(&replica_a, "iss:two", MINUTE).await,
        Ok(Seen::Replayed)
    );

    // The same id raced from both replicas at once: exactly one first sighting.
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let store = if i % 2 == 0 {
                replica_a.clone()
            } else {
                replica_b.clone()
            };
            tokio::spawn(async move { store.check_and_record("iss:race", MINUTE).await })
        })
        .collect();
    let mut firsts = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(Seen::First) => firsts += 1,
            Ok(Seen::Replayed) => {}
            Err(e) => panic!("store error: {e}"),
        }
    }
    assert_eq!(firsts, 1);
}

#[tokio::test]
async fn ttl_is_set_clamped_and_expires() {
    let server = RedisServer::start(&[]);
    let store = redis_store(&server.url("", ""), "t:");

    assert_eq!(check(&store, "minute", MINUTE).await, Ok(Seen::First));
    let ms = pttl(server.port, "t:minute").await;
    assert!((55_000..=60_000).contains(&ms), "PTTL {ms}");

    assert_eq!(
        check(&store, "long", Duration::from_secs(10 * 86_400)).await,
        Ok(Seen::First)
    );
    let ms = pttl(server.port, "t:long").await;
    assert!((86_000_000..=86_400_000).contains(&ms), "PTTL {ms}");

    // Zero is raised to one second (Redis refuses EX 0), and then expires.
    let start = Instant::now();
    assert_eq!(
        check(&store, "short", Duration::ZERO).await,
        Ok(Seen::First)
    );
    let ms = pttl(server.port, "t:short").await;
    assert!((1..=1_000).contains(&ms), "PTTL {ms}");
    assert_eq!(
        check(&store, "short", Duration::ZERO).await,
        Ok(Seen::Replayed)
    );
    let deadline = start + Duration::from_secs(5);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if check(&store, "short", Duration::from_secs(1)).await == Ok(Seen::First) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a 1 s key still present after 5 s"
        );
    }
    let elapsed = start.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "expired early: {elapsed:?}"
    );
    assert_eq!(check(&store, "minute", MINUTE).await, Ok(Seen::Replayed));
}

#[tokio::test]
async fn database_from_the_url_path_is_selected() {
    let server = RedisServer::start(&[]);
    let db3 = redis_store(&server.url("", "/3"), "d:");
    let db0 = redis_store(&server.url("", "/0"), "d:");
    assert_eq!(check(&db3, "x", MINUTE).await, Ok(Seen::First));
    assert_eq!(check(&db3, "x", MINUTE).await, Ok(Seen::Replayed));
    assert_eq!(check(&db0, "x", MINUTE).await, Ok(Seen::First));
    // A database the server does not have is a server error.
    let db99 = redis_store(&server.url("", "/99"), "d:");
    let err = check(&db99, "x", MINUTE).await.expect_err("no database 99");
    assert!(matches!(err, StoreError::ServerError(_)), "{err:?}");
}

#[tokio::test]
async fn password_is_required_and_checked() {
    let password = "s3cr3t p@ss/word";
    let server = RedisServer::start(&["--requirepass", password]);
    let encoded = "s3cr3t%20p%40ss%2Fword";

    let right = redis_store(&server.url(&format!(":{encoded}@"), "/1"), "a:");
    assert_eq!(check(&right, "x", MINUTE).await, Ok(Seen::First));
    assert_eq!(check(&right, "x", MINUTE).await, Ok(Seen::Replayed));
    // With the ACL user name too (AUTH user password).
    let with_user = redis_store(&server.url(&format!("default:{encoded}@"), "/1"), "a:");
    assert_eq!(check(&with_user, "x", MINUTE).await, Ok(Seen::Replayed));

    let wrong = redis_store(&server.url(":not-the-password@", ""), "a:");
    let err = check(&wrong, "y", MINUTE)
        .await
        .expect_err("wrong password");
    assert!(matches!(err, StoreError::Auth(_)), "{err:?}");
    assert_eq!(err.kind(), "auth");
    assert!(!err.to_string().contains(password));

    let none = redis_store(&server.url("", ""), "a:");
    let err = check(&none, "y", MINUTE).await.expect_err("no password");
    assert!(matches!(err, StoreError::Auth(_)), "{err:?}");
    // Neither recorded anything.
    assert_eq!(check(&right, "y", MINUTE).await, Ok(Seen::First));
}

#[tokio::test]
async fn redis_down_is_an_error_not_a_hang() {
    let mut server = RedisServer::start(&[]);
    let store = redis_store(&server.url("", ""), "k:");
    assert_eq!(check(&store, "a", MINUTE).await, Ok(Seen::First));
    server.stop();
    // The pooled connection is dead and nothing listens any more.
    let err = check(&store, "b", MINUTE)
        .await
        .expect_err("server is down");
    assert!(matches!(err, StoreError::Connect(_)), "{err:?}");
    assert_eq!(err.kind(), "connect");

    // A port nothing ever listened on.
    let closed = redis_store(&format!("redis://127.0.0.1:{}", free_port()), "k:");
    let err = check(&closed, "a", MINUTE).await.expect_err("closed port");
    assert!(matches!(err, StoreError::Connect(_)), "{err:?}");
}

#[tokio::test]
async fn restarted_server_is_reconnected() {
    let server = RedisServer::start(&[]);
    let store = redis_store(&server.url("", ""), "k:");
    assert_eq!(check(&store, "a", MINUTE).await, Ok(Seen::First));
    // The pool now holds a connection to a server that goes away; the new (empty) server on
    // the same port is reached on the next call without an error.
    let server = server.restart();
    assert_eq!(check(&store, "a", MINUTE).await, Ok(Seen::First));
    assert_eq!(check(&store, "a", MINUTE).await, Ok(Seen::Replayed));
    drop(server);
}

/// A loopback listener that accepts connections and, for each, reads the request then runs
/// `reply` on the socket.
async fn stand_in<F, Fut>(reply: F) -> u16
where
    F: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(reply(socket));
        }
    });
    port
}

#[tokio::test]
async fn silent_server_times_out() {
    let port = stand_in(|mut socket| async move {
        // Hold the connection open, read what comes, answer nothing.
        let mut buf = [0u8; 1024];
        while let Ok(n) = socket.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    let store = redis_store(&format!("redis://127.0.0.1:{port}"), "k:");
    let started = Instant::now();
    let err = check(&store, "a", MINUTE).await.expect_err("no answer");
    assert_eq!(err, StoreError::Timeout);
    assert_eq!(err.kind(), "timeout");
    assert!(started.elapsed() >= Duration::from_millis(TIMEOUT_MS - 50));

    // Also when the silence is during AUTH.
    let store = redis_store(&format!("redis://:pw@127.0.0.1:{port}"), "k:");
    assert_eq!(check(&store, "a", MINUTE).await, Err(StoreError::Timeout));
}

#[tokio::test]
async fn malicious_replies_are_protocol_errors() {
    async fn answer(mut socket: TcpStream, reply: &'static [u8]) {
        let mut buf = [0u8; 1024];
        if socket.read(&mut buf).await.is_ok() {
            let _ = socket.write_all(reply).await;
            // Keep the socket open a moment so the client reads the reply, not a close.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    let cases: [(&'static [u8], &str); 4] = [
        (b"$999999999\r\n", "huge bulk length"),
        (b"*1\r\n+OK\r\n", "array"),
        (b":1\r\n", "integer"),
        (b"+OK", "unterminated, then silence"),
    ];
    for (reply, what) in cases {
        let port = stand_in(move |socket| answer(socket, reply)).await;
        let store = redis_store(&format!("redis://127.0.0.1:{port}"), "k:");
        let result = check(&store, "a", MINUTE).await;
        if what.starts_with("unterminated") || what.starts_with("huge") {
            // A reply that never completes: the deadline ends the wait.
            assert_eq!(result, Err(StoreError::Timeout), "{what}");
        } else {
            assert!(
                matches!(result, Err(StoreError::Protocol(_) | StoreError::Io(_))),
                "{what}: {result:?}"
            );
        }
    }

    // An endless line: refused after a bounded read.
    let port = stand_in(|mut socket| async move {
        let mut buf = [0u8; 1024];
        if socket.read(&mut buf).await.is_ok() {
            let chunk = vec![b'+'; 64 * 1024];
            for _ in 0..64 {
                if socket.write_all(&chunk).await.is_err() {
                    break;
                }
            }
        }
    })
    .await;
    let store = redis_store(&format!("redis://127.0.0.1:{port}"), "k:");
    let err = check(&store, "a", MINUTE).await.expect_err("endless line");
    assert!(
        matches!(
            err,
            StoreError::Protocol(_) | StoreError::Io(_) | StoreError::Timeout
        ),
        "{err:?}"
    );

    // A long error message is shortened.
    let port = stand_in(|mut socket| async move {
        let mut buf = [0u8; 1024];
        if socket.read(&mut buf).await.is_ok() {
            let mut reply = b"-ERR ".to_vec();
            reply.extend(std::iter::repeat_n(b'e', 900));
            reply.extend_from_slice(b"\r\n");
            let _ = socket.write_all(&reply).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    })
    .await;
    let store = redis_store(&format!("redis://127.0.0.1:{port}"), "k:");
    match check(&store, "a", MINUTE).await {
        Err(StoreError::ServerError(message)) => {
            assert!(message.contains("eeee"), "{message}");
            assert!(message.len() <= 200, "{} bytes", message.len());
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn ping_answers_while_redis_is_up_and_errs_within_the_timeout_when_down() {
    let mut server = RedisServer::start(&[]);
    let store = redis_store(&server.url("", ""), "k:");
    assert_eq!(store.ping().await, Ok(()));
    server.stop();
    let started = Instant::now();
    assert!(store.ping().await.is_err());
    assert!(started.elapsed() < Duration::from_millis(TIMEOUT_MS) + SLACK);
}
