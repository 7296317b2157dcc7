//! Admission: everything the gateway decides before a request may reach the registry, in the
//! order that keeps the expensive and outbound steps last:
//!
//! 1. route (405 for lifecycle routes that are off), the connection's client identity, and the
//!    rate limits of that certificate and of the gateway (429);
//! 2. bearer token on `PUT`, `GET`, `DELETE`: form, then the route's mode (jwt, introspection,
//!    or upstream), bound to the ClientId and the certificate;
//! 3. for `PUT` / `POST`: content type, size, the whole body under a deadline;
//! 4. the request object's JWS header rules and claims;
//! 5. the software statement, verified against a trusted directory before anything it names is
//!    fetched;
//! 6. the policy verdict (offline: every rule, with the SSA's);
//! 7. the TPP key set (from the SSA when there is one) and the request object's signature;
//! 8. the `jti`, recorded only once the signature verified, so forgeries cannot burn it.
//!
//! Policy rules the profile puts in shadow (`[shadow]`) are evaluated and recorded as
//! `would_reject` but do not stop the request; the cryptographic checks (JWS rules, signature,
//! software statement, bearer token, replay) are never in shadow. Each request runs on the
//! generation (configuration and services) it started with.

use std::time::{Duration, Instant};

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use dcrgate_policies::evaluate::{evaluate, RequestFacts, RotationDecision};
use dcrgate_policies::{Presence, Rule};
use pingora::proxy::Session;

use crate::bearer::{BearerMode, TokenUse};
use crate::checks;
use crate::clock::unix_now as now;
use crate::generation::Generation;
use crate::jose::verify::{verify, SignatureError, VerifyingKey};
use crate::proxy::route::{self, Route};
use crate::proxy::{envelope, framing, front_proxy, Gateway, RequestCtx};
use crate::rate_limit::Refusal;
use crate::reason::Reason;
use crate::rejection::Rejection;
use crate::replay::{OnStoreError, Seen};
use crate::tls::identity::ClientIdentity;
use crate::tls::no_certificate;
use crate::tls::revocation::{Decision, RevocationResult};
use crate::trust::{directory, Verified};

/// Verify with the one key of this `kid` that fits `alg` (the key set keeps at most one per
/// type). An RSA key above 2048 bits is verified on the blocking pool, so a costly (possibly
/// hostile) key never holds up the event loop that serves other connections.
pub(crate) async fn verify_signature(
    alg: &str,
    keys: &[VerifyingKey],
    message: &[u8],
    signature: &[u8],
) -> Result<(), SignatureError> {
    let Some(key) = keys.iter().find(|k| k.fits(alg)) else {
        return Err(SignatureError::WrongKeyType(if alg == "ES256" {
            "ES256"
        } else {
            "PS256"
        }));
    };
    if !key.is_costly() {
        return verify(alg, key, message, signature);
    }
    let (alg, key, message, signature) = (
        alg.to_owned(),
        key.clone(),
        message.to_vec(),
        signature.to_vec(),
    );
    tokio::task::spawn_blocking(move || verify(&alg, &key, &message, &signature))
        .await
        .unwrap_or(Err(SignatureError::Invalid))
}

