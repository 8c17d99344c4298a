//! The outbox relay: publishes outbox events (dead letters, window-ready events) to Kafka in
//! sequence order, exactly once.
//!
//! Each Kafka transaction carries a run of events and, on the compacted position topic, the
//! last sequence it holds. On start the relay fences any previous instance (same
//! `transactional.id`), then reads the position back with read_committed: an aborted
//! transaction left no position and no events, a committed one left both. Only the instance
//! holding a PostgreSQL advisory lock relays, so instances don't fence each other in turn.
//!
//! Failures, as [`crate::failure`] classifies them: an event the broker can never take (too
//! large even when cut, refused as a record) is recorded in `outbox_failures` first, then the
//! run is published without it — never retried, never skipped silently. Transient failures
//! restart from the committed position after a back-off; systemic ones (authorization, a
//! fenced producer, a missing topic) raise `manifold_relay_systemic` and retry slowly.

mod error;
mod limits;
mod lock;
mod metrics;
mod position;
mod publish;
mod topic_limits;

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

pub use error::RelayError;
pub use metrics::RelayMetrics;

use crate::codec::{CodecError, RecordEncoder, WindowReady, schemas};
use crate::config::{Config, DatabaseConfig, KafkaConfig, RelayConfig, TopicsConfig};
use crate::domain::TopicRole;
use crate::failure::{Breaker, FailureKind};
use crate::kafka::transactional::TxProducer;
use crate::store::{OutboxEvent, Store};
use crate::telemetry::traces;
use limits::{Fit, Record};
use publish::{Outcome, Outgoing, PositionRecord};
use topic_limits::TopicLimits;

/// This many restarts in a row, or failing for this long, and a transient failure is systemic.
const BREAKER_THRESHOLD: u32 = 20;
const BREAKER_WINDOW: Duration = Duration::from_secs(300);
/// Attempts in a row whose records were all purged (librdkafka recovering from an abort)
/// before the relay restarts with a new producer.
const MAX_PURGED: u32 = 3;
/// Payload bytes read per run, about: 500 maximal dead letters would otherwise take 500 MB.
const RUN_MAX_BYTES: i64 = 16 * 1024 * 1024;
/// How often the backlog gauge is refreshed from the outbox.
const HEADS_EVERY: Duration = Duration::from_secs(1);

pub struct Relay {
    store: Store,
    windows_encoder: Result<RecordEncoder, String>,
    database: DatabaseConfig,
    config: RelayConfig,
    topics: TopicsConfig,
    kafka: KafkaConfig,
    metrics: RelayMetrics,
}

/// Why an event cannot be published, ever: a bounded reason code and a sanitized message.
struct SetAside {
    seq: i64,
    /// The outbox row's role as stored: it may be one the relay does not know.
    role: String,
    reason: &'static str,
    message: String,
}

/// Retry state across restarts.
struct Retry {
    breaker: Breaker,
    backoff: Duration,
}

impl Relay {
    /// 1 while the relay is stopped by a systemic failure: the process is not ready then.
    pub fn systemic_flag(&self) -> prometheus::IntGauge {
        self.metrics.systemic_gauge()
    }

    pub fn new(config: &Config, store: Store, metrics: &crate::telemetry::Metrics) -> Self {
        let windows_encoder = RecordEncoder::new(&config.schema_registry, &config.topics.windows_ready.name, schemas::WINDOW_READY)
            .map_err(|e| e.to_string());
        Self {
            store,
            windows_encoder,
            database: config.database.clone(),
            config: config.relay.clone(),
            topics: config.topics.clone(),
            kafka: config.kafka.clone(),
            metrics: RelayMetrics::new(metrics),
        }
    }

