//! The pingora `ProxyHttp` implementation: one method per phase, state in [`RequestCtx`]
//! (the connection's identity, then the [`Decision`]: pending, admitted or rejected).
//!
//! - `early_request_filter`: the request head has arrived; stop the connection's head clock.
//! - `request_filter`: route, bearer token, envelope, body, JWS, software statement, policy,
//!   key set, signature, replay (see [`admit`]). A rejection is answered here and the request
//!   ends; nothing reaches the upstream.
//! - `upstream_peer` / `upstream_request_filter` / `request_body_filter`: forward the accepted
//!   request, identity headers rewritten, the body replayed byte for byte.
//! - `fail_to_proxy`: upstream down (502) or slow (504), as JSON.
//! - `logging`: metrics, the audit record, and re-arm the head clock for the next request.

pub mod admit;
pub mod correlation;
pub mod envelope;
pub mod forward;
pub mod framing;
pub mod front_proxy;

pub mod route;

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use dcrgate_policies::evaluate::RotationDecision;
use pingora::http::RequestHeader;
use pingora::protocols::l4::socket::SocketAddr as PingoraAddr;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType};
use tracing::Instrument;

use crate::audit::{now_rfc3339, AuditRecord};
use crate::conn_guard::ConnGuards;
pub use crate::generation::{Generation, Services};
use crate::reason::Reason;
use crate::rejection::Rejection;
use crate::reload::SharedState;
use crate::tls::identity::ClientIdentity;
use admit::Admitted;

const ROUTE_OTHER: &str = "other";

pub use correlation::{INTERACTION_ID_HEADER, REQUEST_ID_HEADER};

/// Per-request state: what each phase established.
pub struct RequestCtx {
    started: Instant,
    generation: Arc<Generation>,
    request_id: String,
    /// The FAPI interaction id (the client's, or a new one).
    interaction_id: String,
    /// The request's log span: its ids, route and ClientId on every line.
    span: tracing::Span,
    /// The connection's verified client certificate (`early_request_filter`).
    identity: Option<Arc<ClientIdentity>>,
    /// The route's metric label (`admit`).
    route: &'static str,
    /// What the audit record reports, learnt on the way.
    trail: Trail,
    /// Whether the request is admitted, rejected, or not decided yet.
    decision: Decision,
    /// The answer's status: the gateway's own, or the registry's.
    status: u16,
}

/// What the audit record says about a request, learnt phase by phase (a rejected request
/// keeps what was known when it was refused).
#[derive(Debug, Default)]
pub struct Trail {
    /// The ClientId of the path.
    pub client_id: Option<String>,
    /// The software's id, from the software statement or the request.
    pub software_id: Option<String>,
    /// The certificate rotation decision, when the DN differs.
    pub rotation: Option<RotationDecision>,
    /// Rule and check ids: every rule broken (in shadow too), then the refusal's reason.
    pub reasons: Vec<&'static str>,
}

/// Where a request stands.
#[derive(Debug)]
pub enum Decision {
    /// Not decided, or decided but not answered: the client went away first (`aborted`).
    Pending,
    /// Admitted, and forwarded or about to be.
    Admitted(Admitted),
    /// Answered by the gateway itself, before forwarding or when forwarding failed.
    Rejected(Reason),
}

/// A request's outcome: the `outcome` label of the request metrics and the audit verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded, every enforced rule holding.
    Accepted,
    /// Forwarded, breaking rules in shadow.
    WouldReject,
    /// Answered by the gateway.
    Rejected,
    /// Admitted, but the registry could not be reached or was too slow.
    UpstreamError,
    /// The client went away before a decision or before its answer could be written.
    Aborted,
}

impl Outcome {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::WouldReject => "would_reject",
            Outcome::Rejected => "rejected",
            Outcome::UpstreamError => "upstream_error",
            Outcome::Aborted => "aborted",
        }
    }
}

impl Decision {
    /// The outcome this decision ends in.
    pub fn outcome(&self) -> Outcome {
        match self {
            Decision::Pending => Outcome::Aborted,
            Decision::Admitted(a) if a.would_reject.is_empty() => Outcome::Accepted,
            Decision::Admitted(_) => Outcome::WouldReject,
            Decision::Rejected(reason) if reason.is_upstream() => Outcome::UpstreamError,
            Decision::Rejected(_) => Outcome::Rejected,
        }
    }
}

/// The gateway's proxy logic.
pub struct Gateway {
    state: Arc<SharedState>,
    guards: Arc<ConnGuards>,
}

impl Gateway {
    /// Assemble the proxy logic over the shared, reloadable state.
    pub fn new(state: Arc<SharedState>, guards: Arc<ConnGuards>) -> Self {
        Self { state, guards }
    }

    async fn answer(
        &self,
        session: &mut Session,
        ctx: &RequestCtx,
        rejection: &Rejection,
    ) -> pingora::Result<()> {
        let body = rejection.body();
        let mut head = rejection.response_header(body.len())?;
        head.insert_header(REQUEST_ID_HEADER, ctx.request_id.as_str())?;
        head.insert_header(INTERACTION_ID_HEADER, ctx.interaction_id.as_str())?;
        if rejection.close {
            session.set_keepalive(None);
        }
        session.write_response_header(Box::new(head), false).await?;
        session.write_response_body(Some(body), true).await?;
        Ok(())
    }

