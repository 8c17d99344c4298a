//! One typed configuration: `config/default.toml`, an optional file, then environment overrides.

mod alerts;
mod check;
mod load;
pub mod pg_tls;
pub mod recovery;
mod registry;
mod secret;
mod units;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::domain::{BadReadingsPolicy, TopicRole};

pub use alerts::{AlertsConfig, ScoreThresholds};
pub use load::{ConfigError, Sources};
pub use registry::{RegistryAuth, SchemaRegistryConfig};
pub use secret::{DatabaseUrl, KafkaClientProperties, Secret};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub env: Environment,
    /// How long running work may take to finish after a shutdown signal before it is abandoned.
    #[serde(deserialize_with = "units::seconds")]
    pub shutdown_deadline_seconds: Duration,
    pub database: DatabaseConfig,
    pub storage: StorageConfig,
    pub kafka: KafkaConfig,
    pub topics: TopicsConfig,
    pub ingest: IngestConfig,
    pub windows: WindowsConfig,
    pub infer: InferConfig,
    pub relay: RelayConfig,
    pub schema_registry: SchemaRegistryConfig,
    pub api: ApiConfig,
    pub gnn: GnnConfig,
    pub telemetry: TelemetryConfig,
    pub alerts: AlertsConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Development,
    Test,
    Staging,
    Production,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    pub url: DatabaseUrl,
    pub pool_size: usize,
    #[serde(deserialize_with = "units::millis")]
    pub connect_timeout_ms: Duration,
    /// The server ends a statement of a worker's pool (ingest, infer) that runs longer.
    #[serde(deserialize_with = "units::millis")]
    pub statement_timeout_ms: Duration,
    /// Dead-peer detection, set on both ends of every connection: the client's socket and,
    /// through the session's settings, the server's.
    #[serde(deserialize_with = "units::millis")]
    pub keepalives_idle_ms: Duration,
    #[serde(deserialize_with = "units::millis")]
    pub keepalives_interval_ms: Duration,
    pub keepalives_retries: u32,
    /// Data sent and not acknowledged for this long closes the connection (TCP_USER_TIMEOUT).
    #[serde(deserialize_with = "units::millis")]
    pub tcp_user_timeout_ms: Duration,
    /// From the URL's `ssl*` parameters, filled in by [`Config::load`].
    #[serde(skip)]
    pub tls: pg_tls::PgTls,
    /// The URL without the parameters tokio-postgres does not know, for the driver only.
    #[serde(skip)]
    pub driver_url: Option<DatabaseUrl>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub retention_days: u32,
    #[serde(deserialize_with = "units::hours_u32")]
    pub future_skew_hours: Duration,
    pub aux_retention_days: u32,
    #[serde(deserialize_with = "units::seconds")]
    pub maintenance_interval_seconds: Duration,
    #[serde(deserialize_with = "units::millis")]
    pub lock_timeout_ms: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    pub brokers: String,
    #[serde(deserialize_with = "units::millis")]
    pub request_timeout_ms: Duration,
    /// A transactional producer's open transaction is aborted by the broker after this long,
    /// so a producer that vanished blocks read_committed readers at most this long.
    #[serde(deserialize_with = "units::millis")]
    pub transaction_timeout_ms: Duration,
    #[serde(default)]
    pub client: KafkaClientProperties,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicsConfig {
    pub partitions: i32,
    pub replication_factor: i32,
    pub batches: TopicConfig,
    pub dead_letters: TopicConfig,
    pub windows_ready: TopicConfig,
    pub scores: TopicConfig,
    pub alerts: TopicConfig,
    pub relay_position: TopicConfig,
}

impl TopicsConfig {
    /// The four topics of the design and the relay's position topic, each with its role.
    pub fn all(&self) -> [(TopicRole, &TopicConfig); 6] {
        TopicRole::ALL.map(|role| (role, self.of(role)))
    }

    /// The topic that plays `role` (the section `[topics.<role>]`).
    pub fn of(&self, role: TopicRole) -> &TopicConfig {
        match role {
            TopicRole::Batches => &self.batches,
            TopicRole::DeadLetters => &self.dead_letters,
            TopicRole::WindowsReady => &self.windows_ready,
            TopicRole::Scores => &self.scores,
            TopicRole::Alerts => &self.alerts,
            TopicRole::RelayPosition => &self.relay_position,
        }
    }

