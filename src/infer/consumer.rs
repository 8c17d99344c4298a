//! The window-ready consumer's context (rebalances move the signal that keeps a revoked batch
//! from being committed, librdkafka's statistics the consumer-lag gauge) and its positions: the
//! offsets a batch commits, and the seek back when a batch fails.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use prometheus::IntGaugeVec;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::statistics::Statistics;
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use super::health::RebalanceSignal;

pub struct InferContext {
    signal: RebalanceSignal,
    topic: String,
    lag: IntGaugeVec,
}

impl InferContext {
    pub fn new(signal: RebalanceSignal, topic: &str, lag: IntGaugeVec) -> Self {
        Self { signal, topic: topic.to_owned(), lag }
    }
}

pub type InferConsumer = StreamConsumer<InferContext>;

impl ClientContext for InferContext {
    fn stats(&self, statistics: Statistics) {
        crate::kafka::lag::record(&statistics, &self.topic, &self.lag);
    }
}

impl ConsumerContext for InferContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        self.signal.before_rebalance(rebalance);
    }
}

/// The next offset of every partition in the batch: what the transaction commits.
pub(super) fn next_offsets(batch: &[BorrowedMessage<'_>]) -> TopicPartitionList {
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for m in batch {
        let slot = next.entry((m.topic().to_owned(), m.partition())).or_insert(0);
        *slot = (*slot).max(m.offset() + 1);
    }
    let mut tpl = TopicPartitionList::new();
    for ((topic, partition), offset) in next {
        let _ = tpl.add_partition_offset(&topic, partition, Offset::Offset(offset));
    }
    tpl
}

/// Seeks each partition of a failed batch back to its first message, to consume it again.
pub(super) fn rewind(consumer: &InferConsumer, batch: &[BorrowedMessage<'_>]) -> bool {
    let mut first: HashMap<(String, i32), i64> = HashMap::new();
    for m in batch {
        let slot = first.entry((m.topic().to_owned(), m.partition())).or_insert(i64::MAX);
        *slot = (*slot).min(m.offset());
    }
    first.into_iter().all(|((topic, partition), offset)| {
        consumer.seek(&topic, partition, Offset::Offset(offset), Duration::from_secs(5)).is_ok()
    })
}
