//! Batch ids: claimed once by the ingest transaction (a repeat is a duplicate), and their
//! status for device teams: what became of a batch id sent over HTTP or Kafka.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{Store, StoreError, q};
use crate::domain::AcceptedBatch;

const BATCH_SUBMITTED: &str = include_str!("sql/batch_submitted.sql");
const BATCH_STATUS: &str = include_str!("sql/batch_status.sql");
const BATCHES_STALLED: &str = include_str!("sql/batches_stalled.sql");
const CLAIM_BATCHES: &str = include_str!("sql/claim_batches.sql");
const BATCHES_REPEATED: &str = include_str!("sql/batches_repeated.sql");

/// The batches to store, and the (system_id, batch_id) of those stored before.
pub(super) type Claimed<'b> = (Vec<&'b AcceptedBatch>, Vec<(String, String)>);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    /// Accepted by the API and the broker; ingest has not stored it yet.
    Pending,
    Stored,
    /// Stored earlier; later copies were skipped.
    Duplicate,
    DeadLettered,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeadLetterReason {
    pub kind: String,
    pub message: String,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BatchStatus {
    pub batch_id: String,
    pub system_id: String,
    pub status: BatchState,
    /// Readings stored (or submitted, while pending).
    pub readings: Option<i32>,
    pub submitted_at: Option<DateTime<Utc>>,
    pub stored_at: Option<DateTime<Utc>>,
    /// Copies skipped because the batch was already stored.
    pub duplicates: i32,
    /// Why the batch, or the readings rejected from it, went to the dead-letter topic.
    pub dead_letters: Vec<DeadLetterReason>,
}

impl Store {
    /// Records batches handed to Kafka: (system id, batch id, readings).
    pub async fn record_submitted_batches(&self, batches: &[(String, String, i32)]) -> Result<(), StoreError> {
        let systems: Vec<&str> = batches.iter().map(|b| b.0.as_str()).collect();
        let ids: Vec<&str> = batches.iter().map(|b| b.1.as_str()).collect();
        let readings: Vec<i32> = batches.iter().map(|b| b.2).collect();
        let client = self.client().await?;
        let statement = client.prepare_cached(BATCH_SUBMITTED).await.map_err(q("prepare batch record"))?;
        client.execute(&statement, &[&systems, &ids, &readings]).await.map_err(q("record submitted batches"))?;
        Ok(())
    }

    /// The batch in the owner's systems; `None` when no trace of it exists there.
    pub async fn batch_status(&self, owner: Uuid, batch_id: &str) -> Result<Option<BatchStatus>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(BATCH_STATUS).await.map_err(q("prepare batch status"))?;
        let rows = client.query(&statement, &[&owner, &batch_id]).await.map_err(q("read batch status"))?;
        let Some(first) = rows.first() else { return Ok(None) };
        let mut status = BatchStatus {
            batch_id: batch_id.to_owned(),
            system_id: first.get(1),
            status: BatchState::Pending,
            readings: None,
            submitted_at: None,
            stored_at: None,
            duplicates: 0,
            dead_letters: Vec::new(),
        };
        for row in rows.iter().filter(|r| r.get::<_, String>(1) == status.system_id) {
            let at: DateTime<Utc> = row.get(3);
            match row.get::<_, &str>(0) {
                "stored" => {
                    status.stored_at = Some(at);
                    status.readings = row.get(2);
                    status.duplicates = row.get(4);
                }
                "submitted" => {
                    status.submitted_at = Some(at);
                    status.readings = status.readings.or(row.get(2));
                }
                _ => status.dead_letters.push(DeadLetterReason { kind: row.get(5), message: row.get(6), received_at: at }),
            }
        }
        status.status = match (status.stored_at, status.dead_letters.is_empty()) {
            (Some(_), _) if status.duplicates > 0 => BatchState::Duplicate,
            (Some(_), _) => BatchState::Stored,
            (None, false) => BatchState::DeadLettered,
            (None, true) => BatchState::Pending,
        };
        Ok(Some(status))
    }

    /// Batches submitted between `after` and `within` ago that ingest has not handled.
    pub async fn stalled_batches(&self, after: std::time::Duration, within: std::time::Duration) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(BATCHES_STALLED).await.map_err(q("prepare stall check"))?;
        let row = client.query_one(&statement, &[&after.as_secs_f64(), &within.as_secs_f64()]).await.map_err(q("check stalled batches"))?;
        Ok(row.get(0))
    }
}

/// Claims batch ids in the caller's transaction; returns the batches to store and the
/// (system_id, batch_id) of duplicates. Repeats inside the chunk count as duplicates.
pub(super) async fn claim<'b>(tx: &Transaction<'_>, batches: &[&'b AcceptedBatch]) -> Result<Claimed<'b>, StoreError> {
    let mut duplicates = Vec::new();
    if batches.is_empty() {
        return Ok((Vec::new(), duplicates));
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
        duplicates.extend(in_chunk);
    }
    let (fresh, repeated): (Vec<_>, Vec<_>) =
        unique.into_iter().partition(|b| claimed.contains(&(b.system_id.clone(), b.batch_id.clone())));
    duplicates.extend(repeated.into_iter().map(|b| (b.system_id.clone(), b.batch_id.clone())));
    Ok((fresh, duplicates))
}
