//! The optional registration lifecycle routes: `POST /register` (request object and software
//! statement checks, no bearer token), `GET` and `DELETE /register/{ClientId}` (a bearer token
//! bound to the ClientId and the certificate). Off unless configured, and then 405.

use crate::common;

use common::{assert_rejection, cert_thumbprint, Harness, CLIENT_ID, TOKEN};
use dcrgate_sandbox::client::request;
use dcrgate_sandbox::keyhost::Serve;
use dcrgate_sandbox::tpp::{now, Signer};
use serde_json::json;

const AS_ISSUER: &str = "https://as.sandbox.example";
const AS_AUDIENCE: &str = "https://bank.example/register";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_routes_are_405_unless_configured() {
    let h = Harness::start().await;
    let jwt = h.compliant_jwt();
    let target = format!("/register/{CLIENT_ID}");
    for (method, path, body, allow) in [
        ("POST", "/register", jwt.as_bytes(), ""),
        ("GET", target.as_str(), &b""[..], "PUT"),
        ("DELETE", target.as_str(), &b""[..], "PUT"),
    ] {
        let ct = (!body.is_empty()).then_some("application/jwt");
        let r = h
            .send(&request(method, path, Some(TOKEN), ct, body, &[]))
            .await;
        assert_rejection(&r, 405, "invalid_request");
        assert_eq!(r.header("allow"), Some(allow), "{method} {path}");
    }
    h.assert_not_forwarded();
}

/// A gateway serving every route, bearer tokens in `jwt` mode.
async fn all_routes() -> (Harness, Signer) {
    let authority = Signer::generate("as-key-1").expect("AS key");
    let jwks = authority.jwks();
    let h = Harness::start_setup(|cfg, s| {
        s.key_host.set("/as/jwks", Serve::Json(jwks.clone()));
        cfg.set("routes.update", "bearer", "jwt");
        cfg.set("routes.create", "enabled", true);
        cfg.set("routes.read", "enabled", true);
        cfg.set("routes.read", "bearer", "jwt");
        cfg.set("routes.delete", "enabled", true);
        cfg.set("routes.delete", "bearer", "jwt");
        cfg.set("bearer.jwt", "issuer", AS_ISSUER);
        cfg.set("bearer.jwt", "audiences", vec![AS_AUDIENCE]);
        cfg.set("bearer.jwt", "key_set_url", s.key_host.url("/as/jwks"));
    })
    .await;
    (h, authority)
}

fn token(h: &Harness, authority: &Signer, client: &str) -> String {
    authority.sign(&json!({
        "iss": AS_ISSUER, "aud": AS_AUDIENCE, "exp": now() + 300, "client_id": client,
        "cnf": {"x5t#S256": cert_thumbprint(&h.tpp.transport.cert_der)}
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_read_and_delete_are_forwarded_with_their_checks() {
    let (h, authority) = all_routes().await;
    // POST: the request object is checked (no ClientId in the path, no bearer token).
    let create = h.tpp.sign(&h.claims_with(|m| {
        m.remove("client_id");
    }));
    let r = h
        .send(&request(
            "POST",
            "/register",
            None,
            Some("application/jwt"),
            create.as_bytes(),
            &[],
        ))
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // A non-compliant create is refused like an update.
    let bad = h.tpp.sign(&h.claims_with(|m| {
        m.insert("scope".into(), json!("openid admin"));
    }));
    let r = h
        .send(&request(
            "POST",
            "/register",
            None,
            Some("application/jwt"),
            bad.as_bytes(),
            &[],
        ))
        .await;
    assert_rejection(&r, 400, "invalid_client_metadata");

    let target = format!("/register/{CLIENT_ID}");
    let mine = token(&h, &authority, CLIENT_ID);
    for method in ["GET", "DELETE"] {
        let r = h
            .send(&request(method, &target, Some(&mine), None, b"", &[]))
            .await;
        assert_eq!(
            r.status,
            200,
            "{method}: {}",
            String::from_utf8_lossy(&r.body)
        );
    }
    assert_eq!(h.registry.count(), 3);
    let seen: Vec<String> = h
        .registry
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.target))
        .collect();
    assert_eq!(
        seen,
        vec![
            "POST /register".to_owned(),
            format!("GET {target}"),
            format!("DELETE {target}")
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_and_delete_refuse_other_clients_tokens_missing_tokens_and_bodies() {
    let (h, authority) = all_routes().await;
    let target = format!("/register/{CLIENT_ID}");
    let theirs = token(&h, &authority, "another-client");
    for method in ["GET", "DELETE"] {
        let r = h
            .send(&request(method, &target, Some(&theirs), None, b"", &[]))
            .await;
        assert_rejection(&r, 401, "invalid_token");
        let r = h
            .send(&request(method, &target, None, None, b"", &[]))
            .await;
        assert_rejection(&r, 401, "invalid_token");
        let mine = token(&h, &authority, CLIENT_ID);
        let r = h
            .send(&request(
                method,
                &target,
                Some(&mine),
                Some("application/json"),
                b"{}",
                &[],
            ))
            .await;
        assert_rejection(&r, 400, "invalid_request");
    }
    // Another ClientId's path with this client's token: 401 as well (existence not revealed).
    let mine = token(&h, &authority, CLIENT_ID);
    let r = h
        .send(&request(
            "GET",
            "/register/someone-else",
            Some(&mine),
            None,
            b"",
            &[],
        ))
        .await;
    assert_rejection(&r, 401, "invalid_token");
    h.assert_not_forwarded();
}
