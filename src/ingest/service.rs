//! The ingest loop: consume, decode, validate, and write chunks exactly once.
//!
//! Each partition's position comes from the database. A chunk commits its rows and the
//! partitions' next offsets together (compare-and-set), so a crash, a rebalance or a second
//! consumer can neither lose nor repeat a message. While the database or the registry is
//! unavailable the partitions are paused but the consumer keeps polling, so the group keeps it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::Consumer;
use rdkafka::message::OwnedMessage;
use tokio::time::sleep_until;
use tokio_util::sync::CancellationToken;
use tracing::instrument;

use super::consumer::{self, IngestConsumer, RebalanceEvent};
use super::metrics::IngestMetrics;
use super::pending::{Pending, Work};
use super::writer::{self, Report, Target};
use crate::codec::{BatchDecoder, CodecError};
use crate::config::{IngestConfig, KafkaConfig};
use crate::domain::{DomainError, Validator, Verdict, text};
use crate::failure::{Breaker, FailureKind};
use crate::kafka::KafkaError;
use crate::kafka::fences::Fences;
use crate::kafka::repeats::Repeats;
use crate::store::{DeadLetter, EquipmentCatalogue, StorageEngine, Store, StoreError};
use crate::window::WindowSpec;

const SEEK_RETRY: Duration = Duration::from_millis(50);

/// What the health endpoint reports about ingest.
#[derive(Default)]
pub struct IngestHealth {
    pub outage: AtomicBool,
    /// Set while paused for a systemic failure: what an operator must fix.
    pub systemic: std::sync::Mutex<Option<String>>,
}

impl IngestHealth {
    /// The readiness answer: ready, or why not.
    pub fn readiness(&self) -> Result<(), String> {
        if let Some(what) = self.systemic.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            return Err(format!("stopped: {what}"));
        }
        if self.outage.load(std::sync::atomic::Ordering::Relaxed) {
            return Err("paused: the database or the schema registry is unavailable".into());
        }
        Ok(())
    }
}

pub struct IngestService {
    pub store: Store,
    pub engine: StorageEngine,
    pub decoder: BatchDecoder,
    pub cache: EquipmentCatalogue,
    pub validator: Validator,
    pub metrics: IngestMetrics,
    pub health: Arc<IngestHealth>,
    pub config: IngestConfig,
    pub kafka: KafkaConfig,
    pub topic: String,
    pub windows: WindowSpec,
}

#[derive(Debug, Clone, Copy, Default)]
pub(super) struct PartitionState {
    /// The next offset stored in the database: the compare-and-set guard of the next chunk.
    pub(super) stored: Option<i64>,
    /// Messages below this offset were taken already (or are stale after a seek).
    pub(super) next_accept: i64,
    pub(super) ready: bool,
}

pub(super) struct Loop {
    pub(super) consumer: IngestConsumer,
    pub(super) partitions: HashMap<i32, PartitionState>,
    pub(super) pending: Pending,
    /// What is left of a chunk whose write failed (transient or systemic), retried as it is.
    pub(super) stalled: Option<Work>,
    /// Set while paused for an outage: when to try again, and the current back-off.
    pub(super) retry_at: Option<Instant>,
    /// Partitions whose seek failed (a seek right after an assignment may: librdkafka #3959).
    pub(super) seek_retry_at: Option<Instant>,
    /// The chunk being written while the next one is decoded (at most one in flight, so each
    /// chunk's compare-and-set starts from the offsets the previous one stored).
    pub(super) in_flight: Option<tokio::task::JoinHandle<Report>>,
    pub(super) backoff: Duration,
    /// Turns a run of transient failures into a systemic one.
    pub(super) breaker: Breaker,
}

/// Why ingest cannot make progress now.
pub(super) enum Transient {
    Store(FailureKind, StoreError),
    Registry(String),
}

