//! Prometheus metrics, registered from the [`catalogue`]. Every label value comes from a closed
//! set (routes, outcomes, rule and reason ids, result kinds): never a ClientId, a DN or a URL,
//! so cardinality stays bounded.

pub mod catalogue;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use catalogue::{self as c, Family, Kind};

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
    pub audit_dropped: IntCounter,
    /// `dcrgate_stage_duration_seconds{stage}`.
    pub stages: HistogramVec,
    /// `dcrgate_key_set_age_seconds`.
    pub key_set_age: Histogram,
    /// `dcrgate_shadow_would_reject_total{reason}`.
    pub would_reject: IntCounterVec,
    /// `dcrgate_served_certificate_expiry_timestamp_seconds`.
    pub served_cert_expiry: IntGauge,
    /// `dcrgate_rate_limited_total{scope}`.
    pub rate_limited: IntCounterVec,
    /// `dcrgate_upstream_resolutions_total{result}`.
    pub upstream_resolutions: IntCounterVec,
    /// `dcrgate_replay_evictions_total`.
    pub replay_evictions: IntCounter,
    /// `dcrgate_rate_limit_store_errors_total{kind}`.
    pub rate_limit_store_errors: IntCounterVec,
    /// `dcrgate_config_reloads_total{result}`.
    pub reloads: IntCounterVec,
    /// `dcrgate_config_last_reload_success_timestamp_seconds`.
    pub last_reload: IntGauge,
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

/// Metric registration failed (a programming error: names clash or are invalid).
#[derive(Debug, thiserror::Error)]
#[error("metrics registration: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

fn opts(f: &Family) -> Opts {
    Opts::new(f.name, f.help)
}

fn counters(registry: &Registry, f: &Family) -> Result<IntCounterVec, MetricsError> {
    debug_assert_eq!(f.kind, Kind::Counter, "{}", f.name);
    let c = IntCounterVec::new(opts(f), &f.label_names())?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn counter(registry: &Registry, f: &Family) -> Result<IntCounter, MetricsError> {
    debug_assert!(f.kind == Kind::Counter && f.labels.is_empty(), "{}", f.name);
    let c = IntCounter::with_opts(opts(f))?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauges(registry: &Registry, f: &Family) -> Result<IntGaugeVec, MetricsError> {
    debug_assert_eq!(f.kind, Kind::Gauge, "{}", f.name);
    let g = IntGaugeVec::new(opts(f), &f.label_names())?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn gauge(registry: &Registry, f: &Family) -> Result<IntGauge, MetricsError> {
    debug_assert!(f.kind == Kind::Gauge && f.labels.is_empty(), "{}", f.name);
    let g = IntGauge::with_opts(opts(f))?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

fn histograms(
    registry: &Registry,
    f: &Family,
    buckets: Vec<f64>,
) -> Result<HistogramVec, MetricsError> {
    debug_assert_eq!(f.kind, Kind::Histogram, "{}", f.name);
    let h = HistogramVec::new(
        HistogramOpts::new(f.name, f.help).buckets(buckets),
        &f.label_names(),
    )?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}

fn histogram(
    registry: &Registry,
    f: &Family,
    buckets: Vec<f64>,
) -> Result<Histogram, MetricsError> {
    debug_assert!(
        f.kind == Kind::Histogram && f.labels.is_empty(),
        "{}",
        f.name
    );
    let h = Histogram::with_opts(HistogramOpts::new(f.name, f.help).buckets(buckets))?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}

impl Metrics {
    /// Create and register every series of the [`catalogue`].
    pub fn new() -> Result<Self, MetricsError> {
        let r = Registry::new();
        let build = gauges(&r, &c::BUILD_INFO)?;
        build
            .with_label_values(&[
                crate::version::VERSION,
                crate::version::COMMIT,
                crate::version::BUILD_DATE,
            ])
            .set(1);
        let m = Self {
            requests: counters(&r, &c::REQUESTS)?,
            rejections: counters(&r, &c::REJECTIONS)?,
            duration: histograms(
                &r,
                &c::DURATION,
                vec![
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ],
            )?,
            upstream_responses: counters(&r, &c::UPSTREAM_RESPONSES)?,
            key_set_fetches: counters(&r, &c::KEY_SET_FETCHES_TOTAL)?,
            key_set_cache: counters(&r, &c::KEY_SET_CACHE)?,
            handshakes: counters(&r, &c::HANDSHAKES_TOTAL)?,
            client_timeouts: counters(&r, &c::CLIENT_TIMEOUTS)?,
            rotations: counters(&r, &c::ROTATIONS)?,
            bearer_checks: counters(&r, &c::BEARER_CHECKS_TOTAL)?,
            replay_checks: counters(&r, &c::REPLAY_CHECKS)?,
            software_statements: counters(&r, &c::SOFTWARE_STATEMENTS_TOTAL)?,
            audit_dropped: counter(&r, &c::AUDIT_DROPPED)?,
            stages: histograms(
                &r,
                &c::STAGES_DURATION,
                vec![
                    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            )?,
            key_set_age: histogram(
                &r,
                &c::KEY_SET_AGE,
                vec![
                    1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
                ],
            )?,
            would_reject: counters(&r, &c::WOULD_REJECT)?,
            served_cert_expiry: gauge(&r, &c::SERVED_CERT_EXPIRY)?,
            rate_limited: counters(&r, &c::RATE_LIMITED)?,
            upstream_resolutions: counters(&r, &c::UPSTREAM_RESOLUTIONS)?,
            replay_evictions: counter(&r, &c::REPLAY_EVICTIONS)?,
            rate_limit_store_errors: counters(&r, &c::RATE_LIMIT_STORE_ERRORS)?,
            reloads: counters(&r, &c::RELOADS)?,
            last_reload: gauge(&r, &c::LAST_RELOAD)?,
            revocation_checks: counters(&r, &c::REVOCATION_CHECKS)?,
            directory_revocation_checks: counters(&r, &c::DIRECTORY_REVOCATION_CHECKS)?,
            crl_fetches: counters(&r, &c::CRL_FETCHES)?,
            ocsp_exchanges: counters(&r, &c::OCSP_EXCHANGES_TOTAL)?,
            dependency_up: gauges(&r, &c::DEPENDENCY_UP)?,
            crl_this_update: gauges(&r, &c::CRL_THIS_UPDATE)?,
            crl_next_update: gauges(&r, &c::CRL_NEXT_UPDATE)?,
            registry: r,
        };
        // Series alerts and dashboards read from the start: every value of their one label,
        // at 0.
        for (vec, family) in [
            (&m.reloads, &c::RELOADS),
            (&m.rate_limited, &c::RATE_LIMITED),
            (&m.upstream_resolutions, &c::UPSTREAM_RESOLUTIONS),
            (&m.rate_limit_store_errors, &c::RATE_LIMIT_STORE_ERRORS),
            (&m.rotations, &c::ROTATIONS),
            (&m.key_set_cache, &c::KEY_SET_CACHE),
            (&m.client_timeouts, &c::CLIENT_TIMEOUTS),
        ] {
            for value in family.labels[0].values.list().unwrap_or_default() {
                vec.with_label_values(&[value]).inc_by(0);
            }
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