    /// Relays until `shutdown`; failures restart the cycle (election, fencing, position, and a
    /// new producer) after a pause: a back-off when transient, a slow retry when systemic.
    pub async fn run(self, shutdown: CancellationToken) {
        let initial = self.config.retry_initial_ms;
        let mut retry = Retry { breaker: Breaker::new(BREAKER_THRESHOLD, BREAKER_WINDOW), backoff: initial };
        while !shutdown.is_cancelled() {
            let err = match self.lead(&shutdown, &mut retry).await {
                Ok(()) => return,
                Err(err) => err,
            };
            let kind = retry.breaker.failed(err.failure(), Instant::now());
            self.metrics.interrupted(kind, &err, err.fatal(), err.fix());
            let pause = if kind == FailureKind::Systemic { self.config.systemic_retry_ms } else { retry.backoff };
            retry.backoff = (retry.backoff * 2).min(self.config.retry_max_ms);
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(pause) => {}
            }
        }
    }

    async fn lead(&self, shutdown: &CancellationToken, retry: &mut Retry) -> Result<(), RelayError> {
        let lock = lock::LockSession::open(&self.database, &self.config).await?;
        while !lock.try_take().await? {
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(lock.check_every()) => {}
            }
        }
        // Whatever the relay is waiting on, a lock session that stops answering ends the lead:
        // the lock may be released (and taken by another replica) while it waits.
        tokio::select! {
            led = self.relay(shutdown, retry) => led,
            lost = lock.watch() => Err(lost.into()),
        }
    }

    async fn relay(&self, shutdown: &CancellationToken, retry: &mut Retry) -> Result<(), RelayError> {
        let targets: Vec<&str> =
            TopicRole::OUTBOX.iter().chain([&TopicRole::RelayPosition]).map(|role| self.topics.of(*role).name.as_str()).collect();
        let mut limits = TopicLimits::read(&self.kafka, &targets).await;
        let timeout = self.kafka.request_timeout_ms.max(Duration::from_secs(10));
        let producer = TxProducer::for_relay(&self.kafka, &self.config.transactional_id, limits.producer(), limits.batch_size(), timeout)?;
        producer.init().await?;
        let mut last = position::read(&self.kafka, &self.topics.relay_position.name, &self.config.transactional_id, timeout).await?;
        tracing::info!(last_seq = last, producer_max_bytes = limits.producer(), "relay leading");

        let batch = self.config.batch_size.max(1);
        let idle = self.config.poll_interval_ms;
        let mut run_limit = batch;
        let mut purged = 0;
        let mut heads = self.store.outbox_heads().await?;
        let mut heads_at = Instant::now();
        while !shutdown.is_cancelled() {
            if heads_at.elapsed() >= HEADS_EVERY {
                heads = self.store.outbox_heads().await?;
                heads_at = Instant::now();
                self.metrics.backlog(heads.newest, last);
            }
            let read = self.store.outbox_after(last, run_limit, RUN_MAX_BYTES).await?;
            // When everything unpublished after `last` is in hand, the position may move past
            // events set aside, up to the newest of them.
            let (events, whole) = (read.events, read.whole);
            if events.is_empty() && heads.newest_failed <= last {
                // Nothing to do and nothing failing: the run of failures, if any, is over.
                retry.breaker.succeeded();
                self.metrics.healthy();
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(idle) => continue,
                }
            }
            let mut position = events.last().map_or(last, |e| e.seq);
            if whole {
                position = position.max(heads.newest_failed);
            }
            let mut run = Vec::with_capacity(events.len());
            for event in events {
                match self.prepare(event, &mut limits).await? {
                    Ok(out) => run.push(out),
                    Err(aside) => {
                        // Recorded before anything moves past it; the run before it goes out
                        // with a position that covers it.
                        position = aside.seq;
                        heads.newest_failed = heads.newest_failed.max(aside.seq);
                        self.set_aside(aside).await?;
                        break;
                    }
                }
            }
            let position_record = PositionRecord { topic: &self.topics.relay_position.name, key: self.config.transactional_id.as_bytes(), seq: position };
            let outcome = publish::transaction(&producer, &run, position_record, timeout).await;
            if let Err(err) = &outcome {
                run.iter().for_each(|out| out.trace.failed(&err.to_string()));
            }
            match outcome? {
                Outcome::Committed => {
                    last = position;
                    purged = 0;
                    run_limit = batch;
                    retry.breaker.succeeded();
                    retry.backoff = self.config.retry_initial_ms;
                    self.published(&run, last, heads.newest.max(last)).await;
                }
                Outcome::Refused { refusals, abort_error } => {
                    run.iter().for_each(|out| out.trace.failed("the transaction was aborted: a record was refused"));
                    for refusal in &refusals {
                        if limits::is_size_refusal(&refusal.error) {
                            limits.forget(&run[refusal.index].topic);
                        }
                    }
                    if let [only] = refusals.as_slice() {
                        let out = &run[only.index];
                        let reason = limits::reason(&only.error);
                        heads.newest_failed = heads.newest_failed.max(out.seq);
                        self.set_aside(SetAside { seq: out.seq, role: out.role.as_str().to_owned(), reason, message: only.error.to_string() }).await?;
                        run_limit = batch;
                    } else {
                        // Records batched together are refused together: publish what comes
                        // before the first suspect, or the first suspect alone, to find it.
                        let first = refusals.first().map_or(0, |r| r.index);
                        run_limit = if first > 0 { first as i64 } else { 1 };
                        tracing::info!(suspects = refusals.len(), first_seq = run[first].seq, "records refused together; narrowing the run");
                    }
                    if let Some(err) = abort_error {
                        return Err(err);
                    }
                }
                Outcome::Purged => {
                    tracing::debug!(attempt = purged + 1, "records purged while the producer recovered from an abort; sending the run again");
                    purged += 1;
                    if purged > MAX_PURGED {
                        return Err(RelayError::Stalled("records purged in every attempt"));
                    }
                }
            }
        }
        Ok(())
    }

    async fn published(&self, run: &[Outgoing], last: i64, newest: i64) {
        for out in run {
            self.metrics.published(out.role, 1);
            if let Some(original) = out.cut_from {
                self.metrics.cut(out.seq, out.role, original, out.record.value.len());
            }
        }
        self.metrics.committed(last, newest);
        tracing::debug!(events = run.len(), last_seq = last, "outbox events published");
        if let Err(err) = self.store.outbox_mark_published(last).await {
            tracing::debug!(error = %err, "outbox bookkeeping deferred");
        }
    }

    /// Records the event's failure (idempotently) and counts it once.
    async fn set_aside(&self, aside: SetAside) -> Result<(), RelayError> {
        let message = crate::domain::text::message(&aside.message);
        if self.store.outbox_set_aside(aside.seq, &aside.role, aside.reason, &message).await? {
            self.metrics.failed(aside.seq, &aside.role, aside.reason, &message);
        }
        Ok(())
    }

    /// The record to send for `event`, cut to the size limit when it is a dead letter; or why
    /// it can never be sent.
    async fn prepare(&self, event: OutboxEvent, limits: &mut TopicLimits) -> Result<Result<Outgoing, SetAside>, RelayError> {
        let OutboxEvent { seq, topic_role, key, payload, headers } = event;
        let Some((role, topic)) = self.topic_for(&topic_role) else {
            let message = format!("no topic for role {}", crate::domain::text::echo(&topic_role));
            return Ok(Err(SetAside { seq, role: topic_role, reason: "unknown_topic_role", message }));
        };
        let value = if role == TopicRole::WindowsReady {
            match self.encode_window(&payload).await? {
                Ok(value) => value,
                Err(message) => return Ok(Err(SetAside { seq, role: topic_role, reason: "invalid_event", message })),
            }
        } else {
            payload
        };
        let mut record = Record { key, value, headers: limits::headers(&headers, seq) };
        // The event's span is the announce span's child; infer's becomes its child in turn.
        let trace = traces::relay(headers.get(traces::TRACEPARENT).map(String::as_str), seq, topic);
        if let Some(traceparent) = trace.traceparent()
            && let Some(header) = record.headers.iter_mut().find(|(k, _)| k == traces::TRACEPARENT)
        {
            header.1 = traceparent;
        }
        let limit = limits.limit(topic).await;
        let (record, cut_from) = match limits::fit(record, limit, role == TopicRole::DeadLetters) {
            Ok(Fit::AsIs(record)) => (record, None),
            Ok(Fit::Cut { record, original }) => (record, Some(original)),
            Err(too_large) => {
                trace.failed("set aside: too large for the topic");
                return Ok(Err(SetAside { seq, role: topic_role, reason: "record_too_large", message: too_large.to_string() }));
            }
        };
        Ok(Ok(Outgoing { seq, role, topic: topic.to_owned(), record, cut_from, trace }))
    }

    /// Window events are encoded to Avro here. An event that does not encode is manifold's
    /// own bug (the inner error); a registry that cannot be asked is not the event's fault.
    async fn encode_window(&self, payload: &[u8]) -> Result<Result<Vec<u8>, String>, RelayError> {
        let encoder = self.windows_encoder.as_ref().map_err(|e| RelayError::Registry(e.clone()))?;
        let value = match WindowReady::from_json(payload).and_then(|w| w.to_avro()) {
            Ok(value) => value,
            Err(err) => return Ok(Err(err.to_string())),
        };
        match encoder.encode(value).await {
            Ok(bytes) => Ok(Ok(bytes)),
            // Refused credentials are the deployment's fault, never the event's: wait like an outage.
            Err(CodecError::Unavailable(e) | CodecError::Unauthorized(e)) => Err(RelayError::Registry(e)),
            Err(other) => Err(RelayError::Schema(other.to_string())),
        }
    }

    /// The role an outbox row names and its topic; none for a role that has no outbox events.
    fn topic_for(&self, role: &str) -> Option<(TopicRole, &str)> {
        let role = TopicRole::parse(role).filter(|r| r.is_outbox())?;
        Some((role, &self.topics.of(role).name))
    }
}