    /// Record a rejection in the context (decision, status, reasons) and the metrics.
    fn rejected(&self, ctx: &mut RequestCtx, rejection: &Rejection) {
        let id = rejection.reason.id();
        ctx.decision = Decision::Rejected(rejection.reason);
        ctx.status = rejection.status();
        if !ctx.trail.reasons.contains(&id) {
            ctx.trail.reasons.push(id);
        }
        self.state
            .metrics
            .rejections
            .with_label_values(&[ctx.route, id])
            .inc();
    }

    /// The registry never received the admitted request: release its `jti`, so the TPP may
    /// send the same signed request again.
    async fn release_jti(&self, ctx: &mut RequestCtx) {
        let Decision::Admitted(admitted) = &mut ctx.decision else {
            return;
        };
        let (Some(jti), Some(store)) = (admitted.jti.take(), &ctx.generation.services.replay)
        else {
            return;
        };
        let label = match store.release(&jti).await {
            Ok(()) => "released",
            Err(e) => {
                tracing::warn!(store = store.kind(), error = %e, "jti not released: the replay store did not answer");
                "error"
            }
        };
        self.state
            .metrics
            .replay_checks
            .with_label_values(&[store.kind(), label])
            .inc();
    }

    fn audit(&self, ctx: &RequestCtx, outcome: Outcome) {
        let sink = &ctx.generation.services.audit;
        if !sink.is_on() {
            return;
        }
        let identity = ctx.identity.as_deref();
        sink.record(&AuditRecord {
            time: now_rfc3339(),
            request_id: &ctx.request_id,
            route: ctx.route,
            client_id: ctx.trail.client_id.as_deref(),
            cert_thumbprint: identity.map(|i| i.thumbprint.as_str()),
            cert_dn: identity.map(|i| i.canonical_dn.as_str()),
            software_id: ctx.trail.software_id.as_deref(),
            verdict: outcome.as_str(),
            status: ctx.status,
            reasons: &ctx.trail.reasons,
            rotation: ctx.trail.rotation.map(RotationDecision::as_str),
            latency_ms: ctx.started.elapsed().as_secs_f64() * 1000.0,
        });
    }
}

