//! The input topic's consumer: configuration, rebalance events and partition control.
//!
//! Rebalance callbacks are synchronous and run inside librdkafka's poll, so they only report
//! what happened; the service loop reacts (pause, read the stored offsets, seek, resume) once
//! the assignment is active. Seeking inside the callback fails (librdkafka #3959).

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio::sync::mpsc::UnboundedSender;

use super::metrics::IngestMetrics;
use crate::config::{IngestConfig, KafkaConfig};
use crate::kafka::{KafkaError, client_config};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebalanceEvent {
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

pub struct IngestContext {
    topic: String,
    events: UnboundedSender<RebalanceEvent>,
    metrics: IngestMetrics,
}

fn partitions_of(topic: &str, list: &TopicPartitionList) -> Vec<i32> {
    list.elements_for_topic(topic).iter().map(|e| e.partition()).collect()
}

impl ClientContext for IngestContext {
    fn stats(&self, statistics: Statistics) {
        if let Some(topic) = statistics.topics.get(&self.topic) {
            for (id, partition) in &topic.partitions {
                if *id >= 0 && partition.consumer_lag >= 0 {
                    self.metrics.consumer_lag.with_label_values(&[&id.to_string()]).set(partition.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for IngestContext {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(list) = rebalance {
            let _ = self.events.send(RebalanceEvent::Revoked(partitions_of(&self.topic, list)));
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(list) = rebalance {
            let _ = self.events.send(RebalanceEvent::Assigned(partitions_of(&self.topic, list)));
        }
    }
}

pub type IngestConsumer = StreamConsumer<IngestContext>;

pub fn create(
    kafka: &KafkaConfig,
    ingest: &IngestConfig,
    topic: &str,
    metrics: IngestMetrics,
    events: UnboundedSender<RebalanceEvent>,
) -> Result<IngestConsumer, KafkaError> {
    let mut config = client_config(kafka);
    config
        .set("group.id", &ingest.group_id)
        // Positions live in PostgreSQL with the data; Kafka's copy is only for lag tools.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Devices that produce transactionally must never have aborted batches stored.
        .set("isolation.level", "read_committed")
        .set("queued.max.messages.kbytes", ingest.queued_max_kbytes.to_string())
        .set("fetch.max.bytes", "8388608")
        .set("statistics.interval.ms", "5000")
        .set("session.timeout.ms", ingest.session_timeout_ms.as_millis().to_string());
    if let Some(instance) = &ingest.instance_id {
        config.set("group.instance.id", instance);
    }
    for (key, value) in kafka.client.iter() {
        config.set(key, value);
    }
    let context = IngestContext { topic: topic.to_owned(), events, metrics };
    let consumer: IngestConsumer = config.create_with_context(context).map_err(|e| KafkaError::Config(e.to_string()))?;
    consumer.subscribe(&[topic]).map_err(|source| KafkaError::Client { context: "subscribe", source })?;
    Ok(consumer)
}

fn list(topic: &str, partitions: &[i32]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        tpl.add_partition(topic, *p);
    }
    tpl
}

pub fn pause(consumer: &IngestConsumer, topic: &str, partitions: &[i32]) {
    if partitions.is_empty() {
        return;
    }
    if let Err(err) = consumer.pause(&list(topic, partitions)) {
        tracing::debug!(error = %err, "pause failed (partition no longer assigned)");
    }
}

pub fn resume(consumer: &IngestConsumer, topic: &str, partitions: &[i32]) {
    if partitions.is_empty() {
        return;
    }
    if let Err(err) = consumer.resume(&list(topic, partitions)) {
        tracing::debug!(error = %err, "resume failed (partition no longer assigned)");
    }
}

/// Seeks each partition to its stored offset (None: the beginning). Returns the partitions
/// whose seek failed, to be retried.
pub fn seek(consumer: &IngestConsumer, topic: &str, targets: &[(i32, Option<i64>)]) -> Vec<i32> {
    let mut tpl = TopicPartitionList::new();
    for (p, offset) in targets {
        let offset = offset.map_or(Offset::Beginning, Offset::Offset);
        if tpl.add_partition_offset(topic, *p, offset).is_err() {
            tracing::warn!(partition = p, "invalid seek offset");
        }
    }
    match consumer.seek_partitions(tpl, Duration::from_secs(5)) {
        Ok(result) => result
            .elements_for_topic(topic)
            .iter()
            .filter(|e| e.error().is_err())
            .map(|e| e.partition())
            .collect(),
        Err(err) => {
            tracing::warn!(error = %err, "seek failed; will retry");
            targets.iter().map(|(p, _)| *p).collect()
        }
    }
}

/// Copies the stored positions to Kafka's group offsets, for lag tools only.
pub fn commit_for_lag_tools(consumer: &IngestConsumer, topic: &str, next: &[(i32, i64)]) {
    let mut tpl = TopicPartitionList::new();
    for (p, offset) in next {
        let _ = tpl.add_partition_offset(topic, *p, Offset::Offset(*offset));
    }
    if let Err(err) = consumer.commit(&tpl, rdkafka::consumer::CommitMode::Async) {
        tracing::debug!(error = %err, "kafka offset commit (informational) failed");
    }
}
