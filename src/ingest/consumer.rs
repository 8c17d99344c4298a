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
use crate::kafka::KafkaError;

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
        crate::kafka::lag::record(&statistics, &self.topic, &self.metrics.consumer_lag);
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
    let (queued, session_timeout) = (ingest.queued_max_kbytes.to_string(), ingest.session_timeout_ms.as_millis().to_string());
    // A fetch response stays in memory until its last message is handed over, beside the
    // queue: one no larger than the queue keeps the peak near the bound (librdkafka refuses
    // less than one partition's fetch, 1 MB).
    let fetch = (ingest.queued_max_kbytes.max(1024) * 1024).to_string();
    let mut settings = vec![
        // Positions live in PostgreSQL with the data; Kafka's copy is only for lag tools.
        ("enable.auto.offset.store", "false"),
        ("queued.max.messages.kbytes", queued.as_str()),
        ("fetch.max.bytes", fetch.as_str()),
        crate::kafka::lag::STATISTICS_INTERVAL_MS,
        ("session.timeout.ms", session_timeout.as_str()),
    ];
    if let Some(instance) = &ingest.instance_id {
        settings.push(("group.instance.id", instance));
    }
    let context = IngestContext { topic: topic.to_owned(), events, metrics };
    // Read-committed too: devices that produce transactionally must never have aborted
    // batches stored.
    let consumer: IngestConsumer = crate::kafka::consumer(kafka, &ingest.group_id, &settings, context)?;
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
