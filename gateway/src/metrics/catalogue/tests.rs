//! The catalogue against the operations guide's table and the exposition.

use std::collections::BTreeSet;

use super::{find, to_json, Values, FAMILIES};

/// `(series, type, labels cell)` of each row of the guide's metrics catalogue.
fn documented() -> Vec<(String, String, String)> {
    let doc = include_str!("../../../../docs/operations.md");
    let table = doc
        .split("## Metrics catalogue")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the guide has a metrics catalogue");
    table
        .lines()
        .filter(|l| l.starts_with("| `dcrgate_"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            (
                cells[1].trim_matches('`').to_owned(),
                cells[2].to_owned(),
                cells[4].to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_guide_lists_every_series_with_its_type_labels_and_values() {
    let rows = documented();
    let in_guide: BTreeSet<&str> = rows.iter().map(|(n, _, _)| n.as_str()).collect();
    let in_code: BTreeSet<&str> = FAMILIES.iter().map(|f| f.name).collect();
    assert_eq!(
        in_guide, in_code,
        "the guide's series and the code's differ"
    );
    assert_eq!(rows.len(), FAMILIES.len(), "a series listed twice");
    let mut missing = Vec::new();
    let mut values_listed = BTreeSet::new();
    for (name, kind, labels) in &rows {
        let f = find(name).expect("listed");
        assert_eq!(kind, f.kind.as_str(), "{name}");
        if f.labels.is_empty() {
            assert!(labels.starts_with('—'), "{name} has no labels: {labels}");
        }
        for l in f.labels {
            if !labels.contains(&format!("`{}`", l.name)) {
                missing.push(format!("{name}: label `{}`", l.name));
            }
            // Reasons and rules have their own tables (request-path.md); a label's values are
            // listed on the first row that has it (route and outcome), later rows name it.
            if matches!(l.values, Values::Reasons | Values::ShadowableRules)
                || !values_listed.insert(l.name)
            {
                continue;
            }
            for v in l.values.list().unwrap_or_default() {
                let shown = format!("`{v}`");
                let range = l.name == "class" && labels.contains("`1xx` ... `5xx`");
                if !labels.contains(&shown) && !range {
                    missing.push(format!("{name}: {}={v}", l.name));
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "not in the guide:\n{}",
        missing.join("\n")
    );
}

#[test]
fn every_family_is_registered_with_its_help_and_type() {
    let m = crate::metrics::Metrics::new().expect("metrics");
    // Give every labelled family one series so that it appears in the exposition.
    let text = {
        m.requests.with_label_values(&["other", "rejected"]).inc();
        m.rejections.with_label_values(&["other", "internal"]).inc();
        m.duration
            .with_label_values(&["other", "rejected"])
            .observe(0.1);
        m.upstream_responses.with_label_values(&["2xx"]).inc();
        m.key_set_fetches.with_label_values(&["ok"]).inc();
        m.handshakes.with_label_values(&["ok"]).inc();
        m.bearer_checks.with_label_values(&["jwt", "ok"]).inc();
        m.replay_checks
            .with_label_values(&["memory", "first"])
            .inc();
        m.software_statements.with_label_values(&["verified"]).inc();
        m.stages.with_label_values(&["policy"]).observe(0.1);
        m.key_set_age.observe(1.0);
        m.would_reject.with_label_values(&["scope"]).inc();
        m.revocation_checks.with_label_values(&["good"]).inc();
        m.directory_revocation_checks
            .with_label_values(&["signing_key", "good"])
            .inc();
        m.crl_fetches.with_label_values(&["ca", "ok"]).inc();
        m.ocsp_exchanges
            .with_label_values(&["default", "good"])
            .inc();
        m.dependency_up.with_label_values(&["registry"]).set(1);
        m.crl_this_update.with_label_values(&["ca"]).set(1);
        m.crl_next_update.with_label_values(&["ca"]).set(1);
        String::from_utf8(m.render()).expect("UTF-8")
    };
    for f in FAMILIES {
        assert!(
            text.contains(&format!("# HELP {} {}\n", f.name, f.help)),
            "{} not registered with its help",
            f.name
        );
        assert!(
            text.contains(&format!("# TYPE {} {}\n", f.name, f.kind.as_str())),
            "{}",
            f.name
        );
    }
    let exported = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(exported, FAMILIES.len(), "a series outside the catalogue");
}

#[test]
fn the_json_names_every_closed_value() {
    let j = to_json();
    assert_eq!(j.as_object().map(|o| o.len()), Some(FAMILIES.len()));
    let reasons = &j["dcrgate_rejections_total"]["labels"]["reason"];
    assert!(reasons.as_array().is_some_and(
        |r| r.iter().any(|v| v == "dn_mismatch") && r.iter().any(|v| v == "route_not_found")
    ));
    assert!(j["dcrgate_crl_fetches_total"]["labels"]["issuer"].is_null());
    assert_eq!(j["dcrgate_key_set_age_seconds"]["type"], "histogram");
}
