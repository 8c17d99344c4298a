//! `manifold topics create`: the four topics of the design and the relay's position topic,
//! idempotently; and reading a topic's record size limit back from the broker.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::{KafkaError, client_config};
use crate::config::{KafkaConfig, TopicConfig, TopicsConfig};
use crate::domain::TopicRole;

/// Room for the headers a dead letter carries beyond the input message (error kind and message
/// of at most 1 KiB, source, time, sequence, …): with it a maximal input message always fits on
/// the dead-letter topic whole.
pub const DEAD_LETTER_HEADER_ROOM: usize = 64 * 1024;

const MAX_MESSAGE_BYTES: &str = "max.message.bytes";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicOutcome {
    Created { partitions: i32 },
    /// Already there; `partitions` is what the broker has, which may differ from the config.
    Exists { partitions: i32 },
}

#[derive(Debug, Clone)]
pub struct TopicResult {
    pub role: TopicRole,
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

fn admin(kafka: &KafkaConfig) -> Result<AdminClient<DefaultClientContext>, KafkaError> {
    client_config(kafka).create().map_err(|e| KafkaError::Config(e.to_string()))
}

/// Creates the topics. The dead-letter topic is created last, once the input topic's limit can
/// be read, with that limit plus [`DEAD_LETTER_HEADER_ROOM`].
pub async fn create(kafka: &KafkaConfig, topics: &TopicsConfig) -> Result<Vec<TopicResult>, KafkaError> {
    let admin = admin(kafka)?;
    let timeout = kafka.request_timeout_ms;
    let options = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
    let all = topics.all();
    let (dead_letters, others): (Vec<_>, Vec<_>) = all.iter().partition(|(role, _)| *role == TopicRole::DeadLetters);

    let mut results = create_some(&admin, topics, &others, None, &options).await?;
    let input_limit = max_message_bytes_with(&admin, &[topics.batches.name.as_str()], timeout).await?.get(&topics.batches.name).copied();
    let dead_letter_limit = input_limit.map(|limit| limit + DEAD_LETTER_HEADER_ROOM);
    results.extend(create_some(&admin, topics, &dead_letters, dead_letter_limit, &options).await?);

    let metadata = admin
        .inner()
        .fetch_metadata(None, timeout)
        .map_err(|source| KafkaError::Client { context: "read topic metadata", source })?;
    let mut report = Vec::new();
    for (role, topic) in all {
        let configured = topics.partitions_of(topic);
        let result = results.iter().find(|(name, _)| *name == topic.name).map(|(_, r)| *r).unwrap_or(Ok(()));
        let outcome = match result {
            Ok(()) => TopicOutcome::Created { partitions: configured },
            Err(RDKafkaErrorCode::TopicAlreadyExists) => {
                let partitions = metadata
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic.name)
                    .map_or(0, |t| t.partitions().len() as i32);
                TopicOutcome::Exists { partitions }
            }
            Err(code) => return Err(KafkaError::Topic { topic: topic.name.clone(), message: code.to_string() }),
        };
        report.push(TopicResult { role, name: topic.name.clone(), outcome, configured_partitions: configured });
    }
    if let (Some(want), Some(TopicResult { outcome: TopicOutcome::Exists { .. }, name, .. })) =
        (dead_letter_limit, report.iter().find(|r| r.role == TopicRole::DeadLetters))
    {
        let has = max_message_bytes_with(&admin, &[name.as_str()], timeout).await?.get(name.as_str()).copied();
        if has.is_some_and(|has| has < want) {
            tracing::warn!(
                topic = %name, max_message_bytes = has, wanted = want,
                "the dead-letter topic exists with a smaller limit than the input topic's plus header room; large dead letters will be published cut. Fix: kafka-configs --alter --entity-type topics --entity-name {name} --add-config max.message.bytes={want}"
            );
        }
    }
    Ok(report)
}

async fn create_some(
    admin: &AdminClient<DefaultClientContext>,
    topics: &TopicsConfig,
    which: &[&(TopicRole, &TopicConfig)],
    max_message_bytes: Option<usize>,
    options: &AdminOptions,
) -> Result<Vec<(String, Result<(), RDKafkaErrorCode>)>, KafkaError> {
    if which.is_empty() {
        return Ok(Vec::new());
    }
    let settings: Vec<(String, &'static str, Option<String>)> = which
        .iter()
        .map(|(role, topic)| {
            // The relay position is a latest-value log: compaction keeps the newest per key.
            let cleanup = if *role == TopicRole::RelayPosition { "compact" } else { "delete" };
            (topic.retention_hours.as_millis().to_string(), cleanup, max_message_bytes.map(|b| b.to_string()))
        })
        .collect();
    let new_topics: Vec<NewTopic> = which
        .iter()
        .zip(&settings)
        .map(|((_, topic), (retention_ms, cleanup, max_bytes))| {
            let mut new = NewTopic::new(&topic.name, topics.partitions_of(topic), TopicReplication::Fixed(topics.replication_factor))
                .set("retention.ms", retention_ms)
                .set("cleanup.policy", cleanup);
            if let Some(bytes) = max_bytes {
                new = new.set(MAX_MESSAGE_BYTES, bytes);
            }
            new
        })
        .collect();
    let results = admin
        .create_topics(&new_topics, options)
        .await
        .map_err(|source| KafkaError::Client { context: "create topics", source })?;
    Ok(which
        .iter()
        .zip(results)
        .map(|((_, topic), result)| (topic.name.clone(), result.map(drop).map_err(|(_, code)| code)))
        .collect())
}

/// Each topic's `max.message.bytes` as the broker has it (its own setting or the broker's
/// default). A topic the broker does not describe is left out; the caller falls back.
pub async fn max_message_bytes(kafka: &KafkaConfig, names: &[&str]) -> Result<HashMap<String, usize>, KafkaError> {
    let admin = admin(kafka)?;
    max_message_bytes_with(&admin, names, kafka.request_timeout_ms).await
}

async fn max_message_bytes_with(
    admin: &AdminClient<DefaultClientContext>,
    names: &[&str],
    timeout: Duration,
) -> Result<HashMap<String, usize>, KafkaError> {
    let specifiers: Vec<ResourceSpecifier> = names.iter().map(|n| ResourceSpecifier::Topic(n)).collect();
    let options = AdminOptions::new().request_timeout(Some(timeout));
    let mut limits = HashMap::new();
    // A topic created a moment ago may not be describable yet on every broker.
    for attempt in 0..5 {
        let results = admin
            .describe_configs(&specifiers, &options)
            .await
            .map_err(|source| KafkaError::Client { context: "describe topic configs", source })?;
        for (name, result) in names.iter().zip(results) {
            let value = result.ok().and_then(|r| r.get(MAX_MESSAGE_BYTES).and_then(|e| e.value.clone()));
            if let Some(bytes) = value.and_then(|v| v.parse::<usize>().ok()) {
                limits.insert((*name).to_owned(), bytes);
            }
        }
        if limits.len() == names.len() || attempt == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(limits)
}
