//! The pingora `ProxyHttp` implementation: one method per phase, state in [`RequestCtx`].
//!
//! - `early_request_filter`: the request head has arrived; stop the connection's head clock.
//! - `request_filter`: route, envelope, body, JWS, policy, key set, signature. A rejection is
//!   answered here and the request ends; nothing reaches the upstream.
//! - `upstream_peer` / `upstream_request_filter` / `request_body_filter`: forward the accepted
//!   request, identity headers rewritten, the body replayed byte for byte.
//! - `fail_to_proxy`: upstream down (502) or slow (504), as JSON.
//! - `logging`: metrics, and re-arm the head clock for the next request on the connection.

pub mod envelope;
pub mod forward;
pub mod rejection;
pub mod route;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use dcrgate_policies::evaluate::{evaluate_json, RequestFacts};
use dcrgate_policies::ErrorCode;
use pingora::http::RequestHeader;
use pingora::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::utils::tls::WrappedX509;
use pingora::{Error, ErrorSource, ErrorType};

use crate::config::Config;
use crate::conn_guard::ConnGuards;
use crate::jose::jws::parse_compact;
use crate::jose::verify::{verify, SignatureError};
use crate::keyset::KeySetCache;
use crate::metrics::Metrics;
use crate::tls::identity::ClientIdentity;
use rejection::Rejection;

const ROUTE_UPDATE: &str = "register_update";
const ROUTE_OTHER: &str = "other";

/// Per-request state.
pub struct RequestCtx {
    started: Instant,
    route: &'static str,
    identity: Option<Arc<ClientIdentity>>,
    body: Option<Bytes>,
    rejected: Option<&'static str>,
}

/// The gateway's proxy logic.
pub struct Gateway {
    config: Arc<Config>,
    key_sets: KeySetCache,
    metrics: Arc<Metrics>,
    guards: Arc<ConnGuards>,
    upstream_ca: Option<Arc<[WrappedX509]>>,
}

impl Gateway {
    /// Assemble the proxy logic.
    pub fn new(
        config: Arc<Config>,
        key_sets: KeySetCache,
        metrics: Arc<Metrics>,
        guards: Arc<ConnGuards>,
        upstream_ca: Option<Vec<Vec<u8>>>,
    ) -> Self {
        let upstream_ca = upstream_ca.map(|ders| {
            let certs: Vec<WrappedX509> = ders
                .into_iter()
                .map(|d| WrappedX509::new(d, pingora::utils::tls::parse_x509))
                .collect();
            Arc::from(certs)
        });
        Self {
            config,
            key_sets,
            metrics,
            guards,
            upstream_ca,
        }
    }

