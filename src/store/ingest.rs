//! The ingest transaction: everything one chunk of consumed messages changes, atomically.
//!
//! In one transaction: claim batch ids (duplicates drop out), COPY the readings of the claimed
//! batches, keep the last-value table and the 1-minute aggregate, record dead letters with their
//! outbox events, and advance each partition's offset as a compare-and-set. A crash anywhere
//! leaves either all of it or none of it, and the consumer resumes from the stored offsets.

use std::collections::{HashMap, HashSet};
use std::pin::pin;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tracing::instrument;

use super::pgtime::PgTimestamp;
use super::windows;
use super::{outbox, q, StorageEngine, StoreError};
use crate::domain::{text, CloseReason, TopicRole};
use crate::window::{WindowAccumulator, WindowSpec};

/// Ids are validated shorter than this; the bound only guards the dead-letter row.
const ID_BYTES: usize = 256;

const CLAIM_BATCHES: &str = include_str!("sql/claim_batches.sql");
const BATCHES_REPEATED: &str = include_str!("sql/batches_repeated.sql");
pub(crate) const COPY_READINGS: &str = include_str!("sql/copy_readings.sql");
const UPSERT_LATEST: &str = include_str!("sql/upsert_latest.sql");
const UPSERT_MINUTE: &str = include_str!("sql/upsert_minute.sql");
const INSERT_DEAD_LETTERS: &str = include_str!("sql/insert_dead_letters.sql");
const OFFSET_ADVANCE: &str = include_str!("sql/offset_advance.sql");
const OFFSET_FIRST: &str = include_str!("sql/offset_first.sql");

/// One row of `readings`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub series_id: i32,
    pub time_us: i64,
    pub value: f64,
}

/// A batch that passed validation, with its rows resolved to series ids.
#[derive(Debug, Clone)]
pub struct AcceptedBatch {
    pub system_id: String,
    pub batch_id: String,
    pub rows: Vec<Row>,
    /// Sensor id of each series in `rows`, for window bookkeeping.
    pub sensors: HashMap<i32, String>,
}

#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub kind: &'static str,
    pub message: String,
    pub system_id: Option<String>,
    pub batch_id: Option<String>,
}

/// Moves a partition from `expected` (None: never stored) to `next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAdvance {
    pub topic: String,
    pub partition: i32,
    pub expected: Option<i64>,
    pub next: i64,
}

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
/// roll back (dropping the transaction does).
#[instrument(skip_all, fields(batches = chunk.batches.len(), dead_letters = chunk.dead_letters.len()))]
pub async fn write_chunk(
    tx: &Transaction<'_>,
    group: &str,
    engine: StorageEngine,
    spec: &WindowSpec,
    chunk: &Chunk<'_>,
) -> Result<ChunkOutcome, WriteError> {
    let mut outcome = ChunkOutcome::default();
    let batches = claim(tx, &chunk.batches, &mut outcome).await?;

    let rows: Vec<&Row> = batches.iter().flat_map(|b| b.rows.iter()).collect();
    if !rows.is_empty() {
        outcome.readings_written = copy_rows(tx, &rows).await?;
        upsert_latest(tx, &rows).await?;
        if engine == StorageEngine::Native {
            upsert_minutes(tx, &rows).await?;
        }
    }
    outcome.batches_stored = batches.len();

    let mut acc = WindowAccumulator::default();
    for batch in &batches {
        let readings = batch.rows.iter().map(|r| (batch.sensors.get(&r.series_id).map_or("", String::as_str), r.time_us));
        acc.add_batch(spec, &batch.system_id, readings);
    }
    let ready = windows::apply(tx, spec, &acc).await?;
    outcome.windows_ready = ready.len();

    // Outbox rows must commit in sequence order: hold the lock from the first insert to commit.
    if !chunk.dead_letters.is_empty() || !ready.is_empty() {
        outbox::lock(tx).await?;
    }
    if !chunk.dead_letters.is_empty() {
        outcome.dead_letters = insert_dead_letters(tx, &chunk.dead_letters).await?;
    }
    windows::announce(tx, &ready, CloseReason::Watermark).await?;
    for advance in &chunk.offsets {
        advance_offset(tx, group, advance).await?;
    }
    Ok(outcome)
}

