//! The admin listener (plain HTTP, keep it on a private address): `/metrics` in Prometheus
//! text format, `/healthz` for liveness (the process answers) and `/readyz` for readiness of
//! this replica alone: a configuration is loaded, the TPP listener is listening, the served
//! certificate is valid, and no CRL a `require` policy relies on is past its nextUpdate. The
//! registry, key sets and Redis are shared by every replica: they are
//! `dcrgate_dependency_up` ([`crate::dependencies`]), never readiness.

use std::sync::Arc;

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::reload::SharedState;

/// Serves the admin endpoints.
pub struct AdminApp {
    state: Arc<SharedState>,
}

impl AdminApp {
    /// An admin app over the gateway's shared state.
    pub fn new(state: Arc<SharedState>) -> Self {
        Self { state }
    }

    /// What keeps this replica from being ready (empty: ready). Local state only: a
    /// configuration is loaded (always, once running), the TPP listener listens, the served
    /// certificate is within its validity, and under a `require` revocation policy no configured
    /// CRL is past its nextUpdate. Shared dependencies are metrics
    /// ([`crate::dependencies`]), not readiness.
    fn not_ready(&self) -> Vec<String> {
        let generation = self.state.current();
        let mut problems = Vec::new();
        let listen = &generation.config.listen;
        match listen
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse::<u16>().ok())
        {
            Some(port) if listening(port) => {}
            _ => problems.push(format!("listener {listen}: not listening")),
        }
        let now = crate::clock::unix_now();
        let (not_before, not_after) = self.state.cert.validity();
        if now < not_before {
            problems.push("served certificate: not valid yet".to_owned());
        }
        if now > not_after {
            problems.push("served certificate: expired".to_owned());
        }
        for issuer in self.state.client_verifier.stale_crls(now) {
            problems.push(format!(
                "CRL `{issuer}`: past its nextUpdate (a require policy refuses what it covers)"
            ));
        }
        problems
    }
}

/// Whether a TCP socket of this host listens on `port` (Linux `/proc/net/tcp` and `tcp6`: the
/// local address's port, state `0A`). Where neither file can be read, the listener is assumed up.
fn listening(port: u16) -> bool {
    let tables: Vec<String> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .collect();
    if tables.is_empty() {
        return true;
    }
    let wanted = format!("{port:04X}");
    tables.iter().flat_map(|t| t.lines().skip(1)).any(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1).unwrap_or_default();
        let state = fields.nth(1).unwrap_or_default();
        state == "0A" && local.rsplit(':').next() == Some(wanted.as_str())
    })
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    let len = r.body().len();
    r.headers_mut()
        .insert(http::header::CONTENT_LENGTH, len.into());
    r
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let req = session.req_header();
        if req.method != http::Method::GET {
            return respond(
                StatusCode::METHOD_NOT_ALLOWED,
                "text/plain",
                b"GET only\n".to_vec(),
            );
        }
        match req.uri.path() {
            "/metrics" => respond(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.state.metrics.render(),
            ),
            "/healthz" => respond(StatusCode::OK, "text/plain", b"ok\n".to_vec()),
            "/readyz" => {
                let problems = self.not_ready();
                if problems.is_empty() {
                    respond(StatusCode::OK, "text/plain", b"ready\n".to_vec())
                } else {
                    let body = format!("not ready:\n{}\n", problems.join("\n"));
                    respond(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        body.into_bytes(),
                    )
                }
            }
            _ => respond(StatusCode::NOT_FOUND, "text/plain", b"not found\n".to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_port_is_listening_while_a_socket_listens_on_it() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(super::listening(port));
        drop(listener);
        assert!(!super::listening(port));
    }
}
