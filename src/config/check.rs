//! Cross-field rules of the configuration, checked once at load time.

use super::*;

const SECOND: Duration = Duration::from_secs(1);
const BROKER_MAX_TRANSACTION: Duration = Duration::from_secs(900);
const BROKER_MAX_SESSION: Duration = Duration::from_secs(1800);

impl Config {
    /// Cross-field rules that a type alone cannot express.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, why: String| Err(ConfigError::Invalid { key: key.to_owned(), why });
        if self.shutdown_deadline_seconds.is_zero() {
            return invalid("shutdown_deadline_seconds", "must be at least 1: work in hand needs time to finish".into());
        }
        if self.database.pool_size == 0 {
            return invalid("database.pool_size", "must be at least 1".into());
        }
        if self.storage.retention_days == 0 {
            return invalid("storage.retention_days", "must be at least 1".into());
        }
        if self.storage.maintenance_interval_seconds.is_zero() {
            return invalid("storage.maintenance_interval_seconds", "must be at least 1".into());
        }
        if self.topics.replication_factor < 1 {
            return invalid("topics.replication_factor", "must be at least 1".into());
        }
        let mut names = Vec::new();
        for (role, topic) in self.topics.all() {
            if self.topics.partitions_of(topic) < 1 {
                return invalid(&format!("topics.{role}.partitions"), "must be at least 1".into());
            }
            if topic.name.trim().is_empty() {
                return invalid(&format!("topics.{role}.name"), "must not be empty".into());
            }
            if names.contains(&topic.name) {
                return invalid(
                    &format!("topics.{role}.name"),
                    format!("topic {:?} is already used by another role", topic.name),
                );
            }
            names.push(topic.name.clone());
        }
        if self.ingest.chunk_max_readings < self.ingest.max_batch_readings.min(1) || self.ingest.chunk_max_readings == 0 {
            return invalid("ingest.chunk_max_readings", "must be at least 1".into());
        }
        if self.ingest.retry_initial_ms.is_zero() || self.ingest.retry_max_ms < self.ingest.retry_initial_ms {
            return invalid("ingest.retry_max_ms", "needs 0 < retry_initial_ms <= retry_max_ms".into());
        }
        if self.windows.length_seconds.is_zero() || self.windows.idle_timeout_seconds.is_zero() {
            return invalid("windows.length_seconds", "windows.length_seconds and idle_timeout_seconds must be at least 1".into());
        }
        if self.kafka.brokers.trim().is_empty() {
            return invalid("kafka.brokers", "must name at least one broker".into());
        }
        for (key, url) in [
            ("schema_registry.url", Some(&self.schema_registry.url)),
            ("gnn.service_url", self.gnn.service_url.as_ref()),
        ] {
            if let Some(url) = url
                && reqwest::Url::parse(url).is_err()
            {
                return invalid(key, format!("{url:?} is not a URL"));
            }
        }
        self.schema_registry.check()?;
        self.alerts.check()?;
        if let Some(url) = self.telemetry.otlp_endpoint.as_deref().map(str::trim).filter(|u| !u.is_empty())
            && !reqwest::Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
        {
            return invalid("telemetry.otlp_endpoint", format!("{url:?} is not an http(s) URL (OTLP/HTTP, e.g. http://127.0.0.1:4318)"));
        }
        for (tier, limits) in [("free", &self.api.tiers.free), ("pro", &self.api.tiers.pro), ("enterprise", &self.api.tiers.enterprise)] {
            if limits.requests_per_minute == 0 || limits.burst == 0 {
                return invalid(&format!("api.tiers.{tier}.requests_per_minute"), "requests_per_minute and burst must be at least 1".into());
            }
        }
        if self.api.ws_recheck_ms.is_zero() {
            return invalid("api.ws_recheck_ms", "must be at least 1".into());
        }
        if self.api.register_per_hour == 0 {
            return invalid("api.register_per_hour", "must be at least 1".into());
        }
        if self.api.body_limit_bytes < 1024 || self.api.request_timeout_ms.is_zero() || self.api.usage_flush_ms.is_zero() {
            return invalid("api.body_limit_bytes", "needs body_limit_bytes >= 1024 and non-zero request_timeout_ms and usage_flush_ms".into());
        }
        for origin in &self.api.cors_origins {
            if origin != "*" && axum::http::HeaderValue::from_str(origin).is_err() {
                return invalid("api.cors_origins", format!("{origin:?} is not a valid origin"));
            }
        }
        if self.env == Environment::Production && self.api.secret_key.expose() == DEVELOPMENT_SECRET {
            return invalid("api.secret_key", "production needs its own SECRET_KEY".into());
        }
        if self.infer.retry_ms.is_zero() || self.infer.systemic_retry_ms.is_zero() || self.infer.batch_size == 0 {
            return invalid("infer.retry_ms", "infer.retry_ms, systemic_retry_ms and batch_size must be at least 1".into());
        }
        self.check_timeouts()
    }

    /// Timeouts bound how long a fault can hold progress (see [`super::recovery`]): each must
    /// be set, and those that work together must fit each other.
    fn check_timeouts(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, why: String| Err(ConfigError::Invalid { key: key.to_owned(), why });
        let db = &self.database;
        if db.connect_timeout_ms.is_zero() {
            return invalid("database.connect_timeout_ms", "must be at least 1: an unanswered connect would wait forever".into());
        }
        if db.statement_timeout_ms <= self.storage.lock_timeout_ms {
            return invalid(
                "database.statement_timeout_ms",
                format!("must be longer than storage.lock_timeout_ms ({} ms), so waiting for a lock gives up first", self.storage.lock_timeout_ms.as_millis()),
            );
        }
        // The server's tcp_keepalives_* settings are whole seconds.
        if db.keepalives_idle_ms < SECOND || db.keepalives_interval_ms < SECOND || db.keepalives_retries == 0 {
            return invalid("database.keepalives_idle_ms", "keepalives_idle_ms and keepalives_interval_ms must be at least 1000, keepalives_retries at least 1".into());
        }
        let probing = db.keepalives_idle_ms + db.keepalives_interval_ms * db.keepalives_retries;
        if db.tcp_user_timeout_ms < probing {
            return invalid(
                "database.tcp_user_timeout_ms",
                format!("must be at least keepalives_idle_ms + keepalives_interval_ms × keepalives_retries ({} ms), or it cuts the probes short", probing.as_millis()),
            );
        }
        let kafka = &self.kafka;
        if kafka.request_timeout_ms.is_zero() || kafka.transaction_timeout_ms <= kafka.request_timeout_ms {
            return invalid("kafka.transaction_timeout_ms", "needs 0 < request_timeout_ms < transaction_timeout_ms: a transaction must outlive one request".into());
        }
        if kafka.transaction_timeout_ms > BROKER_MAX_TRANSACTION {
            return invalid("kafka.transaction_timeout_ms", "must be at most 900000 (the broker's default transaction.max.timeout.ms)".into());
        }
        for (key, timeout) in [("ingest.session_timeout_ms", self.ingest.session_timeout_ms), ("infer.session_timeout_ms", self.infer.session_timeout_ms)] {
            if !(SECOND..=BROKER_MAX_SESSION).contains(&timeout) {
                return invalid(key, "must be between 1000 and 1800000 (the broker's default group.max.session.timeout.ms)".into());
            }
        }
        let relay = &self.relay;
        if relay.lock_check_ms < Duration::from_millis(100) || relay.lock_release_ms < relay.lock_check_ms * 2 {
            return invalid("relay.lock_release_ms", "needs lock_check_ms >= 100 and lock_release_ms >= 2 × lock_check_ms: a live holder is never silent longer than one check and its answer".into());
        }
        Ok(())
    }

    /// Rules only a process that runs infer needs: an API or ingest replica in production does
    /// not have to invent an infer ordinal it never uses.
    pub fn check_for_infer(&self) -> Result<(), ConfigError> {
        // Replicas sharing the default id would fence each other's transactions in turn.
        if self.env == Environment::Production && self.infer.instance.is_none() {
            return Err(ConfigError::Invalid {
                key: "infer.instance".into(),
                why: "production needs an explicit ordinal per infer replica (MANIFOLD__INFER__INSTANCE=0, 1, ...; e.g. a StatefulSet pod's ordinal): the transactional id and static group membership derive from it".into(),
            });
        }
        Ok(())
    }
}
