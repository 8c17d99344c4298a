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
use super::metadata::MetadataCache;
use super::metrics::IngestMetrics;
use super::pending::Pending;
use super::validate::{Validator, Verdict};
use crate::codec::{BatchDecoder, CodecError};
use crate::config::{IngestConfig, KafkaConfig};
use crate::domain::DomainError;
use crate::kafka::KafkaError;
use crate::store::ingest::{Chunk, ChunkOutcome, DeadLetter, WriteError, write_chunk};
use crate::store::{StorageEngine, Store, StoreError};
use crate::window::WindowSpec;

const SEEK_RETRY: Duration = Duration::from_millis(50);

/// What the health endpoint reports about ingest.
#[derive(Default)]
pub struct IngestHealth {
    pub outage: AtomicBool,
}

pub struct IngestService {
    pub store: Store,
    pub engine: StorageEngine,
    pub decoder: BatchDecoder,
    pub cache: MetadataCache,
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

/// A chunk whose write failed for a transient reason, waiting to be retried as it is.
pub(super) struct Stalled {
    chunk: Chunk,
    event_times: Vec<i64>,
}

pub(super) type Written = (Stalled, Result<ChunkOutcome, WriteError>, Duration);

pub(super) struct Loop {
    pub(super) consumer: IngestConsumer,
    pub(super) partitions: HashMap<i32, PartitionState>,
    pub(super) pending: Pending,
    pub(super) stalled: Option<Stalled>,
    /// Set while paused for an outage: when to try again, and the current back-off.
    pub(super) retry_at: Option<Instant>,
    /// Partitions whose seek failed (a seek right after an assignment may: librdkafka #3959).
    pub(super) seek_retry_at: Option<Instant>,
    /// The chunk being written while the next one is decoded (at most one in flight, so each
    /// chunk's compare-and-set starts from the offsets the previous one stored).
    pub(super) in_flight: Option<tokio::task::JoinHandle<Written>>,
    pub(super) backoff: Duration,
}

pub(super) enum Transient {
    Store(StoreError),
    Registry(String),
}

impl IngestService {
    /// Runs until `shutdown`; then finishes the chunk in hand if it can and leaves the group.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), KafkaError> {
        let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
        let consumer = consumer::create(&self.kafka, &self.config, &self.topic, self.metrics.clone(), events_tx)?;
        let mut state = Loop {
            consumer,
            partitions: HashMap::new(),
            pending: Pending::default(),
            stalled: None,
            retry_at: None,
            seek_retry_at: None,
            in_flight: None,
            backoff: Duration::from_millis(self.config.retry_initial_ms),
        };
        let max_delay = Duration::from_millis(self.config.chunk_max_delay_ms);
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
                    // Broker trouble: librdkafka reconnects by itself; keep polling.
                    Err(err) => tracing::warn!(error = %err, "kafka consumer error"),
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
        match event {
            RebalanceEvent::Revoked(partitions) => {
                for p in &partitions {
                    state.partitions.remove(p);
                    state.pending.abandon(*p);
                }
                tracing::info!(?partitions, "partitions revoked");
            }
            RebalanceEvent::Assigned(partitions) => {
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
            Err(err) => return self.enter_outage(state, Transient::Store(err)),
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
                    Err(err) => Err(Transient::Store(err)),
                }
            }
            Err(CodecError::Rejected(err)) => Ok((Verdict::Reject(err), None)),
            Err(CodecError::Unavailable(err)) => Err(Transient::Registry(err)),
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
            message: kind.to_string(),
            system_id: batch.as_ref().map(|b| b.system_id.to_string()),
            batch_id: batch.as_ref().map(|b| b.batch_id.clone()),
        };
        match verdict {
            Verdict::Accept(accepted) => state.pending.accept(p, offset, accepted),
            Verdict::Reject(err) => state.pending.dead_letter(p, offset, letter(&err, message.payload().map(<[u8]>::to_vec))),
            Verdict::Partial { accepted, rejected, error } => {
                let mut dead = letter(&error, serde_json::to_vec(&rejected).ok());
                dead.batch_id = rejected.batch_id.clone();
                state.pending.accept(p, offset, accepted);
                state.pending.dead_letter(p, offset, dead);
            }
        }
    }

    /// Starts writing the pending chunk once the previous write has settled.
    async fn flush(&self, state: &mut Loop) {
        self.settle(state).await;
        if state.retry_at.is_some() {
            return; // the previous write hit an outage: keep collecting, retry later
        }
        let (chunk, event_times) = {
            let partitions = &state.partitions;
            state.pending.take_chunk(&self.topic, |p| partitions.get(&p).and_then(|s| s.stored))
        };
        self.start_write(state, Stalled { chunk, event_times });
    }

    fn start_write(&self, state: &mut Loop, work: Stalled) {
        if work.chunk.is_empty() {
            return;
        }
        let (store, group, engine, windows) = (self.store.clone(), self.config.group_id.clone(), self.engine, self.windows);
        state.in_flight = Some(tokio::spawn(async move {
            let started = Instant::now();
            let result = commit(&store, &group, engine, &windows, &work.chunk).await;
            (work, result, started.elapsed())
        }));
    }

    /// Waits for the write in flight, if any, and applies its outcome.
    async fn settle(&self, state: &mut Loop) {
        if let Some(handle) = state.in_flight.take() {
            match handle.await {
                Ok(written) => self.settled(state, written).await,
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
                return;
            }
        }
        self.leave_outage(state).await;
    }

    async fn settled(&self, state: &mut Loop, (work, result, took): Written) {
        match result {
            Ok(outcome) => {
                for advance in &work.chunk.offsets {
                    if let Some(s) = state.partitions.get_mut(&advance.partition) {
                        s.stored = Some(advance.next);
                    }
                }
                let next: Vec<(i32, i64)> = work.chunk.offsets.iter().map(|a| (a.partition, a.next)).collect();
                consumer::commit_for_lag_tools(&state.consumer, &self.topic, &next);
                self.record(&work, &outcome, took);
                state.backoff = Duration::from_millis(self.config.retry_initial_ms);
            }
            Err(WriteError::Fenced { topic, partition }) => {
                self.metrics.write_errors.with_label_values(&["fenced"]).inc();
                tracing::warn!(%topic, partition, "another consumer moved a partition; re-reading stored offsets");
                self.restart_from_stored(state).await;
            }
            Err(WriteError::Store(err)) => {
                state.stalled = Some(work);
                self.enter_outage(state, Transient::Store(err));
            }
        }
    }


    /// The log lines and counters of a committed chunk, from one place.
    fn record(&self, work: &Stalled, outcome: &ChunkOutcome, took: Duration) {
        let m = &self.metrics;
        m.readings_written.inc_by(outcome.readings_written);
        m.batches_stored.inc_by(outcome.batches_stored as u64);
        m.duplicates.inc_by(outcome.duplicates.len() as u64);
        m.chunk_readings.observe(outcome.readings_written as f64);
        m.chunk_seconds.observe(took.as_secs_f64());
        let now = now_us();
        for newest in &work.event_times {
            m.end_to_end_seconds.observe(((now - newest) as f64 / 1e6).max(0.0));
        }
        for letter in &work.chunk.dead_letters {
            m.dead_letters.with_label_values(&[letter.kind]).inc();
            tracing::info!(reason = letter.kind, partition = letter.source_partition, offset = letter.source_offset, message = %letter.message, "message dead-lettered");
        }
        for (system_id, batch_id) in &outcome.duplicates {
            tracing::info!(%system_id, %batch_id, "duplicate batch skipped");
        }
        tracing::debug!(readings = outcome.readings_written, batches = outcome.batches_stored, took_ms = took.as_millis() as u64, "chunk committed");
    }

}

async fn commit(store: &Store, group: &str, engine: StorageEngine, windows: &WindowSpec, chunk: &Chunk) -> Result<ChunkOutcome, WriteError> {
    let mut client = store.client().await?;
    let tx = client.transaction().await.map_err(|e| StoreError::query("begin the ingest transaction", e))?;
    let outcome = write_chunk(&tx, group, engine, windows, chunk).await?;
    tx.commit().await.map_err(|e| StoreError::query("commit the ingest transaction", e))?;
    Ok(outcome)
}

fn unknown_system(system_id: &str) -> DomainError {
    DomainError::new(crate::domain::RejectKind::UnknownSystem, "system_id", format!("no equipment registered as {system_id}"))
}

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}
