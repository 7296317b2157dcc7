//! Rate limits: one client certificate over its limit gets 429 with `Retry-After` while another
//! certificate is still served; the global limit protects the registry; refusals are counted
//! and never forwarded.

use crate::common;

use std::net::SocketAddr;

use common::{tpp_subject, Harness, Put};
use dcrgate_sandbox::client::TppClient;
use dcrgate_sandbox::http1::RawResponse;

fn assert_429(r: &RawResponse, reason: &str) {
    let d = common::assert_rejection(r, 429, "temporarily_unavailable");
    assert!(d.contains("too many requests"), "{d}");
    let retry: u64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in {r:?}"));
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert!(d.contains(reason), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_certificate_over_its_limit_does_not_starve_another() {
    let h = Harness::start_with(|cfg| {
        cfg.set("rate_limits", "per_client_per_second", 0.2);
        cfg.set("rate_limits", "per_client_burst", 3.0);
    })
    .await;
    for _ in 0..3 {
        assert_eq!(h.put_jwt(&h.compliant_jwt()).await.status, 200);
    }
    assert_429(
        &h.put_jwt(&h.compliant_jwt()).await,
        "this client certificate",
    );
    assert_eq!(h.registry.count(), 3);

    // Another TPP certificate from the same CA has its own bucket.
    let other = h
        .pki
        .transport_cert(&tpp_subject())
        .expect("second certificate");
    let client = TppClient::new(
        &h.pki.server_ca.cert_pem(),
        Some(&other),
        SocketAddr::from(([127, 0, 0, 1], h.gateway.listen)),
    )
    .expect("client");
    let raw = Put::jwt(h.compliant_jwt()).bytes();
    let r = client.send(&raw).await.expect("answer");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    h.assert_metric_becomes(r#"dcrgate_rate_limited_total{scope="client"}"#, 1.0)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_global_limit_protects_the_registry() {
    let h = Harness::start_with(|cfg| {
        cfg.set("rate_limits", "global_per_second", 0.2);
        cfg.set("rate_limits", "global_burst", 2.0);
    })
    .await;
    for _ in 0..2 {
        assert_eq!(h.put_jwt(&h.compliant_jwt()).await.status, 200);
    }
    // Even a request that would be refused anyway is refused early, before any work.
    for _ in 0..3 {
        assert_429(&h.put_jwt(&h.compliant_jwt()).await, "the gateway");
    }
    assert_eq!(h.registry.count(), 2);
    let (samples, _) = h
        .metrics_when(|s| s.get(r#"dcrgate_rate_limited_total{scope="global"}"#) == Some(3.0))
        .await;
    assert_eq!(
        samples.get(r#"dcrgate_rate_limited_total{scope="global"}"#),
        Some(3.0)
    );
}

/// Sends `count` compliant PUTs to the first gateway and then `count` to the replica, returning
/// the statuses of each.
async fn statuses(h: &Harness, replica: &common::Replica, count: usize) -> (Vec<u16>, Vec<u16>) {
    let mut first = Vec::new();
    for _ in 0..count {
        first.push(h.put_jwt(&h.compliant_jwt()).await.status);
    }
    let mut second = Vec::new();
    for _ in 0..count {
        second.push(
            replica
                .send(&Put::jwt(h.compliant_jwt()).bytes())
                .await
                .status,
        );
    }
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_redis_share_the_client_and_the_global_limits() {
    let redis = common::redis::RedisServer::start(&[]);
    // (section key, burst key): the client's limit, then the gateway's.
    for (rate, burst) in [
        ("per_client_per_second", "per_client_burst"),
        ("global_per_second", "global_burst"),
    ] {
        for store in ["memory", "redis"] {
            let url = redis.url("", "/0");
            let prefix = format!("dcrgate:rate:{rate}:{store}:");
            let h = Harness::start_with(|cfg| {
                cfg.set("rate_limits", "per_client_per_second", 0.0);
                cfg.set("rate_limits", "global_per_second", 0.0);
                cfg.set("rate_limits", rate, 0.05);
                cfg.set("rate_limits", burst, 3.0);
                cfg.set("rate_limits", "store", store);
                cfg.set("rate_limits", "key_prefix", prefix.clone());
                cfg.set("redis", "url", url.clone());
            })
            .await;
            let replica = h.spawn_replica().await;
            let (first, second) = statuses(&h, &replica, 3).await;
            assert_eq!(first, [200, 200, 200], "{rate} {store}");
            if store == "memory" {
                // Each replica has its own buckets: N replicas let N × the limit through.
                assert_eq!(second, [200, 200, 200], "{rate} {store}");
                assert_eq!(h.registry.count(), 6);
            } else {
                // One limit for both: the replica's requests find the bucket empty.
                assert_eq!(second, [429, 429, 429], "{rate} {store}");
                let r = h.put_jwt(&h.compliant_jwt()).await;
                let scope = if rate.starts_with("global") {
                    "the gateway"
                } else {
                    "this client certificate"
                };
                assert_429(&r, scope);
                assert_eq!(h.registry.count(), 3, "refusals are never forwarded");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_limiter_whose_redis_is_down_fails_closed_or_open_as_configured() {
    for (policy, status) in [("reject", 503), ("accept", 200)] {
        let port = common::closed_port();
        let h = Harness::start_with(|cfg| {
            cfg.set("rate_limits", "store", "redis");
            cfg.set("rate_limits", "on_store_error", policy);
            cfg.set("redis", "url", format!("redis://127.0.0.1:{port}/0"));
        })
        .await;
        let r = h.put_jwt(&h.compliant_jwt()).await;
        assert_eq!(
            r.status,
            status,
            "{policy}: {}",
            String::from_utf8_lossy(&r.body)
        );
        if status == 503 {
            let d = common::assert_rejection(&r, 503, "temporarily_unavailable");
            assert!(d.contains("rate limit check could not be made"), "{d}");
            h.assert_not_forwarded();
        } else {
            assert_eq!(h.registry.count(), 1);
        }
        let errors = r#"dcrgate_rate_limit_store_errors_total{kind="connect"}"#;
        let down = r#"dcrgate_dependency_up{dependency="rate_limit_store"}"#;
        let (samples, text) = h
            .metrics_when(|s| s.get(errors) == Some(1.0) && s.get(down) == Some(0.0))
            .await;
        assert_eq!(samples.get(errors), Some(1.0), "{policy}: {text}");
        assert_eq!(samples.get(down), Some(0.0), "{policy}: {text}");
        let log = h.gateway.stderr_log();
        assert!(log.contains("rate limit store unavailable"), "{log}");
    }
}

/// How the scripted Redis below answers.
#[derive(Clone, Copy, Debug)]
enum FakeRedis {
    /// Never answers.
    Silent,
    /// Answers every command with this RESP reply.
    Reply(&'static str),
    /// Answers `+OK` until a script is sent (the limiter's check), then closes the connection.
    CloseOnScript,
}

/// Count the complete RESP commands (`*N` arrays of bulk strings) at the start of `buf`, and
/// the bytes they take.
fn resp_commands(buf: &[u8]) -> (usize, usize) {
    let line = |at: usize| -> Option<(usize, usize)> {
        let end = buf[at..].windows(2).position(|w| w == b"\r\n")? + at;
        let n = std::str::from_utf8(&buf[at + 1..end]).ok()?.parse().ok()?;
        Some((n, end + 2))
    };
    let (mut count, mut at) = (0, 0);
    'frames: while at < buf.len() {
        let Some((items, mut pos)) = line(at) else {
            break;
        };
        for _ in 0..items {
            let Some((len, data)) = line(pos) else {
                break 'frames;
            };
            if buf.len() < data + len + 2 {
                break 'frames;
            }
            pos = data + len + 2;
        }
        count += 1;
        at = pos;
    }
    (count, at)
}

/// A TCP server on loopback that speaks just enough RESP to misbehave as told.
async fn fake_redis(how: FakeRedis) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let n = match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    let (commands, used) = resp_commands(&buf);
                    let script = buf[..used]
                        .windows(4)
                        .any(|w| w.eq_ignore_ascii_case(b"EVAL"));
                    buf.drain(..used);
                    for _ in 0..commands {
                        let reply = match how {
                            FakeRedis::Silent => continue,
                            FakeRedis::Reply(r) => r,
                            FakeRedis::CloseOnScript if script => return,
                            FakeRedis::CloseOnScript => "+OK\r\n",
                        };
                        if sock.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

/// Each way a shared store can fail is counted under its own kind, and the limiter fails
/// closed (503, not forwarded) under `on_store_error = "reject"`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_store_failure_is_counted_and_fails_closed() {
    let cases = [
        (FakeRedis::Silent, "timeout"),
        (
            FakeRedis::Reply("-NOAUTH Authentication required.\r\n"),
            "auth",
        ),
        (FakeRedis::Reply("-ERR out of cheese\r\n"), "server_error"),
        (FakeRedis::Reply(":7\r\n"), "protocol"),
        (FakeRedis::CloseOnScript, "io"),
    ];
    let mut failures = Vec::new();
    for (how, kind) in cases {
        let port = fake_redis(how).await;
        let h = Harness::start_with(|cfg| {
            cfg.set("rate_limits", "store", "redis");
            cfg.set("rate_limits", "on_store_error", "reject");
            cfg.set("redis", "url", format!("redis://127.0.0.1:{port}/0"));
            cfg.set("redis", "timeout_ms", 300);
        })
        .await;
        let r = h.put_jwt(&h.compliant_jwt()).await;
        common::assert_rejection(&r, 503, "temporarily_unavailable");
        h.assert_not_forwarded();
        let series = format!("dcrgate_rate_limit_store_errors_total{{kind=\"{kind}\"}}");
        let (samples, text) = h
            .metrics_when(|s| s.get(&series).unwrap_or(0.0) >= 1.0)
            .await;
        if samples.get(&series).unwrap_or(0.0) < 1.0 {
            let seen: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with("dcrgate_rate_limit_store_errors_total"))
                .collect();
            failures.push(format!("{how:?}: not counted as {kind}: {seen:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
