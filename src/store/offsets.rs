//! Where each partition resumes: the offsets stored with the data, not Kafka's. Advanced as a compare-and-set in the ingest transaction, so a consumer that lost its
//! partition cannot commit over the one that took it.

use std::collections::HashMap;

use deadpool_postgres::Transaction;

use super::{Store, StoreError, q};

const OFFSETS_READ: &str = include_str!("sql/offsets_read.sql");
const OFFSET_ADVANCE: &str = include_str!("sql/offset_advance.sql");
const OFFSET_FIRST: &str = include_str!("sql/offset_first.sql");
const OFFSET_RESET: &str = include_str!("sql/offset_reset.sql");

/// Moves a partition from `expected` (None: never stored) to `next`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAdvance {
    pub topic: String,
    pub partition: i32,
    pub expected: Option<i64>,
    pub next: i64,
}

impl Store {
    /// Next offsets of the given partitions; a partition never stored is absent.
    pub async fn read_offsets(&self, group: &str, topic: &str, partitions: &[i32]) -> Result<HashMap<i32, i64>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(OFFSETS_READ).await.map_err(q("prepare offsets read"))?;
        let rows = client
            .query(&statement, &[&group, &topic, &partitions])
            .await
            .map_err(q("read stored offsets"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Sets where the given partitions resume. Only for when no consumer of the group runs: a
    /// consumer that still holds a partition finds its compare-and-set refused and re-reads.
    pub async fn reset_offsets(&self, group: &str, topic: &str, next: &[(i32, i64)]) -> Result<u64, StoreError> {
        let (partitions, offsets): (Vec<i32>, Vec<i64>) = next.iter().copied().unzip();
        let client = self.client().await?;
        client
            .execute(OFFSET_RESET, &[&group, &topic, &partitions, &offsets])
            .await
            .map_err(q("reset stored offsets"))
    }
}

/// Moves the offset in the caller's transaction; `false` when it was not at `expected` (another
/// consumer moved it).
pub(super) async fn advance(tx: &Transaction<'_>, group: &str, advance: &OffsetAdvance) -> Result<bool, StoreError> {
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
    Ok(changed == 1)
}