impl IngestService {
    /// Runs until `shutdown`; then finishes the chunk in hand if it can and leaves the group.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), KafkaError> {
        let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let consumer = consumer::create(&self.kafka, &self.config, &self.topic, self.metrics.clone(), events_tx.clone())?;
        let mut fences = Fences::for_session(self.config.session_timeout_ms);
        let mut repeats = Repeats::default();
        let mut state = Loop {
            consumer,
            partitions: HashMap::new(),
            pending: Pending::default(),
            stalled: None,
            retry_at: None,
            seek_retry_at: None,
            in_flight: None,
            backoff: self.config.retry_initial_ms,
            breaker: Breaker::new(self.config.breaker_failures, self.config.breaker_seconds),
        };
        let max_delay = self.config.chunk_max_delay_ms;
        let far = Instant::now() + Duration::from_secs(365 * 24 * 3600);
        tracing::info!(topic = %self.topic, group = %self.config.group_id, "ingest started");
        loop {
            let flush_at = state.pending.opened_at().map_or(far, |t| t + max_delay);
            let retry_at = state.retry_at.unwrap_or(far);
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(event) = events.recv() => self.on_rebalance(&mut state, event).await,
                written = async { state.in_flight.as_mut().expect("guarded").await }, if state.in_flight.is_some() => {
                    state.in_flight = None;
                    match written {
                        Ok(written) => self.settled(&mut state, written).await,
                        Err(err) => {
                            tracing::error!(error = %err, "chunk writer task failed; consuming again from the stored offsets");
                            self.restart_from_stored(&mut state).await;
                        }
                    }
                }
                _ = sleep_until(retry_at.into()), if state.retry_at.is_some() => self.retry(&mut state).await,
                _ = sleep_until(state.seek_retry_at.unwrap_or(far).into()), if state.seek_retry_at.is_some() => {
                    state.seek_retry_at = None;
                    let waiting: Vec<i32> = state.partitions.iter().filter(|(_, s)| !s.ready).map(|(p, _)| *p).collect();
                    self.reseek(&mut state, &waiting).await;
                }
                _ = sleep_until(flush_at.into()), if state.retry_at.is_none() && !state.pending.is_empty() => {
                    self.flush(&mut state).await;
                }
                received = state.consumer.recv() => match received {
                    Ok(message) => {
                        let message = message.detach();
                        self.on_message(&mut state, message).await;
                        if state.retry_at.is_none() && state.pending.readings() >= self.config.chunk_max_readings {
                            self.flush(&mut state).await;
                        }
                    }
                    Err(err) if crate::kafka::is_fatal(&err) || matches!(err, rdkafka::error::KafkaError::MessageConsumptionFatal(_)) => {
                        if fences.repeated(Instant::now()) {
                            self.stop_fenced(&err, fences.count());
                            shutdown.cancelled().await;
                            break;
                        }
                        tracing::warn!(error = %err, fences = fences.count(), "the kafka consumer failed for good; joining again with a new one");
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = tokio::time::sleep(self.config.retry_initial_ms) => {}
                        }
                        self.replace_consumer(&mut state, &events_tx).await?;
                    }
                    // Broker trouble: librdkafka reconnects by itself; keep polling.
                    Err(err) => repeats.warn(&err),
                },
            }
        }
        // Finish the batch in hand: one attempt, then leave; the stored offsets make the rest safe.
        self.settle(&mut state).await;
        if state.stalled.is_some() {
            self.retry(&mut state).await;
        } else if !state.pending.is_empty() {
            self.flush(&mut state).await;
        }
        self.settle(&mut state).await;
        state.consumer.unsubscribe();
        tracing::info!("ingest stopped");
        Ok(())
    }

    async fn on_rebalance(&self, state: &mut Loop, event: RebalanceEvent) {
        // A write in flight finishes first: an assignment that read the stored offsets before
        // it commits would seek back, and the next chunk would move an offset backwards and
        // write its dead letters twice.
        self.settle(state).await;
        match event {
            RebalanceEvent::Revoked(partitions) => {
                forget(state, &partitions);
                for p in &partitions {
                    state.partitions.remove(p);
                }
                tracing::info!(?partitions, "partitions revoked");
            }
            RebalanceEvent::Assigned(partitions) => {
                // Consumption starts again from the stored offsets: anything taken before is
                // consumed again, so it must not also be written from memory.
                forget(state, &partitions);
                for p in &partitions {
                    state.partitions.insert(*p, PartitionState::default());
                }
                tracing::info!(?partitions, "partitions assigned");
                consumer::pause(&state.consumer, &self.topic, &partitions);
                self.reseek(state, &partitions).await;
            }
        }
    }

    /// Reads the stored offsets of `partitions`, seeks there and resumes them (unless in an
    /// outage). On failure the partitions stay paused and the retry timer tries again.
    pub(super) async fn reseek(&self, state: &mut Loop, partitions: &[i32]) {
        let stored = match self.store.read_offsets(&self.config.group_id, &self.topic, partitions).await {
            Ok(stored) => stored,
            Err(err) => return self.enter_outage(state, Transient::Store(err.failure(), err)),
        };
        let targets: Vec<(i32, Option<i64>)> = partitions.iter().map(|p| (*p, stored.get(p).copied())).collect();
        let failed = consumer::seek(&state.consumer, &self.topic, &targets);
        for (p, offset) in &targets {
            if let Some(s) = state.partitions.get_mut(p) {
                *s = PartitionState { stored: *offset, next_accept: offset.unwrap_or(0), ready: !failed.contains(p) };
            }
        }
        if !failed.is_empty() {
            tracing::debug!(?failed, "seek not possible yet; retrying shortly");
            state.seek_retry_at = Some(Instant::now() + SEEK_RETRY);
        }
        if state.retry_at.is_none() {
            let ready: Vec<i32> = partitions.iter().copied().filter(|p| !failed.contains(p)).collect();
            consumer::resume(&state.consumer, &self.topic, &ready);
        }
    }

    #[instrument(skip_all, fields(partition = message.partition(), offset = message.offset()))]
    async fn on_message(&self, state: &mut Loop, message: OwnedMessage) {
        let (p, offset) = (message.partition(), message.offset());
        let Some(part) = state.partitions.get(&p).copied() else { return };
        if !part.ready || offset < part.next_accept {
            return; // stale: fetched before a seek; it comes again from the right place
        }
        self.metrics.messages_consumed.inc();
        let verdict = match self.decoder.decode(message.payload()).await {
            Ok(batch) => {
                self.metrics.readings_consumed.inc_by(batch.reading_count() as u64);
                match self.cache.get_or_load(&self.store, batch.system_id.as_str()).await {
                    Ok(Some(system)) => Ok((self.validator.check(&batch, &system, now_us()), Some(batch))),
                    Ok(None) => Ok((Verdict::Reject(unknown_system(&batch.system_id.to_string())), Some(batch))),
                    Err(err) => Err(Transient::Store(err.failure(), err)),
                }
            }
            Err(CodecError::Rejected(err)) => Ok((Verdict::Reject(err), None)),
            // Refused credentials are no message's fault: pause as for an outage, never dead-letter.
            Err(CodecError::Unavailable(err) | CodecError::Unauthorized(err)) => Err(Transient::Registry(err)),
            Err(CodecError::Encode(err)) => Ok((Verdict::Reject(DomainError::invalid("value", err)), None)),
        };
        let (verdict, batch) = match verdict {
            Ok(v) => v,
            Err(transient) => {
                // Take this message again once the dependency is back: seek back to it.
                consumer::seek(&state.consumer, &self.topic, &[(p, Some(offset))]);
                if let Some(s) = state.partitions.get_mut(&p) {
                    s.next_accept = offset;
                }
                return self.enter_outage(state, transient);
            }
        };
        if let Some(s) = state.partitions.get_mut(&p) {
            s.next_accept = offset + 1;
        }
        let letter = |kind: &DomainError, value: Option<Vec<u8>>| DeadLetter {
            source_topic: self.topic.clone(),
            source_partition: p,
            source_offset: offset,
            key: message.key().map(<[u8]>::to_vec),
            value,
            kind: kind.kind.as_str(),
            // The text may echo the client's input: it is stored, put in jsonb and in a header.
            message: text::message(&kind.to_string()),
            system_id: batch.as_ref().map(|b| b.system_id.to_string()),
            batch_id: batch.as_ref().map(|b| b.batch_id.clone()),
        };
        let (accepted, letter) = match verdict {
            Verdict::Accept(accepted) => (Some(accepted), None),
            Verdict::Reject(err) => (None, Some(letter(&err, message.payload().map(<[u8]>::to_vec)))),
            Verdict::Partial { accepted, rejected, error } => {
                let mut dead = letter(&error, serde_json::to_vec(&rejected).ok());
                dead.batch_id = rejected.batch_id.clone();
                (Some(accepted), Some(dead))
            }
        };
        state.pending.take(p, message, accepted, letter);
    }

    /// Starts writing the pending chunk once the previous write has settled.
    async fn flush(&self, state: &mut Loop) {
        self.settle(state).await;
        if state.retry_at.is_some() {
            return; // the previous write hit an outage: keep collecting, retry later
        }
        let work = {
            let partitions = &state.partitions;
            state.pending.take_work(|p| partitions.get(&p).and_then(|s| s.stored))
        };
        self.start_write(state, work);
    }

    fn start_write(&self, state: &mut Loop, work: Work) {
        if work.is_empty() {
            return;
        }
        let target = Target {
            store: self.store.clone(),
            group: self.config.group_id.clone(),
            topic: self.topic.clone(),
            engine: self.engine,
            windows: self.windows,
        };
        state.in_flight = Some(tokio::spawn(writer::write(target, work)));
    }

    /// Waits for the write in flight, if any, and applies its outcome.
    pub(super) async fn settle(&self, state: &mut Loop) {
        if let Some(handle) = state.in_flight.take() {
            match handle.await {
                Ok(report) => self.settled(state, report).await,
                Err(err) => {
                    tracing::error!(error = %err, "chunk writer task failed; consuming again from the stored offsets");
                    Box::pin(self.restart_from_stored(state)).await;
                }
            }
        }
    }

    async fn retry(&self, state: &mut Loop) {
        self.settle(state).await;
        if let Some(stalled) = state.stalled.take() {
            self.start_write(state, stalled);
            self.settle(state).await;
            if state.stalled.is_some() {
                return; // still failing: the outage was extended with a longer back-off
            }
        }
        self.leave_outage(state).await;
    }
}

/// Drops what was taken from `partitions` but not stored (pending or stalled).
fn forget(state: &mut Loop, partitions: &[i32]) {
    for p in partitions {
        state.pending.abandon(*p);
    }
    if let Some(stalled) = state.stalled.as_mut() {
        stalled.parts.retain(|part| !partitions.contains(&part.partition));
    }
}

fn unknown_system(system_id: &str) -> DomainError {
    DomainError::new(crate::domain::RejectKind::UnknownSystem, "system_id", format!("no equipment registered as {system_id}"))
}

pub(super) fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
