use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

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

/// A role's name is the key of its section: the topic a role reads is the one its section names.
#[test]
fn each_topic_role_is_the_section_that_names_its_topic() {
    let defaults: toml::Table = include_str!("../../config/default.toml").parse().unwrap();
    let sections = defaults["topics"].as_table().unwrap();
    let config = load(&[]).unwrap();
    for (role, topic) in config.topics.all() {
        assert_eq!(sections[role.as_str()]["name"].as_str(), Some(topic.name.as_str()), "{role}");
    }
    let named: Vec<&String> = sections.iter().filter(|(_, v)| v.is_table()).map(|(k, _)| k).collect();
    assert_eq!(named.len(), TopicRole::ALL.len(), "a [topics.*] section without a role: {named:?}");
}

#[test]
fn file_overrides_defaults_and_keeps_the_rest() {
    let file = file_with("[database]\npool_size = 3\n[topics.scores]\nname = \"scores.custom\"\npartitions = 2\n");
    let config = Config::load(&Sources { file: Some(file.path().into()) }, &BTreeMap::new()).unwrap();
    assert_eq!(config.database.pool_size, 3);
    assert_eq!(config.database.connect_timeout_ms, Duration::from_millis(5000));
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
fn the_standard_otlp_endpoint_variable_turns_trace_export_on_and_manifolds_own_wins() {
    assert_eq!(load(&[]).unwrap().telemetry.otlp_endpoint, None, "export is off by default");
    let config = load(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]).unwrap();
    assert_eq!(config.telemetry.otlp_endpoint.as_deref(), Some("http://collector:4318"));
    let config = load(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"), ("MANIFOLD__TELEMETRY__OTLP_ENDPOINT", "https://other:4318")]).unwrap();
    assert_eq!(config.telemetry.otlp_endpoint.as_deref(), Some("https://other:4318"));
    assert_eq!(load(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "")]).unwrap().telemetry.otlp_endpoint.as_deref(), Some(""), "empty is accepted, and means off");
    for bad in ["collector:4318", "grpc://collector:4317", "not a url"] {
        let err = load(&[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)]).unwrap_err();
        assert!(matches!(&err, ConfigError::Invalid { key, .. } if key == "telemetry.otlp_endpoint"), "{bad}: {err}");
        assert!(err.to_string().contains("http"), "the message says what is expected: {err}");
    }
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

/// Reads one `Duration` field of a loaded config.
type Field = fn(&Config) -> Duration;

