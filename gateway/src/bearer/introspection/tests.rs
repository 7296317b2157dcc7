//! Tests of `introspection`.

use super::*;

use crate::config::file::IntrospectionSection;
use crate::config::Validator;

use dcrgate_certs::{Authority, IssuedCert, SubjectSpec};
use serde_json::json;

use dcrgate_sandbox::auth_server::{Answer, AuthServer, AuthServerOptions};

struct Fixture {
    server: AuthServer,
    dir: tempfile::TempDir,
}

impl Fixture {
    async fn start(options: AuthServerOptions) -> Self {
        let ca = Authority::new("introspection test CA").unwrap();
        let cert = ca.issue_server(&["localhost", "127.0.0.1"]).unwrap();
        let server = AuthServer::start(&cert.cert_pem, &cert.key_pem, options)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("as-ca.pem"), ca.cert_pem()).unwrap();
        std::fs::write(dir.path().join("secret"), "s3cr:t+/ é\n").unwrap();
        Self { server, dir }
    }

    /// A section using Basic credentials `gw client` / the secret file.
    fn section(&self) -> IntrospectionSection {
        IntrospectionSection {
            endpoint: self.server.url("/introspect"),
            ca_file: Some("as-ca.pem".into()),
            client_id: Some("gw client".into()),
            client_secret_file: Some("secret".into()),
            certificate: None,
            private_key: None,
            timeout_ms: 1000,
            max_cache_seconds: 60,
            max_bytes: 16 * 1024,
            cache_capacity: 100,
        }
    }

    fn introspector(&self, cfg: IntrospectionSection) -> Introspector {
        let file = self.dir.path().join("dcrgate.toml");
        Introspector::new(&Validator::new(&file).introspection(&cfg).unwrap()).unwrap()
    }

    fn write_client_cert(&self, cert: &IssuedCert) {
        std::fs::write(self.dir.path().join("gw.pem"), &cert.cert_pem).unwrap();
        std::fs::write(self.dir.path().join("gw.key"), &cert.key_pem).unwrap();
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn raw(status: u16, headers: &[(&str, &str)], body: &[u8], chunked: bool) -> Answer {
    Answer::Raw {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        body: body.to_vec(),
        chunked,
    }
}

#[tokio::test]
async fn parses_an_active_answer() {
    let fx = Fixture::start(Default::default()).await;
    let exp = unix_now() + 300;
    fx.server.set_token(
        "tok-1",
        json!({"active": true, "client_id": "c1", "azp": "c1", "exp": exp,
               "iss": "https://as.example", "aud": "https://rs.example",
               "cnf": {"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"},
               "token_type": "Bearer", "scope": "openid"}),
    );
    fx.server.set_token(
        "tok-2",
        json!({"active": true, "aud": ["a", "b"], "client_id": "c2"}),
    );
    let i = fx.introspector(fx.section());
    let a = i.introspect("tok-1", unix_now()).await.unwrap();
    assert_eq!(
        *a,
        Introspected {
            active: true,
            client_id: Some("c1".into()),
            azp: Some("c1".into()),
            exp: Some(exp),
            iss: Some("https://as.example".into()),
            aud: vec!["https://rs.example".into()],
            cnf_x5t_s256: Some("bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2".into()),
            token_type: Some("Bearer".into()),
        }
    );
    let b = i.introspect("tok-2", unix_now()).await.unwrap();
    assert_eq!(b.aud, vec!["a".to_owned(), "b".to_owned()]);
    assert_eq!(b.exp, None);
    assert_eq!(b.cnf_x5t_s256, None);
    let unknown = i.introspect("nope", unix_now()).await.unwrap();
    assert_eq!(*unknown, Introspected::inactive());
}

#[tokio::test]
async fn cache_misses_share_one_pooled_connection() {
    let fx = Fixture::start(Default::default()).await;
    for n in 0..5 {
        fx.server.set_token(
            &format!("tok-{n}"),
            json!({"active": true, "client_id": "c1"}),
        );
    }
    let i = fx.introspector(fx.section());
    for n in 0..5 {
        let a = i.introspect(&format!("tok-{n}"), unix_now()).await.unwrap();
        assert!(a.active);
    }
    assert_eq!(fx.server.introspections(), 5, "five cache misses");
    assert_eq!(
        fx.server.connections(),
        1,
        "one TLS connection for all of them"
    );

    // An error answer is not read whole: its connection is not reused.
    fx.server.set_answer(
        "bad",
        raw(500, &[("content-type", "application/json")], b"{}", false),
    );
    assert!(i.introspect("bad", unix_now()).await.is_err());
    fx.server
        .set_token("tok-after", json!({"active": true, "client_id": "c1"}));
    assert!(i.introspect("tok-after", unix_now()).await.unwrap().active);
    assert_eq!(fx.server.connections(), 2);
}

#[tokio::test]
async fn a_connection_the_server_closes_is_not_reused() {
    let fx = Fixture::start(Default::default()).await;
    for n in 0..3 {
        fx.server.set_answer(
            &format!("tok-{n}"),
            raw(
                200,
                &[
                    ("content-type", "application/json"),
                    ("connection", "close"),
                ],
                br#"{"active":true,"client_id":"c1"}"#,
                false,
            ),
        );
    }
    let i = fx.introspector(fx.section());
    for n in 0..3 {
        assert!(
            i.introspect(&format!("tok-{n}"), unix_now())
                .await
                .unwrap()
                .active
        );
    }
    assert_eq!(fx.server.connections(), 3);
}

#[tokio::test]
async fn sends_a_form_encoded_token() {
    let fx = Fixture::start(Default::default()).await;
    let token = "a+b&c=d/é %";
    fx.server
        .set_token(token, json!({"active": true, "client_id": "c1"}));
    let i = fx.introspector(fx.section());
    let a = i.introspect(token, unix_now()).await.unwrap();
    assert!(a.active);
    assert_eq!(
        fx.server.last_form(),
        vec![
            ("token".to_owned(), token.to_owned()),
            ("token_type_hint".to_owned(), "access_token".to_owned()),
        ]
    );
}

#[tokio::test]
async fn caches_by_token() {
    let fx = Fixture::start(Default::default()).await;
    let exp = unix_now() + 300;
    fx.server
        .set_token("t1", json!({"active": true, "exp": exp}));
    fx.server
        .set_token("t2", json!({"active": true, "exp": exp}));
    let i = fx.introspector(fx.section());
    let first = i.introspect("t1", unix_now()).await.unwrap();
    let again = i.introspect("t1", unix_now()).await.unwrap();
    assert_eq!(first, again);
    assert_eq!(fx.server.introspections(), 1);
    i.introspect("t2", unix_now()).await.unwrap();
    assert_eq!(fx.server.introspections(), 2);
    // Clones share the cache.
    i.clone().introspect("t2", unix_now()).await.unwrap();
    assert_eq!(fx.server.introspections(), 2);
}

#[tokio::test]
async fn never_caches_past_exp() {
    let fx = Fixture::start(Default::default()).await;
    // Two seconds ahead, so the second call is still before `exp` even on a slow machine.
    let exp = unix_now() + 2;
    fx.server
        .set_token("short", json!({"active": true, "exp": exp}));
    let i = fx.introspector(fx.section());
    i.introspect("short", unix_now()).await.unwrap();
    i.introspect("short", unix_now()).await.unwrap();
    assert_eq!(fx.server.introspections(), 1);
    let deadline = Instant::now() + Duration::from_secs(6);
    while unix_now() <= exp {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fx.server.set_token("short", json!({"active": false}));
    let after = i.introspect("short", unix_now()).await.unwrap();
    assert!(!after.active);
    assert_eq!(fx.server.introspections(), 2);

    // Already expired when introspected: not cached at all.
    fx.server
        .set_token("stale", json!({"active": true, "exp": unix_now() - 10}));
    i.introspect("stale", unix_now()).await.unwrap();
    i.introspect("stale", unix_now()).await.unwrap();
    assert_eq!(fx.server.introspections(), 4);
}

#[tokio::test]
async fn caches_inactive_answers_briefly() {
    let fx = Fixture::start(Default::default()).await;
    let i = fx.introspector(fx.section());
    assert!(!i.introspect("later", unix_now()).await.unwrap().active);
    fx.server.set_token("later", json!({"active": true}));
    assert!(!i.introspect("later", unix_now()).await.unwrap().active);
    assert_eq!(fx.server.introspections(), 1);
    tokio::time::sleep(INACTIVE_TTL + Duration::from_millis(300)).await;
    assert!(i.introspect("later", unix_now()).await.unwrap().active);
    assert_eq!(fx.server.introspections(), 2);
}

#[tokio::test]
async fn zero_max_cache_disables_caching() {
    let fx = Fixture::start(Default::default()).await;
    fx.server.set_token("t", json!({"active": true}));
    let mut cfg = fx.section();
    cfg.max_cache_seconds = 0;
    let i = fx.introspector(cfg);
    i.introspect("t", unix_now()).await.unwrap();
    i.introspect("t", unix_now()).await.unwrap();
    assert_eq!(fx.server.introspections(), 2);
}

#[tokio::test]
async fn does_not_cache_errors() {
    let fx = Fixture::start(Default::default()).await;
    fx.server.set_answer("t", raw(503, &[], b"", false));
    let i = fx.introspector(fx.section());
    assert_eq!(
        i.introspect("t", unix_now()).await.unwrap_err(),
        IntrospectionError::Status(503)
    );
    fx.server.set_token("t", json!({"active": true}));
    assert!(i.introspect("t", unix_now()).await.unwrap().active);
    assert_eq!(fx.server.introspections(), 2);
}

#[tokio::test]
async fn authenticates_with_basic_credentials() {
    let options = AuthServerOptions {
        basic: Some(("gw client".into(), "s3cr:t+/ é".into())),
        ..Default::default()
    };
    let fx = Fixture::start(options).await;
    fx.server.set_token("t", json!({"active": true}));
    let i = fx.introspector(fx.section());
    assert!(i.introspect("t", unix_now()).await.unwrap().active);
    let seen = fx.server.last_authorization().unwrap();
    let expected = STANDARD.encode("gw+client:s3cr%3At%2B%2F+%C3%A9");
    assert_eq!(seen, format!("Basic {expected}"));

    std::fs::write(fx.dir.path().join("wrong"), "nope").unwrap();
    let mut cfg = fx.section();
    cfg.client_secret_file = Some("wrong".into());
    let wrong = fx.introspector(cfg);
    assert_eq!(
        wrong.introspect("t", unix_now()).await.unwrap_err(),
        IntrospectionError::Status(401)
    );
}

#[tokio::test]
async fn presents_a_client_certificate() {
    let client_ca = Authority::new("gateway client CA").unwrap();
    let options = AuthServerOptions {
        client_ca_pem: Some(client_ca.cert_pem()),
        ..Default::default()
    };
    let fx = Fixture::start(options).await;
    fx.server.set_token("t", json!({"active": true}));
    let gw = client_ca
        .issue_client(&SubjectSpec::common_name("dcrgate"))
        .unwrap();
    fx.write_client_cert(&gw);

    let mut cfg = fx.section();
    cfg.client_id = None;
    cfg.client_secret_file = None;
    cfg.certificate = Some("gw.pem".into());
    cfg.private_key = Some("gw.key".into());
    let i = fx.introspector(cfg);
    assert!(i.introspect("t", unix_now()).await.unwrap().active);
    assert!(fx.server.saw_client_certificate());
    assert_eq!(fx.server.last_authorization(), None);

    let without = fx.introspector(fx.section());
    let e = without.introspect("t", unix_now()).await.unwrap_err();
    // The server refuses the handshake; TLS 1.3 reports that only after the client has
    // finished its side, so depending on timing it surfaces as a TLS or an HTTP error.
    assert!(
        matches!(e, IntrospectionError::Tls(_) | IntrospectionError::Http),
        "{e:?}"
    );
    assert_eq!(fx.server.introspections(), 1);
}

#[tokio::test]
async fn refuses_an_untrusted_server() {
    let fx = Fixture::start(Default::default()).await;
    let other = Authority::new("someone else").unwrap();
    std::fs::write(fx.dir.path().join("as-ca.pem"), other.cert_pem()).unwrap();
    let i = fx.introspector(fx.section());
    let e = i.introspect("t", unix_now()).await.unwrap_err();
    assert_eq!(e.kind(), "tls", "{e:?}");
    assert_eq!(fx.server.introspections(), 0);
}

#[tokio::test]
async fn times_out_on_a_slow_server() {
    let fx = Fixture::start(Default::default()).await;
    fx.server.set_delay(Duration::from_secs(5));
    let mut cfg = fx.section();
    cfg.timeout_ms = 300;
    let i = fx.introspector(cfg);
    let started = Instant::now();
    let e = i.introspect("t", unix_now()).await.unwrap_err();
    assert_eq!(e, IntrospectionError::Timeout);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn refuses_bad_answers() {
    let fx = Fixture::start(Default::default()).await;
    let json_ct = &[("content-type", "application/json")][..];
    let big = format!(r#"{{"active":true,"pad":"{}"}}"#, "x".repeat(20 * 1024));
    let cases: Vec<(&str, Answer, IntrospectionError)> = vec![
        (
            "html",
            raw(
                200,
                &[("content-type", "text/html")],
                b"{\"active\":true}",
                false,
            ),
            IntrospectionError::ContentType,
        ),
        (
            "no-type",
            raw(200, &[], b"{\"active\":true}", false),
            IntrospectionError::ContentType,
        ),
        (
            "big",
            raw(200, json_ct, big.as_bytes(), false),
            IntrospectionError::TooLarge(16 * 1024),
        ),
        (
            "big-chunked",
            raw(200, json_ct, big.as_bytes(), true),
            IntrospectionError::TooLarge(16 * 1024),
        ),
        (
            "redirect",
            raw(
                302,
                &[("location", "https://elsewhere.example/introspect")],
                b"",
                false,
            ),
            IntrospectionError::Redirect(302),
        ),
        (
            "unauthorized",
            raw(401, json_ct, b"{\"error\":\"invalid_client\"}", false),
            IntrospectionError::Status(401),
        ),
    ];
    let i = fx.introspector(fx.section());
    for (token, answer, expected) in cases {
        fx.server.set_answer(token, answer);
        assert_eq!(
            i.introspect(token, unix_now()).await.unwrap_err(),
            expected,
            "{token}"
        );
    }
    assert_eq!(fx.server.introspections(), 6);

    let malformed: &[(&str, &[u8])] = &[
        ("string-active", br#"{"active":"true"}"#),
        ("number-active", br#"{"active":1}"#),
        ("no-active", br#"{"client_id":"c1"}"#),
        ("duplicate", br#"{"active":false,"active":true}"#),
        (
            "nested-duplicate",
            br#"{"active":true,"cnf":{"x5t#S256":"a","x5t#S256":"b"}}"#,
        ),
        ("array", br#"[{"active":true}]"#),
        ("garbage", b"<html>"),
        ("client-id-number", br#"{"active":true,"client_id":7}"#),
        ("exp-string", br#"{"active":true,"exp":"1700000000"}"#),
        ("exp-float", br#"{"active":true,"exp":1.5}"#),
        ("aud-mixed", br#"{"active":true,"aud":["a",1]}"#),
        ("cnf-string", br#"{"active":true,"cnf":"x"}"#),
    ];
    for (token, body) in malformed {
        fx.server.set_answer(token, raw(200, json_ct, body, false));
        let e = i.introspect(token, unix_now()).await.unwrap_err();
        assert_eq!(e.kind(), "malformed", "{token}: {e:?}");
    }
}

#[tokio::test]
async fn reports_connection_failures() {
    let fx = Fixture::start(Default::default()).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let mut cfg = fx.section();
    cfg.endpoint = format!("https://127.0.0.1:{port}/introspect");
    let i = fx.introspector(cfg);
    assert_eq!(
        i.introspect("t", unix_now()).await.unwrap_err(),
        IntrospectionError::Connect
    );
}

#[test]
fn validates_the_section() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "  \n").unwrap();
    let base = IntrospectionSection {
        endpoint: "https://as.example/introspect".into(),
        ca_file: None,
        client_id: Some("gw".into()),
        client_secret_file: Some("secret".into()),
        certificate: None,
        private_key: None,
        timeout_ms: 1000,
        max_cache_seconds: 60,
        max_bytes: 16 * 1024,
        cache_capacity: 10,
    };
    let file = dir.path().join("dcrgate.toml");
    let validator = Validator::new(&file);
    let check = |f: &dyn Fn(&mut IntrospectionSection)| {
        let mut s = base.clone();
        f(&mut s);
        validator
            .introspection(&s)
            .map(|_| ())
            .map_err(|e| e.key().unwrap_or("not a key"))
    };
    assert_eq!(
        check(&|_| {}),
        Err("bearer.introspection.client_secret_file"),
        "empty secret"
    );
    std::fs::write(dir.path().join("secret"), "s\n").unwrap();
    assert_eq!(check(&|_| {}), Ok(()));
    assert_eq!(
        check(&|s| s.endpoint = "http://as.example/introspect".into()),
        Err("bearer.introspection.endpoint")
    );
    assert_eq!(
        check(&|s| s.endpoint = "https://u:p@as.example/introspect".into()),
        Err("bearer.introspection.endpoint")
    );
    assert_eq!(
        check(&|s| s.client_secret_file = None),
        Err("bearer.introspection.client_secret_file")
    );
    assert_eq!(
        check(&|s| {
            s.client_id = None;
            s.client_secret_file = None;
        }),
        Err("bearer.introspection")
    );
    assert_eq!(
        check(&|s| s.certificate = Some("missing.pem".into())),
        Err("bearer.introspection.certificate")
    );
    assert_eq!(
        check(&|s| s.ca_file = Some("secret".into())),
        Err("bearer.introspection.ca_file")
    );
    assert_eq!(
        check(&|s| s.timeout_ms = 10),
        Err("bearer.introspection.timeout_ms")
    );
    assert_eq!(
        check(&|s| s.max_bytes = 10),
        Err("bearer.introspection.max_bytes")
    );

    let s = validator.introspection(&base).unwrap();
    assert_eq!(
        s.client_secret.map(|c| c.secret_file),
        Some(dir.path().join("secret"))
    );
}

#[test]
fn parses_toml_with_defaults_and_refuses_unknown_keys() {
    let s: IntrospectionSection = toml::from_str(
        "endpoint = \"https://as.example/introspect\"\nclient_id = \"gw\"\nclient_secret_file = \"s\"\n",
    )
    .unwrap();
    assert_eq!(
        (
            s.timeout_ms,
            s.max_cache_seconds,
            s.max_bytes,
            s.cache_capacity
        ),
        (1000, 60, 16 * 1024, 10_000)
    );
    assert!(toml::from_str::<IntrospectionSection>(
        "endpoint = \"https://as.example/introspect\"\nclient_secret = \"inline\"\n"
    )
    .is_err());
}

#[test]
fn debug_output_holds_no_credentials() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret"), "hunter2").unwrap();
    let s: IntrospectionSection = toml::from_str(
        "endpoint = \"https://as.example/introspect\"\nclient_id = \"gw\"\nclient_secret_file = \"secret\"\n",
    )
    .unwrap();
    let file = dir.path().join("dcrgate.toml");
    let s = Validator::new(&file).introspection(&s).unwrap();
    let i = Introspector::new(&s).unwrap();
    let shown = format!("{i:?}");
    assert!(!shown.contains("hunter2") && !shown.contains(&STANDARD.encode("gw:hunter2")));
}
