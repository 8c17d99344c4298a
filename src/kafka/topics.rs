//! `manifold topics create`: the four topics of the design and the relay's position topic,
//! idempotently.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::{KafkaError, client_config};
use crate::config::{KafkaConfig, TopicsConfig};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicOutcome {
    Created { partitions: i32 },
    /// Already there; `partitions` is what the broker has, which may differ from the config.
    Exists { partitions: i32 },
}

#[derive(Debug, Clone)]
pub struct TopicResult {
    pub role: &'static str,
    pub name: String,
    pub outcome: TopicOutcome,
    pub configured_partitions: i32,
}

impl TopicResult {
    /// A topic that exists with another partition count: keys would map differently than planned.
    /// Adding partitions moves keys, so this is reported, never "fixed" automatically.
    pub fn partition_mismatch(&self) -> bool {
        matches!(self.outcome, TopicOutcome::Exists { partitions } if partitions != self.configured_partitions)
    }
}

pub async fn create(kafka: &KafkaConfig, topics: &TopicsConfig) -> Result<Vec<TopicResult>, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client_config(kafka)
        .create()
        .map_err(|e| KafkaError::Config(e.to_string()))?;
    let timeout = Duration::from_millis(kafka.request_timeout_ms);
    let retention: Vec<(String, String)> = topics
        .all()
        .iter()
        .map(|(_, t)| (t.name.clone(), (t.retention_hours * 3_600_000).to_string()))
        .collect();
    let new_topics: Vec<NewTopic> = topics
        .all()
        .iter()
        .zip(&retention)
        .map(|((role, topic), (_, retention_ms))| {
            // The relay position is a latest-value log: compaction keeps the newest per key.
            let cleanup = if *role == "relay_position" { "compact" } else { "delete" };
            NewTopic::new(&topic.name, topics.partitions_of(topic), TopicReplication::Fixed(topics.replication_factor))
                .set("retention.ms", retention_ms)
                .set("cleanup.policy", cleanup)
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(|source| KafkaError::Client { context: "create topics", source })?;

    let metadata = admin
        .inner()
        .fetch_metadata(None, timeout)
        .map_err(|source| KafkaError::Client { context: "read topic metadata", source })?;
    let mut report = Vec::new();
    for ((role, topic), result) in topics.all().into_iter().zip(results) {
        let configured = topics.partitions_of(topic);
        let outcome = match result {
            Ok(_) => TopicOutcome::Created { partitions: configured },
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {
                let partitions = metadata
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic.name)
                    .map_or(0, |t| t.partitions().len() as i32);
                TopicOutcome::Exists { partitions }
            }
            Err((name, code)) => return Err(KafkaError::Topic { topic: name, message: code.to_string() }),
        };
        report.push(TopicResult { role, name: topic.name.clone(), outcome, configured_partitions: configured });
    }
    Ok(report)
}