/// Whether a forwarding error happened before the registry could have received any of the
/// request: the connection to it (TCP, TLS) was refused, timed out or failed. A request that may
/// have reached it (a write or read failed, or timed out, on an open connection) is not.
fn never_received(e: &Error) -> bool {
    matches!(
        e.etype(),
        ErrorType::ConnectTimedout
            | ErrorType::ConnectRefused
            | ErrorType::ConnectNoRoute
            | ErrorType::ConnectError
            | ErrorType::TLSHandshakeFailure
            | ErrorType::TLSHandshakeTimedout
            | ErrorType::InvalidCert
            | ErrorType::HandshakeError
            | ErrorType::BindError
            | ErrorType::SocketError
    )
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
            generation: self.state.current(),
            request_id: correlation::request_id(),
            interaction_id: String::new(),
            span: tracing::Span::none(),
            identity: None,
            route: ROUTE_OTHER,
            trail: Trail::default(),
            decision: Decision::Pending,
            status: 0,
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
        ctx.interaction_id = correlation::interaction_id(&session.req_header().headers);
        // At ERROR, so that it is enabled whatever the log level: its fields are on every line.
        ctx.span = tracing::error_span!(
            "request",
            request_id = %ctx.request_id,
            interaction_id = %ctx.interaction_id,
            route = tracing::field::Empty,
            client_id = tracing::field::Empty,
        );
        ctx.identity = session
            .digest()
            .and_then(|d| d.ssl_digest.as_ref())
            .and_then(|s| s.extension.get::<Arc<ClientIdentity>>().cloned());
        if let Some(delay) = ctx.identity.as_ref().and_then(|i| i.first_request_delay()) {
            self.state
                .metrics
                .stages
                .with_label_values(&["handshake_to_request"])
                .observe(delay.as_secs_f64());
        }
        Ok(())
    }

    async fn request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<bool> {
        let span = ctx.span.clone();
        match self.admit(session, ctx).instrument(span.clone()).await {
            Ok(admitted) => {
                ctx.decision = Decision::Admitted(admitted);
                Ok(false)
            }
            Err(rejection) => {
                if rejection.reason == Reason::BodyTimeout {
                    self.state
                        .metrics
                        .client_timeouts
                        .with_label_values(&["body"])
                        .inc();
                }
                span.in_scope(|| {
                    tracing::info!(
                        status = rejection.status(),
                        reason = rejection.reason.id(),
                        description = %rejection.description,
                        "rejected"
                    )
                });
                self.rejected(ctx, &rejection);
                if let Err(mut e) = self.answer(session, ctx, &rejection).await {
                    // The error is the downstream's, so `fail_to_proxy` adds no second
                    // rejection.
                    unanswered(ctx);
                    e.as_down();
                    return Err(e);
                }
                Ok(true)
            }
        }
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<Box<HttpPeer>> {
        let generation = &ctx.generation;
        let u = &generation.config.upstream;
        let address = generation.services.upstream_address.get();
        let mut peer = HttpPeer::new(address, u.tls, u.host.clone());
        peer.options.connection_timeout = Some(u.connect_timeout);
        peer.options.total_connection_timeout = Some(u.connect_timeout);
        peer.options.read_timeout = Some(u.read_timeout);
        peer.options.write_timeout = Some(u.write_timeout);
        if let Some(ca) = &generation.upstream_ca {
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
        match &mut ctx.decision {
            Decision::Admitted(admitted) => {
                admitted.forwarded_at = Some(Instant::now());
                forward::rewrite(
                    upstream_request,
                    &admitted.identity,
                    &ctx.generation.config.upstream.forward_headers,
                    admitted.body.as_ref().map(Bytes::len),
                    ctx.generation.config.upstream.send_client_cert,
                )?;
                upstream_request.insert_header(REQUEST_ID_HEADER, ctx.request_id.as_str())?;
                upstream_request.insert_header(INTERACTION_ID_HEADER, ctx.interaction_id.as_str())
            }
            // Only an admitted request reaches this phase; never forward another regardless.
            _ => Error::e_explain(
                ErrorType::InternalError,
                "no admitted request at forward time",
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
        *body = match &ctx.decision {
            Decision::Admitted(admitted) if end_of_stream => admitted.body.clone(),
            _ => None,
        };
        Ok(())
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut pingora::http::ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        ctx.status = upstream_response.status.as_u16();
        if let Decision::Admitted(Admitted {
            forwarded_at: Some(at),
            ..
        }) = &ctx.decision
        {
            self.state
                .metrics
                .stages
                .with_label_values(&["upstream"])
                .observe(at.elapsed().as_secs_f64());
        }
        let class = match upstream_response.status.as_u16() {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.state
            .metrics
            .upstream_responses
            .with_label_values(&[class])
            .inc();
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream_response: &mut pingora::http::ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> pingora::Result<()> {
        // The registry's answer, passed on with the gateway's ids (never the registry's own).
        upstream_response.insert_header(REQUEST_ID_HEADER, ctx.request_id.as_str())?;
        upstream_response.insert_header(INTERACTION_ID_HEADER, ctx.interaction_id.as_str())?;
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
            _ => Rejection::new(Reason::Internal, "internal error").closing(),
        };
        if never_received(e) {
            self.release_jti(ctx).await;
        }
        self.rejected(ctx, &rejection);
        ctx.span.in_scope(
            || tracing::warn!(reason = rejection.reason.id(), error = %e, "forwarding failed"),
        );
        let code = rejection.status();
        if self.answer(session, ctx, &rejection).await.is_err() {
            unanswered(ctx);
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
        let outcome = ctx.decision.outcome();
        ctx.span.in_scope(|| {
            tracing::debug!(
                outcome = outcome.as_str(),
                elapsed_ms = ctx.started.elapsed().as_millis() as u64,
                "request done"
            )
        });
        self.audit(ctx, outcome);
        self.state
            .metrics
            .requests
            .with_label_values(&[ctx.route, outcome.as_str()])
            .inc();
        self.state
            .metrics
            .duration
            .with_label_values(&[ctx.route, outcome.as_str()])
            .observe(ctx.started.elapsed().as_secs_f64());
    }
}

/// The gateway's answer could not be written: the client is gone (it left mid-body, say). The
/// record says so (`aborted`, status 0) and keeps the reasons the gateway had decided on.
fn unanswered(ctx: &mut RequestCtx) {
    ctx.status = 0;
    ctx.decision = Decision::Pending;
}

/// A header map from `(name, value)` pairs, for the phase modules' unit tests.
#[cfg(test)]
pub(crate) fn test_headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

#[cfg(test)]
mod tests {
    use pingora::{Error, ErrorType};

    #[test]
    fn only_connection_failures_count_as_never_received() {
        for etype in [
            ErrorType::ConnectTimedout,
            ErrorType::ConnectRefused,
            ErrorType::ConnectNoRoute,
            ErrorType::ConnectError,
            ErrorType::TLSHandshakeFailure,
            ErrorType::TLSHandshakeTimedout,
            ErrorType::InvalidCert,
        ] {
            assert!(
                super::never_received(&Error::new(etype.clone())),
                "{etype:?}"
            );
        }
        // On an open connection the request may have been received: its jti stays used.
        for etype in [
            ErrorType::ReadError,
            ErrorType::WriteError,
            ErrorType::ReadTimedout,
            ErrorType::WriteTimedout,
            ErrorType::ConnectionClosed,
            ErrorType::H1Error,
            ErrorType::InvalidHTTPHeader,
            ErrorType::InternalError,
            ErrorType::UnknownError,
        ] {
            assert!(
                !super::never_received(&Error::new(etype.clone())),
                "{etype:?}"
            );
        }
    }
}
