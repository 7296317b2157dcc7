//! TPP key sets: where the gateway will fetch them from, caching and rotation, and every way a
//! key host can fail. A request the gateway cannot verify is never forwarded.

use crate::common;

use std::time::Duration;

use common::{assert_rejection, closed_port, sign_with_key, Harness, KID};
use dcrgate_certs::RsaSigningKey;
use dcrgate_sandbox::keyhost::Serve;
use dcrgate_sandbox::world::JWKS_PATH;
use serde_json::json;

/// Compliant claims whose key set URL is `uri`.
fn with_jwks_uri(h: &Harness, uri: &str) -> serde_json::Value {
    h.claims_with(|m| {
        m.insert("jwks_uri".into(), json!(uri));
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_set_url_not_https_or_not_allowlisted_is_400_without_a_fetch() {
    let h = Harness::start().await;
    let port = h.key_host.addr().port();
    for uri in [
        format!("http://localhost:{port}{JWKS_PATH}"),
        format!("https://127.0.0.1:{port}{JWKS_PATH}"),
        format!("https://127.0.0.2:{port}{JWKS_PATH}"),
        format!("https://localhost.evil.example:{port}{JWKS_PATH}"),
        "https://evil.example/jwks.json".to_owned(),
        "https://169.254.169.254/latest/meta-data".to_owned(),
        format!("https://user:pw@localhost:{port}{JWKS_PATH}"),
        format!("https://localhost:{port}{JWKS_PATH}#frag"),
        "not a url".to_owned(),
    ] {
        let r = h.put_jwt(&h.tpp.sign(&with_jwks_uri(&h, &uri))).await;
        let d = assert_rejection(&r, 400, "invalid_client_metadata");
        assert!(
            d.contains("key set") || d.contains("jwks_uri"),
            "{uri}: {d}"
        );
    }
    h.assert_not_forwarded();
    assert_eq!(h.key_host.total_hits(), 0, "the key host saw a request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_set_is_fetched_once_and_rotation_costs_exactly_one_refetch() {
    let h = Harness::start().await;
    for i in 1..=2 {
        let r = h.put_jwt(&h.compliant_jwt()).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(h.key_host.hits(JWKS_PATH), 1, "after request {i}");
    }

    // The TPP rotates: it publishes old and new keys and signs with the new one.
    let new_key = RsaSigningKey::generate("tpp-signing-key-2", 2048).expect("key");
    h.key_host.set(
        JWKS_PATH,
        Serve::Json(RsaSigningKey::jwks(&[&h.tpp.signer.key, &new_key])),
    );
    let r = h.put_jwt(&sign_with_key(&new_key, &h.claims())).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(h.key_host.hits(JWKS_PATH), 2, "one refetch for the new kid");

    // Both keys now verify from the cache.
    let r = h.put_jwt(&sign_with_key(&new_key, &h.claims())).await;
    assert_eq!(r.status, 200);
    let r = h.put_jwt(&h.compliant_jwt()).await;
    assert_eq!(r.status, 200);
    assert_eq!(h.key_host.hits(JWKS_PATH), 2);
    assert_eq!(h.registry.count(), 5);

    // Within the refetch cooldown, an unknown kid causes no further fetch.
    let stranger = RsaSigningKey::generate("made-up-kid", 2048).expect("key");
    let r = h.put_jwt(&sign_with_key(&stranger, &h.claims())).await;
    assert_rejection(&r, 400, "invalid_client_metadata");
    assert_eq!(h.key_host.hits(JWKS_PATH), 2);
    assert_eq!(h.registry.count(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_kids_cause_at_most_one_refetch() {
    let h = Harness::start().await;
    let r = h.put_jwt(&h.compliant_jwt()).await;
    assert_eq!(r.status, 200);
    assert_eq!(h.key_host.hits(JWKS_PATH), 1);
    let claims = h.claims();
    for kid in ["made-up-kid-1", "made-up-kid-1", "made-up-kid-2"] {
        let jwt = h
            .tpp
            .sign_with_header(&json!({"alg": "PS256", "kid": kid}), &claims);
        let r = h.put_jwt(&jwt).await;
        let d = assert_rejection(&r, 400, "invalid_client_metadata");
        assert!(d.contains("kid"), "{d}");
    }
    // One refetch (the first unknown kid might be a rotation), then the cooldown holds.
    assert_eq!(h.key_host.hits(JWKS_PATH), 2);
    assert_eq!(h.registry.count(), 1);
}

/// Point the key set URL at `path` on the key host, send, and expect a fail-closed refusal.
async fn assert_key_host_failure(h: &Harness, uri: &str, status: u16) -> String {
    let r = h.put_jwt(&h.tpp.sign(&with_jwks_uri(h, uri))).await;
    let d = assert_rejection(&r, status, "temporarily_unavailable");
    h.assert_not_forwarded();
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_host_not_listening_is_502() {
    let h = Harness::start().await;
    let uri = format!("https://localhost:{}/jwks.json", closed_port());
    let d = assert_key_host_failure(&h, &uri, 502).await;
    assert!(d.contains("connection failed"), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_key_host_is_504() {
    let h = Harness::start_with(|cfg| {
        cfg.set("key_sets", "fetch_timeout_ms", 500);
    })
    .await;
    h.key_host.set(
        "/slow.json",
        Serve::Slow(Duration::from_secs(3), h.tpp.jwks()),
    );
    let d = assert_key_host_failure(&h, &h.key_host.url("/slow.json"), 504).await;
    assert!(d.contains("in time"), "{d}");
    assert_eq!(h.key_host.hits("/slow.json"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_host_garbage_is_502() {
    let h = Harness::start().await;
    for (path, what, says) in [
        ("/html.json", Serve::Json("<html>".into()), "not a JWK set"),
        (
            "/no-keys.json",
            Serve::Json(r#"{"nokeys":[]}"#.into()),
            "not a JWK set",
        ),
        ("/empty.json", Serve::Json(String::new()), "not a JWK set"),
        ("/status.json", Serve::Status(500), "status 500"),
        ("/missing.json", Serve::Status(404), "status 404"),
    ] {
        h.key_host.set(path, what);
        let d = assert_key_host_failure(&h, &h.key_host.url(path), 502).await;
        assert!(d.contains(says), "{path}: {d}");
        assert_eq!(h.key_host.hits(path), 1, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_key_set_is_502() {
    let h = Harness::start().await;
    h.key_host.set("/huge.json", Serve::Huge(300_000));
    let d = assert_key_host_failure(&h, &h.key_host.url("/huge.json"), 502).await;
    assert!(d.contains("larger than"), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_not_followed() {
    let h = Harness::start().await;
    h.key_host
        .set("/moved/jwks.json", Serve::Json(h.tpp.jwks()));
    h.key_host.set(
        "/redirect.json",
        Serve::Redirect(h.key_host.url("/moved/jwks.json")),
    );
    let d = assert_key_host_failure(&h, &h.key_host.url("/redirect.json"), 502).await;
    assert!(d.contains("redirect"), "{d}");
    assert_eq!(h.key_host.hits("/redirect.json"), 1);
    assert_eq!(h.key_host.hits("/moved/jwks.json"), 0, "redirect followed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_json_content_type_is_502() {
    let h = Harness::start().await;
    h.key_host
        .set("/typed.json", Serve::Typed(h.tpp.jwks(), "text/html"));
    let d = assert_key_host_failure(&h, &h.key_host.url("/typed.json"), 502).await;
    assert!(d.contains("content type"), "{d}");
    // The same document as application/jwk-set+json is fine.
    h.key_host.set(
        "/jwk-set.json",
        Serve::Typed(h.tpp.jwks(), "application/jwk-set+json"),
    );
    let r = h
        .put_jwt(
            &h.tpp
                .sign(&with_jwks_uri(&h, &h.key_host.url("/jwk-set.json"))),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1024_bit_key_under_the_kid_is_unusable() {
    let h = Harness::start().await;
    let weak = RsaSigningKey::generate(KID, 1024).expect("key");
    h.key_host
        .set("/weak.json", Serve::Json(RsaSigningKey::jwks(&[&weak])));
    let r = h
        .put_jwt(
            &h.tpp
                .sign(&with_jwks_uri(&h, &h.key_host.url("/weak.json"))),
        )
        .await;
    let d = assert_rejection(&r, 400, "invalid_client_metadata");
    assert!(d.contains("kid"), "{d}");
    h.assert_not_forwarded();
    // The first fetch, then at most the one rotation refetch.
    assert!(
        (1..=2).contains(&h.key_host.hits("/weak.json")),
        "{}",
        h.key_host.hits("/weak.json")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fetch_is_remembered_for_failure_ttl() {
    let h = Harness::start_with(|cfg| {
        cfg.set("key_sets", "failure_ttl_seconds", 3);
    })
    .await;
    h.key_host.set(JWKS_PATH, Serve::Status(503));
    let r = h.put_jwt(&h.compliant_jwt()).await;
    assert_rejection(&r, 502, "temporarily_unavailable");
    assert_eq!(h.key_host.hits(JWKS_PATH), 1);

    // The key host recovers, but within failure_ttl the gateway still fails closed, unfetched.
    h.key_host.set(JWKS_PATH, Serve::Json(h.tpp.jwks()));
    let r = h.put_jwt(&h.compliant_jwt()).await;
    assert_rejection(&r, 502, "temporarily_unavailable");
    assert_eq!(
        h.key_host.hits(JWKS_PATH),
        1,
        "refetched within failure_ttl"
    );
    h.assert_not_forwarded();

    // After it, the next request fetches again and goes through (bounded wait).
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let mut accepted = false;
    for _ in 0..20 {
        if h.put_jwt(&h.compliant_jwt()).await.status == 200 {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(accepted, "never recovered after failure_ttl");
    assert_eq!(h.key_host.hits(JWKS_PATH), 2);
    assert_eq!(h.registry.count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_key_host_is_refused_when_private_addresses_are_not_allowed() {
    let h = Harness::start_with(|cfg| {
        cfg.set("key_sets", "allow_private_addresses", false);
    })
    .await;
    let r = h.put_jwt(&h.compliant_jwt()).await;
    let d = assert_rejection(&r, 502, "temporarily_unavailable");
    assert!(d.contains("non-public"), "{d}");
    h.assert_not_forwarded();
    assert_eq!(h.key_host.total_hits(), 0, "the key host saw a request");
}

/// Requests that need the same uncached key set wait for one fetch: six concurrent requests
/// on a slow key host cost one fetch, and all are verified with its keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_one_key_set_share_one_fetch() {
    let h = Harness::start().await;
    let path = "/slow/jwks.json";
    h.key_host
        .set(path, Serve::Slow(Duration::from_millis(800), h.tpp.jwks()));
    let uri = h.key_host.url(path);
    let jwt = h.tpp.sign(&with_jwks_uri(&h, &uri));
    let (a, b, c, d, e, f) = tokio::join!(
        h.put_jwt(&jwt),
        h.put_jwt(&jwt),
        h.put_jwt(&jwt),
        h.put_jwt(&jwt),
        h.put_jwt(&jwt),
        h.put_jwt(&jwt)
    );
    for r in [&a, &b, &c, &d, &e, &f] {
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!(h.key_host.hits(path), 1, "one fetch in flight per URL");
    assert_eq!(h.registry.count(), 6);
}

/// The cache holds what `key_sets.cache_max_bytes` and `cache_capacity` allow, not every URL
/// it has seen: with room for two entries, eight URLs asked for twice are mostly fetched twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_set_cache_is_bounded() {
    let h = Harness::start_with(|cfg| {
        // Every entry weighs at least 64 KiB / 2: two fit.
        cfg.set("key_sets", "cache_max_bytes", 65_536);
        cfg.set("key_sets", "cache_capacity", 2);
    })
    .await;
    let url = |v: u32| format!("{}?v={v}", h.jwks_uri);
    let hits = |v: u32| h.key_host.hits(&format!("{JWKS_PATH}?v={v}"));
    // The cache does cache under this bound: a URL asked for twice in a row is fetched once.
    for _ in 0..2 {
        let r = h.put_jwt(&h.tpp.sign(&with_jwks_uri(&h, &url(0)))).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!(hits(0), 1);
    for round in 1..=2 {
        for v in 1..=8 {
            let jwt = h.tpp.sign(&with_jwks_uri(&h, &url(v)));
            let r = h.put_jwt(&jwt).await;
            assert_eq!(
                r.status,
                200,
                "round {round}, v={v}: {}",
                String::from_utf8_lossy(&r.body)
            );
        }
        // Let the cache's maintenance (evictions) run between the rounds.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let fetches: usize = (1..=8).map(hits).sum();
    // 8 in the first round; in the second at most two (three, should an eviction lag) hits.
    assert!(
        fetches >= 8 + 5,
        "{fetches} fetches: the cache kept more than its bound"
    );
    assert!(fetches <= 16, "{fetches}");
}

/// A key host whose certificate the gateway does not trust, and a key set host whose name does
/// not resolve: both fail closed (502, nothing forwarded) and are counted by why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_key_host_or_an_unresolvable_name_fails_closed_and_is_counted() {
    let h = Harness::start_with(|cfg| {
        cfg.set(
            "policy",
            "key_set_hosts",
            vec!["localhost", "keys.nosuch.invalid"],
        );
    })
    .await;
    let rogue_ca = dcrgate_certs::Authority::new("rogue key host CA").expect("CA");
    let cert = rogue_ca.issue_server(&["localhost"]).expect("cert");
    let rogue = dcrgate_sandbox::keyhost::KeyHost::start(&cert.cert_pem, &cert.key_pem)
        .await
        .expect("key host");
    rogue.set(JWKS_PATH, Serve::Json(h.tpp.jwks()));
    for (uri, result) in [
        (rogue.url(JWKS_PATH), "tls"),
        ("https://keys.nosuch.invalid/jwks.json".to_owned(), "dns"),
    ] {
        let r = h.put_jwt(&h.tpp.sign(&with_jwks_uri(&h, &uri))).await;
        let d = assert_rejection(&r, 502, "temporarily_unavailable");
        assert!(d.contains("key set"), "{uri}: {d}");
        let series = format!("dcrgate_key_set_fetches_total{{result=\"{result}\"}}");
        h.assert_metric_becomes(&series, 1.0).await;
    }
    assert_eq!(
        rogue.total_hits(),
        0,
        "a request reached the untrusted host"
    );
    h.assert_not_forwarded();
}
