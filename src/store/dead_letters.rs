//! Reading dead letters back: the `manifold dlq` workflow.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{q, Store, StoreError};

const SUMMARY: &str = include_str!("sql/dlq_summary.sql");
const EXAMPLES: &str = include_str!("sql/dlq_examples.sql");
const PENDING: &str = include_str!("sql/dlq_pending.sql");
const MARK_REPLAYED: &str = include_str!("sql/dlq_mark_replayed.sql");

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
    pub async fn dead_letters_to_replay(&self, reason: Option<&str>, after_id: i64, limit: i64) -> Result<Vec<StoredLetter>, StoreError> {
        let client = self.client().await?;
        let rows = client.query(PENDING, &[&reason, &after_id, &limit]).await.map_err(q("read dead letters to replay"))?;
        Ok(rows.iter().map(|r| StoredLetter { id: r.get(0), key: r.get(1), value: r.get(2) }).collect())
    }

    pub async fn mark_replayed(&self, ids: &[i64]) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client.execute(MARK_REPLAYED, &[&ids]).await.map_err(q("mark dead letters replayed"))
    }
}
