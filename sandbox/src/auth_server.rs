//! A stand-in authorization server: https on 127.0.0.1 with a sandbox certificate, answering
//! RFC 7662 introspection (`POST /introspect`) from a table the caller fills, and serving a JWK
//! set (`GET /jwks`), and, when told to, issuing one access token to client credentials grants
//! (`POST /token`) and serving an OpenID discovery document
//! (`GET /.well-known/openid-configuration`). It can require a client certificate and/or a Basic client credential, be
//! slowed down, and answer anything at all for a token, so the gateway's fail-closed paths can
//! be shown.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::SandboxError;

/// What the server requires of its clients besides TLS.
#[derive(Debug, Clone, Default)]
pub struct AuthServerOptions {
    /// Require a client certificate issued by this CA (PEM).
    pub client_ca_pem: Option<String>,
    /// Require this `client_secret_basic` credential (client id, secret) on introspection.
    pub basic: Option<(String, String)>,
}

/// The answer to an introspection of one token.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// 200 `application/json` with this body.
    Json(serde_json::Value),
    /// Anything at all: status, headers, body; sent chunked (no Content-Length) if `chunked`.
    Raw {
        /// The status code.
        status: u16,
        /// Headers (name, value).
        headers: Vec<(String, String)>,
        /// The body.
        body: Vec<u8>,
        /// Send the body chunked instead of with a Content-Length.
        chunked: bool,
    },
}

#[derive(Default)]
struct State {
    tokens: Mutex<HashMap<String, Answer>>,
    jwks: Mutex<String>,
    delay: Mutex<Duration>,
    basic: Option<(String, String)>,
    introspections: AtomicUsize,
    connections: AtomicUsize,
    saw_client_cert: AtomicBool,
    last_authorization: Mutex<Option<String>>,
    last_form: Mutex<Vec<(String, String)>>,
    issued_token: Mutex<Option<String>>,
    discovery: Mutex<Option<serde_json::Value>>,
    token_forms: Mutex<Vec<Vec<(String, String)>>>,
}