/// Every integer key with a unit suffix, and the `Duration` field it now fills.
fn duration_fields() -> Vec<(&'static str, Field)> {
    vec![
        ("shutdown_deadline_seconds", |c| c.shutdown_deadline_seconds),
        ("database.connect_timeout_ms", |c| c.database.connect_timeout_ms),
        ("database.statement_timeout_ms", |c| c.database.statement_timeout_ms),
        ("database.keepalives_idle_ms", |c| c.database.keepalives_idle_ms),
        ("database.keepalives_interval_ms", |c| c.database.keepalives_interval_ms),
        ("database.tcp_user_timeout_ms", |c| c.database.tcp_user_timeout_ms),
        ("storage.future_skew_hours", |c| c.storage.future_skew_hours),
        ("storage.maintenance_interval_seconds", |c| c.storage.maintenance_interval_seconds),
        ("storage.lock_timeout_ms", |c| c.storage.lock_timeout_ms),
        ("kafka.request_timeout_ms", |c| c.kafka.request_timeout_ms),
        ("kafka.transaction_timeout_ms", |c| c.kafka.transaction_timeout_ms),
        ("topics.batches.retention_hours", |c| c.topics.batches.retention_hours),
        ("topics.dead_letters.retention_hours", |c| c.topics.dead_letters.retention_hours),
        ("topics.windows_ready.retention_hours", |c| c.topics.windows_ready.retention_hours),
        ("topics.scores.retention_hours", |c| c.topics.scores.retention_hours),
        ("topics.alerts.retention_hours", |c| c.topics.alerts.retention_hours),
        ("topics.relay_position.retention_hours", |c| c.topics.relay_position.retention_hours),
        ("ingest.chunk_max_delay_ms", |c| c.ingest.chunk_max_delay_ms),
        ("ingest.session_timeout_ms", |c| c.ingest.session_timeout_ms),
        ("ingest.retry_initial_ms", |c| c.ingest.retry_initial_ms),
        ("ingest.retry_max_ms", |c| c.ingest.retry_max_ms),
        ("ingest.breaker_seconds", |c| c.ingest.breaker_seconds),
        ("windows.length_seconds", |c| c.windows.length_seconds),
        ("windows.allowed_lateness_seconds", |c| c.windows.allowed_lateness_seconds),
        ("windows.idle_timeout_seconds", |c| c.windows.idle_timeout_seconds),
        ("infer.batch_wait_ms", |c| c.infer.batch_wait_ms),
        ("infer.session_timeout_ms", |c| c.infer.session_timeout_ms),
        ("infer.retry_ms", |c| c.infer.retry_ms),
        ("infer.systemic_retry_ms", |c| c.infer.systemic_retry_ms),
        ("infer.unready_after_ms", |c| c.infer.unready_after_ms),
        ("relay.poll_interval_ms", |c| c.relay.poll_interval_ms),
        ("relay.retry_initial_ms", |c| c.relay.retry_initial_ms),
        ("relay.retry_max_ms", |c| c.relay.retry_max_ms),
        ("relay.systemic_retry_ms", |c| c.relay.systemic_retry_ms),
        ("relay.lock_check_ms", |c| c.relay.lock_check_ms),
        ("relay.lock_release_ms", |c| c.relay.lock_release_ms),
        ("schema_registry.timeout_ms", |c| c.schema_registry.timeout_ms),
        ("api.request_timeout_ms", |c| c.api.request_timeout_ms),
        ("api.usage_flush_ms", |c| c.api.usage_flush_ms),
        ("api.ws_recheck_ms", |c| c.api.ws_recheck_ms),
        ("api.unknown_keys_cache_seconds", |c| c.api.unknown_keys_cache_seconds),
        ("gnn.timeout_ms", |c| c.gnn.timeout_ms),
    ]
}

/// The unit a key's name promises, as a `Duration` of one.
fn unit_of(key: &str) -> Option<Duration> {
    if key.ends_with("_ms") {
        Some(Duration::from_millis(1))
    } else if key.ends_with("_seconds") {
        Some(Duration::from_secs(1))
    } else if key.ends_with("_hours") {
        Some(Duration::from_secs(3600))
    } else {
        None
    }
}

fn integer_keys_with_a_unit(table: &toml::Table, prefix: &str, found: &mut Vec<(String, i64)>) {
    for (name, value) in table {
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        match value {
            toml::Value::Table(inner) => integer_keys_with_a_unit(inner, &key, found),
            toml::Value::Integer(n) if unit_of(&key).is_some() => found.push((key, *n)),
            _ => {}
        }
    }
}

#[test]
fn every_duration_default_means_its_integer_in_the_unit_its_key_names() {
    let defaults: toml::Table = include_str!("../../config/default.toml").parse().unwrap();
    let mut keys = Vec::new();
    integer_keys_with_a_unit(&defaults, "", &mut keys);
    let fields = duration_fields();
    let config = load(&[]).unwrap();
    for (key, n) in &keys {
        let (_, field) = fields.iter().find(|(name, _)| name == key).unwrap_or_else(|| panic!("{key} is not read as a Duration"));
        assert_eq!(field(&config), unit_of(key).unwrap() * u32::try_from(*n).unwrap(), "{key} = {n}");
    }
    assert_eq!(keys.len(), fields.len(), "a listed field has no key in default.toml: {keys:?}");
}

#[test]
fn a_duration_key_in_a_file_keeps_its_unit() {
    let file = file_with("[ingest]\nretry_initial_ms = 250\nbreaker_seconds = 7\n[topics.scores]\nretention_hours = 2\n");
    let config = Config::load(&Sources { file: Some(file.path().into()) }, &BTreeMap::new()).unwrap();
    assert_eq!(config.ingest.retry_initial_ms, Duration::from_millis(250));
    assert_eq!(config.ingest.breaker_seconds, Duration::from_secs(7));
    assert_eq!(config.topics.scores.retention_hours, Duration::from_secs(2 * 3600));
}

