//! A stand-in for the bank's legacy registry: plain HTTP on 127.0.0.1, records every request
//! it sees (so tests can prove what was and was not forwarded) and answers like a registry. A
//! ClientId it was sent `DELETE` for is gone: later `GET` and `PUT` on it are 401 `invalid_token`.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A request as the registry received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Method.
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Bytes,
}

impl RecordedRequest {
    /// The first value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        crate::http1::find_header(&self.headers, name)
    }
}

/// How the registry answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// 200 with a JSON echo of the ClientId.
    Normal,
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// Answer with this status and a small JSON body (a registry's error, a redirect).
    Status(u16),
}

/// The running stand-in registry.
pub struct StandInRegistry {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<RecordedRequest>>>,
    deleted: Arc<Mutex<HashSet<String>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    task: JoinHandle<()>,
}

impl StandInRegistry {
    /// Start on an ephemeral loopback port (within a tokio runtime).
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let behaviour = Arc::new(Mutex::new(Behaviour::Normal));
        let deleted: Arc<Mutex<HashSet<String>>> = Arc::default();
        let (s, d, b) = (seen.clone(), deleted.clone(), behaviour.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (s, d, b) = (s.clone(), d.clone(), b.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(req, s.clone(), d.clone(), b.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            seen,
            deleted,
            behaviour,
            task,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Change how it answers.
    pub fn set_behaviour(&self, b: Behaviour) {
        if let Ok(mut g) = self.behaviour.lock() {
            *g = b;
        }
    }

    /// Every request seen so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.seen.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// How many requests it has seen.
    pub fn count(&self) -> usize {
        self.seen.lock().map(|g| g.len()).unwrap_or(0)
    }

    /// The ClientIds it was sent `DELETE /register/{ClientId}` for.
    pub fn deleted(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .deleted
            .lock()
            .map(|g| g.iter().cloned().collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }
}

impl Drop for StandInRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    req: Request<Incoming>,
    seen: Arc<Mutex<Vec<RecordedRequest>>>,
    deleted: Arc<Mutex<HashSet<String>>>,
    behaviour: Arc<Mutex<Behaviour>>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await?.to_bytes();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        target: target.clone(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    if let Ok(mut g) = seen.lock() {
        g.push(recorded);
    }
    let b = behaviour.lock().map(|g| *g).unwrap_or(Behaviour::Normal);
    if let Behaviour::Slow(d) = b {
        tokio::time::sleep(d).await;
    }
    if let Behaviour::Status(code) = b {
        let answer = serde_json::json!({"error": "server_error", "status": code});
        let mut resp = Response::new(Full::new(Bytes::from(answer.to_string())));
        *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY);
        resp.headers_mut().insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        if (300..400).contains(&code) {
            resp.headers_mut()
                .insert("location", http::HeaderValue::from_static("/elsewhere"));
        }
        return Ok(resp);
    }
    let client_id = target.rsplit('/').next().unwrap_or("");
    let gone = match (parts.method.as_str(), target.strip_prefix("/register/")) {
        ("DELETE", Some(id)) => {
            if let Ok(mut g) = deleted.lock() {
                g.insert(id.to_owned());
            }
            false
        }
        ("GET" | "PUT", Some(id)) => deleted.lock().is_ok_and(|g| g.contains(id)),
        _ => false,
    };
    if gone {
        let answer = serde_json::json!({
            "error": "invalid_token",
            "error_description": "the client was deleted",
        });
        let mut resp = Response::new(Full::new(Bytes::from(answer.to_string())));
        *resp.status_mut() = StatusCode::UNAUTHORIZED;
        resp.headers_mut().insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        return Ok(resp);
    }
    let answer = serde_json::json!({
        "client_id": client_id,
        "token_endpoint_auth_method": "tls_client_auth",
        "registry": "stand-in",
    });
    let mut resp = Response::new(Full::new(Bytes::from(answer.to_string())));
    *resp.status_mut() = StatusCode::OK;
    resp.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    resp.headers_mut()
        .insert("x-registry", http::HeaderValue::from_static("stand-in"));
    Ok(resp)
}
