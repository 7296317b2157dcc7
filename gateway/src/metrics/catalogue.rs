//! The metric catalogue: every series the gateway exports, with its type, help text and labels,
//! and for each label the closed set of values it can take. Registration reads its names, help
//! and label names from here, `dcrgate metrics` prints it (the deployment checks validate the
//! dashboard and the alert rules against that output), and tests hold the operations guide's
//! table and the series the gateway actually emits to it.

use serde_json::{json, Map, Value};

use crate::reason::Reason;

/// A series' Prometheus type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A monotonic counter.
    Counter,
    /// A gauge.
    Gauge,
    /// A histogram (`_bucket`, `_sum`, `_count`).
    Histogram,
}

impl Kind {
    /// The Prometheus `# TYPE` word.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// The values a label can take.
#[derive(Debug, Clone, Copy)]
pub enum Values {
    /// Exactly these.
    Closed(&'static [&'static str]),
    /// A reason id: a policy rule id or one of the gateway's check ids ([`Reason::all`]).
    Reasons,
    /// The id of a policy rule a profile may put in shadow ([`Rule::shadowable`]).
    ///
    /// [`Rule::shadowable`]: dcrgate_policies::verdict::Rule::shadowable
    ShadowableRules,
    /// Names the operator configures (issuer names) or the build sets (version): bounded by
    /// the configuration, not listed here.
    Configured(&'static str),
}

impl Values {
    /// The values, when the code knows them.
    pub fn list(self) -> Option<Vec<&'static str>> {
        match self {
            Values::Closed(v) => Some(v.to_vec()),
            Values::Reasons => Some(Reason::all().map(Reason::id).collect()),
            Values::ShadowableRules => Some(
                dcrgate_policies::verdict::Rule::ALL
                    .iter()
                    .filter(|r| r.shadowable())
                    .map(|r| r.id())
                    .collect(),
            ),
            Values::Configured(_) => None,
        }
    }
}

/// One label of a series.
#[derive(Debug, Clone, Copy)]
pub struct Label {
    /// The label name.
    pub name: &'static str,
    /// Its values.
    pub values: Values,
}

/// One metric family.
#[derive(Debug, Clone, Copy)]
pub struct Family {
    /// The series name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Its labels, in registration order.
    pub labels: &'static [Label],
}

impl Family {
    /// The label names, in registration order.
    pub fn label_names(&self) -> Vec<&'static str> {
        self.labels.iter().map(|l| l.name).collect()
    }
}

