//! The outbox relay: publishes outbox events (dead letters, window-ready events) to Kafka in
//! sequence order, exactly once.
//!
//! Each Kafka transaction carries a run of events and, on the compacted position topic, the
//! last sequence it holds. On start the relay fences any previous instance (same
//! `transactional.id`), then reads the position back with read_committed: an aborted
//! transaction left no position and no events, a committed one left both. Only the instance
//! holding a PostgreSQL advisory lock relays, so instances don't fence each other in turn.

mod position;

use std::time::Duration;

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use tokio_util::sync::CancellationToken;

use crate::codec::{RecordEncoder, WindowReady, schemas};
use crate::config::{Config, DatabaseConfig, RelayConfig, TopicsConfig};
use crate::kafka::KafkaError;
use crate::store::{OutboxEvent, Store, StoreError};

/// Any constant unique to manifold's relay.
const RELAY_LOCK: i64 = 0x6d66_7265_6c61_7931;
const SEQ_HEADER: &str = "manifold.outbox.seq";

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("encoding an outbox event: {0}")]
    Codec(String),
    #[error("unknown outbox topic role {0:?}")]
    UnknownRole(String),
}

pub struct Relay {
    store: Store,
    windows_encoder: Result<RecordEncoder, String>,
    database: DatabaseConfig,
    config: RelayConfig,
    topics: TopicsConfig,
    kafka: crate::config::KafkaConfig,
}

impl Relay {
    pub fn new(config: &Config, store: Store) -> Self {
        let windows_encoder = RecordEncoder::new(&config.schema_registry, &config.topics.windows_ready.name, schemas::WINDOW_READY)
            .map_err(|e| e.to_string());
        Self {
            store,
            windows_encoder,
            database: config.database.clone(),
            config: config.relay.clone(),
            topics: config.topics.clone(),
            kafka: config.kafka.clone(),
        }
    }

    /// Relays until `shutdown`; failures restart the cycle (election, fencing, position) after a pause.
    pub async fn run(self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            match self.lead(&shutdown).await {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(error = %err, "relay interrupted; restarting");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }
        }
    }

    async fn lead(&self, shutdown: &CancellationToken) -> Result<(), RelayError> {
        let lock = Store::dedicated(&self.database).await?;
        loop {
            let got: bool = lock
                .query_one("SELECT pg_try_advisory_lock($1)", &[&RELAY_LOCK])
                .await
                .map_err(|e| StoreError::query("take the relay lock", e))?
                .get(0);
            if got {
                break;
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
        let producer = self.producer()?;
        let timeout = Duration::from_millis(self.kafka.request_timeout_ms.max(10_000));
        blocking(&producer, move |p| p.init_transactions(timeout), "init transactions").await?;
        let mut last = position::read(&self.kafka, &self.topics.relay_position.name, &self.config.transactional_id, timeout).await?;
        tracing::info!(last_seq = last, "relay leading");
        let idle = Duration::from_millis(self.config.poll_interval_ms);
        while !shutdown.is_cancelled() {
            if lock.is_closed() {
                return Err(StoreError::Unavailable("lost the relay lock's connection".into()).into());
            }
            let events = self.store.outbox_after(last, self.config.batch_size).await?;
            let Some(newest) = events.last().map(|e| e.seq) else {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(idle) => continue,
                }
            };
            if let Err(err) = self.publish(&producer, &events, newest, timeout).await {
                // Nothing of an aborted transaction is visible to read_committed readers.
                let _ = blocking(&producer, move |p| p.abort_transaction(timeout), "abort transaction").await;
                return Err(err);
            }
            last = newest;
            tracing::debug!(events = events.len(), last_seq = last, "outbox events published");
            if let Err(err) = self.store.outbox_mark_published(last).await {
                tracing::debug!(error = %err, "outbox bookkeeping deferred");
            }
        }
        Ok(())
    }

    async fn publish(&self, producer: &FutureProducer, events: &[OutboxEvent], newest: i64, timeout: Duration) -> Result<(), RelayError> {
        producer.begin_transaction().map_err(|source| KafkaError::Client { context: "begin transaction", source })?;
        for event in events {
            let topic = self.topic_for(&event.topic_role)?;
            let seq = event.seq.to_string();
            let mut headers = OwnedHeaders::new_with_capacity(event.headers.len() + 1);
            for (key, value) in &event.headers {
                headers = headers.insert(Header { key, value: Some(value.as_str()) });
            }
            headers = headers.insert(Header { key: SEQ_HEADER, value: Some(seq.as_str()) });
            let payload = self.wire_payload(event).await?;
            let mut record = FutureRecord::to(topic).payload(payload.as_slice()).headers(headers);
            if let Some(key) = &event.key {
                record = record.key(key.as_slice());
            }
            send(producer, record)?;
        }
        let body = position::encode(newest);
        let position_record = FutureRecord::to(&self.topics.relay_position.name)
            .key(self.config.transactional_id.as_bytes())
            .payload(body.as_slice());
        send(producer, position_record)?;
        blocking(producer, move |p| p.commit_transaction(timeout), "commit transaction").await
    }

    /// Dead letters keep their original bytes; window events are encoded to Avro here.
    async fn wire_payload(&self, event: &OutboxEvent) -> Result<Vec<u8>, RelayError> {
        match event.topic_role.as_str() {
            "windows_ready" => {
                let encoder = self.windows_encoder.as_ref().map_err(|e| RelayError::Codec(e.clone()))?;
                let value = WindowReady::from_json(&event.payload).and_then(|w| w.to_avro()).map_err(|e| RelayError::Codec(e.to_string()))?;
                encoder.encode(value).await.map_err(|e| RelayError::Codec(e.to_string()))
            }
            _ => Ok(event.payload.clone()),
        }
    }

    fn topic_for(&self, role: &str) -> Result<&str, RelayError> {
        match role {
            "dead_letters" => Ok(&self.topics.dead_letters.name),
            "windows_ready" => Ok(&self.topics.windows_ready.name),
            "scores" => Ok(&self.topics.scores.name),
            other => Err(RelayError::UnknownRole(other.to_owned())),
        }
    }

    fn producer(&self) -> Result<FutureProducer, KafkaError> {
        crate::kafka::transactional_producer(&self.kafka, &self.config.transactional_id)
    }
}


fn send(producer: &FutureProducer, record: FutureRecord<'_, [u8], [u8]>) -> Result<(), KafkaError> {
    // Delivery is confirmed by the transaction commit, which fails if any send failed.
    producer
        .send_result(record)
        .map(drop)
        .map_err(|(source, _)| KafkaError::Client { context: "enqueue a relay message", source })
}

/// librdkafka's transaction calls block until the coordinator answers.
async fn blocking<F>(producer: &FutureProducer, call: F, context: &'static str) -> Result<(), RelayError>
where
    F: FnOnce(&FutureProducer) -> rdkafka::error::KafkaResult<()> + Send + 'static,
{
    let producer = producer.clone();
    tokio::task::spawn_blocking(move || call(&producer))
        .await
        .map_err(|e| KafkaError::Config(format!("{context}: {e}")))?
        .map_err(|source| KafkaError::Client { context, source }.into())
}