impl Gateway {
    /// Decide on a request. On `Ok` the request is forwarded (with the verified body replayed
    /// for `PUT` / `POST`); on `Err` the rejection is answered and nothing is forwarded. What
    /// was learnt on the way (route, ClientId, software_id, rule ids) is kept in `ctx` for the
    /// audit record either way.
    pub(crate) async fn admit(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Admitted, Rejection> {
        let generation = ctx.generation.clone();
        let cfg = &generation.config;
        // First of all: a connection without a verified client certificate gets nothing else
        // (no routing, no framing answers), whatever it sends.
        let Some(identity) = ctx.identity.clone() else {
            let presented = session
                .digest()
                .and_then(|d| d.ssl_digest.as_ref())
                .is_some_and(|s| !s.cert_digest.is_empty());
            return Err(if presented {
                Rejection::new(
                    Reason::NoClientIdentity,
                    "no verified client certificate identity on this connection",
                )
            } else {
                if let Some(peer) = session.client_addr().and_then(|a| a.as_inet()) {
                    no_certificate::log_once(peer.ip());
                }
                Rejection::new(
                    Reason::NoClientIdentity,
                    "no client certificate was presented: registration requires mutual TLS with \
                     the TPP's transport certificate",
                )
            }
            .closing());
        };
        // From the trusted front proxy, the TPP's certificate comes in Client-Cert.
        let peer = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        let identity = front_proxy::identity_for(
            identity,
            &session.req_header().headers,
            peer,
            cfg.front_proxy.as_ref(),
            &self.state.client_verifier,
        )?;
        ctx.identity = Some(identity.clone());
        let header = session.req_header();
        envelope::check_head(
            &header.headers,
            cfg.limits.max_headers,
            cfg.limits.max_header_bytes,
        )?;
        framing::check_content_length(&header.headers)?;
        framing::check_transfer_encoding(&header.headers)?;
        framing::check_connection(&header.headers, &cfg.upstream.forward_headers)?;
        let expects_continue = framing::expects_continue(&header.headers)?;
        route::origin_form(header.raw_path())?;
        let route = route::route(
            &header.method,
            &header.uri,
            cfg.limits.max_client_id_length,
            &cfg.routes,
        )?;
        ctx.route = route.label();
        let client_id = route.client_id().map(str::to_owned);
        let span = tracing::Span::current();
        span.record("route", tracing::field::display(ctx.route));
        if let Some(id) = &client_id {
            span.record("client_id", tracing::field::display(id));
        }
        ctx.trail.client_id.clone_from(&client_id);

        // A CA removed or a certificate revoked since this connection's handshake: its next
        // request is refused, and the connection closed.
        let verified_at = identity.trust_generation.load(Ordering::Acquire);
        match self
            .state
            .client_verifier
            .trusts_now(&identity.chain, verified_at)
        {
            Some(now) => identity.trust_generation.store(now, Ordering::Release),
            None => return Err(Rejection::new(
                Reason::CertificateNoLongerTrusted,
                "the client certificate is no longer trusted (revoked, or its CA removed) since \
                 this connection was opened",
            )
            .closing()),
        }

        // OCSP: the answer the handshake started to ask for, or a cached one.
        match self.state.client_verifier.confirm(&identity.chain).await {
            Decision::Accept => {}
            Decision::Refuse(RevocationResult::Revoked) => {
                return Err(Rejection::new(
                    Reason::CertificateRevoked,
                    "the client certificate is revoked (its issuer's OCSP responder says so)",
                )
                .closing())
            }
            Decision::Refuse(result) => {
                return Err(Rejection::new(
                    Reason::CertificateRevocationUnknown,
                    format!(
                        "the client certificate's revocation status is {}: no OCSP answer and no \
                         current CRL, and its issuer's policy requires one",
                        result.as_str()
                    ),
                )
                .closing())
            }
        }

        let limits = generation
            .services
            .rate_limits
            .check(&identity.thumbprint)
            .await;
        if let Some(e) = &limits.store_error {
            self.state
                .metrics
                .rate_limit_store_errors
                .with_label_values(&[e.kind()])
                .inc();
            tracing::warn!(store = "redis", error = %e, "rate limit store unavailable");
        }
        match limits.outcome {
            Ok(()) => {}
            Err(Refusal::Limited(limited)) => {
                self.state
                    .metrics
                    .rate_limited
                    .with_label_values(&[limited.scope.as_str()])
                    .inc();
                return Err(Rejection::rate_limited(&limited));
            }
            Err(Refusal::StoreUnavailable(_)) => return Err(Rejection::rate_limit_unavailable()),
        }

        let mode = match route {
            Route::Update(_) => Some(cfg.routes.update),
            Route::Read(_) => cfg.routes.read,
            Route::Delete(_) => cfg.routes.delete,
            Route::Create => None,
        };
        if let (Some(mode), Some(id)) = (mode, client_id.as_deref()) {
            let token = envelope::check_bearer(&session.req_header().headers)?.to_owned();
            let started = Instant::now();
            self.check_bearer(&generation, mode, &token, id, &identity)
                .await?;
            self.stage("bearer", started);
        }
        let headers = &session.req_header().headers;
        if matches!(route, Route::Read(_) | Route::Delete(_)) {
            envelope::check_no_body(headers)?;
            return Ok(Admitted::new(identity, None, Vec::new()));
        }

        envelope::check_content_type(headers)?;
        envelope::check_declared_length(headers, cfg.limits.max_body_bytes)?;
        // pingora replays its retry buffer to the upstream once the body is fully read;
        // request_body_filter substitutes the verified body, so the two are the same bytes.
        session.as_mut().enable_retry_buffering();
        if expects_continue {
            session
                .write_continue_response()
                .await
                .map_err(|_| envelope::unreadable())?;
        }
        let body = envelope::read_body(session, cfg.limits.max_body_bytes, cfg.limits.body_timeout)
            .await?;
        let (would_reject, jti) = self
            .check_request_object(&generation, &body, client_id.as_deref(), &identity, ctx)
            .await?;
        let mut admitted = Admitted::new(identity, Some(body), would_reject);
        admitted.jti = jti;
        Ok(admitted)
    }

    fn stage(&self, stage: &str, started: Instant) {
        self.state
            .metrics
            .stages
            .with_label_values(&[stage])
            .observe(started.elapsed().as_secs_f64());
    }

    async fn check_bearer(
        &self,
        generation: &Generation,
        mode: BearerMode,
        token: &str,
        client_id: &str,
        identity: &ClientIdentity,
    ) -> Result<(), Rejection> {
        if mode == BearerMode::Upstream {
            return Ok(());
        }
        let usage = TokenUse {
            client_id,
            thumbprint: &identity.thumbprint,
            require_binding: generation.config.profile.bearer.require_certificate_binding,
            now: now(),
        };
        let result = generation.services.bearer.check(mode, token, &usage).await;
        let label = match &result {
            Ok(()) => "ok",
            Err(e) => e.reason().id(),
        };
        self.state
            .metrics
            .bearer_checks
            .with_label_values(&[mode.as_str(), label])
            .inc();
        result.map_err(|e| Rejection::from_bearer(&e))
    }

    /// The request object: JWS, claims, software statement, policy, key set, signature and
    /// replay. Returns the rules broken that are in shadow, and the `jti` recorded.
    async fn check_request_object(
        &self,
        generation: &Generation,
        body: &[u8],
        client_id: Option<&str>,
        identity: &ClientIdentity,
        ctx: &mut RequestCtx,
    ) -> Result<(Vec<Rule>, Option<String>), Rejection> {
        let cfg = &generation.config;
        let profile = &cfg.profile;
        let jws = checks::request_object(body, &profile.request.algorithms)?;
        let claims = checks::registration_claims(&jws.payload)
            .map_err(|v| Rejection::from_violations([&v]))?;
        let ssa = match claims.software_statement.as_deref() {
            Some(s) if profile.software_statement.presence != Presence::Refused => {
                let started = Instant::now();
                let verified = self.verify_ssa(generation, s).await?;
                self.stage("software_statement", started);
                Some(verified)
            }
            _ => None,
        };
        let now = now();
        let facts = RequestFacts {
            client_id,
            now,
            audiences: &cfg.audiences,
            key_hosts: &cfg.key_hosts,
            presented_dn: &identity.dn,
            software_statement: ssa.as_ref().map(|v| &v.statement),
        };
        let started = Instant::now();
        let evaluation = evaluate(profile, &claims, &facts);
        self.stage("policy", started);
        ctx.trail.software_id.clone_from(&evaluation.software_id);
        if let Some(decision) = evaluation.rotation {
            ctx.trail.rotation = Some(decision);
            self.state
                .metrics
                .rotations
                .with_label_values(&[decision.as_str()])
                .inc();
            if decision == RotationDecision::Accepted {
                tracing::info!(
                    request_id = %ctx.request_id,
                    presented = %identity.canonical_dn,
                    "certificate rotation accepted (same organisation)"
                );
            }
        }
        // The audit record names every rule broken, those in shadow too.
        ctx.trail.reasons = evaluation
            .verdict
            .violations()
            .iter()
            .map(|v| v.rule.id())
            .collect();
        let pass = checks::policy_decision(profile, &evaluation)?;
        if !pass.would_reject.is_empty() {
            // Every violation is in shadow: record it, then go on with the checks that are
            // never in shadow (key set, signature, replay).
            for rule in &pass.would_reject {
                self.state
                    .metrics
                    .would_reject
                    .with_label_values(&[rule.id()])
                    .inc();
            }
            tracing::info!(
                request_id = %ctx.request_id,
                rules = ?ctx.trail.reasons,
                "shadow mode: would reject; forwarding"
            );
        }
        let url = pass.key_set_url;
        let host = url.host_str().unwrap_or_default().to_owned();
        let started = Instant::now();
        let keys = generation
            .services
            .key_sets
            .keys(url, &jws.kid)
            .await
            .map_err(|e| Rejection::from_key_set(&e, &host))?;
        self.stage("key_set", started);
        let started = Instant::now();
        let verified = verify_signature(&jws.alg, &keys, &jws.signing_input, &jws.signature).await;
        self.stage("signature", started);
        verified.map_err(|e| Rejection::from_signature(&e))?;
        if profile.directory_revocation.is_on() {
            let started = Instant::now();
            let subject = directory::Subject {
                statement: ssa.as_ref().map(|v| &v.statement),
                kid: &jws.kid,
                keys: &keys,
                certificate_sha256: identity.sha256,
            };
            let checked = directory::check(
                &profile.directory_revocation,
                &subject,
                &cfg.key_hosts,
                &generation.services.key_sets,
                &self.state.metrics,
            )
            .await;
            self.stage("directory_revocation", started);
            checked?;
        }
        let mut recorded = None;
        if let Some(key) = &evaluation.replay {
            let leeway = profile.request.clock_leeway_seconds;
            let ttl = key.expires_at.saturating_add(leeway).saturating_sub(now);
            if self
                .check_replay(generation, &key.id, Duration::from_secs(ttl.max(1) as u64))
                .await?
            {
                recorded = Some(key.id.clone());
            }
        }
        Ok((pass.would_reject, recorded))
    }

    async fn verify_ssa(
        &self,
        generation: &Generation,
        compact: &str,
    ) -> Result<Verified, Rejection> {
        let allow_unsigned = generation.config.profile.software_statement.allow_unsigned;
        let result = generation
            .services
            .ssa
            .verify(compact, allow_unsigned)
            .await;
        let label = match &result {
            Ok(v) if v.unsigned => "unsigned",
            Ok(_) => "verified",
            Err(e) => e.reason().id(),
        };
        self.state
            .metrics
            .software_statements
            .with_label_values(&[label])
            .inc();
        result.map_err(|e| Rejection::from_ssa(&e))
    }

    async fn check_replay(
        &self,
        generation: &Generation,
        id: &str,
        ttl: Duration,
    ) -> Result<bool, Rejection> {
        let Some(store) = &generation.services.replay else {
            // Config validation builds a store whenever the profile requires jti.
            return Err(Rejection::replay_unavailable());
        };
        let result = store.check_and_record(id, ttl).await;
        let label = match &result {
            Ok(Seen::First) => "first",
            Ok(Seen::Replayed) => "replayed",
            Err(_) => "error",
        };
        self.state
            .metrics
            .replay_checks
            .with_label_values(&[store.kind(), label])
            .inc();
        match result {
            Ok(Seen::First) => Ok(true),
            Ok(Seen::Replayed) => Err(Rejection::replayed()),
            Err(e) => {
                tracing::warn!(store = store.kind(), error = %e, "replay store unavailable");
                match generation.config.replay.on_store_error {
                    OnStoreError::Reject => Err(Rejection::replay_unavailable()),
                    OnStoreError::Accept => Ok(false),
                }
            }
        }
    }
}

/// A request the gateway decided to forward: the identity it asserts upstream, the verified
/// body it replays byte for byte, and the rules in shadow it breaks.
#[derive(Debug)]
pub struct Admitted {
    /// The client certificate identity of the connection.
    pub identity: Arc<ClientIdentity>,
    /// The verified body (`PUT` / `POST`), `None` for `GET` / `DELETE`.
    pub body: Option<Bytes>,
    /// Policy rules in shadow the request breaks (recorded as `would_reject`).
    pub would_reject: Vec<Rule>,
    /// When the request was sent upstream.
    pub forwarded_at: Option<Instant>,
    /// The `jti` this request recorded in the replay store (released when the registry never
    /// received the request).
    pub jti: Option<String>,
}

impl Admitted {
    fn new(identity: Arc<ClientIdentity>, body: Option<Bytes>, would_reject: Vec<Rule>) -> Self {
        Self {
            identity,
            body,
            would_reject,
            forwarded_at: None,
            jti: None,
        }
    }
}
