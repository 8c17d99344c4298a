use std::collections::BTreeMap;
use std::io::Write;

use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    Config::load(&Sources::default(), &env(pairs))
}

fn file_with(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

#[test]
fn defaults_point_at_the_local_stack() {
    let config = load(&[]).unwrap();
    assert_eq!(config.env, Environment::Development);
    assert_eq!(config.kafka.brokers, "127.0.0.1:59092");
    assert_eq!(config.database.url.expose(), "postgres://manifold:manifold@127.0.0.1:55432/manifold");
    assert_eq!(config.topics.batches.name, "sensors.batches.v1");
    assert_eq!(config.topics.partitions_of(&config.topics.scores), 6);
    assert_eq!(config.gnn.service_url, None);
    assert_eq!(config.storage.retention_days, 30);
}

#[test]
fn file_overrides_defaults_and_keeps_the_rest() {
    let file = file_with("[database]\npool_size = 3\n[topics.scores]\nname = \"scores.custom\"\npartitions = 2\n");
    let config = Config::load(&Sources { file: Some(file.path().into()) }, &BTreeMap::new()).unwrap();
    assert_eq!(config.database.pool_size, 3);
    assert_eq!(config.database.connect_timeout_ms, 5000);
    assert_eq!(config.topics.scores.name, "scores.custom");
    assert_eq!(config.topics.partitions_of(&config.topics.scores), 2);
    assert_eq!(config.topics.partitions_of(&config.topics.batches), 6);
}

#[test]
fn environment_overrides_the_file() {
    let file = file_with("[database]\npool_size = 3\n");
    let vars = env(&[("MANIFOLD__DATABASE__POOL_SIZE", "9"), ("MANIFOLD__TELEMETRY__LOG_LEVEL", "debug")]);
    let config = Config::load(&Sources { file: Some(file.path().into()) }, &vars).unwrap();
    assert_eq!(config.database.pool_size, 9);
    assert_eq!(config.telemetry.log_level, "debug");
}

#[test]
fn replaced_backend_variable_names_are_honoured() {
    let config = load(&[
        ("DATABASE_URL", "postgres://u:p@db.internal:5432/hyd"),
        ("KAFKA_BROKERS", "k1:9092,k2:9092"),
        ("SCHEMA_REGISTRY_URL", "http://registry:8081"),
        ("GNN_SERVICE_URL", "http://gnn:8002/score"),
        ("SECRET_KEY", "s3cr3t-value"),
        ("ENV", "production"),
        ("MANIFOLD__INFER__INSTANCE", "0"),
    ])
    .unwrap();
    assert_eq!(config.database.url.expose(), "postgres://u:p@db.internal:5432/hyd");
    assert_eq!(config.kafka.brokers, "k1:9092,k2:9092");
    assert_eq!(config.schema_registry.url, "http://registry:8081");
    assert_eq!(config.gnn.service_url.as_deref(), Some("http://gnn:8002/score"));
    assert_eq!(config.api.secret_key.expose(), "s3cr3t-value");
    assert_eq!(config.env, Environment::Production);
}

#[test]
fn manifold_variables_win_over_the_replaced_backend_names() {
    let config = load(&[("KAFKA_BROKERS", "old:9092"), ("MANIFOLD__KAFKA__BROKERS", "new:9092")]).unwrap();
    assert_eq!(config.kafka.brokers, "new:9092");
}

#[test]
fn kafka_client_properties_pass_through_with_underscores_as_dots() {
    let file = file_with("[kafka.client]\n\"security.protocol\" = \"SASL_SSL\"\n\"socket.keepalive.enable\" = true\n");
    let vars = env(&[
        ("MANIFOLD__KAFKA__CLIENT__SASL_MECHANISM", "PLAIN"),
        ("MANIFOLD__KAFKA__CLIENT__SASL_PASSWORD", "hunter2"),
    ]);
    let config = Config::load(&Sources { file: Some(file.path().into()) }, &vars).unwrap();
    let props: BTreeMap<_, _> = config.kafka.client.iter().collect();
    assert_eq!(props.get("security.protocol"), Some(&"SASL_SSL"));
    assert_eq!(props.get("socket.keepalive.enable"), Some(&"true"));
    assert_eq!(props.get("sasl.mechanism"), Some(&"PLAIN"));
    assert_eq!(props.get("sasl.password"), Some(&"hunter2"));
}

#[test]
fn unknown_key_in_a_file_is_an_error_naming_the_key() {
    let file = file_with("[database]\npool_sise = 3\n");
    let err = Config::load(&Sources { file: Some(file.path().into()) }, &BTreeMap::new()).unwrap_err();
    assert!(matches!(&err, ConfigError::UnknownKey { key, .. } if key == "database.pool_sise"), "{err}");
}

#[test]
fn unknown_key_in_the_environment_names_the_variable() {
    let err = load(&[("MANIFOLD__KAFKA__BROKER", "x:1")]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("kafka.broker"), "{text}");
    assert!(text.contains("MANIFOLD__KAFKA__BROKER"), "{text}");
}

#[test]
fn unknown_section_is_an_error() {
    let err = load(&[("MANIFOLD__DATABSE__URL", "x")]).unwrap_err();
    assert!(err.to_string().contains("databse"), "{err}");
}

#[test]
fn badly_typed_environment_value_names_the_variable() {
    let err = load(&[("MANIFOLD__DATABASE__POOL_SIZE", "many")]).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("database.pool_size") && text.contains("MANIFOLD__DATABASE__POOL_SIZE"), "{text}");
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let config = load(&[
        ("DATABASE_URL", "postgres://svc:db-pa55word@db:5432/hyd"),
        ("SECRET_KEY", "the-signing-secret"),
        ("MANIFOLD__KAFKA__CLIENT__SASL_PASSWORD", "kafka-pa55word"),
        ("MANIFOLD__KAFKA__CLIENT__SASL_USERNAME", "svc-user"),
    ])
    .unwrap();
    let debug = format!("{config:?}");
    for secret in ["db-pa55word", "the-signing-secret", "kafka-pa55word"] {
        assert!(!debug.contains(secret), "{secret} leaked: {debug}");
    }
    assert!(debug.contains("svc-user"), "non-secret properties stay visible: {debug}");
    assert!(debug.contains("db:5432"), "the database location stays visible: {debug}");
    assert_eq!(config.database.url.to_string(), "postgres://svc:***@db:5432/hyd");
}

#[test]
fn cross_field_rules_are_checked_at_load() {
    let err = load(&[("MANIFOLD__TOPICS__SCORES__NAME", "sensors.batches.v1")]).unwrap_err();
    assert!(matches!(&err, ConfigError::Invalid { key, .. } if key == "topics.scores.name"), "{err}");

    let err = load(&[("ENV", "production")]).unwrap_err();
    assert!(matches!(&err, ConfigError::Invalid { key, .. } if key == "api.secret_key"), "{err}");

    let err = load(&[("MANIFOLD__TOPICS__PARTITIONS", "0")]).unwrap_err();
    assert!(err.to_string().contains("partitions"), "{err}");
}