#[test]
fn a_duration_key_from_the_environment_keeps_its_unit_and_wins_over_the_file() {
    let file = file_with("[ingest]\nretry_initial_ms = 250\n");
    let vars = env(&[
        ("MANIFOLD__INGEST__RETRY_INITIAL_MS", "300"),
        ("MANIFOLD__WINDOWS__LENGTH_SECONDS", "30"),
        ("MANIFOLD__STORAGE__FUTURE_SKEW_HOURS", "12"),
        ("MANIFOLD__TOPICS__DEAD_LETTERS__RETENTION_HOURS", "48"),
    ]);
    let config = Config::load(&Sources { file: Some(file.path().into()) }, &vars).unwrap();
    assert_eq!(config.ingest.retry_initial_ms, Duration::from_millis(300));
    assert_eq!(config.windows.length_seconds, Duration::from_secs(30));
    assert_eq!(config.storage.future_skew_hours, Duration::from_secs(12 * 3600));
    assert_eq!(config.topics.dead_letters.retention_hours, Duration::from_secs(48 * 3600));
}

#[test]
fn zero_durations_are_still_refused_where_they_were() {
    for (var, key) in [
        ("MANIFOLD__INGEST__RETRY_INITIAL_MS", "ingest.retry_max_ms"),
        ("MANIFOLD__STORAGE__MAINTENANCE_INTERVAL_SECONDS", "storage.maintenance_interval_seconds"),
        ("MANIFOLD__WINDOWS__LENGTH_SECONDS", "windows.length_seconds"),
        ("MANIFOLD__WINDOWS__IDLE_TIMEOUT_SECONDS", "windows.length_seconds"),
        ("MANIFOLD__API__WS_RECHECK_MS", "api.ws_recheck_ms"),
        ("MANIFOLD__API__REQUEST_TIMEOUT_MS", "api.body_limit_bytes"),
        ("MANIFOLD__API__USAGE_FLUSH_MS", "api.body_limit_bytes"),
        ("MANIFOLD__INFER__RETRY_MS", "infer.retry_ms"),
        ("MANIFOLD__INFER__SYSTEMIC_RETRY_MS", "infer.retry_ms"),
    ] {
        let err = load(&[(var, "0")]).unwrap_err();
        assert!(matches!(&err, ConfigError::Invalid { key: k, .. } if k == key), "{var}=0: {err}");
    }
    // Zero stays allowed where it was: no lateness at all, or no pause between relay polls.
    let config = load(&[("MANIFOLD__WINDOWS__ALLOWED_LATENESS_SECONDS", "0"), ("MANIFOLD__RELAY__POLL_INTERVAL_MS", "0")]).unwrap();
    assert!(config.windows.allowed_lateness_seconds.is_zero() && config.relay.poll_interval_ms.is_zero());
}

#[test]
fn durations_are_compared_across_fields() {
    let err = load(&[("MANIFOLD__INGEST__RETRY_INITIAL_MS", "5000"), ("MANIFOLD__INGEST__RETRY_MAX_MS", "4999")]).unwrap_err();
    assert!(matches!(&err, ConfigError::Invalid { key, .. } if key == "ingest.retry_max_ms"), "{err}");
    load(&[("MANIFOLD__INGEST__RETRY_INITIAL_MS", "5000"), ("MANIFOLD__INGEST__RETRY_MAX_MS", "5000")]).unwrap();
}

