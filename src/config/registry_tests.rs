//! Schema registry credentials and Kafka secrets: loaded from the environment, checked across
//! fields at load time, and never printed.

use std::collections::BTreeMap;
use std::io::Write;

use super::*;

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: BTreeMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::load(&Sources::default(), &env)
}

fn invalid_key(pairs: &[(&str, &str)]) -> String {
    match load(pairs) {
        Err(ConfigError::Invalid { key, .. }) => key,
        other => panic!("expected an invalid key, got {other:?}"),
    }
}

#[test]
fn basic_auth_comes_from_the_environment_and_numeric_secrets_stay_text() {
    let config = load(&[("MANIFOLD__SCHEMA_REGISTRY__USERNAME", "12345"), ("MANIFOLD__SCHEMA_REGISTRY__PASSWORD", "000042")]).unwrap();
    match config.schema_registry.auth() {
        RegistryAuth::Basic { username, password } => assert_eq!((username, password), ("12345", "000042")),
        other => panic!("expected basic auth, got {other:?}"),
    }
    let bearer = load(&[("MANIFOLD__SCHEMA_REGISTRY__TOKEN", "tok-en")]).unwrap();
    assert!(matches!(bearer.schema_registry.auth(), RegistryAuth::Bearer { token: "tok-en" }));
    assert!(matches!(load(&[]).unwrap().schema_registry.auth(), RegistryAuth::None));
}

#[test]
fn basic_and_bearer_are_exclusive_and_basic_needs_both_halves() {
    let both = [("MANIFOLD__SCHEMA_REGISTRY__USERNAME", "u"), ("MANIFOLD__SCHEMA_REGISTRY__PASSWORD", "p"), ("MANIFOLD__SCHEMA_REGISTRY__TOKEN", "t")];
    assert_eq!(invalid_key(&both), "schema_registry.token");
    assert_eq!(invalid_key(&[("MANIFOLD__SCHEMA_REGISTRY__USERNAME", "u")]), "schema_registry.password");
    assert_eq!(invalid_key(&[("MANIFOLD__SCHEMA_REGISTRY__PASSWORD", "p")]), "schema_registry.username");
    assert_eq!(invalid_key(&[("MANIFOLD__SCHEMA_REGISTRY__TOKEN", " ")]), "schema_registry.token");
}

#[test]
fn a_ca_file_must_exist_and_hold_a_certificate() {
    let err = load(&[("MANIFOLD__SCHEMA_REGISTRY__CA_FILE", "/nonexistent/ca.pem")]).unwrap_err();
    assert!(matches!(&err, ConfigError::Invalid { key, why } if key == "schema_registry.ca_file" && why.contains("/nonexistent/ca.pem")), "{err}");
    let mut not_pem = tempfile::NamedTempFile::new().unwrap();
    not_pem.write_all(b"just text").unwrap();
    let err = load(&[("MANIFOLD__SCHEMA_REGISTRY__CA_FILE", not_pem.path().to_str().unwrap())]).unwrap_err();
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
}

#[test]
fn secrets_never_print_in_debug_output() {
    let config = load(&[
        ("MANIFOLD__SCHEMA_REGISTRY__USERNAME", "registry-user"),
        ("MANIFOLD__SCHEMA_REGISTRY__PASSWORD", "registry-pass-1"),
        ("MANIFOLD__KAFKA__CLIENT__SASL_USERNAME", "kafka-user"),
        ("MANIFOLD__KAFKA__CLIENT__SASL_PASSWORD", "kafka-pass-2"),
        ("MANIFOLD__KAFKA__CLIENT__SSL_KEY_PASSWORD", "key-pass-3"),
        ("MANIFOLD__KAFKA__CLIENT__SASL_OAUTHBEARER_CLIENT_SECRET", "oauth-4"),
    ])
    .unwrap();
    let printed = format!("{config:?}");
    for secret in ["registry-pass-1", "kafka-pass-2", "key-pass-3", "oauth-4"] {
        assert!(!printed.contains(secret), "{secret} printed");
    }
    assert!(printed.contains("kafka-user") && printed.contains("registry-user"), "user names are not secrets");
    let token = load(&[("MANIFOLD__SCHEMA_REGISTRY__TOKEN", "bearer-5")]).unwrap();
    assert!(!format!("{token:?}").contains("bearer-5"));
}
