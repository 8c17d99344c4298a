//! The window-ready consumer's context: rebalances move the signal that keeps a revoked batch
//! from being committed, librdkafka's statistics the consumer-lag gauge.

use prometheus::IntGaugeVec;
use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::statistics::Statistics;

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
