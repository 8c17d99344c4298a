//! The inference loop: window-ready events in (read_committed), scores out, exactly once.
//!
//! Per batch: decode, load every window's readings with one query, score, check the answers,
//! upsert the scores (idempotent per system, component, window and revision), record the
//! windows set aside for their content, then publish the score messages and the consumed
//! offsets (past the set-aside ones too) in one Kafka transaction. A crash before the commit
//! aborts the transaction; the events are consumed again and their rows written over
//! themselves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rdkafka::types::RDKafkaErrorCode;
use schema_registry_converter::async_impl::avro::AvroDecoder;
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use tokio_util::sync::CancellationToken;

use super::alerts::{self, AlertDeriver};
use super::batch::{Outcome, lap, to_message};
use super::consumer::{InferConsumer, InferContext, next_offsets, rewind};
use super::error::InferError;
use super::health::{InferHealth, RebalanceSignal};
use super::metrics::InferMetrics;
use super::scorer::{ScoreError, Scored, ScorerChain};
use crate::codec::{CodecError, RecordEncoder};
use crate::config::{InferConfig, KafkaConfig};
use crate::domain::AlertEventKind;
use crate::failure::{Breaker, FailureKind};
use crate::kafka::KafkaError;
use crate::kafka::repeats::Repeats;
use crate::kafka::transactional::TxProducer;
use crate::store::Store;
use crate::telemetry::traces;

/// Consecutive failed batches after which the failure counts as systemic (slower retries, an
/// error log, not ready), whatever each one was.
const BREAKER_RUN: u32 = 10;

pub struct InferWorker {
    pub store: Store,
    pub scorer: ScorerChain,
    pub decoder: AvroDecoder,
    pub registry: SrSettings,
    pub encoder: RecordEncoder,
    pub metrics: InferMetrics,
    pub health: Arc<InferHealth>,
    pub config: InferConfig,
    pub kafka: KafkaConfig,
    pub input_topic: String,
    pub output_topic: String,
    pub alerts: AlertDeriver,
}

fn kafka(context: &'static str) -> impl FnOnce(rdkafka::error::KafkaError) -> InferError {
    move |source| InferError::Kafka(KafkaError::Client { context, source })
}

/// True when another producer or consumer took this instance's identity. InvalidProducerEpoch
/// counts only when fatal: librdkafka recovers from it by itself after a transaction timeout.
fn fenced_code(code: RDKafkaErrorCode, fatal: bool) -> bool {
    match code {
        RDKafkaErrorCode::ProducerFenced | RDKafkaErrorCode::Fenced | RDKafkaErrorCode::FencedInstanceId => true,
        RDKafkaErrorCode::InvalidProducerEpoch => fatal,
        _ => false,
    }
}

/// Why a client is fenced, if it is: by the error itself, or (a fatal error reports only that
/// it is fatal) by the client's fatal error.
fn fence_reason(error: Option<&rdkafka::error::KafkaError>, fatal: Option<(RDKafkaErrorCode, String)>) -> Option<String> {
    if let Some(e) = error
        && let Some(code) = e.rdkafka_error_code()
        && fenced_code(code, crate::kafka::is_fatal(e))
    {
        return Some(e.to_string());
    }
    fatal.filter(|(code, _)| fenced_code(*code, true)).map(|(code, text)| format!("{code:?}: {text}"))
}

/// A message in hand, with its partition's revocation count when it was received.
type Received<'c> = (BorrowedMessage<'c>, u64);

impl InferWorker {
    pub fn consumer(&self, signal: RebalanceSignal) -> Result<InferConsumer, KafkaError> {
        let session_timeout = self.config.session_timeout_ms.as_millis().to_string();
        // Offsets are committed in the producer's transaction, which the consumer never hears
        // of: its lag is measured from the offsets librdkafka stores as messages are handed over
        // (auto store, the default; see kafka::lag).
        let mut settings = vec![
            ("session.timeout.ms", session_timeout.as_str()),
            crate::kafka::lag::STATISTICS_INTERVAL_MS,
            // librdkafka prefetches up to 100,000 messages per partition and 64 MB by default:
            // with a backlog of small window-ready events that is tens of MB for nothing, as
            // infer takes them a batch at a time. A few thousand ahead keep it busy.
            ("queued.min.messages", "2000"),
            ("queued.max.messages.kbytes", "2048"),
            ("fetch.max.bytes", "1048576"),
        ];
        let instance = self.config.group_instance_id();
        if let Some(instance) = instance.as_deref() {
            settings.push(("group.instance.id", instance));
        }
        let context = InferContext::new(signal, &self.input_topic, self.metrics.consumer_lag.clone());
        let consumer: InferConsumer = crate::kafka::consumer(&self.kafka, &self.config.group_id, &settings, context)?;
        consumer.subscribe(&[&self.input_topic]).map_err(|source| KafkaError::Client { context: "subscribe", source })?;
        Ok(consumer)
    }

