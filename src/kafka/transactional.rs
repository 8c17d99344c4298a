//! A transactional producer: init (which fences the previous holder of its id), begin, commit
//! (alone or with a consumer's offsets) and abort, each failure a [`KafkaError::Transaction`].
//! librdkafka's transactional calls block until the coordinator answers, so they run off the
//! async threads; one that does not come back is a [`KafkaError::Join`].

use std::time::Duration;

use rdkafka::TopicPartitionList;
use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::producer::{FutureProducer, Producer};
use rdkafka::types::RDKafkaErrorCode;

use super::{KafkaError, build_producer};
use crate::config::KafkaConfig;

/// Settings every transactional producer shares: a short linger (a transaction's records go
/// out together at commit anyway); the transaction timeout is `kafka.transaction_timeout_ms`.
const TRANSACTIONAL: [(&str, &str); 1] = [("linger.ms", "5")];

#[derive(Clone)]
pub struct TxProducer {
    producer: FutureProducer,
    /// How long a transactional call waits for the coordinator.
    timeout: Duration,
}

impl TxProducer {
    /// A stable `transactional.id` fences the previous instance's open transaction as soon as
    /// this one calls [`TxProducer::init`].
    pub fn new(config: &KafkaConfig, transactional_id: &str, timeout: Duration) -> Result<Self, KafkaError> {
        Self::with(config, transactional_id, &[], timeout)
    }

    /// The relay's: `max_bytes` is its `message.max.bytes` (the largest record any of its topics
    /// takes, so a maximal dead letter is not refused by the client); `batch_size` keeps a batch
    /// of several records under the smallest topic limit, since the broker counts a whole batch
    /// against `max.message.bytes`.
    pub fn for_relay(config: &KafkaConfig, transactional_id: &str, max_bytes: usize, batch_size: usize, timeout: Duration) -> Result<Self, KafkaError> {
        let (max_bytes, batch_size) = (max_bytes.max(1000).to_string(), batch_size.max(1).to_string());
        Self::with(config, transactional_id, &[("message.max.bytes", &max_bytes), ("batch.size", &batch_size)], timeout)
    }

    fn with(config: &KafkaConfig, transactional_id: &str, extra: &[(&str, &str)], timeout: Duration) -> Result<Self, KafkaError> {
        let transaction_timeout = config.transaction_timeout_ms.as_millis().to_string();
        let mut settings = vec![("transactional.id", transactional_id), ("transaction.timeout.ms", transaction_timeout.as_str())];
        settings.extend(TRANSACTIONAL);
        settings.extend_from_slice(extra);
        Ok(Self { producer: build_producer(config, &settings)?, timeout })
    }

    /// The producer, to send the transaction's records with.
    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }

    /// Why librdkafka holds the producer unusable, if it does (a fatal error reports only that
    /// it is fatal; this says which).
    pub fn fatal_error(&self) -> Option<(RDKafkaErrorCode, String)> {
        self.producer.client().fatal_error()
    }

    pub async fn init(&self) -> Result<(), KafkaError> {
        let timeout = self.timeout;
        self.blocking("init transactions", move |p| p.init_transactions(timeout)).await
    }

    pub fn begin(&self) -> Result<(), KafkaError> {
        self.producer.begin_transaction().map_err(|source| KafkaError::Transaction { context: "begin transaction", source })
    }

    pub async fn commit(&self) -> Result<(), KafkaError> {
        self.settle().await;
        let timeout = self.timeout;
        self.blocking("commit transaction", move |p| p.commit_transaction(timeout)).await
    }

    /// Commits the records together with a consumer's next offsets: the consumed input and the
    /// produced output become visible at once, or neither does.
    pub async fn commit_with_offsets(&self, offsets: TopicPartitionList, group: ConsumerGroupMetadata) -> Result<(), KafkaError> {
        self.settle().await;
        let timeout = self.timeout;
        self.blocking("commit transaction with the consumed offsets", move |p| {
            p.send_offsets_to_transaction(&offsets, &group, timeout)?;
            p.commit_transaction(timeout)
        })
        .await
    }

    /// Nothing of an aborted transaction is visible to read_committed readers.
    pub async fn abort(&self) -> Result<(), KafkaError> {
        let timeout = self.timeout;
        self.blocking("abort transaction", move |p| p.abort_transaction(timeout)).await
    }

    /// Waits (up to the API timeout) until the transaction's records are delivered. rdkafka's
    /// commit first flushes, polling the producer's queue for up to 100 ms at a time, but the
    /// producer's own thread serves that queue: whenever a record was still in flight, the flush
    /// slept the whole 100 ms, which was most of every transaction (107 ms of infer's 110 ms per
    /// batch). Records in flight are delivered in a few milliseconds; after them the flush
    /// returns at once. A record that fails is reported by the commit, as before.
    async fn settle(&self) {
        let deadline = tokio::time::Instant::now() + self.timeout;
        while self.producer.in_flight_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    async fn blocking<F>(&self, context: &'static str, call: F) -> Result<(), KafkaError>
    where
        F: FnOnce(&FutureProducer) -> rdkafka::error::KafkaResult<()> + Send + 'static,
    {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || call(&producer))
            .await
            .map_err(|source| KafkaError::Join { context, source })?
            .map_err(|source| KafkaError::Transaction { context, source })
    }
}
