//! The inference loop: window-ready events in (read_committed), scores out, exactly once.
//!
//! Per batch: load every window's readings with one query, score, upsert the scores
//! (idempotent per system, component, window and revision), then publish the score messages and
//! the consumed offsets in one Kafka transaction. A crash before the commit aborts the
//! transaction; the events are consumed again and their scores upserted over themselves.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use schema_registry_converter::async_impl::avro::AvroDecoder;
use tokio_util::sync::CancellationToken;

use super::metrics::InferMetrics;
use super::scorer::{ScoreError, ScoredWindow, Scorer};
use crate::codec::{AnomalyScores, RecordEncoder, WindowReady};
use crate::config::{InferConfig, KafkaConfig};
use crate::kafka::KafkaError;
use crate::store::{ScoreRow, Store};

pub struct InferWorker {
    pub store: Store,
    pub scorer: Scorer,
    pub decoder: AvroDecoder,
    pub encoder: RecordEncoder,
    pub metrics: InferMetrics,
    pub config: InferConfig,
    pub kafka: KafkaConfig,
    pub input_topic: String,
    pub output_topic: String,
}

#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Score(#[from] ScoreError),
    #[error("{0}")]
    Codec(String),
}

fn kafka(context: &'static str) -> impl FnOnce(rdkafka::error::KafkaError) -> InferError {
    move |source| InferError::Kafka(KafkaError::Client { context, source })
}

impl InferWorker {
    pub fn consumer(&self) -> Result<StreamConsumer, KafkaError> {
        let mut config = crate::kafka::client_config(&self.kafka);
        config
            .set("group.id", &self.config.group_id)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("isolation.level", "read_committed")
            .set("session.timeout.ms", self.config.session_timeout_ms.to_string());
        for (k, v) in self.kafka.client.iter() {
            config.set(k, v);
        }
        let consumer: StreamConsumer = config.create().map_err(|e| KafkaError::Config(e.to_string()))?;
        consumer.subscribe(&[&self.input_topic]).map_err(|source| KafkaError::Client { context: "subscribe", source })?;
        Ok(consumer)
    }

    pub fn producer(&self) -> Result<FutureProducer, KafkaError> {
        crate::kafka::transactional_producer(&self.kafka, &self.config.transactional_id)
    }