    /// A producer with this instance's transactional id, its predecessor fenced.
    async fn producer(&self, timeout: Duration) -> Result<TxProducer, InferError> {
        let producer = TxProducer::new(&self.kafka, &self.config.transactional_id(), timeout)?;
        if let Err(err) = producer.init().await {
            if let Some(why) = fence_reason(err.rdkafka_source(), producer.fatal_error()) {
                return Err(self.fenced(&why));
            }
            return Err(err.into());
        }
        Ok(producer)
    }

    /// Runs until `shutdown`. A failed batch is retried after a pause (its offsets were not
    /// committed, so nothing is lost); a fenced worker stops with [`InferError::Fenced`].
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), InferError> {
        let signal = RebalanceSignal::default();
        let consumer = self.consumer(signal.clone())?;
        let timeout = self.kafka.request_timeout_ms.max(Duration::from_secs(10));
        let mut producer = self.producer(timeout).await?;
        let mut breaker = Breaker::new(BREAKER_RUN, self.config.unready_after_ms);
        tracing::info!(topic = %self.input_topic, transactional_id = %self.config.transactional_id(), "infer started");
        let wait = self.config.batch_wait_ms;
        let mut repeats = Repeats::default();
        while !shutdown.is_cancelled() {
            let first = tokio::select! {
                _ = shutdown.cancelled() => break,
                received = consumer.recv() => received,
            };
            let mut batch: Vec<Received<'_>> = match first {
                Ok(message) => {
                    let generation = signal.generation(message.topic(), message.partition());
                    vec![(message, generation)]
                }
                Err(err) => {
                    self.consumer_error(&consumer, err, &mut repeats)?;
                    continue;
                }
            };
            let deadline = tokio::time::Instant::now() + wait;
            while batch.len() < self.config.batch_size {
                match tokio::time::timeout_at(deadline, consumer.recv()).await {
                    Ok(Ok(message)) => {
                        let generation = signal.generation(message.topic(), message.partition());
                        batch.push((message, generation));
                    }
                    Ok(Err(err)) => self.consumer_error(&consumer, err, &mut repeats)?,
                    Err(_) => break,
                }
            }
            // Messages received before their partition was revoked may belong to another
            // member now; if the partition came back, it is fetched again from the commit.
            batch.retain(|(m, generation)| signal.generation(m.topic(), m.partition()) == *generation);
            let messages: Vec<BorrowedMessage<'_>> = batch.into_iter().map(|(m, _)| m).collect();
            if messages.is_empty() {
                continue;
            }
            let started = Instant::now();
            match self.process(&consumer, &producer, &messages, &signal).await {
                Ok(outcome) => {
                    breaker.succeeded();
                    self.health.progressing();
                    self.record(&outcome, started);
                }
                Err(err) => {
                    let abort_error = producer.abort().await.err();
                    let abort_error = abort_error.as_ref().and_then(KafkaError::rdkafka_source);
                    let fatal = producer.fatal_error();
                    let fence = fence_reason(err.kafka_source(), None).or_else(|| fence_reason(abort_error, fatal.clone()));
                    if let Some(why) = fence {
                        return Err(self.fenced(&why));
                    }
                    if matches!(err, InferError::Revoked) {
                        // Cannot happen while no `recv` runs, but if it does: start over from
                        // the committed offsets with a new consumer.
                        return Err(err);
                    }
                    let kind = match err.failure() {
                        // Not one window's fault, or it would have been set aside: a score
                        // message the broker refuses is manifold's bug and must page someone.
                        FailureKind::DataPermanent => FailureKind::Systemic,
                        kind => breaker.failed(kind, Instant::now()),
                    };
                    self.failed(&err, kind, messages.len());
                    if fatal.is_some() || err.kafka_source().into_iter().chain(abort_error).any(crate::kafka::is_fatal) {
                        tracing::warn!("the infer producer hit a fatal error; recreating it");
                        self.metrics.producer_recreated.inc();
                        producer = self.producer(timeout).await?;
                    }
                    if !rewind(&consumer, &messages) {
                        // Without the rewind the batch would be skipped: start over from the
                        // committed offsets with a new consumer instead.
                        return Err(err);
                    }
                    let pause = if kind == FailureKind::Systemic { self.config.systemic_retry_ms } else { self.config.retry_ms };
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(pause) => {}
                    }
                }
            }
        }
        tracing::info!("infer stopped");
        Ok(())
    }

    async fn process(
        &mut self,
        consumer: &InferConsumer,
        producer: &TxProducer,
        batch: &[BorrowedMessage<'_>],
        signal: &RebalanceSignal,
    ) -> Result<Outcome, InferError> {
        let generations: Vec<u64> = batch.iter().map(|m| signal.generation(m.topic(), m.partition())).collect();
        let mut outcome = self.prepare(batch).await?;
        let published = self.publish(consumer, producer, batch, &mut outcome, &generations, signal).await;
        if let Err(err) = &published {
            // The batch is retried: these spans stand for an attempt that did not commit.
            outcome.scored.iter().for_each(|(_, trace)| trace.failed(&err.to_string()));
        }
        published.map(|kinds| {
            outcome.alert_events = kinds;
            outcome
        })
    }

    /// The batch's score messages and consumed offsets, in one Kafka transaction.
    async fn publish(
        &self,
        consumer: &InferConsumer,
        producer: &TxProducer,
        batch: &[BorrowedMessage<'_>],
        outcome: &mut Outcome,
        generations: &[u64],
        signal: &RebalanceSignal,
    ) -> Result<Vec<AlertEventKind>, InferError> {
        let mut step = Instant::now();
        // Encoded before the transaction: registry trouble then costs no abort.
        let mut payloads = Vec::with_capacity(outcome.scored.len());
        for (window, trace) in &outcome.scored {
            let message = to_message(window);
            let payload = self.encoder.encode(message.to_avro()).await.map_err(|e| match e {
                CodecError::Unavailable(message) => InferError::Registry { kind: FailureKind::Transient, message },
                other => InferError::Registry { kind: FailureKind::Systemic, message: other.to_string() },
            })?;
            payloads.push((message.system_id, payload, trace.traceparent()));
        }
        // Recorded before the commit and idempotently: a batch retried after a failed commit
        // finds its failures already there.
        let failures: Vec<_> = outcome.failed.iter().map(|f| f.row(&self.input_topic)).collect();
        self.store.record_scoring_failures(&failures).await.map_err(ScoreError::from)?;
        outcome.steps.encode = lap(&mut step);
        // Alerts after the scores they come from are stored, before the transaction: their
        // events are kept by cause, so an abort below loses none (the retry publishes them).
        let scored: Vec<&Scored> = outcome.scored.iter().map(|(s, _)| s).collect();
        let events = self.alerts.events(&self.store, &scored, &outcome.component_kinds).await?;
        let mut alert_payloads = Vec::with_capacity(events.len());
        for event in &events {
            let payload = self.alerts.encoder.encode(alerts::to_avro(event)).await.map_err(|e| match e {
                CodecError::Unavailable(message) => InferError::Registry { kind: FailureKind::Transient, message },
                other => InferError::Registry { kind: FailureKind::Systemic, message: other.to_string() },
            })?;
            alert_payloads.push((event.alert.system_id.clone(), payload));
        }
        outcome.steps.alerts = lap(&mut step);

        producer.begin()?;
        for (key, payload, traceparent) in &payloads {
            let mut record = FutureRecord::to(&self.output_topic).key(key.as_str()).payload(payload);
            if let Some(traceparent) = traceparent {
                // Downstream consumers can continue the window's trace from the score message.
                record = record.headers(OwnedHeaders::new().insert(Header { key: traces::TRACEPARENT, value: Some(traceparent.as_str()) }));
            }
            producer.producer().send_result(record).map_err(|(e, _)| e).map_err(kafka("enqueue a score"))?;
        }
        for (key, payload) in &alert_payloads {
            let record = FutureRecord::to(&self.alerts.topic).key(key.as_str()).payload(payload);
            producer.producer().send_result(record).map_err(|(e, _)| e).map_err(kafka("enqueue an alert event"))?;
        }
        let offsets = next_offsets(batch);
        let group = consumer.group_metadata().ok_or_else(|| InferError::Internal("no consumer group metadata".into()))?;
        let still_assigned = batch.iter().zip(generations).all(|(m, g)| signal.generation(m.topic(), m.partition()) == *g);
        if !still_assigned {
            return Err(InferError::Revoked);
        }
        producer.commit_with_offsets(offsets, group).await?;
        outcome.steps.commit = lap(&mut step);
        Ok(events.iter().map(|e| e.kind).collect())
    }

    /// The counters and log lines of a committed batch, from one place.
    fn record(&self, outcome: &Outcome, started: Instant) {
        let now = chrono::Utc::now().timestamp_micros();
        for (scored, _) in &outcome.scored {
            self.metrics.windows_scored.with_label_values(&[scored.scorer]).inc();
            self.metrics.end_to_end_seconds.observe(((now - scored.window.window_end.timestamp_micros()) as f64 / 1e6).max(0.0));
        }
        for kind in &outcome.alert_events {
            self.metrics.alert_events.with_label_values(&[kind.as_str()]).inc();
        }
        for failure in &outcome.failed {
            self.metrics.windows_failed.with_label_values(&[failure.reason.as_str()]).inc();
            let event = failure.event.as_ref();
            tracing::warn!(
                reason = failure.reason.as_str(),
                partition = failure.partition,
                offset = failure.offset,
                system_id = ?event.map(|e| crate::domain::text::sanitize(&e.system_id, 64)),
                window_start = ?event.map(|e| e.window_start),
                revision = ?event.map(|e| e.revision),
                message = %failure.message,
                "window set aside; see scoring_failures, retry with `manifold rescore --failed`"
            );
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let steps = &outcome.steps;
        tracing::debug!(
            windows = outcome.scored.len(),
            failed = outcome.failed.len(),
            seconds = started.elapsed().as_secs_f64(),
            decode_ms = ms(steps.decode),
            load_ms = ms(steps.load),
            score_ms = ms(steps.score),
            store_ms = ms(steps.store),
            encode_ms = ms(steps.encode),
            alerts_ms = ms(steps.alerts),
            commit_ms = ms(steps.commit),
            "scores committed"
        );
    }

    /// The counter, log line and readiness of a failed batch, from one place.
    fn failed(&self, err: &InferError, kind: FailureKind, windows: usize) {
        self.metrics.errors.with_label_values(&[err.label(), kind.as_str()]).inc();
        let detail = err.detail();
        if kind == FailureKind::Systemic {
            self.health.failed(kind, &format!("{detail}; {}", err.hint()));
            tracing::error!(error = %detail, dependency = err.label(), hint = err.hint(), windows, "scoring cannot make progress until the deployment is fixed; retrying slowly");
            return;
        }
        self.health.failed(kind, &detail);
        tracing::warn!(error = %detail, dependency = err.label(), windows, "scoring batch failed; it will be retried");
    }

    /// Ends this worker with its clients; the supervisor tells a stray fence from a second
    /// replica on the ordinal (`kafka::fences`).
    fn fenced(&self, error: &str) -> InferError {
        let why = format!(
            "fenced ({error}): another infer client took transactional id {:?} or group instance id {:?}; if it repeats, two instances share an ordinal (infer.instance)",
            self.config.transactional_id(),
            self.config.group_instance_id().unwrap_or_default(),
        );
        self.metrics.fenced.inc();
        self.health.fenced(&why);
        InferError::Fenced(why)
    }

    /// A consumer error between batches: fatal ones end the worker (a new consumer is made),
    /// unless another consumer took this one's group instance id; others are logged, a burst of
    /// one kind once per period.
    fn consumer_error(&self, consumer: &InferConsumer, err: rdkafka::error::KafkaError, repeats: &mut Repeats) -> Result<(), InferError> {
        if crate::kafka::is_fatal(&err) || matches!(err, rdkafka::error::KafkaError::MessageConsumptionFatal(_)) {
            if let Some(why) = fence_reason(Some(&err), consumer.client().fatal_error()) {
                return Err(self.fenced(&why));
            }
            return Err(kafka("consume")(err));
        }
        if let Some(why) = fence_reason(Some(&err), None) {
            return Err(self.fenced(&why));
        }
        repeats.warn(&err);
        Ok(())
    }
}
