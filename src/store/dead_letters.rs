//! Dead letters: recorded by the ingest transaction with their outbox events, read back by the
//! `manifold dlq` workflow.

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde::Serialize;

use super::{q, Store, StoreError};
use crate::domain::{text, TopicRole};

/// Ids are validated shorter than this; the bound only guards the dead-letter row.
const ID_BYTES: usize = 256;

const SUMMARY: &str = include_str!("sql/dlq_summary.sql");
const EXAMPLES: &str = include_str!("sql/dlq_examples.sql");
const PENDING: &str = include_str!("sql/dlq_pending.sql");
const MARK_REPLAYED: &str = include_str!("sql/dlq_mark_replayed.sql");
const INSERT_DEAD_LETTERS: &str = include_str!("sql/insert_dead_letters.sql");

/// A consumed message set aside with the reason, as the ingest transaction records it.
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

#[derive(Debug, Serialize)]
pub struct ReasonCount {
    pub reason: String,
    pub total: i64,
    /// Not replayed yet.
    pub pending: i64,
    pub newest: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
pub struct DeadLetterExample {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub reason: String,
    pub message: String,
    pub system_id: Option<String>,
    pub batch_id: Option<String>,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Debug)]
pub struct StoredLetter {
    pub id: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub received_at: DateTime<Utc>,
    pub reason: String,
    pub system_id: Option<String>,
    pub batch_id: Option<String>,
    pub partition: i32,
    pub offset: i64,
}

/// Which dead letters a replay takes; every field left out matches all.
#[derive(Debug, Clone, Default)]
pub struct ReplayFilter {
    pub reason: Option<String>,
    pub system_id: Option<String>,
    /// Received at or after.
    pub since: Option<DateTime<Utc>>,
}


impl Store {
    pub async fn dead_letter_summary(&self) -> Result<Vec<ReasonCount>, StoreError> {
        let client = self.client().await?;
        let rows = client.query(SUMMARY, &[]).await.map_err(q("summarise dead letters"))?;
        Ok(rows
            .iter()
            .map(|r| ReasonCount { reason: r.get(0), total: r.get(1), pending: r.get(2), newest: r.get(3) })
            .collect())
    }

    pub async fn dead_letter_examples(&self, reason: Option<&str>, limit: i64) -> Result<Vec<DeadLetterExample>, StoreError> {
        let client = self.client().await?;
        let rows = client.query(EXAMPLES, &[&reason, &limit]).await.map_err(q("list dead letters"))?;
        Ok(rows
            .iter()
            .map(|r| DeadLetterExample {
                id: r.get(0),
                received_at: r.get(1),
                reason: r.get(2),
                message: r.get(3),
                system_id: r.get(4),
                batch_id: r.get(5),
                partition: r.get(6),
                offset: r.get(7),
            })
            .collect())
    }

    /// Dead letters not replayed yet, after `after_id`, oldest first.
    pub async fn dead_letters_to_replay(&self, filter: &ReplayFilter, after_id: i64, limit: i64) -> Result<Vec<StoredLetter>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(PENDING, &[&filter.reason, &filter.system_id, &filter.since, &after_id, &limit])
            .await
            .map_err(q("read dead letters to replay"))?;
        Ok(rows
            .iter()
            .map(|r| StoredLetter {
                id: r.get(0),
                key: r.get(1),
                value: r.get(2),
                received_at: r.get(3),
                reason: r.get(4),
                system_id: r.get(5),
                batch_id: r.get(6),
                partition: r.get(7),
                offset: r.get(8),
            })
            .collect())
    }

    pub async fn mark_replayed(&self, ids: &[i64]) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client.execute(MARK_REPLAYED, &[&ids]).await.map_err(q("mark dead letters replayed"))
    }
}

/// Records dead letters in the caller's transaction (which holds the outbox lock).
pub(super) async fn insert(tx: &Transaction<'_>, letters: &[&DeadLetter]) -> Result<usize, StoreError> {
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
