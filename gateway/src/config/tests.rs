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
