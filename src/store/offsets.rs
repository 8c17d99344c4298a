//! Where each partition resumes: the offsets stored with the data, not Kafka's.

use std::collections::HashMap;

use super::{Store, StoreError};

const OFFSETS_READ: &str = include_str!("sql/offsets_read.sql");

impl Store {
    /// Next offsets of the given partitions; a partition never stored is absent.
    pub async fn read_offsets(&self, group: &str, topic: &str, partitions: &[i32]) -> Result<HashMap<i32, i64>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(OFFSETS_READ).await.map_err(|e| StoreError::query("prepare offsets read", e))?;
        let rows = client
            .query(&statement, &[&group, &topic, &partitions])
            .await
            .map_err(|e| StoreError::query("read stored offsets", e))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
