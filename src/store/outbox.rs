//! The outbox: events written in ingest transactions, published in order by the relay; and the
//! events the relay had to set aside because the broker can never take them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde::Serialize;

use super::{Store, StoreError, q};
use crate::domain::TopicRole;

const OUTBOX_READ: &str = include_str!("sql/outbox_read.sql");
const OUTBOX_MARK: &str = include_str!("sql/outbox_mark.sql");
const OUTBOX_FAIL: &str = include_str!("sql/outbox_fail.sql");
const OUTBOX_HEADS: &str = include_str!("sql/outbox_heads.sql");
const FAILURES_LIST: &str = include_str!("sql/outbox_failures_list.sql");
const FAILURES_COUNT: &str = include_str!("sql/outbox_failures_count.sql");
const OUTBOX_LOCK: &str = include_str!("sql/outbox_lock.sql");
const OUTBOX_INSERT: &str = include_str!("sql/outbox_insert.sql");

/// Takes the outbox lock until `tx` ends. Outbox rows must commit in sequence order, or the
/// relay could pass a lower sequence that commits late: hold it from the first outbox insert
/// to commit.
pub(super) async fn lock(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let statement = tx.prepare_cached(OUTBOX_LOCK).await.map_err(q("prepare outbox lock"))?;
    tx.execute(&statement, &[]).await.map_err(q("take the outbox lock"))?;
    Ok(())
}

/// Adds events of one role, in order, each a key, a payload the relay publishes and the
/// `traceparent` it carries (if any). The caller holds the outbox lock.
pub(super) async fn insert(
    tx: &Transaction<'_>,
    role: TopicRole,
    keys: &[&[u8]],
    payloads: &[&[u8]],
    traceparents: &[Option<String>],
) -> Result<u64, StoreError> {
    let statement = tx.prepare_cached(OUTBOX_INSERT).await.map_err(q("prepare outbox insert"))?;
    tx.execute(&statement, &[&role.as_str(), &keys, &payloads, &traceparents]).await.map_err(q("add outbox events"))
}

#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub seq: i64,
    pub topic_role: String,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: BTreeMap<String, String>,
}

/// A read of the outbox.
#[derive(Debug, Clone)]
pub struct OutboxRun {
    pub events: Vec<OutboxEvent>,
    /// True when no limit cut it short: no event after `seq` is left out.
    pub whole: bool,
}

/// An event the relay set aside, with why (a bounded reason code and a sanitized message).
#[derive(Debug, Clone, Serialize)]
pub struct OutboxFailure {
    pub seq: i64,
    pub topic_role: String,
    pub reason: String,
    pub message: String,
    pub failed_at: DateTime<Utc>,
}

/// The newest outbox sequence, and the newest one set aside.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutboxHeads {
    pub newest: i64,
    pub newest_failed: i64,
}

impl Store {
    /// Events after `seq`, in order, without those set aside: at most `limit` events and about
    /// `max_bytes` of payload (at least one event).
    pub async fn outbox_after(&self, seq: i64, limit: i64, max_bytes: i64) -> Result<OutboxRun, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(OUTBOX_READ).await.map_err(q("prepare outbox read"))?;
        let rows = client.query(&statement, &[&seq, &limit, &max_bytes]).await.map_err(q("read the outbox"))?;
        let fetched: i64 = rows.first().map_or(0, |r| r.get("fetched"));
        let events: Vec<OutboxEvent> = rows
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
            .collect();
        // Neither limit cut the read: these are all the events after `seq` there are now.
        let whole = fetched < limit && events.len() as i64 == fetched;
        Ok(OutboxRun { events, whole })
    }

    pub async fn outbox_mark_published(&self, up_to: i64) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(OUTBOX_MARK).await.map_err(q("prepare outbox mark"))?;
        client.execute(&statement, &[&up_to]).await.map_err(q("mark outbox rows published"))
    }

    /// Records that event `seq` cannot be published. True when this call recorded it (false: it
    /// was recorded before, e.g. by a relay that crashed before it moved on).
    pub async fn outbox_set_aside(&self, seq: i64, topic_role: &str, reason: &str, message: &str) -> Result<bool, StoreError> {
        let message = crate::domain::text::message(message);
        let client = self.client().await?;
        let statement = client.prepare_cached(OUTBOX_FAIL).await.map_err(q("prepare outbox failure insert"))?;
        let rows = client.query(&statement, &[&seq, &topic_role, &reason, &message]).await.map_err(q("record an outbox failure"))?;
        Ok(!rows.is_empty())
    }

    pub async fn outbox_heads(&self) -> Result<OutboxHeads, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(OUTBOX_HEADS).await.map_err(q("prepare outbox heads"))?;
        let row = client.query_one(&statement, &[]).await.map_err(q("read the outbox heads"))?;
        Ok(OutboxHeads { newest: row.get("newest"), newest_failed: row.get("newest_failed") })
    }

    /// Events set aside, newest first.
    pub async fn outbox_failures(&self, limit: i64) -> Result<Vec<OutboxFailure>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(FAILURES_LIST).await.map_err(q("prepare outbox failures list"))?;
        let rows = client.query(&statement, &[&limit]).await.map_err(q("list outbox failures"))?;
        Ok(rows
            .iter()
            .map(|r| OutboxFailure {
                seq: r.get("seq"),
                topic_role: r.get("topic_role"),
                reason: r.get("reason"),
                message: r.get("message"),
                failed_at: r.get("failed_at"),
            })
            .collect())
    }

    pub async fn outbox_failure_count(&self) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(FAILURES_COUNT).await.map_err(q("prepare outbox failures count"))?;
        Ok(client.query_one(&statement, &[]).await.map_err(q("count outbox failures"))?.get(0))
    }
}
