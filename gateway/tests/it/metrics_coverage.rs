//! The metric catalogue against the traffic of the whole test suite: every label value the
//! catalogue lists was emitted by some test, and nothing was emitted outside it. Each gateway a
//! test starts leaves its last `/metrics` in `DCRGATE_METRICS_SEEN_DIR` when that is set;
//! `./dcrgate-test` sets it, runs the suite, then this check.

use std::collections::{BTreeMap, BTreeSet};

use dcrgate::metrics::catalogue::{self, Kind, FAMILIES};

use crate::common::METRICS_SEEN_DIR;

/// Label values the suite's traffic does not produce, each with the reason and where the path
/// behind it is tested instead: `(series, label, value, why)`.
const UNREACHABLE_HERE: &[(&str, &str, &str, &str)] = &[
    (
        "dcrgate_rejections_total",
        "reason",
        "internal",
        "a failure of the gateway itself: no input is meant to produce it",
    ),
    (
        "dcrgate_rejections_total",
        "reason",
        "token_not_configured",
        "a route whose bearer mode has no verifier: refused by configuration validation \
         (config::tests), so a running gateway never meets it",
    ),
    (
        "dcrgate_rejections_total",
        "reason",
        "content_length_invalid",
        "pingora refuses every such head before the gateway's phases (the bare-400 cases of \
         adversarial.rs); the check stays as defence in depth, unit-tested in proxy::framing",
    ),
    (
        "dcrgate_upstream_responses_total",
        "class",
        "1xx",
        "needs a registry that sends an informational answer; the stand-in registry does not",
    ),
    (
        "dcrgate_key_set_fetches_total",
        "result",
        "http",
        "needs a key host that speaks TLS but not HTTP; the stand-in key host always speaks HTTP",
    ),
    (
        "dcrgate_tls_handshakes_total",
        "result",
        "bad_identity",
        "needs a certificate the verifier accepts but whose subject the DN decoder refuses \
         (over 64 RDNs, for one); the test PKI cannot issue one, the decoder's limits are \
         unit-tested in dcrgate-policies (dn::tests)",
    ),
    (
        "dcrgate_tls_handshakes_total",
        "result",
        "protocol",
        "the catch-all for a verifier error that is not about the certificate; the client \
         verifier yields only certificate errors",
    ),
    (
        "dcrgate_upstream_resolutions_total",
        "result",
        "changed",
        "needs a registry name whose DNS answer changes; unit-tested with a scripted resolver \
         (upstream_address::tests)",
    ),
    (
        "dcrgate_upstream_resolutions_total",
        "result",
        "failed",
        "needs a registry name whose DNS lookup starts failing; unit-tested with a scripted \
         resolver (upstream_address::tests)",
    ),
];

/// `(family, label) -> values` seen with a non-zero count (counters, histograms) or at all
/// (gauges), and the series whose family the catalogue does not know.
struct Seen {
    values: BTreeMap<(String, String), BTreeSet<String>>,
    /// Families emitted at all (with a non-zero count, for counters and histograms).
    emitted: BTreeSet<String>,
    unknown: BTreeSet<String>,
    files: usize,
}

fn parse_labels(body: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = body;
    while let Some((name, after)) = rest.split_once("=\"") {
        let Some(end) = after.find('"') else { break };
        out.push((
            name.trim_start_matches(',').to_owned(),
            after[..end].to_owned(),
        ));
        rest = &after[end + 1..];
    }
    out
}

fn seen(dir: &std::path::Path) -> Seen {
    let mut s = Seen {
        values: BTreeMap::new(),
        emitted: BTreeSet::new(),
        unknown: BTreeSet::new(),
        files: 0,
    };
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir:?}: {e}"));
    for entry in entries.flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        s.files += 1;
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let value: f64 = value.parse().unwrap_or(0.0);
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, parse_labels(rest.trim_end_matches('}'))),
                None => (series, Vec::new()),
            };
            let (family, counted) = if let Some(f) = catalogue::find(name) {
                (f, f.kind == Kind::Gauge || value > 0.0)
            } else if let Some(f) = name
                .strip_suffix("_count")
                .and_then(catalogue::find)
                .filter(|f| f.kind == Kind::Histogram)
            {
                (f, value > 0.0)
            } else if ["_bucket", "_sum"].iter().any(|x| {
                name.strip_suffix(x)
                    .and_then(catalogue::find)
                    .is_some_and(|f| f.kind == Kind::Histogram)
            }) {
                continue;
            } else {
                s.unknown.insert(name.to_owned());
                continue;
            };
            if !counted {
                continue;
            }
            s.emitted.insert(family.name.to_owned());
            for (label, v) in labels {
                s.values
                    .entry((family.name.to_owned(), label))
                    .or_default()
                    .insert(v);
            }
        }
    }
    s
}

#[test]
#[ignore = "run by ./dcrgate-test after the suite, with DCRGATE_METRICS_SEEN_DIR set"]
fn every_catalogued_label_value_is_emitted_by_the_suites_traffic() {
    let dir = std::env::var_os(METRICS_SEEN_DIR)
        .unwrap_or_else(|| panic!("{METRICS_SEEN_DIR} is not set: run ./dcrgate-test"));
    let s = seen(std::path::Path::new(&dir));
    assert!(
        s.files >= 50,
        "only {} gateways left their metrics",
        s.files
    );
    assert!(
        s.unknown.is_empty(),
        "series outside the catalogue: {:?}",
        s.unknown
    );
    let mut never = Vec::new();
    let mut outside = Vec::new();
    for f in FAMILIES {
        for l in f.labels {
            let got = s
                .values
                .get(&(f.name.to_owned(), l.name.to_owned()))
                .cloned()
                .unwrap_or_default();
            let Some(listed) = l.values.list() else {
                continue;
            };
            for v in &listed {
                let exempt = UNREACHABLE_HERE
                    .iter()
                    .any(|(n, lb, val, _)| *n == f.name && *lb == l.name && val == v);
                if !got.contains(*v) && !exempt {
                    never.push(format!("{}{{{}=\"{v}\"}}", f.name, l.name));
                }
            }
            for v in &got {
                if !listed.contains(&v.as_str()) {
                    outside.push(format!("{}{{{}=\"{v}\"}}", f.name, l.name));
                }
            }
        }
        if !s.emitted.contains(f.name) {
            never.push(f.name.to_owned());
        }
    }
    assert!(
        outside.is_empty(),
        "emitted, not catalogued:\n{}",
        outside.join("\n")
    );
    // An exemption whose value the suite does emit now is stale: drop it.
    let stale: Vec<String> = UNREACHABLE_HERE
        .iter()
        .filter(|(n, l, v, _)| {
            s.values
                .get(&((*n).to_owned(), (*l).to_owned()))
                .is_some_and(|got| got.contains(*v))
        })
        .map(|(n, l, v, _)| format!("{n}{{{l}=\"{v}\"}}"))
        .collect();
    assert!(
        stale.is_empty(),
        "emitted, yet listed as unreachable: {stale:?}"
    );
    assert!(
        never.is_empty(),
        "{} catalogued values no test emitted:\n{}",
        never.len(),
        never.join("\n")
    );
}
