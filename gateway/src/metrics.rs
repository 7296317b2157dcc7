//! Prometheus metrics. Every label value comes from a closed set (routes, outcomes, rule and
//! reason ids, result kinds): never a ClientId, a DN or a URL, so cardinality stays bounded.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The gateway's metrics, registered in their own registry.
pub struct Metrics {
    registry: Registry,
    /// `dcrgate_requests_total{route,outcome}`.
    pub requests: IntCounterVec,
    /// `dcrgate_rejections_total{reason}`.
    pub rejections: IntCounterVec,
    /// `dcrgate_request_duration_seconds{route,outcome}`.
    pub duration: HistogramVec,
    /// `dcrgate_upstream_responses_total{class}`.
    pub upstream_responses: IntCounterVec,
    /// `dcrgate_key_set_fetches_total{result}`.
    pub key_set_fetches: IntCounterVec,
    /// `dcrgate_key_set_cache_lookups_total{result}`.
    pub key_set_cache: IntCounterVec,
    /// `dcrgate_tls_handshakes_total{result}` (completed handshakes and their identity).
    pub handshakes: IntCounterVec,
    /// `dcrgate_client_timeouts_total{stage}`.
    pub client_timeouts: IntCounterVec,
    /// `dcrgate_certificate_rotations_total{decision}`.
    pub rotations: IntCounterVec,
    /// `dcrgate_bearer_checks_total{mode,result}`.
    pub bearer_checks: IntCounterVec,
    /// `dcrgate_replay_checks_total{store,result}`.
    pub replay_checks: IntCounterVec,
    /// `dcrgate_software_statements_total{result}`.
    pub software_statements: IntCounterVec,
    /// `dcrgate_audit_records_dropped_total`.
    pub audit_dropped: prometheus::IntCounter,
    /// `dcrgate_stage_duration_seconds{stage}`.
    pub stages: HistogramVec,
    /// `dcrgate_key_set_age_seconds`.
    pub key_set_age: prometheus::Histogram,
    /// `dcrgate_shadow_would_reject_total{reason}`.
    pub would_reject: IntCounterVec,
    /// `dcrgate_served_certificate_expiry_timestamp_seconds`.
    pub served_cert_expiry: prometheus::IntGauge,
    /// `dcrgate_rate_limited_total{scope}`.
    pub rate_limited: IntCounterVec,
    /// `dcrgate_upstream_resolutions_total{result}`.
    pub upstream_resolutions: IntCounterVec,
    /// `dcrgate_replay_evictions_total`.
    pub replay_evictions: prometheus::IntCounter,
    /// `dcrgate_rate_limit_store_errors_total{kind}`.
    pub rate_limit_store_errors: IntCounterVec,
    /// `dcrgate_config_reloads_total{result}`.
    pub reloads: IntCounterVec,
    /// `dcrgate_config_last_reload_success_timestamp_seconds`.
    pub last_reload: prometheus::IntGauge,
    /// `dcrgate_revocation_checks_total{result}`.
    pub revocation_checks: IntCounterVec,
    /// `dcrgate_directory_revocation_checks_total{check,result}`.
    pub directory_revocation_checks: IntCounterVec,
    /// `dcrgate_crl_fetches_total{issuer,result}`.
    pub crl_fetches: IntCounterVec,
    /// `dcrgate_ocsp_exchanges_total{issuer,result}`.
    pub ocsp_exchanges: IntCounterVec,
    /// `dcrgate_dependency_up{dependency}`.
    pub dependency_up: IntGaugeVec,
    /// `dcrgate_crl_this_update_timestamp_seconds{issuer}`.
    pub crl_this_update: IntGaugeVec,
    /// `dcrgate_crl_next_update_timestamp_seconds{issuer}`.
    pub crl_next_update: IntGaugeVec,
}