const fn closed(name: &'static str, values: &'static [&'static str]) -> Label {
    Label {
        name,
        values: Values::Closed(values),
    }
}

const fn family(
    name: &'static str,
    kind: Kind,
    help: &'static str,
    labels: &'static [Label],
) -> Family {
    Family {
        name,
        kind,
        help,
        labels,
    }
}

/// The `route` label: the served routes and `other`.
pub const ROUTES: &[&str] = &[
    "register_update",
    "register_create",
    "register_read",
    "register_delete",
    "other",
];
/// The `outcome` label of the request series.
pub const OUTCOMES: &[&str] = &[
    "accepted",
    "would_reject",
    "rejected",
    "upstream_error",
    "aborted",
];
/// The `stage` label of the stage histogram.
pub const STAGES: &[&str] = &[
    "handshake_to_request",
    "bearer",
    "software_statement",
    "policy",
    "key_set",
    "signature",
    "directory_revocation",
    "upstream",
];
/// The `result` label of key set fetches: `ok` or a fetch failure kind.
pub const KEY_SET_FETCHES: &[&str] = &[
    "ok",
    "timeout",
    "dns",
    "forbidden_address",
    "connect",
    "tls",
    "http",
    "redirect",
    "status",
    "content_type",
    "too_large",
    "parse",
];
/// The `result` label of client handshakes.
pub const HANDSHAKES: &[&str] = &[
    "ok",
    "no_certificate",
    "bad_identity",
    "untrusted_after_reload",
    "unknown_ca",
    "expired",
    "not_yet_valid",
    "revoked",
    "revocation_unknown",
    "revocation_unavailable",
    "bad_certificate",
    "bad_usage",
    "protocol",
];
/// The `result` values of a client certificate refused at the handshake: the tail of
/// [`HANDSHAKES`] (what `tls::reload::refusal` gives).
pub const HANDSHAKE_REFUSALS: &[&str] = HANDSHAKES.split_at(4).1;
/// The `result` label of bearer checks: `ok` or a token failure id.
pub const BEARER_CHECKS: &[&str] = &[
    "ok",
    "token_malformed",
    "token_signature",
    "token_issuer",
    "token_audience",
    "token_expired",
    "token_not_yet_valid",
    "token_inactive",
    "token_client",
    "token_cnf_mismatch",
    "token_cnf_missing",
    "token_keys_unavailable",
    "token_introspection_unavailable",
];
/// The `result` label of software statement checks.
pub const SOFTWARE_STATEMENTS: &[&str] = &[
    "verified",
    "unsigned",
    "ssa_malformed",
    "ssa_unsigned",
    "ssa_untrusted_issuer",
    "ssa_alg",
    "ssa_unknown_kid",
    "ssa_keys_unavailable",
    "ssa_signature_invalid",
];
/// The `dependency` label.
pub const DEPENDENCIES: &[&str] = &[
    "registry",
    "directory_key_set",
    "authorization_server_key_set",
    "replay_store",
    "rate_limit_store",
];
/// The `result` label of OCSP exchanges.
pub const OCSP_EXCHANGES: &[&str] = &["good", "revoked", "unknown", "failed", "invalid", "refused"];

const ISSUER: Label = Label {
    name: "issuer",
    values: Values::Configured("the configured revocation.crl and revocation.issuer names"),
};

/// `dcrgate_requests_total`.
pub const REQUESTS: Family = family(
    "dcrgate_requests_total",
    Kind::Counter,
    "Requests by route and outcome (accepted, would_reject, rejected, upstream_error, aborted).",
    &[closed("route", ROUTES), closed("outcome", OUTCOMES)],
);
/// `dcrgate_rejections_total`.
pub const REJECTIONS: Family = family(
    "dcrgate_rejections_total",
    Kind::Counter,
    "Rejected requests by route and reason (a rule or check id).",
    &[
        closed("route", ROUTES),
        Label {
            name: "reason",
            values: Values::Reasons,
        },
    ],
);
/// `dcrgate_request_duration_seconds`.
pub const DURATION: Family = family(
    "dcrgate_request_duration_seconds",
    Kind::Histogram,
    "Time from request head to response, seconds.",
    &[closed("route", ROUTES), closed("outcome", OUTCOMES)],
);
/// `dcrgate_upstream_responses_total`.
pub const UPSTREAM_RESPONSES: Family = family(
    "dcrgate_upstream_responses_total",
    Kind::Counter,
    "Upstream registry responses by status class.",
    &[closed("class", &["1xx", "2xx", "3xx", "4xx", "5xx"])],
);
/// `dcrgate_key_set_fetches_total`.
pub const KEY_SET_FETCHES_TOTAL: Family = family(
    "dcrgate_key_set_fetches_total",
    Kind::Counter,
    "TPP key set fetches by result.",
    &[closed("result", KEY_SET_FETCHES)],
);
/// `dcrgate_key_set_cache_lookups_total`.
pub const KEY_SET_CACHE: Family = family(
    "dcrgate_key_set_cache_lookups_total",
    Kind::Counter,
    "Key set cache lookups by result (hit, miss).",
    &[closed("result", &["hit", "miss"])],
);
/// `dcrgate_key_set_age_seconds`.
pub const KEY_SET_AGE: Family = family(
    "dcrgate_key_set_age_seconds",
    Kind::Histogram,
    "Age of the TPP key set used to verify a request, seconds since it was fetched.",
    &[],
);
/// `dcrgate_tls_handshakes_total`.
pub const HANDSHAKES_TOTAL: Family = family(
    "dcrgate_tls_handshakes_total",
    Kind::Counter,
    "Client TLS handshakes by result: completed (ok, no_certificate, bad_identity, untrusted_after_reload) or the client certificate refused (unknown_ca, expired, revoked, ...).",
    &[closed("result", HANDSHAKES)],
);
/// `dcrgate_client_timeouts_total`.
pub const CLIENT_TIMEOUTS: Family = family(
    "dcrgate_client_timeouts_total",
    Kind::Counter,
    "Clients cut off for being too slow, by stage (head, body).",
    &[closed("stage", &["head", "body"])],
);
/// `dcrgate_certificate_rotations_total`.
pub const ROTATIONS: Family = family(
    "dcrgate_certificate_rotations_total",
    Kind::Counter,
    "Requests whose tls_client_auth_dn names another certificate, by decision (accepted, denied).",
    &[closed("decision", &["accepted", "denied"])],
);
/// `dcrgate_bearer_checks_total`.
pub const BEARER_CHECKS_TOTAL: Family = family(
    "dcrgate_bearer_checks_total",
    Kind::Counter,
    "Bearer token checks by mode (jwt, introspection) and result (ok or a failure id).",
    &[
        closed("mode", &["jwt", "introspection"]),
        closed("result", BEARER_CHECKS),
    ],
);
/// `dcrgate_replay_checks_total`.
pub const REPLAY_CHECKS: Family = family(
    "dcrgate_replay_checks_total",
    Kind::Counter,
    "jti replay checks by store (memory, redis) and result (first, replayed, error, released).",
    &[
        closed("store", &["memory", "redis"]),
        closed("result", &["first", "replayed", "error", "released"]),
    ],
);
/// `dcrgate_software_statements_total`.
pub const SOFTWARE_STATEMENTS_TOTAL: Family = family(
    "dcrgate_software_statements_total",
    Kind::Counter,
    "Software statements by result (verified, unsigned, or a failure id).",
    &[closed("result", SOFTWARE_STATEMENTS)],
);
/// `dcrgate_audit_records_dropped_total`.
pub const AUDIT_DROPPED: Family = family(
    "dcrgate_audit_records_dropped_total",
    Kind::Counter,
    "Audit records dropped because the audit writer fell behind or the disk refused them.",
    &[],
);
/// `dcrgate_stage_duration_seconds`.
pub const STAGES_DURATION: Family = family(
    "dcrgate_stage_duration_seconds",
    Kind::Histogram,
    "Time spent per stage (handshake_to_request, bearer, software_statement, policy, key_set, signature, directory_revocation, upstream), seconds.",
    &[closed("stage", STAGES)],
);
/// `dcrgate_shadow_would_reject_total`.
pub const WOULD_REJECT: Family = family(
    "dcrgate_shadow_would_reject_total",
    Kind::Counter,
    "Requests forwarded in shadow mode that the policy would have rejected, by rule id.",
    &[Label {
        name: "reason",
        values: Values::ShadowableRules,
    }],
);
/// `dcrgate_served_certificate_expiry_timestamp_seconds`.
pub const SERVED_CERT_EXPIRY: Family = family(
    "dcrgate_served_certificate_expiry_timestamp_seconds",
    Kind::Gauge,
    "notAfter of the certificate served to TPPs, seconds since the epoch.",
    &[],
);
/// `dcrgate_rate_limited_total`.
pub const RATE_LIMITED: Family = family(
    "dcrgate_rate_limited_total",
    Kind::Counter,
    "Requests refused with 429 by scope (client: one certificate's limit, global).",
    &[closed("scope", &["client", "global"])],
);
/// `dcrgate_upstream_resolutions_total`.
pub const UPSTREAM_RESOLUTIONS: Family = family(
    "dcrgate_upstream_resolutions_total",
    Kind::Counter,
    "Background lookups of the registry's name by result (same, changed: requests now go to the new address, failed: the last address is kept).",
    &[closed("result", &["same", "changed", "failed"])],
);
/// `dcrgate_replay_evictions_total`.
pub const REPLAY_EVICTIONS: Family = family(
    "dcrgate_replay_evictions_total",
    Kind::Counter,
    "jtis the memory replay store dropped before their request objects expired, because it was full (replay.memory_capacity): each could be replayed.",
    &[],
);
/// `dcrgate_rate_limit_store_errors_total`.
pub const RATE_LIMIT_STORE_ERRORS: Family = family(
    "dcrgate_rate_limit_store_errors_total",
    Kind::Counter,
    "Shared rate limit checks the Redis store could not answer, by kind (timeout, connect, io, protocol, auth, server_error); the request was then refused with 503 or admitted, as rate_limits.on_store_error says.",
    &[closed("kind", &crate::shared_redis::StoreError::KINDS)],
);
/// `dcrgate_config_reloads_total`.
pub const RELOADS: Family = family(
    "dcrgate_config_reloads_total",
    Kind::Counter,
    "Configuration, policy and TLS file reloads by result (ok, invalid).",
    &[closed("result", &["ok", "invalid"])],
);
/// `dcrgate_config_last_reload_success_timestamp_seconds`.
pub const LAST_RELOAD: Family = family(
    "dcrgate_config_last_reload_success_timestamp_seconds",
    Kind::Gauge,
    "When the running configuration was loaded, seconds since the epoch.",
    &[],
);
/// `dcrgate_build_info`.
pub const BUILD_INFO: Family = family(
    "dcrgate_build_info",
    Kind::Gauge,
    "Build information: version, commit and build date (as dcrgate version prints them); the value is always 1.",
    &[
        Label {
            name: "version",
            values: Values::Configured("the crate version of the build"),
        },
        Label {
            name: "commit",
            values: Values::Configured("the commit the build was made from"),
        },
        Label {
            name: "build_date",
            values: Values::Configured("the build's date"),
        },
    ],
);
/// `dcrgate_revocation_checks_total`.
pub const REVOCATION_CHECKS: Family = family(
    "dcrgate_revocation_checks_total",
    Kind::Counter,
    "Client certificate revocation checks by result (good, revoked, unknown: no CRL for the issuer and no OCSP answer, unavailable: the CRL is past its nextUpdate or the responder gave no usable answer).",
    &[closed("result", &["good", "revoked", "unknown", "unavailable"])],
);
/// `dcrgate_directory_revocation_checks_total`.
pub const DIRECTORY_REVOCATION_CHECKS: Family = family(
    "dcrgate_directory_revocation_checks_total",
    Kind::Counter,
    "Checks against the key sets the software statement names, by check (signing_key, transport_certificate) and result (good, revoked, not_listed, unavailable).",
    &[
        closed("check", &["signing_key", "transport_certificate"]),
        closed("result", &["good", "revoked", "not_listed", "unavailable"]),
    ],
);
/// `dcrgate_crl_fetches_total`.
pub const CRL_FETCHES: Family = family(
    "dcrgate_crl_fetches_total",
    Kind::Counter,
    "Fetches of CRLs from their distribution points by issuer name and result (ok: a new CRL written, unchanged, failed: not fetched, refused: fetched but not accepted).",
    &[
        ISSUER,
        closed("result", &["ok", "unchanged", "failed", "refused"]),
    ],
);
/// `dcrgate_ocsp_exchanges_total`.
pub const OCSP_EXCHANGES_TOTAL: Family = family(
    "dcrgate_ocsp_exchanges_total",
    Kind::Counter,
    "Exchanges with OCSP responders by issuer policy name and result (good, revoked, unknown: answers verified; failed: no answer; invalid: an answer that did not verify or was stale; refused: a responder host not allowed).",
    &[ISSUER, closed("result", OCSP_EXCHANGES)],
);
/// `dcrgate_dependency_up`.
pub const DEPENDENCY_UP: Family = family(
    "dcrgate_dependency_up",
    Kind::Gauge,
    "Whether a shared dependency answered its last probe (1) or not (0), probed every server.dependency_probe_seconds: registry, directory_key_set, authorization_server_key_set, replay_store, rate_limit_store (each only when configured).",
    &[closed("dependency", DEPENDENCIES)],
);
/// `dcrgate_crl_this_update_timestamp_seconds`.
pub const CRL_THIS_UPDATE: Family = family(
    "dcrgate_crl_this_update_timestamp_seconds",
    Kind::Gauge,
    "thisUpdate of each configured CRL by issuer name, seconds since the epoch.",
    &[ISSUER],
);
/// `dcrgate_crl_next_update_timestamp_seconds`.
pub const CRL_NEXT_UPDATE: Family = family(
    "dcrgate_crl_next_update_timestamp_seconds",
    Kind::Gauge,
    "nextUpdate of each configured CRL by issuer name, seconds since the epoch.",
    &[ISSUER],
);

/// Every family the gateway registers.
pub const FAMILIES: &[Family] = &[
    REQUESTS,
    REJECTIONS,
    DURATION,
    UPSTREAM_RESPONSES,
    KEY_SET_FETCHES_TOTAL,
    KEY_SET_CACHE,
    KEY_SET_AGE,
    HANDSHAKES_TOTAL,
    CLIENT_TIMEOUTS,
    ROTATIONS,
    BEARER_CHECKS_TOTAL,
    REPLAY_CHECKS,
    SOFTWARE_STATEMENTS_TOTAL,
    AUDIT_DROPPED,
    STAGES_DURATION,
    WOULD_REJECT,
    SERVED_CERT_EXPIRY,
    RATE_LIMITED,
    UPSTREAM_RESOLUTIONS,
    REPLAY_EVICTIONS,
    RATE_LIMIT_STORE_ERRORS,
    RELOADS,
    LAST_RELOAD,
    BUILD_INFO,
    REVOCATION_CHECKS,
    DIRECTORY_REVOCATION_CHECKS,
    CRL_FETCHES,
    OCSP_EXCHANGES_TOTAL,
    DEPENDENCY_UP,
    CRL_THIS_UPDATE,
    CRL_NEXT_UPDATE,
];

/// The family named `name`.
pub fn find(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.name == name)
}

/// The catalogue as JSON: `{name: {"type", "help", "labels": {label: [values] | null}}}`
/// (`null`: values the configuration or the build names).
pub fn to_json() -> Value {
    let mut out = Map::new();
    for f in FAMILIES {
        let mut labels = Map::new();
        for l in f.labels {
            labels.insert(
                l.name.to_owned(),
                l.values.list().map_or(Value::Null, |v| json!(v)),
            );
        }
        out.insert(
            f.name.to_owned(),
            json!({"type": f.kind.as_str(), "help": f.help, "labels": labels}),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests;
