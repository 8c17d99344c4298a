//! The ingest transaction: everything one chunk of consumed messages changes, atomically.
//!
//! In one transaction: claim batch ids (duplicates drop out), COPY the readings of the claimed
//! batches, keep the last-value table and the 1-minute aggregate, record dead letters with their
//! outbox events, and advance each partition's offset as a compare-and-set. A crash anywhere
//! leaves either all of it or none of it, and the consumer resumes from the stored offsets.

use std::time::{Duration, Instant};

use deadpool_postgres::Transaction;
use tracing::instrument;

use super::dead_letters::{self, DeadLetter};
use super::offsets::{self, OffsetAdvance};
use super::windows;
use super::{batches, outbox, readings, StorageEngine, StoreError};
use crate::domain::{AcceptedBatch, CloseReason, Row};
use crate::telemetry::traces::ChunkTrace;
use crate::window::{SlotAccumulator, WindowAccumulator, WindowSpec};

/// What one ingest transaction writes. It borrows the batches and dead letters, so narrowing a
/// refused chunk down to its culprit costs no copies of the rows.
#[derive(Debug, Default)]
pub struct Chunk<'a> {
    pub batches: Vec<&'a AcceptedBatch>,
    pub dead_letters: Vec<&'a DeadLetter>,
    pub offsets: Vec<OffsetAdvance>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct ChunkOutcome {
    pub batches_stored: usize,
    pub readings_written: u64,
    /// (system_id, batch_id) of batches skipped because they were stored before.
    pub duplicates: Vec<(String, String)>,
    pub dead_letters: usize,
    pub windows_ready: usize,
    pub steps: ChunkSteps,
}

/// Where a chunk's transaction spent its time (logged at debug level after the commit): what a
/// profile of the ingest throughput needs to tell the COPY from the bookkeeping around it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ChunkSteps {
    /// Claiming the batch ids.
    pub claim: Duration,
    pub copy: Duration,
    /// The last values, the 1-minute aggregate and the sampling rates.
    pub derived: Duration,
    /// Window counts, slots, watermarks and readiness.
    pub windows: Duration,
    /// The outbox lock, dead letters, window-ready events and the offsets.
    pub outbox: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Another consumer moved the partition's offset: this chunk is void, re-read the offsets.
    #[error("partition {topic}[{partition}] was moved by another consumer")]
    Fenced { topic: String, partition: i32 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Chunk<'_> {
    pub fn is_empty(&self) -> bool {
        self.batches.is_empty() && self.dead_letters.is_empty() && self.offsets.is_empty()
    }

    pub fn reading_count(&self) -> usize {
        self.batches.iter().map(|b| b.rows.len()).sum()
    }
}

/// Writes a chunk in the given transaction; the caller commits. On `Fenced` the caller must
/// roll back (dropping the transaction does). `trace` is the transaction's span: its windows
/// link to it, and the spans of the windows it announces are added to it.
#[instrument(skip_all, fields(batches = chunk.batches.len(), dead_letters = chunk.dead_letters.len()))]
pub async fn write_chunk(
    tx: &Transaction<'_>,
    group: &str,
    engine: StorageEngine,
    spec: &WindowSpec,
    chunk: &Chunk<'_>,
    trace: &mut ChunkTrace,
) -> Result<ChunkOutcome, WriteError> {
    let mut outcome = ChunkOutcome::default();
    let mut lap = Instant::now();
    let mut split = || std::mem::replace(&mut lap, Instant::now()).elapsed();
    let (batches, duplicates) = batches::claim(tx, &chunk.batches).await?;
    outcome.duplicates = duplicates;
    outcome.steps.claim = split();

    let rows: Vec<&Row> = batches.iter().flat_map(|b| b.rows.iter()).collect();
    if !rows.is_empty() {
        outcome.readings_written = readings::write(tx, &rows).await?;
    }
    outcome.batches_stored = batches.len();
    outcome.steps.copy = split();

    let mut acc = WindowAccumulator::default();
    for batch in &batches {
        let readings = batch.rows.iter().map(|r| (batch.sensors.get(&r.series_id).map_or("", String::as_str), r.time_us));
        acc.add_batch(spec, &batch.system_id, readings);
    }
    let mut series: Vec<i32> = batches.iter().flat_map(|b| b.sensors.keys().copied()).collect();
    series.sort_unstable();
    series.dedup();
    // Independent statements go out together (one round trip, not one each): while the
    // database waits for the next statement it does nothing for this chunk.
    let summary = async { if rows.is_empty() { Ok(()) } else { readings::summarise(tx, engine, &rows).await } };
    let ((), rates) = futures_util::future::try_join(summary, windows::rates(tx, &series)).await?;
    outcome.steps.derived = split();
    let mut slots = SlotAccumulator::default();
    for batch in &batches {
        slots.add_batch(spec, &batch.system_id, &rates, batch.rows.iter().map(|r| (r.series_id, r.time_us)));
    }
    let ready = windows::apply(tx, spec, &acc, &slots, trace.traceparent().as_deref()).await?;
    outcome.windows_ready = ready.len();
    outcome.steps.windows = split();

    // Outbox rows must commit in sequence order: hold the lock from the first insert to commit.
    // It is taken on its own: a statement sent with it could otherwise run before it.
    if !chunk.dead_letters.is_empty() || !ready.is_empty() {
        outbox::lock(tx).await?;
    }
    // The inserts and the offsets go out together. Both announces use one statement, so they
    // are sent in this order whatever the statement cache holds: complete windows keep their
    // sequence numbers before the watermark's.
    let letters = async { if chunk.dead_letters.is_empty() { Ok(0) } else { dead_letters::insert(tx, &chunk.dead_letters).await } };
    let advances = futures_util::future::try_join_all(chunk.offsets.iter().map(|advance| offsets::advance(tx, group, advance)));
    let (dead, complete, watermark, moved) = futures_util::future::try_join4(
        letters,
        windows::announce(tx, &ready.complete, CloseReason::Complete),
        windows::announce(tx, &ready.watermark, CloseReason::Watermark),
        advances,
    )
    .await?;
    outcome.dead_letters = dead;
    trace.announced(complete);
    trace.announced(watermark);
    outcome.steps.outbox = split();
    if let Some((advance, _)) = chunk.offsets.iter().zip(&moved).find(|(_, moved)| !**moved) {
        return Err(WriteError::Fenced { topic: advance.topic.clone(), partition: advance.partition });
    }
    Ok(outcome)
}

