//! dcrgate's integration tests, one binary: a real `dcrgate run` process in front of the
//! sandbox's stand-in registry and key host, real TLS on 127.0.0.1, certificates, keys and JWTs
//! generated per test. Each module is one area of behaviour; `common` is the shared harness.

mod common;

mod admin_metrics;
mod adversarial;
mod audit_records;
mod bearer_tokens;
mod cli;
mod correlation;
mod demo;
mod directory_revocation;
mod explain;
mod front_proxy;
mod jws_and_policy;
mod jws_props;
mod key_sets;
mod lifecycle_routes;
mod metrics_coverage;
mod observability;
mod ocsp;
mod policy_cases;
mod probe;
mod rate_limits;
mod redis_deployments;
mod reload_and_shutdown;
mod replay_redis;
mod revocation;
mod routes_and_envelope;
mod shadow_mode;
mod software_statements;
mod upstream_and_clients;
