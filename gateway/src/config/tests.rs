//! Tests of `config`.

use std::path::Path;

use serde::Deserialize;

use super::file::{BearerSection, KeySetSection, LimitsSection, RoutesSection};
use super::*;

#[test]
fn example_config_is_well_formed() {
    let text = include_str!("../../../deploy/dcrgate.example.toml");
    let file: ConfigFile = toml::from_str(text).expect("example parses");
    assert_eq!(file.limits.max_body_bytes, MAX_BODY_CEILING);
    assert_eq!(file.server.log_format, LogFormat::Json);
}

#[test]
fn syntax_errors_name_file_and_key() {
    let text = include_str!("../../../deploy/dcrgate.example.toml")
        .replace("[limits]", "[limits]\nmax_body = 1");
    let e = Config::from_toml_str(&text, Path::new("conf/dcrgate.toml")).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("conf/dcrgate.toml:"), "{msg}");
    assert!(msg.contains("max_body"), "{msg}");
}

#[test]
fn missing_files_name_the_key() {
    let text = include_str!("../../../deploy/dcrgate.example.toml");
    let e = Config::from_toml_str(text, Path::new("/nonexistent/dcrgate.toml")).unwrap_err();
    assert!(
        matches!(
            e,
            ConfigError::Invalid {
                key: "listener.certificate",
                ..
            }
        ),
        "{e}"
    );
}

/// The routes and bearer part of a config, checked on its own.
fn routes_and_bearer(text: &str) -> Result<(Routes, Bearer), ConfigError> {
    #[derive(Deserialize)]
    struct Part {
        routes: RoutesSection,
        #[serde(default)]
        bearer: BearerSection,
    }
    let path = Path::new("conf/dcrgate.toml");
    let part: Part = toml::from_str(text).map_err(|source| ConfigError::Syntax {
        path: path.to_owned(),
        source,
    })?;
    let v = Validator::new(path);
    let routes = v.routes(&part.routes)?;
    let bearer = v.bearer(&part.bearer, &routes)?;
    Ok((routes, bearer))
}

#[test]
fn routes_need_explicit_bearer_modes_and_their_verifiers() {
    for (text, key) in [
        (
            "[routes.update]\nbearer = \"upstream\"\n[routes.read]\nenabled = true",
            "routes.read.bearer",
        ),
        (
            "[routes.update]\nbearer = \"upstream\"\n[routes.delete]\nenabled = true",
            "routes.delete.bearer",
        ),
        ("[routes.update]\nbearer = \"jwt\"", "bearer.jwt"),
        (
            "[routes.update]\nbearer = \"introspection\"",
            "bearer.introspection",
        ),
        (
            "[routes.update]\nbearer = \"jwt\"\n[bearer.jwt]\nissuer = \"i\"\naudiences = [\"a\"]",
            "bearer.jwt",
        ),
        (
            "[routes.update]\nbearer = \"jwt\"\n[bearer.jwt]\nissuer = \"i\"\naudiences = [\"a\"]\nkey_set_url = \"http://as/jwks\"",
            "bearer.jwt",
        ),
        (
            "[routes.update]\nbearer = \"jwt\"\n[bearer.jwt]\nissuer = \"i\"\naudiences = [\"a\"]\nalgorithms = [\"HS256\"]\nkey_set_url = \"https://as/jwks\"",
            "bearer.jwt.algorithms",
        ),
    ] {
        match routes_and_bearer(text) {
            Err(ConfigError::Invalid { key: k, .. }) => assert_eq!(k, key, "{text}"),
            other => panic!("{text}: {:?}", other.map(|(r, _)| r)),
        }
    }
    // No default mode: the update route must name one.
    assert!(matches!(
        routes_and_bearer("[routes.update]"),
        Err(ConfigError::Syntax { .. })
    ));
    let (routes, _) = routes_and_bearer(
        "[routes.update]\nbearer = \"upstream\"\n[routes.create]\nenabled = true\n[routes.read]\nbearer = \"jwt\"",
    )
    .expect("valid");
    assert_eq!(
        routes,
        Routes {
            update: BearerMode::Upstream,
            create: true,
            read: None,
            delete: None
        }
    );
}