/// The running stand-in authorization server.
pub struct AuthServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl AuthServer {
    /// Start with a certificate chain and key (PEM), on an ephemeral loopback port.
    pub async fn start(
        cert_pem: &str,
        key_pem: &str,
        options: AuthServerOptions,
    ) -> Result<Self, SandboxError> {
        let certs: Vec<CertificateDer<'static>> =
            rustls_pemfile::certs(&mut cert_pem.as_bytes()).collect::<Result<_, _>>()?;
        let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_bytes())?
            .ok_or_else(|| SandboxError::Http("no key".into()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let config = match &options.client_ca_pem {
            Some(ca_pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
                    roots.add(cert?)?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| SandboxError::Tls(rustls::Error::General(e.to_string())))?;
                builder
                    .with_client_cert_verifier(verifier)
                    .with_single_cert(certs, key)?
            }
            None => builder.with_no_client_auth().with_single_cert(certs, key)?,
        };
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            basic: options.basic,
            jwks: Mutex::new(r#"{"keys":[]}"#.to_owned()),
            ..State::default()
        });
        let s = state.clone();
        let task = tokio::spawn(async move {
            // Connections live in the set, so stopping the server stops them too.
            let mut connections = JoinSet::new();
            while let Ok((tcp, _)) = listener.accept().await {
                while connections.try_join_next().is_some() {}
                let (acceptor, s) = (acceptor.clone(), s.clone());
                s.connections.fetch_add(1, Ordering::SeqCst);
                connections.spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let client_cert = tls.get_ref().1.peer_certificates().is_some();
                    let svc = service_fn(move |req| handle(req, s.clone(), client_cert));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        Ok(Self { addr, state, task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The https URL of `path` (host `localhost`, which the sandbox server certificates name).
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// Answer introspections of `token` with this JSON object (unknown tokens are inactive).
    pub fn set_token(&self, token: &str, answer: serde_json::Value) {
        self.set_answer(token, Answer::Json(answer));
    }

    /// Answer introspections of `token` with `answer`.
    pub fn set_answer(&self, token: &str, answer: Answer) {
        if let Ok(mut g) = self.state.tokens.lock() {
            g.insert(token.to_owned(), answer);
        }
    }

    /// Serve this JWK set (JSON text) at `/jwks`.
    pub fn set_jwks(&self, jwks: String) {
        if let Ok(mut g) = self.state.jwks.lock() {
            *g = jwks;
        }
    }

    /// Wait this long before answering any request.
    pub fn set_delay(&self, delay: Duration) {
        if let Ok(mut g) = self.state.delay.lock() {
            *g = delay;
        }
    }

    /// How many introspection requests have arrived (whatever was answered).
    pub fn introspections(&self) -> usize {
        self.state.introspections.load(Ordering::SeqCst)
    }

    /// How many TCP connections were accepted.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Whether any introspection request came over a connection with a client certificate.
    pub fn saw_client_certificate(&self) -> bool {
        self.state.saw_client_cert.load(Ordering::SeqCst)
    }

    /// The Authorization header of the last introspection request, if it had one.
    pub fn last_authorization(&self) -> Option<String> {
        self.state
            .last_authorization
            .lock()
            .ok()
            .and_then(|g| g.clone())
    }

    /// Answer every `POST /token` with `grant_type=client_credentials` with this access token.
    pub fn set_issued_token(&self, token: &str) {
        if let Ok(mut g) = self.state.issued_token.lock() {
            *g = Some(token.to_owned());
        }
    }

    /// Serve this JSON at `/.well-known/openid-configuration`.
    pub fn set_discovery(&self, document: serde_json::Value) {
        if let Ok(mut g) = self.state.discovery.lock() {
            *g = Some(document);
        }
    }

    /// The decoded forms of the `POST /token` requests so far.
    pub fn token_requests(&self) -> Vec<Vec<(String, String)>> {
        self.state
            .token_forms
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }

    /// The decoded form of the last introspection request that got past authentication.
    pub fn last_form(&self) -> Vec<(String, String)> {
        self.state
            .last_form
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default()
    }
}

impl Drop for AuthServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Body = BoxBody<Bytes, Infallible>;

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
    client_cert: bool,
) -> Result<Response<Body>, Infallible> {
    let delay = state.delay.lock().map(|g| *g).unwrap_or_default();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let path = req.uri().path().to_owned();
    Ok(match (req.method(), path.as_str()) {
        (&Method::POST, "/introspect") => introspect(req, &state, client_cert).await,
        (&Method::POST, "/token") => issue_token(req, &state).await,
        (&Method::GET, "/.well-known/openid-configuration") => {
            match state.discovery.lock().ok().and_then(|g| g.clone()) {
                Some(doc) => json(StatusCode::OK, doc.to_string().into_bytes()),
                None => status(StatusCode::NOT_FOUND),
            }
        }
        (&Method::GET, "/jwks") => {
            let jwks = state.jwks.lock().map(|g| g.clone()).unwrap_or_default();
            json(StatusCode::OK, jwks.into_bytes())
        }
        _ => status(StatusCode::NOT_FOUND),
    })
}

/// A client credentials grant: the issued token, if one was set.
async fn issue_token(req: Request<Incoming>, state: &State) -> Response<Body> {
    let Ok(body) = Limited::new(req.into_body(), 64 * 1024).collect().await else {
        return status(StatusCode::BAD_REQUEST);
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body.to_bytes())
        .into_owned()
        .collect();
    if let Ok(mut g) = state.token_forms.lock() {
        g.push(form.clone());
    }
    let grant = form
        .iter()
        .any(|(k, v)| k == "grant_type" && v == "client_credentials");
    match state.issued_token.lock().ok().and_then(|g| g.clone()) {
        Some(token) if grant => json(
            StatusCode::OK,
            serde_json::json!({"access_token": token, "token_type": "Bearer", "expires_in": 300})
                .to_string()
                .into_bytes(),
        ),
        _ => json(
            StatusCode::BAD_REQUEST,
            br#"{"error":"unsupported_grant_type"}"#.to_vec(),
        ),
    }
}

async fn introspect(req: Request<Incoming>, state: &State, client_cert: bool) -> Response<Body> {
    state.introspections.fetch_add(1, Ordering::SeqCst);
    if client_cert {
        state.saw_client_cert.store(true, Ordering::SeqCst);
    }
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    if let Ok(mut g) = state.last_authorization.lock() {
        g.clone_from(&authorization);
    }
    if let Some(expected) = &state.basic {
        if basic_credentials(authorization.as_deref()).as_ref() != Some(expected) {
            let mut r = json(
                StatusCode::UNAUTHORIZED,
                br#"{"error":"invalid_client"}"#.to_vec(),
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"introspection\""),
            );
            return r;
        }
    }
    let form_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !form_type {
        return status(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    }
    let Ok(body) = Limited::new(req.into_body(), 64 * 1024).collect().await else {
        return status(StatusCode::BAD_REQUEST);
    };
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&body.to_bytes())
        .into_owned()
        .collect();
    if let Ok(mut g) = state.last_form.lock() {
        g.clone_from(&form);
    }
    let Some(token) = form.iter().find(|(k, _)| k == "token").map(|(_, v)| v) else {
        return json(
            StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_request"}"#.to_vec(),
        );
    };
    let answer = state
        .tokens
        .lock()
        .ok()
        .and_then(|g| g.get(token).cloned())
        .unwrap_or_else(|| Answer::Json(serde_json::json!({ "active": false })));
    match answer {
        Answer::Json(v) => json(StatusCode::OK, v.to_string().into_bytes()),
        Answer::Raw {
            status: code,
            headers,
            body,
            chunked,
        } => {
            let body = if chunked {
                Chunks(body.chunks(4096).map(Bytes::copy_from_slice).collect()).boxed()
            } else {
                Full::new(Bytes::from(body)).boxed()
            };
            let mut r = Response::new(body);
            *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
            for (name, value) in headers {
                if let (Ok(n), Ok(v)) = (
                    header::HeaderName::from_bytes(name.as_bytes()),
                    header::HeaderValue::from_str(&value),
                ) {
                    r.headers_mut().append(n, v);
                }
            }
            r
        }
    }
}

/// The (client id, secret) of a Basic header, each form-urlencoded per RFC 6749 §2.3.1.
fn basic_credentials(authorization: Option<&str>) -> Option<(String, String)> {
    let (scheme, encoded) = authorization?.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

fn json(code: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)).boxed());
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

fn status(code: StatusCode) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::new()).boxed());
    *r.status_mut() = code;
    r
}