#[test]
fn out_of_range_durations_are_refused_naming_the_key_and_variable() {
    for (var, value, key) in [
        ("MANIFOLD__RELAY__POLL_INTERVAL_MS", "-1", "relay.poll_interval_ms"),
        ("MANIFOLD__WINDOWS__LENGTH_SECONDS", "-60", "windows.length_seconds"),
        ("MANIFOLD__INFER__RETRY_MS", "1s", "infer.retry_ms"),
        // future_skew_hours was a u32, and still is as far as accepted values go.
        ("MANIFOLD__STORAGE__FUTURE_SKEW_HOURS", "4294967296", "storage.future_skew_hours"),
        // Hours beyond what a Duration holds used to overflow when the topic was created.
        ("MANIFOLD__TOPICS__SCORES__RETENTION_HOURS", "9223372036854775807", "topics.scores.retention_hours"),
    ] {
        let err = load(&[(var, value)]).unwrap_err();
        let text = err.to_string();
        assert!(matches!(&err, ConfigError::Type { .. }), "{var}={value}: {text}");
        assert!(text.contains(key) && text.contains(var), "{var}={value}: {text}");
    }
    let top = load(&[("MANIFOLD__STORAGE__FUTURE_SKEW_HOURS", "4294967295")]).unwrap();
    assert_eq!(top.storage.future_skew_hours, Duration::from_secs(4_294_967_295 * 3600));
}

#[test]
fn the_shutdown_deadline_is_configurable_and_never_zero() {
    assert_eq!(load(&[]).unwrap().shutdown_deadline_seconds, Duration::from_secs(20));
    let short = load(&[("MANIFOLD__SHUTDOWN_DEADLINE_SECONDS", "5")]).unwrap();
    assert_eq!(short.shutdown_deadline_seconds, Duration::from_secs(5));
    let err = load(&[("MANIFOLD__SHUTDOWN_DEADLINE_SECONDS", "0")]).unwrap_err();
    assert!(err.to_string().contains("shutdown_deadline_seconds"), "{err}");
}

#[test]
fn alert_settings_are_checked_at_load_naming_the_key() {
    let config = load(&[]).unwrap();
    assert_eq!(config.alerts.consecutive_windows, 3);
    assert_eq!(config.alerts.level_of_score(Some("valve"), 0.95), crate::domain::AlertLevel::Critical);
    assert_eq!(config.alerts.level_of_score(None, 0.75), crate::domain::AlertLevel::Warning);
    assert_eq!(config.alerts.level_of_score(Some("pump"), 0.1), crate::domain::AlertLevel::Ok);
    let err = load(&[("MANIFOLD__ALERTS__CONSECUTIVE_WINDOWS", "0")]).unwrap_err();
    assert!(matches!(&err, ConfigError::Invalid { key, .. } if key == "alerts.consecutive_windows"), "{err}");
    let err = load(&[("MANIFOLD__ALERTS__THRESHOLDS__DEFAULT__WARNING", "0.95")]).unwrap_err();
    assert!(matches!(&err, ConfigError::Invalid { key, .. } if key == "alerts.thresholds.default"), "{err}");
    let file = file_with("[alerts.thresholds.valve]\nwarning = 0.5\ncritical = 0.8\n");
    let config = Config::load(&Sources { file: Some(file.path().to_owned()) }, &env(&[])).unwrap();
    assert_eq!(config.alerts.level_of_score(Some("valve"), 0.6), crate::domain::AlertLevel::Warning, "a kind's own thresholds");
    assert_eq!(config.alerts.level_of_score(Some("pump"), 0.6), crate::domain::AlertLevel::Ok, "the default for the others");
    // A kind the defaults do not name, from the environment alone.
    let config = load(&[("MANIFOLD__ALERTS__THRESHOLDS__VALVE__WARNING", "0.5"), ("MANIFOLD__ALERTS__THRESHOLDS__VALVE__CRITICAL", "0.8")]).unwrap();
    assert_eq!(config.alerts.level_of_score(Some("valve"), 0.6), crate::domain::AlertLevel::Warning, "a kind's thresholds set by variables");
    let err = load(&[("MANIFOLD__ALERTS__THRESHOLDS__VALVE__WARNING", "high"), ("MANIFOLD__ALERTS__THRESHOLDS__VALVE__CRITICAL", "0.8")]).unwrap_err();
    assert!(err.to_string().contains("alerts.thresholds.valve.warning"), "{err}");
    let file = file_with("[alerts]\nconsecutive_window = 2\n");
    assert!(Config::load(&Sources { file: Some(file.path().to_owned()) }, &env(&[])).is_err(), "unknown keys are refused");
}
