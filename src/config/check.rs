//! Cross-field rules of the configuration, checked once at load time.

use super::*;

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
