//! The record size limit of each topic the relay writes, read once from the broker and cached.

use std::collections::HashMap;

use super::limits::{PRODUCER_DEFAULT_MAX_BYTES, effective};
use crate::config::KafkaConfig;

pub struct TopicLimits {
    kafka: KafkaConfig,
    /// The producer's `message.max.bytes`.
    producer: usize,
    /// A topic's `max.message.bytes`; `None` when the broker would not say (no describe
    /// permission, say): the producer's limit applies alone.
    topics: HashMap<String, Option<usize>>,
}

impl TopicLimits {
    /// Reads the limits of `topics`. The producer's limit is the operator's `message.max.bytes`
    /// when set, else raised to the largest topic limit, so that a dead letter of a maximal
    /// input message (the dead-letter topic has room for it) is not cut by the client.
    pub async fn read(kafka: &KafkaConfig, topics: &[&str]) -> Self {
        let mut limits = Self { kafka: kafka.clone(), producer: PRODUCER_DEFAULT_MAX_BYTES, topics: HashMap::new() };
        for topic in topics {
            limits.fetch(topic).await;
        }
        limits.producer = match operator_limit(kafka) {
            Some(bytes) => bytes,
            None => limits.topics.values().flatten().copied().fold(PRODUCER_DEFAULT_MAX_BYTES, usize::max),
        };
        limits
    }

    pub fn producer(&self) -> usize {
        self.producer
    }

    /// A batch size no topic refuses: librdkafka fills batches up to `batch.size`, and the
    /// broker counts a whole batch against the topic's limit.
    pub fn batch_size(&self) -> usize {
        self.topics.values().flatten().copied().fold(PRODUCER_DEFAULT_MAX_BYTES, usize::min)
    }

    pub async fn limit(&mut self, topic: &str) -> usize {
        let topic_limit = match self.topics.get(topic) {
            Some(limit) => *limit,
            None => self.fetch(topic).await,
        };
        effective(self.producer, topic_limit)
    }

    /// The broker refused a record as too large: its idea of the limit changed (an operator
    /// altered the topic); read it again before the next attempt.
    pub fn forget(&mut self, topic: &str) {
        self.topics.remove(topic);
    }

    async fn fetch(&mut self, topic: &str) -> Option<usize> {
        let limit = match crate::kafka::topics::max_message_bytes(&self.kafka, &[topic]).await {
            Ok(found) => found.get(topic).copied(),
            Err(err) => {
                tracing::warn!(topic, error = %err, "cannot read the topic's max.message.bytes; using the producer's limit alone");
                None
            }
        };
        self.topics.insert(topic.to_owned(), limit);
        limit
    }
}

fn operator_limit(kafka: &KafkaConfig) -> Option<usize> {
    kafka.client.iter().find(|(k, _)| *k == "message.max.bytes").and_then(|(_, v)| v.parse().ok())
}