/// A body of unknown length, so hyper sends it chunked.
struct Chunks(VecDeque<Bytes>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().0.pop_front().map(|b| Ok(Frame::data(b))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use dcrgate_certs::Authority;
    use tokio::io::AsyncWriteExt;

    use crate::http1::read_response;

    async fn request(server: &AuthServer, ca_pem: &str, raw: &str) -> crate::http1::RawResponse {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
        let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap();
        tls.write_all(raw.as_bytes()).await.unwrap();
        read_response(&mut tls).await.unwrap()
    }

    fn form_request(token_form: &str, authorization: Option<&str>) -> String {
        let auth = authorization
            .map(|a| format!("authorization: {a}\r\n"))
            .unwrap_or_default();
        format!(
            "POST /introspect HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/x-www-form-urlencoded\r\n{auth}content-length: {}\r\nconnection: close\r\n\r\n{token_form}",
            token_form.len()
        )
    }

    #[tokio::test]
    async fn answers_introspection_and_jwks() {
        let ca = Authority::new("as test CA").unwrap();
        let cert = ca.issue_server(&["localhost", "127.0.0.1"]).unwrap();
        let server = AuthServer::start(&cert.cert_pem, &cert.key_pem, Default::default())
            .await
            .unwrap();
        server.set_token(
            "abc",
            serde_json::json!({"active": true, "client_id": "c1"}),
        );
        server.set_jwks(r#"{"keys":[{"kty":"EC"}]}"#.to_owned());

        let r = request(&server, &ca.cert_pem(), &form_request("token=abc", None)).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.json().unwrap()["client_id"], "c1");

        let r = request(&server, &ca.cert_pem(), &form_request("token=zzz", None)).await;
        assert_eq!(r.json().unwrap(), serde_json::json!({"active": false}));
        assert_eq!(server.introspections(), 2);
        assert!(!server.saw_client_certificate());

        let get = "GET /jwks HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n";
        let r = request(&server, &ca.cert_pem(), get).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, br#"{"keys":[{"kty":"EC"}]}"#);
        assert_eq!(
            server.url("/jwks"),
            format!("https://localhost:{}/jwks", server.addr().port())
        );
    }

    #[tokio::test]
    async fn refuses_wrong_basic_credentials() {
        let ca = Authority::new("as test CA").unwrap();
        let cert = ca.issue_server(&["localhost", "127.0.0.1"]).unwrap();
        let options = AuthServerOptions {
            basic: Some(("gw client".into(), "s:cret".into())),
            ..Default::default()
        };
        let server = AuthServer::start(&cert.cert_pem, &cert.key_pem, options)
            .await
            .unwrap();
        server.set_token("abc", serde_json::json!({"active": true}));
        let r = request(&server, &ca.cert_pem(), &form_request("token=abc", None)).await;
        assert_eq!(r.status, 401);
        let good = format!("Basic {}", STANDARD.encode("gw+client:s%3Acret"));
        let r = request(
            &server,
            &ca.cert_pem(),
            &form_request("token=abc", Some(&good)),
        )
        .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.json().unwrap()["active"], true);
        let bad = format!("Basic {}", STANDARD.encode("gw+client:other"));
        let r = request(
            &server,
            &ca.cert_pem(),
            &form_request("token=abc", Some(&bad)),
        )
        .await;
        assert_eq!(r.status, 401);
        assert_eq!(server.last_authorization(), Some(bad));
    }

    #[test]
    fn decodes_basic_credentials() {
        let h = format!("Basic {}", STANDARD.encode("a%2Bb+c:x%3Ay"));
        assert_eq!(
            basic_credentials(Some(&h)),
            Some(("a+b c".to_owned(), "x:y".to_owned()))
        );
        assert_eq!(basic_credentials(Some("Bearer abc")), None);
        assert_eq!(basic_credentials(None), None);
    }
}
