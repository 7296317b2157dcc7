//! An OCSP responder: plain http on 127.0.0.1 (OCSP answers carry their own signature), signing
//! with the issuing CA's key or a delegated responder's, answering per serial number, and able
//! to misbehave on request (down, tryLater, stale answers, slow, signed by a stranger) so the
//! gateway's policies can be shown. Counts the exchanges.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use dcrgate_certs::OcspSigner;
use dcrgate_ocsp::build::{self, Entry, ECDSA_SHA256_OID};
use dcrgate_ocsp::{request, CertStatus};
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use ring::digest;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::SandboxError;

/// How the responder behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Signed answers valid for this many seconds (nextUpdate), per the statuses set.
    Answer {
        /// Seconds from now to nextUpdate.
        valid_for: i64,
    },
    /// Answers whose nextUpdate passed an hour ago.
    Stale,
    /// HTTP 503, no OCSP at all.
    Down,
    /// A successful HTTP answer with the OCSP status tryLater.
    TryLater,
    /// Answers after this delay.
    Slow(Duration),
}

struct State {
    signer: OcspSigner,
    /// Certificates sent along with each answer (a delegated responder's).
    attach: Vec<Vec<u8>>,
    statuses: Mutex<HashMap<Vec<u8>, CertStatus>>,
    behaviour: Mutex<Behaviour>,
    hits: AtomicUsize,
}

/// The running responder.
pub struct OcspResponder {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl OcspResponder {
    /// Start on an ephemeral loopback port, signing with `signer`; with `attach_signer` its
    /// certificate goes along with each answer (what a delegated responder does). A serial
    /// without a status set is `unknown`.
    pub async fn start(signer: OcspSigner, attach_signer: bool) -> Result<Self, SandboxError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let attach = if attach_signer {
            vec![signer.cert_der.clone()]
        } else {
            Vec::new()
        };
        let state = Arc::new(State {
            signer,
            attach,
            statuses: Mutex::default(),
            behaviour: Mutex::new(Behaviour::Answer { valid_for: 3600 }),
            hits: AtomicUsize::new(0),
        });
        let s = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(req, s.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
        Ok(Self { addr, state, task })
    }

    /// Its URL (what a certificate's authorityInfoAccess names).
    pub fn url(&self) -> String {
        format!("http://localhost:{}/ocsp", self.addr.port())
    }

    /// Answer `status` for the certificate with this serial number.
    pub fn set(&self, serial: &[u8], status: CertStatus) {
        if let Ok(mut g) = self.state.statuses.lock() {
            g.insert(
                dcrgate_ocsp::cert_id::serial_magnitude(serial).to_vec(),
                status,
            );
        }
    }

    /// Behave this way from now on.
    pub fn behave(&self, behaviour: Behaviour) {
        if let Ok(mut g) = self.state.behaviour.lock() {
            *g = behaviour;
        }
    }

    /// How many requests it has had.
    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }
}

impl Drop for OcspResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Body = Full<Bytes>;

fn reply(status: u16, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/ocsp-response"),
    );
    r
}

async fn handle(req: Request<Incoming>, state: Arc<State>) -> Result<Response<Body>, Infallible> {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let behaviour = state
        .behaviour
        .lock()
        .map(|g| *g)
        .unwrap_or(Behaviour::Down);
    let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(reply(200, build::status_only(1))),
    };
    let valid_for = match behaviour {
        Behaviour::Down => return Ok(reply(503, Vec::new())),
        Behaviour::TryLater => return Ok(reply(200, build::status_only(3))),
        Behaviour::Slow(d) => {
            tokio::time::sleep(d).await;
            3600
        }
        Behaviour::Stale => -3600,
        Behaviour::Answer { valid_for } => valid_for,
    };
    let Ok(ids) = request::parse(&body) else {
        return Ok(reply(200, build::status_only(1)));
    };
    let now = unix_now();
    let this_update = if valid_for < 0 { now - 7200 } else { now - 60 };
    let entries: Vec<Entry> = ids
        .into_iter()
        .map(|cert_id| {
            let status = state
                .statuses
                .lock()
                .ok()
                .and_then(|g| g.get(&cert_id.serial).copied())
                .unwrap_or(CertStatus::Unknown);
            Entry {
                cert_id,
                status,
                this_update,
                next_update: Some(now + valid_for),
            }
        })
        .collect();
    let key_sha1 = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &state.signer.key_bits);
    let mut failed = false;
    let der = build::response(
        &entries,
        key_sha1.as_ref(),
        this_update,
        &state.attach,
        ECDSA_SHA256_OID,
        |tbs| {
            state.signer.sign(tbs).unwrap_or_else(|_| {
                failed = true;
                Vec::new()
            })
        },
    );
    if failed {
        return Ok(reply(200, build::status_only(2)));
    }
    Ok(reply(200, der))
}