    pub fn partitions_of(&self, topic: &TopicConfig) -> i32 {
        topic.partitions.unwrap_or(self.partitions)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    pub name: String,
    /// Overrides `topics.partitions` for this topic.
    pub partitions: Option<i32>,
    #[serde(deserialize_with = "units::hours")]
    pub retention_hours: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub group_id: String,
    pub chunk_max_readings: usize,
    #[serde(deserialize_with = "units::millis")]
    pub chunk_max_delay_ms: Duration,
    pub max_batch_readings: usize,
    pub bad_readings: BadReadingsPolicy,
    #[serde(deserialize_with = "units::millis")]
    pub session_timeout_ms: Duration,
    pub instance_id: Option<String>,
    pub queued_max_kbytes: u64,
    #[serde(deserialize_with = "units::millis")]
    pub retry_initial_ms: Duration,
    #[serde(deserialize_with = "units::millis")]
    pub retry_max_ms: Duration,
    pub breaker_failures: u32,
    #[serde(deserialize_with = "units::seconds")]
    pub breaker_seconds: Duration,
    pub listen: SocketAddr,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowsConfig {
    #[serde(deserialize_with = "units::seconds")]
    pub length_seconds: Duration,
    pub origin: chrono::DateTime<chrono::Utc>,
    #[serde(deserialize_with = "units::seconds")]
    pub allowed_lateness_seconds: Duration,
    #[serde(deserialize_with = "units::seconds")]
    pub idle_timeout_seconds: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InferConfig {
    pub group_id: String,
    /// With `instance`, the producer's id is `<transactional_id>-<instance>`; without, this.
    pub transactional_id: String,
    /// This replica's ordinal: unique among live replicas, the same across its restarts.
    pub instance: Option<u32>,
    pub batch_size: usize,
    #[serde(deserialize_with = "units::millis")]
    pub batch_wait_ms: Duration,
    #[serde(deserialize_with = "units::millis")]
    pub session_timeout_ms: Duration,
    pub model_dir: std::path::PathBuf,
    pub baseline_history_minutes: i64,
    /// Pause before retrying a batch that failed transiently.
    #[serde(deserialize_with = "units::millis")]
    pub retry_ms: Duration,
    /// Pause before retrying after a systemic failure (the deployment must be fixed first).
    #[serde(deserialize_with = "units::millis")]
    pub systemic_retry_ms: Duration,
    /// Failing without a committed batch for this long makes the worker not ready.
    #[serde(deserialize_with = "units::millis")]
    pub unready_after_ms: Duration,
    pub listen: SocketAddr,
}

impl InferConfig {
    /// Stable across restarts of one replica (so a restart fences its predecessor's open
    /// transaction at once) and distinct between replicas (so they never fence each other).
    pub fn transactional_id(&self) -> String {
        match self.instance {
            Some(ordinal) => format!("{}-{ordinal}", self.transactional_id),
            None => self.transactional_id.clone(),
        }
    }

    /// Static group membership tied to the same ordinal: a restarted replica gets its
    /// partitions back without a rebalance.
    pub fn group_instance_id(&self) -> Option<String> {
        self.instance.map(|ordinal| format!("{}-{ordinal}", self.group_id))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    pub transactional_id: String,
    #[serde(deserialize_with = "units::millis")]
    pub poll_interval_ms: Duration,
    pub batch_size: i64,
    /// Back-off after a transient failure, doubling up to `retry_max_ms`.
    #[serde(deserialize_with = "units::millis")]
    pub retry_initial_ms: Duration,
    #[serde(deserialize_with = "units::millis")]
    pub retry_max_ms: Duration,
    /// The pause between attempts while a systemic failure (the deployment) stops the relay.
    #[serde(deserialize_with = "units::millis")]
    pub systemic_retry_ms: Duration,
    /// How often the lock holder proves its lock session alive (and gives up the lead when the
    /// answer takes longer than this), and how often a standby tries to take the lock.
    #[serde(deserialize_with = "units::millis")]
    pub lock_check_ms: Duration,
    /// The server ends a lock session that sent nothing for this long (idle_session_timeout),
    /// releasing the lock of a holder that hangs or lost its network.
    #[serde(deserialize_with = "units::millis")]
    pub lock_release_ms: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    pub secret_key: Secret,
    /// Larger request bodies get 413.
    pub body_limit_bytes: usize,
    #[serde(deserialize_with = "units::millis")]
    pub request_timeout_ms: Duration,
    /// Browser origins allowed to call the API; `["*"]` allows any, empty allows none.
    pub cors_origins: Vec<String>,
    /// How often in-memory usage counters and key last-use times are written to the database.
    #[serde(deserialize_with = "units::millis")]
    pub usage_flush_ms: Duration,
    /// Registrations allowed per client address and hour (the route needs no key to limit by).
    pub register_per_hour: u32,
    /// Proxies in front of the API that append to `X-Forwarded-For`: the client address is
    /// that many entries from the right. 0 trusts no header and uses the peer address.
    pub trusted_proxy_hops: usize,
    /// How often a WebSocket session re-checks that its key and system are still valid.
    #[serde(deserialize_with = "units::millis")]
    pub ws_recheck_ms: Duration,
    /// Live WebSocket sessions one user may hold open at once (429 beyond).
    pub ws_sessions_per_user: usize,
    /// Lookups of API keys no cache answers, per client address and minute (429 beyond): a
    /// flood of random keys costs at most this many queries per address.
    pub key_lookups_per_minute: u32,
    /// Refused keys remembered by hash (at most this many, for `unknown_keys_cache_seconds`),
    /// so a client repeating a wrong or revoked key costs no query.
    pub unknown_keys_cached: usize,
    #[serde(deserialize_with = "units::seconds")]
    pub unknown_keys_cache_seconds: Duration,
    /// Rows one raw-readings page or one sub-minute bucket query may read from `readings`
    /// (422 naming the parameter beyond).
    pub max_rows_scanned: i64,
    pub tiers: TiersConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TiersConfig {
    pub free: TierLimits,
    pub pro: TierLimits,
    pub enterprise: TierLimits,
}

impl TiersConfig {
    pub fn get(&self, tier: &str) -> &TierLimits {
        match tier {
            "enterprise" => &self.enterprise,
            "pro" => &self.pro,
            _ => &self.free,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierLimits {
    pub requests_per_minute: u32,
    /// Requests allowed at once above the steady rate.
    pub burst: u32,
    pub max_systems: i64,
    pub readings_per_day: i64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GnnConfig {
    pub service_url: Option<String>,
    #[serde(deserialize_with = "units::millis")]
    pub timeout_ms: Duration,
    pub attempts: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    pub log_level: String,
    /// OTLP/HTTP base URL (`/v1/traces` is appended) to export traces to; unset or empty, no
    /// export. `OTEL_EXPORTER_OTLP_ENDPOINT` sets it too.
    pub otlp_endpoint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Text,
}

impl DatabaseConfig {
    /// Takes the TLS parameters out of the URL (see [`pg_tls`]); a bad value or a missing
    /// certificate file is a configuration error, reported before anything connects.
    pub fn resolve_tls(&mut self, home: Option<&std::path::Path>) -> Result<(), ConfigError> {
        let (tls, rest) = pg_tls::PgTls::from_connection_string(self.url.expose(), home)
            .map_err(|why| ConfigError::Invalid { key: "database.url".to_owned(), why })?;
        self.tls = tls;
        self.driver_url = Some(DatabaseUrl::new(&rest));
        Ok(())
    }

    /// The connection string tokio-postgres is given.
    pub fn driver_url(&self) -> &str {
        self.driver_url.as_ref().unwrap_or(&self.url).expose()
    }
}

const DEVELOPMENT_SECRET: &str = "development-only-secret-key-change-me";

impl Config {
    /// Loads the layered configuration; `env` is the process environment (or a test's map).
    pub fn load(sources: &Sources, env: &BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let mut config: Config = load::layered(sources, env)?;
        config.database.resolve_tls(env.get("HOME").map(std::path::Path::new))?;
        config.check()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod registry_tests;