/// Claims batch ids; returns the batches to store. Repeats inside the chunk count as duplicates.
async fn claim<'b>(
    tx: &Transaction<'_>,
    batches: &[&'b AcceptedBatch],
    outcome: &mut ChunkOutcome,
) -> Result<Vec<&'b AcceptedBatch>, StoreError> {
    if batches.is_empty() {
        return Ok(Vec::new());
    }
    let mut seen = HashSet::with_capacity(batches.len());
    let mut unique = Vec::with_capacity(batches.len());
    let mut in_chunk = Vec::new();
    for &batch in batches {
        if seen.insert((batch.system_id.as_str(), batch.batch_id.as_str())) {
            unique.push(batch);
        } else {
            in_chunk.push((batch.system_id.clone(), batch.batch_id.clone()));
        }
    }
    let systems: Vec<&str> = unique.iter().map(|b| b.system_id.as_str()).collect();
    let ids: Vec<&str> = unique.iter().map(|b| b.batch_id.as_str()).collect();
    let counts: Vec<i32> = unique.iter().map(|b| b.rows.len() as i32).collect();
    let statement = tx.prepare_cached(CLAIM_BATCHES).await.map_err(q("prepare batch claim"))?;
    let claimed: HashSet<(String, String)> = tx
        .query(&statement, &[&systems, &ids, &counts])
        .await
        .map_err(q("claim batch ids"))?
        .into_iter()
        .filter(|row| row.get::<_, bool>(2))
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    if !in_chunk.is_empty() {
        let systems: Vec<&str> = in_chunk.iter().map(|d| d.0.as_str()).collect();
        let ids: Vec<&str> = in_chunk.iter().map(|d| d.1.as_str()).collect();
        tx.execute(BATCHES_REPEATED, &[&systems, &ids]).await.map_err(q("count repeated batches"))?;
        outcome.duplicates.extend(in_chunk);
    }
    let (fresh, repeated): (Vec<_>, Vec<_>) =
        unique.into_iter().partition(|b| claimed.contains(&(b.system_id.clone(), b.batch_id.clone())));
    outcome.duplicates.extend(repeated.into_iter().map(|b| (b.system_id.clone(), b.batch_id.clone())));
    Ok(fresh)
}

/// Binary COPY of rows into `readings`; also the physical-limit baseline of the load benchmark.
pub async fn copy_rows<R: std::borrow::Borrow<Row> + Sync>(tx: &tokio_postgres::Transaction<'_>, rows: &[R]) -> Result<u64, StoreError> {
    let sink = tx.copy_in(COPY_READINGS).await.map_err(q("start COPY"))?;
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &[Type::TIMESTAMPTZ, Type::INT4, Type::FLOAT8]));
    for row in rows {
        let row = row.borrow();
        let time = PgTimestamp(row.time_us);
        writer.as_mut().write(&[&time, &row.series_id, &row.value]).await.map_err(q("COPY readings"))?;
    }
    writer.as_mut().finish().await.map_err(q("finish COPY"))
}

async fn upsert_latest(tx: &Transaction<'_>, rows: &[&Row]) -> Result<(), StoreError> {
    let mut latest: HashMap<i32, (i64, f64)> = HashMap::new();
    for row in rows {
        let entry = latest.entry(row.series_id).or_insert((row.time_us, row.value));
        if row.time_us >= entry.0 {
            *entry = (row.time_us, row.value);
        }
    }
    let series: Vec<i32> = latest.keys().copied().collect();
    let times: Vec<DateTime<Utc>> = series.iter().map(|s| micros_to_time(latest[s].0)).collect();
    let values: Vec<f64> = series.iter().map(|s| latest[s].1).collect();
    let statement = tx.prepare_cached(UPSERT_LATEST).await.map_err(q("prepare latest upsert"))?;
    tx.execute(&statement, &[&series, &times, &values]).await.map_err(q("upsert latest readings"))?;
    Ok(())
}

#[derive(Clone, Copy)]
struct MinuteAggregate {
    n: i64,
    sum: f64,
    min: f64,
    max: f64,
}