    /// Decide on a request: the body to forward, or the rejection.
    async fn admit(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<Bytes, Rejection> {
        let cfg = &self.config;
        let header = session.req_header();
        route::origin_form(header.raw_path())?;
        let client_id =
            route::client_id(&header.method, &header.uri, cfg.limits.max_client_id_length)?
                .to_owned();
        ctx.route = ROUTE_UPDATE;
        let identity = ctx.identity.clone().ok_or_else(|| {
            Rejection::new(
                403,
                ErrorCode::AccessDenied,
                "no_client_identity",
                "no verified client certificate identity on this connection",
            )
            .closing()
        })?;
        let headers = &session.req_header().headers;
        envelope::check_bearer(headers)?;
        envelope::check_content_type(headers)?;
        envelope::check_declared_length(headers, cfg.limits.max_body_bytes)?;
        // pingora replays its retry buffer to the upstream once the body is fully read;
        // request_body_filter substitutes the verified body, so the two are the same bytes.
        session.as_mut().enable_retry_buffering();
        let body = envelope::read_body(
            session,
            cfg.limits.max_body_bytes,
            Duration::from_millis(cfg.limits.body_timeout_ms),
        )
        .await?;

        let profile = &cfg.profile;
        let jws = parse_compact(&body, &profile.request.algorithms)
            .map_err(|e| Rejection::from_jws(&e))?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let facts = RequestFacts {
            client_id: Some(&client_id),
            now,
            audiences: &cfg.audiences,
            key_hosts: &cfg.key_hosts,
            presented_dn: &identity.dn,
            software_statement: None,
        };
        let evaluation = evaluate_json(profile, &jws.payload, &facts);
        if !evaluation.verdict.is_accept() {
            return Err(Rejection::from_violations(evaluation.verdict.violations()));
        }
        let Some(url) = evaluation.key_set_url else {
            return Err(Rejection::new(
                400,
                ErrorCode::InvalidClientMetadata,
                "jwks_uri",
                "no acceptable key set URL",
            ));
        };
        let host = url.host_str().unwrap_or_default().to_owned();
        let keys = self
            .key_sets
            .keys(&url, &jws.kid)
            .await
            .map_err(|e| Rejection::from_key_set(&e, &host))?;
        let mut last = SignatureError::Invalid;
        for key in &keys {
            match verify(&jws.alg, key, &jws.signing_input, &jws.signature) {
                Ok(()) => return Ok(body),
                Err(e) => last = e,
            }
        }
        Err(Rejection::from_signature(&last))
    }

    async fn answer(&self, session: &mut Session, rejection: &Rejection) -> pingora::Result<()> {
        let body = rejection.body();
        let head = rejection.response_header(body.len())?;
        if rejection.close {
            session.set_keepalive(None);
        }
        session.write_response_header(Box::new(head), false).await?;
        session.write_response_body(Some(body), true).await?;
        Ok(())
    }

    fn reject_metrics(&self, reason: &'static str) {
        self.metrics.rejections.with_label_values(&[reason]).inc();
    }
}

fn inet(addr: Option<&PingoraAddr>) -> Option<std::net::SocketAddr> {
    addr.and_then(|a| a.as_inet()).copied()
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            route: ROUTE_OTHER,
            identity: None,
            body: None,
            rejected: None,
        }
    }

    async fn early_request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        if let Some(peer) = inet(session.client_addr()) {
            self.guards.disarm(&peer);
        }
        ctx.identity = session
            .digest()
            .and_then(|d| d.ssl_digest.as_ref())
            .and_then(|s| s.extension.get::<Arc<ClientIdentity>>().cloned());
        Ok(())
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        match self.admit(session, ctx).await {
            Ok(body) => {
                ctx.body = Some(body);
                Ok(false)
            }
            Err(rejection) => {
                if rejection.reason == "body_timeout" {
                    self.metrics
                        .client_timeouts
                        .with_label_values(&["body"])
                        .inc();
                }
                tracing::info!(
                    status = rejection.status,
                    reason = rejection.reason,
                    description = %rejection.description,
                    "rejected"
                );
                ctx.rejected = Some(rejection.reason);
                self.reject_metrics(rejection.reason);
                self.answer(session, &rejection).await?;
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let u = &self.config.upstream;
        let mut peer = HttpPeer::new(u.address, u.tls, u.host.clone());
        peer.options.connection_timeout = Some(u.connect_timeout);
        peer.options.total_connection_timeout = Some(u.connect_timeout);
        peer.options.read_timeout = Some(u.read_timeout);
        peer.options.write_timeout = Some(u.write_timeout);
        if let Some(ca) = &self.upstream_ca {
            peer.options.ca = Some(ca.clone());
        }
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        match &ctx.identity {
            Some(identity) => forward::rewrite(upstream_request, identity),
            // admit() refuses requests without an identity; never forward one regardless.
            None => Error::e_explain(
                ErrorType::InternalError,
                "no client identity at forward time",
            ),
        }
    }

    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        // The body was read whole and verified in request_filter; send exactly those bytes.
        *body = if end_of_stream {
            ctx.body.clone()
        } else {
            None
        };
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut pingora::http::ResponseHeader,
        _ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        let class = match upstream_response.status.as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.metrics
            .upstream_responses
            .with_label_values(&[class])
            .inc();
        Ok(())
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let timeout = matches!(
            e.etype(),
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout
        );
        let rejection = match e.esource() {
            ErrorSource::Upstream => Rejection::upstream(timeout),
            _ if matches!(
                e.etype(),
                ErrorType::ConnectTimedout
                    | ErrorType::ConnectRefused
                    | ErrorType::ConnectError
                    | ErrorType::ConnectNoRoute
            ) =>
            {
                Rejection::upstream(timeout)
            }
            ErrorSource::Downstream => {
                return FailToProxy {
                    error_code: 0,
                    can_reuse_downstream: false,
                };
            }
            _ => Rejection::new(500, ErrorCode::InvalidRequest, "internal", "internal error")
                .closing(),
        };
        ctx.rejected = Some(rejection.reason);
        self.reject_metrics(rejection.reason);
        tracing::warn!(reason = rejection.reason, error = %e, "forwarding failed");
        let code = rejection.status;
        if self.answer(session, &rejection).await.is_err() {
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        if let Some(peer) = inet(session.client_addr()) {
            self.guards.rearm(&peer);
        }
        let outcome = match ctx.rejected {
            Some("upstream_timeout" | "upstream_unavailable") => "upstream_error",
            Some(_) => "rejected",
            None if ctx.body.is_some() => "accepted",
            None => "aborted",
        };
        self.metrics
            .requests
            .with_label_values(&[ctx.route, outcome])
            .inc();
        self.metrics
            .duration
            .with_label_values(&[ctx.route, outcome])
            .observe(ctx.started.elapsed().as_secs_f64());
    }
}
