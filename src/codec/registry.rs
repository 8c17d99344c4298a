//! `manifold schemas register`: every bundled schema under `<topic>-value` (TopicNameStrategy).

use schema_registry_converter::async_impl::schema_registry::post_schema;
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};

use super::{CodecError, client, registry_settings, schemas};
use crate::config::{SchemaRegistryConfig, TopicsConfig};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub subject: String,
    pub id: u32,
}

/// Subjects and the schema each carries.
pub fn subjects(topics: &TopicsConfig) -> Vec<(String, &'static str)> {
    vec![
        (format!("{}-value", topics.batches.name), schemas::SENSOR_BATCH),
        (format!("{}-value", topics.windows_ready.name), schemas::WINDOW_READY),
        (format!("{}-value", topics.scores.name), schemas::ANOMALY_SCORES),
        (format!("{}-value", topics.alerts.name), schemas::ALERT_EVENTS),
    ]
}

/// Registers each schema; an identical schema already there keeps its id.
pub async fn register_all(registry: &SchemaRegistryConfig, topics: &TopicsConfig) -> Result<Vec<Registered>, CodecError> {
    let settings = registry_settings(registry)?;
    let mut out = Vec::new();
    for (subject, schema) in subjects(topics) {
        let supplied = SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned());
        let registered = post_schema(&settings, subject.clone(), supplied).await.map_err(|e| {
            if let Some(refused) = client::refused_credentials(&e) {
                return refused;
            }
            let text = format!("{subject}: {}", client::describe(&e));
            if e.retriable { CodecError::Unavailable(text) } else { CodecError::Encode(text) }
        })?;
        out.push(Registered { subject, id: registered.id });
    }
    Ok(out)
}