async fn upsert_minutes(tx: &Transaction<'_>, rows: &[&Row]) -> Result<(), StoreError> {
    const MINUTE_US: i64 = 60_000_000;
    let mut buckets: HashMap<(i32, i64), MinuteAggregate> = HashMap::new();
    for row in rows {
        let bucket = row.time_us.div_euclid(MINUTE_US) * MINUTE_US;
        let agg = buckets
            .entry((row.series_id, bucket))
            .or_insert(MinuteAggregate { n: 0, sum: 0.0, min: f64::INFINITY, max: f64::NEG_INFINITY });
        agg.n += 1;
        // Validation bounds |value| to Sensor::MAX_MAGNITUDE (1e9), so n × 1e9 ≤ 9.2e27 never
        // overflows; saturating anyway keeps a wider value from becoming +inf, which the
        // database would then add to without complaint and serve as a mean forever.
        agg.sum = (agg.sum + row.value).clamp(-f64::MAX, f64::MAX);
        agg.min = agg.min.min(row.value);
        agg.max = agg.max.max(row.value);
    }
    // A stable order keeps concurrent upserts from deadlocking on the same buckets.
    let mut keys: Vec<(i32, i64)> = buckets.keys().copied().collect();
    keys.sort_unstable();
    let series: Vec<i32> = keys.iter().map(|k| k.0).collect();
    let starts: Vec<DateTime<Utc>> = keys.iter().map(|k| micros_to_time(k.1)).collect();
    let aggs: Vec<MinuteAggregate> = keys.iter().map(|k| buckets[k]).collect();
    let n: Vec<i64> = aggs.iter().map(|a| a.n).collect();
    let sum: Vec<f64> = aggs.iter().map(|a| a.sum).collect();
    let min: Vec<f64> = aggs.iter().map(|a| a.min).collect();
    let max: Vec<f64> = aggs.iter().map(|a| a.max).collect();
    let statement = tx.prepare_cached(UPSERT_MINUTE).await.map_err(q("prepare minute upsert"))?;
    tx.execute(&statement, &[&series, &starts, &n, &sum, &min, &max]).await.map_err(q("upsert the 1-minute aggregate"))?;
    Ok(())
}

async fn insert_dead_letters(tx: &Transaction<'_>, letters: &[&DeadLetter]) -> Result<usize, StoreError> {
    let topics: Vec<&str> = letters.iter().map(|d| d.source_topic.as_str()).collect();
    let partitions: Vec<i32> = letters.iter().map(|d| d.source_partition).collect();
    let offsets: Vec<i64> = letters.iter().map(|d| d.source_offset).collect();
    let keys: Vec<Option<&[u8]>> = letters.iter().map(|d| d.key.as_deref()).collect();
    let values: Vec<Option<&[u8]>> = letters.iter().map(|d| d.value.as_deref()).collect();
    let kinds: Vec<&str> = letters.iter().map(|d| d.kind).collect();
    // Free text reaches a column, a jsonb header and a Kafka header: it must not be able to
    // fail there (a NUL is refused by PostgreSQL text and jsonb alike).
    let messages: Vec<String> = letters.iter().map(|d| text::message(&d.message)).collect();
    let systems: Vec<Option<String>> = letters.iter().map(|d| d.system_id.as_deref().map(|t| text::sanitize(t, ID_BYTES))).collect();
    let batches: Vec<Option<String>> = letters.iter().map(|d| d.batch_id.as_deref().map(|t| text::sanitize(t, ID_BYTES))).collect();
    let role = TopicRole::DeadLetters.as_str();
    let statement = tx.prepare_cached(INSERT_DEAD_LETTERS).await.map_err(q("prepare dead-letter insert"))?;
    let inserted = tx
        .execute(&statement, &[&topics, &partitions, &offsets, &keys, &values, &kinds, &messages, &systems, &batches, &role])
        .await
        .map_err(q("insert dead letters"))?;
    Ok(inserted as usize)
}

async fn advance_offset(tx: &Transaction<'_>, group: &str, advance: &OffsetAdvance) -> Result<(), WriteError> {
    let changed = match advance.expected {
        Some(expected) => {
            let statement = tx.prepare_cached(OFFSET_ADVANCE).await.map_err(q("prepare offset update"))?;
            tx.execute(&statement, &[&group, &advance.topic, &advance.partition, &expected, &advance.next])
                .await
                .map_err(q("advance the offset"))?
        }
        None => {
            let statement = tx.prepare_cached(OFFSET_FIRST).await.map_err(q("prepare offset insert"))?;
            tx.execute(&statement, &[&group, &advance.topic, &advance.partition, &advance.next])
                .await
                .map_err(q("record the first offset"))?
        }
    };
    if changed == 1 {
        Ok(())
    } else {
        Err(WriteError::Fenced { topic: advance.topic.clone(), partition: advance.partition })
    }
}

fn micros_to_time(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::MIN_UTC)
}