#[test]
fn defaults_are_the_documented_ones() {
    let l = LimitsSection::default();
    assert_eq!(
        (l.max_body_bytes, l.header_timeout_ms, l.body_timeout_ms),
        (65536, 10_000, 10_000)
    );
    let k = KeySetSection::default();
    assert_eq!(
        (
            k.fetch_timeout_ms,
            k.max_bytes,
            k.cache_ttl_seconds,
            k.refetch_cooldown_seconds
        ),
        (2000, 262_144, 300, 30)
    );
    assert!(!k.allow_private_addresses);
}

/// The smallest configuration file: only the required settings.
const MINIMAL: &str = r#"
[listener]
address = "127.0.0.1:8443"
certificate = "server.pem"
private_key = "server.key"
client_ca = "client-ca.pem"
[admin]
address = "127.0.0.1:9090"
[upstream]
url = "http://127.0.0.1:8080"
[policy]
profile = "profile.toml"
audiences = ["https://bank.example"]
key_set_hosts = ["keys.example"]
[routes.update]
bearer = "upstream"
"#;

/// A documented default as the TOML value it stands for, or `None` when it is not one value
/// (`required`, `none`, `system roots`, a computed path, two settings in one row).
fn documented_value(default: &str) -> Option<toml::Value> {
    let d = default.trim();
    let inner = d.strip_prefix('`').and_then(|s| s.strip_suffix('`'));
    let text = inner.unwrap_or(d);
    if d.contains(',') && inner.is_none() {
        return None;
    }
    if let Ok(n) = text.parse::<i64>() {
        return Some(toml::Value::Integer(n));
    }
    match text {
        "true" => return Some(toml::Value::Boolean(true)),
        "false" => return Some(toml::Value::Boolean(false)),
        _ => {}
    }
    if text.starts_with('[') {
        let t: toml::Table = toml::from_str(&format!("v = {text}")).ok()?;
        return t.get("v").cloned();
    }
    // A backticked word is a string value; bare words are prose (`required`, `none`, ...).
    inner
        .filter(|s| !s.contains(' ') && !s.contains('<'))
        .map(|s| toml::Value::String(s.to_owned()))
}

/// Every default in the configuration reference (docs/configuration.md) is the code's: setting
/// the key to its documented default changes nothing in the parsed file.
#[test]
fn every_documented_default_is_the_codes_default() {
    let doc = include_str!("../../../docs/configuration.md");
    // Sections that exist only with their required members: those members, for both sides.
    let prerequisites = |key: &str| -> &'static str {
        if key.starts_with("bearer.jwt.") {
            "[bearer.jwt]\nissuer = \"https://as.example\"\naudiences = [\"dcrgate\"]\nkey_set_file = \"as.jwks\"\n"
        } else if key.starts_with("bearer.introspection.") {
            "[bearer.introspection]\nendpoint = \"https://as.example/introspect\"\n"
        } else {
            ""
        }
    };
    let mut checked = Vec::new();
    let mut wrong = Vec::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "| `key` | default | meaning |" splits into ["", key, default, meaning, ""].
        if cells.len() < 5 || !cells[1].starts_with('`') {
            continue;
        }
        let key = cells[1].trim_matches('`');
        if key.contains('`') || key.contains('[') || key.contains(' ') {
            continue; // two settings in one row, or an array member
        }
        let Some(value) = documented_value(cells[2]) else {
            continue;
        };
        let minimal = format!("{MINIMAL}{}", prerequisites(key));
        let base: ConfigFile = toml::from_str(&minimal).expect("minimal config parses");
        let base_debug = format!("{base:?}");
        let mut table: toml::Table = toml::from_str(&minimal).expect("minimal");
        let parts: Vec<&str> = key.split('.').collect();
        let (leaf, sections) = parts.split_last().expect("a key");
        let mut at = &mut table;
        for s in sections {
            at = at
                .entry(s.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("a section");
        }
        at.insert(leaf.to_string(), value.clone());
        let text = toml::to_string(&table).expect("serialise");
        match toml::from_str::<ConfigFile>(&text) {
            Ok(with) if format!("{with:?}") == base_debug => checked.push(key),
            Ok(_) => wrong.push(format!(
                "{key}: the documented default {value} is not the code's"
            )),
            Err(e) => wrong.push(format!("{key} = {value}: {e}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // The table is read at all: most rows carry a plain default.
    assert!(
        checked.len() >= 60,
        "only {} defaults checked: {checked:?}",
        checked.len()
    );
}
