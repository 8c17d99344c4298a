//! The outbox: events written in ingest transactions, published in order by the relay.

use std::collections::BTreeMap;

use super::{Store, StoreError};

const OUTBOX_READ: &str = include_str!("sql/outbox_read.sql");
const OUTBOX_MARK: &str = include_str!("sql/outbox_mark.sql");

#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub seq: i64,
    pub topic_role: String,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

impl Store {
    pub async fn outbox_after(&self, seq: i64, limit: i64) -> Result<Vec<OutboxEvent>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(OUTBOX_READ).await.map_err(|e| StoreError::query("prepare outbox read", e))?;
        let rows = client.query(&statement, &[&seq, &limit]).await.map_err(|e| StoreError::query("read the outbox", e))?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let headers: serde_json::Value = row.get("headers");
                let headers = headers
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned))).collect())
                    .unwrap_or_default();
                OutboxEvent {
                    seq: row.get("seq"),
                    topic_role: row.get("topic_role"),
                    key: row.get("message_key"),
                    payload: row.get("payload"),
                    headers,
                }
            })
            .collect())
    }

    pub async fn outbox_mark_published(&self, up_to: i64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(OUTBOX_MARK).await.map_err(|e| StoreError::query("prepare outbox mark", e))?;
        client.execute(&statement, &[&up_to]).await.map_err(|e| StoreError::query("mark outbox rows published", e))
    }
}