    /// Runs until `shutdown`; a failed batch is retried after a pause (its offsets were not
    /// committed, so nothing is lost).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), InferError> {
        let consumer = self.consumer()?;
        let producer = self.producer()?;
        let timeout = Duration::from_millis(self.kafka.request_timeout_ms.max(10_000));
        let p = producer.clone();
        tokio::task::spawn_blocking(move || p.init_transactions(timeout))
            .await
            .map_err(|e| InferError::Codec(e.to_string()))?
            .map_err(kafka("init transactions"))?;
        tracing::info!(topic = %self.input_topic, "infer started");
        let wait = Duration::from_millis(self.config.batch_wait_ms);
        while !shutdown.is_cancelled() {
            let first = tokio::select! {
                _ = shutdown.cancelled() => break,
                received = consumer.recv() => received,
            };
            let mut batch = match first {
                Ok(message) => vec![message],
                Err(err) => {
                    tracing::warn!(error = %err, "kafka consumer error");
                    continue;
                }
            };
            let deadline = tokio::time::Instant::now() + wait;
            while batch.len() < self.config.batch_size {
                match tokio::time::timeout_at(deadline, consumer.recv()).await {
                    Ok(Ok(message)) => batch.push(message),
                    Ok(Err(err)) => tracing::warn!(error = %err, "kafka consumer error"),
                    Err(_) => break,
                }
            }
            if let Err(err) = self.process(&consumer, &producer, &batch, timeout).await {
                self.metrics.errors.with_label_values(&[error_kind(&err)]).inc();
                tracing::warn!(error = %err, windows = batch.len(), "scoring batch failed; it will be retried");
                let p = producer.clone();
                let _ = tokio::task::spawn_blocking(move || p.abort_transaction(timeout)).await;
                if !rewind(&consumer, &batch) {
                    // Without the rewind the batch would be skipped: start over from the
                    // committed offsets with a new consumer instead.
                    return Err(err);
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
        tracing::info!("infer stopped");
        Ok(())
    }

    async fn process(&self, consumer: &StreamConsumer, producer: &FutureProducer, batch: &[BorrowedMessage<'_>], timeout: Duration) -> Result<(), InferError> {
        let mut events = Vec::with_capacity(batch.len());
        for message in batch {
            let decoded = self.decoder.decode(message.payload()).await.map_err(|e| InferError::Codec(e.error))?;
            match WindowReady::from_avro(decoded.value) {
                Ok(event) => events.push(event),
                // Only manifold writes this topic; a record it cannot read is counted and passed.
                Err(err) => {
                    self.metrics.errors.with_label_values(&["undecodable_event"]).inc();
                    tracing::error!(error = %err, offset = message.offset(), "skipping an unreadable window-ready event");
                }
            }
        }
        let scored = self.score(&events).await?;
        self.store.upsert_scores(&rows(&scored)).await.map_err(ScoreError::from)?;

        producer.begin_transaction().map_err(kafka("begin transaction"))?;
        for window in &scored {
            let message = to_message(window);
            let payload = self.encoder.encode(message.to_avro()).await.map_err(|e| InferError::Codec(e.to_string()))?;
            let record = FutureRecord::to(&self.output_topic).key(message.system_id.as_str()).payload(&payload);
            producer.send_result(record).map_err(|(e, _)| e).map_err(kafka("enqueue a score"))?;
        }
        let offsets = next_offsets(batch);
        let group = consumer.group_metadata().ok_or_else(|| InferError::Codec("no consumer group metadata".into()))?;
        let p = producer.clone();
        tokio::task::spawn_blocking(move || {
            p.send_offsets_to_transaction(&offsets, &group, timeout)?;
            p.commit_transaction(timeout)
        })
        .await
        .map_err(|e| InferError::Codec(e.to_string()))?
        .map_err(kafka("commit the scores transaction"))?;
        self.record(&scored);
        Ok(())
    }

    async fn score(&self, events: &[WindowReady]) -> Result<Vec<ScoredWindow>, InferError> {
        let keys: Vec<_> = events.iter().map(|e| (e.system_id.clone(), time(e.window_start), time(e.window_end))).collect();
        let values = self.store.window_values(&keys).await.map_err(ScoreError::from)?;
        let systems: Vec<&str> = events.iter().map(|e| e.system_id.as_str()).collect();
        let info = self.store.systems_info(&systems).await.map_err(ScoreError::from)?;
        let mut scored = Vec::with_capacity(events.len());
        for (event, window) in events.iter().zip(&values) {
            let started = Instant::now();
            let result = self.scorer.score(event, window, info.get(&event.system_id)).await?;
            self.metrics.scoring_seconds.with_label_values(&[result.scorer]).observe(started.elapsed().as_secs_f64());
            scored.push(result);
        }
        Ok(scored)
    }

    /// The counters and log line of a committed batch, from one place.
    fn record(&self, scored: &[ScoredWindow]) {
        let now = chrono::Utc::now().timestamp_micros();
        for window in scored {
            self.metrics.windows_scored.with_label_values(&[window.scorer]).inc();
            self.metrics.end_to_end_seconds.observe(((now - window.event.window_end) as f64 / 1e6).max(0.0));
        }
        tracing::debug!(windows = scored.len(), "scores committed");
    }
}

fn time(us: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(us).unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

fn error_kind(err: &InferError) -> &'static str {
    match err {
        InferError::Kafka(_) => "kafka",
        InferError::Score(ScoreError::Store(_)) => "database",
        InferError::Score(ScoreError::Service(_)) => "gnn_service",
        InferError::Codec(_) => "codec",
    }
}

fn to_message(window: &ScoredWindow) -> AnomalyScores {
    let components: Vec<_> = window.components.iter().map(|(c, _)| c.clone()).collect();
    AnomalyScores {
        system_id: window.event.system_id.clone(),
        window_start: window.event.window_start,
        window_end: window.event.window_end,
        revision: window.event.revision,
        model_version: window.model_version.clone(),
        overall_score: components.iter().map(|c| c.score).fold(0.0, f64::max),
        components,
        computed_at: chrono::Utc::now().timestamp_micros(),
    }
}

fn rows(scored: &[ScoredWindow]) -> Vec<ScoreRow> {
    let now = chrono::Utc::now();
    scored
        .iter()
        .flat_map(|w| {
            w.components.iter().map(move |(c, features)| ScoreRow {
                system_id: w.event.system_id.clone(),
                component_id: c.component_id.clone(),
                window_start: time(w.event.window_start),
                window_end: time(w.event.window_end),
                revision: w.event.revision,
                model_version: w.model_version.clone(),
                score: c.score as f32,
                class: c.condition.clone(),
                class_probs: serde_json::to_value(&c.probabilities).unwrap_or_default(),
                features: features.clone(),
                computed_at: now,
            })
        })
        .collect()
}

/// The next offset of every partition in the batch: what the transaction commits.
fn next_offsets(batch: &[BorrowedMessage<'_>]) -> TopicPartitionList {
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
fn rewind(consumer: &StreamConsumer, batch: &[BorrowedMessage<'_>]) -> bool {
    let mut first: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for m in batch {
        let slot = first.entry((m.topic().to_owned(), m.partition())).or_insert(i64::MAX);
        *slot = (*slot).min(m.offset());
    }
    first.into_iter().all(|((topic, partition), offset)| {
        consumer.seek(&topic, partition, Offset::Offset(offset), Duration::from_secs(5)).is_ok()
    })
}
