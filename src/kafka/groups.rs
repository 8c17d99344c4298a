//! A consumer group seen from outside, for the on-call CLI: who is in it, where Kafka thinks it
//! is, the topic's watermarks, offsets by time, and committing offsets on the group's behalf.
//! The client never joins the group: it only asks the group coordinator and the partition leaders.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, DefaultConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::KafkaError;
use crate::config::KafkaConfig;

/// One consumer the group coordinator lists as a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    pub client_id: String,
    pub host: String,
}

/// A partition as Kafka sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMarks {
    pub partition: i32,
    /// The oldest offset still in the log.
    pub low: i64,
    /// The offset the next message will get.
    pub high: i64,
    /// The group's committed offset, if it has one.
    pub committed: Option<i64>,
}

pub struct GroupAdmin {
    consumer: Arc<BaseConsumer<DefaultConsumerContext>>,
    group: String,
    timeout: Duration,
}

impl GroupAdmin {
    pub fn new(config: &KafkaConfig, group: &str) -> Result<Self, KafkaError> {
        let consumer = super::consumer(config, group, &[], DefaultConsumerContext)?;
        Ok(Self { consumer: Arc::new(consumer), group: group.to_owned(), timeout: config.request_timeout_ms.max(Duration::from_secs(5)) })
    }

    pub fn group(&self) -> &str {
        &self.group
    }

    /// Every librdkafka call here blocks until the broker answers, so none runs on the async threads.
    async fn blocking<R, F>(&self, context: &'static str, call: F) -> Result<R, KafkaError>
    where
        R: Send + 'static,
        F: FnOnce(&BaseConsumer<DefaultConsumerContext>, Duration) -> rdkafka::error::KafkaResult<R> + Send + 'static,
    {
        let (consumer, timeout) = (self.consumer.clone(), self.timeout);
        tokio::task::spawn_blocking(move || call(&consumer, timeout))
            .await
            .map_err(|source| KafkaError::Join { context, source })?
            .map_err(|source| KafkaError::Client { context, source })
    }

    /// The group's current members (empty when no consumer of the group is running).
    pub async fn members(&self) -> Result<Vec<GroupMember>, KafkaError> {
        let group = self.group.clone();
        self.blocking("describe the consumer group", move |c, timeout| {
            let list = c.fetch_group_list(Some(&group), timeout)?;
            Ok(list
                .groups()
                .iter()
                .filter(|g| g.name() == group)
                .flat_map(|g| g.members())
                .map(|m| GroupMember { client_id: m.client_id().to_owned(), host: m.client_host().to_owned() })
                .collect())
        })
        .await
    }

    /// The topic's partitions, in order; an unknown topic is an error that names it.
    pub async fn partitions(&self, topic: &str) -> Result<Vec<i32>, KafkaError> {
        let name = topic.to_owned();
        let found = self
            .blocking("read the topic's metadata", move |c, timeout| {
                let metadata = c.fetch_metadata(Some(&name), timeout)?;
                Ok(metadata
                    .topics()
                    .iter()
                    .find(|t| t.name() == name && t.error().is_none())
                    .map(|t| t.partitions().iter().map(|p| p.id()).collect::<Vec<_>>()))
            })
            .await?;
        match found {
            Some(mut partitions) if !partitions.is_empty() => {
                partitions.sort_unstable();
                Ok(partitions)
            }
            _ => Err(KafkaError::Topic { topic: topic.to_owned(), message: "does not exist (run `manifold topics create`)".into() }),
        }
    }

    /// Watermarks and the group's committed offset of each partition.
    pub async fn marks(&self, topic: &str, partitions: &[i32]) -> Result<Vec<PartitionMarks>, KafkaError> {
        let (name, wanted) = (topic.to_owned(), partitions.to_vec());
        self.blocking("read watermarks and committed offsets", move |c, timeout| {
            let committed = c.committed_offsets(list(&name, &wanted, Offset::Invalid), timeout)?;
            wanted
                .iter()
                .map(|&partition| {
                    let (low, high) = c.fetch_watermarks(&name, partition, timeout)?;
                    let committed = match committed.find_partition(&name, partition).map(|e| e.offset()) {
                        Some(Offset::Offset(offset)) => Some(offset),
                        _ => None,
                    };
                    Ok(PartitionMarks { partition, low, high, committed })
                })
                .collect()
        })
        .await
    }

    /// Per partition, the first offset whose message timestamp is at or after `time_ms`; None
    /// when every message is older (the caller resumes at the end).
    pub async fn offsets_for_time(&self, topic: &str, partitions: &[i32], time_ms: i64) -> Result<Vec<(i32, Option<i64>)>, KafkaError> {
        let (name, wanted) = (topic.to_owned(), partitions.to_vec());
        self.blocking("look up offsets by time", move |c, timeout| {
            let found = c.offsets_for_times(list(&name, &wanted, Offset::Offset(time_ms)), timeout)?;
            Ok(wanted
                .iter()
                .map(|&p| match found.find_partition(&name, p).map(|e| e.offset()) {
                    Some(Offset::Offset(offset)) => (p, Some(offset)),
                    _ => (p, None),
                })
                .collect())
        })
        .await
    }

    /// Commits `next` offsets for the group, so Kafka's lag tools agree with the stored ones.
    /// The broker accepts this only while the group has no members.
    pub async fn commit(&self, topic: &str, next: &[(i32, i64)]) -> Result<(), KafkaError> {
        if next.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for (partition, offset) in next {
            tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))
                .map_err(|source| KafkaError::Client { context: "list offsets to commit", source })?;
        }
        self.blocking("commit the group's offsets", move |c, _| c.commit(&tpl, CommitMode::Sync)).await
    }
}

fn list(topic: &str, partitions: &[i32], offset: Offset) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for &p in partitions {
        // Only a negative offset other than the logical ones is refused; none is passed here.
        let _ = tpl.add_partition_offset(topic, p, offset);
    }
    tpl
}