fn gauges(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntGaugeVec, MetricsError> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

/// Metric registration failed (a programming error: names clash or are invalid).
#[derive(Debug, thiserror::Error)]
#[error("metrics registration: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

fn counter(
    registry: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> Result<IntCounterVec, MetricsError> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

impl Metrics {
    /// Create and register every series.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "dcrgate_request_duration_seconds",
                "Time from request head to response, seconds.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ]),
            &["route", "outcome"],
        )?;
        registry.register(Box::new(duration.clone()))?;
        let build = IntGaugeVec::new(
            Opts::new(
                "dcrgate_build_info",
                "Build information; the value is always 1.",
            ),
            &["version"],
        )?;
        registry.register(Box::new(build.clone()))?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let m = Self {
            requests: counter(
                &registry,
                "dcrgate_requests_total",
                "Requests by route and outcome (accepted, would_reject, rejected, upstream_error, aborted).",
                &["route", "outcome"],
            )?,
            rejections: counter(
                &registry,
                "dcrgate_rejections_total",
                "Rejected requests by route and reason (a rule or check id).",
                &["route", "reason"],
            )?,
            upstream_responses: counter(
                &registry,
                "dcrgate_upstream_responses_total",
                "Upstream registry responses by status class.",
                &["class"],
            )?,
            key_set_fetches: counter(
                &registry,
                "dcrgate_key_set_fetches_total",
                "TPP key set fetches by result.",
                &["result"],
            )?,
            key_set_cache: counter(
                &registry,
                "dcrgate_key_set_cache_lookups_total",
                "Key set cache lookups by result (hit, miss).",
                &["result"],
            )?,
            handshakes: counter(
                &registry,
                "dcrgate_tls_handshakes_total",
                "Client TLS handshakes by result: completed (ok, bad_identity, untrusted_after_reload) or the client certificate refused (unknown_ca, expired, revoked, ...).",
                &["result"],
            )?,
            client_timeouts: counter(
                &registry,
                "dcrgate_client_timeouts_total",
                "Clients cut off for being too slow, by stage (head, body).",
                &["stage"],
            )?,
            rotations: counter(
                &registry,
                "dcrgate_certificate_rotations_total",
                "Requests whose tls_client_auth_dn names another certificate, by decision (accepted, denied).",
                &["decision"],
            )?,
            bearer_checks: counter(
                &registry,
                "dcrgate_bearer_checks_total",
                "Bearer token checks by mode (jwt, introspection) and result (ok or a failure id).",
                &["mode", "result"],
            )?,
            replay_checks: counter(
                &registry,
                "dcrgate_replay_checks_total",
                "jti replay checks by store (memory, redis) and result (first, replayed, error).",
                &["store", "result"],
            )?,
            software_statements: counter(
                &registry,
                "dcrgate_software_statements_total",
                "Software statements by result (verified, unsigned, or a failure id).",
                &["result"],
            )?,
            audit_dropped: {
                let c = prometheus::IntCounter::new(
                    "dcrgate_audit_records_dropped_total",
                    "Audit records dropped because the audit writer fell behind.",
                )?;
                registry.register(Box::new(c.clone()))?;
                c
            },
            stages: {
                let h = HistogramVec::new(
                    HistogramOpts::new(
                        "dcrgate_stage_duration_seconds",
                        "Time spent per stage (handshake_to_request, bearer, software_statement, policy, key_set, signature, directory_revocation, upstream), seconds.",
                    )
                    .buckets(vec![
                        0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    ]),
                    &["stage"],
                )?;
                registry.register(Box::new(h.clone()))?;
                h
            },
            key_set_age: {
                let h = prometheus::Histogram::with_opts(
                    HistogramOpts::new(
                        "dcrgate_key_set_age_seconds",
                        "Age of the TPP key set used to verify a request, seconds since it was fetched.",
                    )
                    .buckets(vec![1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0]),
                )?;
                registry.register(Box::new(h.clone()))?;
                h
            },
            would_reject: counter(
                &registry,
                "dcrgate_shadow_would_reject_total",
                "Requests forwarded in shadow mode that the policy would have rejected, by rule id.",
                &["reason"],
            )?,
            served_cert_expiry: {
                let g = prometheus::IntGauge::new(
                    "dcrgate_served_certificate_expiry_timestamp_seconds",
                    "notAfter of the certificate served to TPPs, seconds since the epoch.",
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            rate_limited: counter(
                &registry,
                "dcrgate_rate_limited_total",
                "Requests refused with 429 by scope (client: one certificate's limit, global).",
                &["scope"],
            )?,
            upstream_resolutions: counter(
                &registry,
                "dcrgate_upstream_resolutions_total",
                "Background lookups of the registry's name by result (same, changed: requests now go to the new address, failed: the last address is kept).",
                &["result"],
            )?,
            replay_evictions: {
                let c = prometheus::IntCounter::new(
                    "dcrgate_replay_evictions_total",
                    "jtis the memory replay store dropped before their request objects expired, because it was full (replay.memory_capacity): each could be replayed.",
                )?;
                registry.register(Box::new(c.clone()))?;
                c
            },
            rate_limit_store_errors: counter(
                &registry,
                "dcrgate_rate_limit_store_errors_total",
                "Shared rate limit checks the Redis store could not answer, by kind (timeout, connect, io, protocol, auth, server_error); the request was then refused with 503 or admitted, as rate_limits.on_store_error says.",
                &["kind"],
            )?,
            reloads: counter(
                &registry,
                "dcrgate_config_reloads_total",
                "Configuration, policy and TLS file reloads by result (ok, invalid).",
                &["result"],
            )?,
            last_reload: {
                let g = prometheus::IntGauge::new(
                    "dcrgate_config_last_reload_success_timestamp_seconds",
                    "When the running configuration was loaded, seconds since the epoch.",
                )?;
                registry.register(Box::new(g.clone()))?;
                g
            },
            revocation_checks: counter(
                &registry,
                "dcrgate_revocation_checks_total",
                "Client certificate revocation checks at the handshake by result (good, revoked, unknown: no CRL for the issuer, unavailable: the CRL is past its nextUpdate).",
                &["result"],
            )?,
            directory_revocation_checks: counter(
                &registry,
                "dcrgate_directory_revocation_checks_total",
                "Checks against the key sets the software statement names, by check (signing_key, transport_certificate) and result (good, revoked, not_listed, unavailable).",
                &["check", "result"],
            )?,
            crl_fetches: counter(
                &registry,
                "dcrgate_crl_fetches_total",
                "Fetches of CRLs from their distribution points by issuer name and result (ok: a new CRL written, unchanged, failed: not fetched, refused: fetched but not accepted).",
                &["issuer", "result"],
            )?,
            ocsp_exchanges: counter(
                &registry,
                "dcrgate_ocsp_exchanges_total",
                "Exchanges with OCSP responders by issuer policy name and result (good, revoked, unknown: answers verified; failed: no answer; invalid: an answer that did not verify or was stale; refused: a responder host not allowed).",
                &["issuer", "result"],
            )?,
            dependency_up: gauges(
                &registry,
                "dcrgate_dependency_up",
                "Whether a shared dependency answered its last probe (1) or not (0), probed every 10 s: registry, directory_key_set, authorization_server_key_set, replay_store (each only when configured).",
                &["dependency"],
            )?,
            crl_this_update: gauges(
                &registry,
                "dcrgate_crl_this_update_timestamp_seconds",
                "thisUpdate of each configured CRL by issuer name, seconds since the epoch.",
                &["issuer"],
            )?,
            crl_next_update: gauges(
                &registry,
                "dcrgate_crl_next_update_timestamp_seconds",
                "nextUpdate of each configured CRL by issuer name, seconds since the epoch.",
                &["issuer"],
            )?,
            duration,
            registry,
        };
        for r in ["ok", "invalid"] {
            m.reloads.with_label_values(&[r]).inc_by(0);
        }
        for scope in ["client", "global"] {
            m.rate_limited.with_label_values(&[scope]).inc_by(0);
        }
        for r in ["same", "changed", "failed"] {
            m.upstream_resolutions.with_label_values(&[r]).inc_by(0);
        }
        for kind in crate::shared_redis::StoreError::KINDS {
            m.rate_limit_store_errors
                .with_label_values(&[kind])
                .inc_by(0);
        }
        for d in ["accepted", "denied"] {
            m.rotations.with_label_values(&[d]).inc_by(0);
        }
        for r in ["hit", "miss"] {
            m.key_set_cache.with_label_values(&[r]).inc_by(0);
        }
        for s in ["head", "body"] {
            m.client_timeouts.with_label_values(&[s]).inc_by(0);
        }
        Ok(m)
    }

    /// The Prometheus text exposition of every series.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}
