//! Daily range partitions of `readings` when TimescaleDB is absent.
//!
//! Partitions cover [now − retention, now + allowed future skew]. New ones are created as plain
//! tables and then attached (ATTACH takes SHARE UPDATE EXCLUSIVE on the parent, which COPY's ROW
//! EXCLUSIVE does not conflict with); expired ones are detached CONCURRENTLY and dropped. Every
//! lock is taken under `lock_timeout`, so maintenance gives way to ingestion instead of queueing
//! ahead of it; what could not be done is retried on the next pass.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Days, NaiveDate, Utc};
use tokio_postgres::Client;

use crate::store::StoreError;

const LIST_PARTITIONS: &str = include_str!("../sql/list_partitions.sql");

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PartitionChanges {
    pub created: Vec<String>,
    pub dropped: Vec<String>,
    /// Partitions left for the next pass because a lock was not granted in time.
    pub deferred: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct PartitionPolicy {
    pub retention_days: u32,
    pub future_skew: Duration,
    pub lock_timeout: Duration,
}

impl PartitionPolicy {
    /// The first and last day that must have a partition at `now`. One day beyond the skew
    /// horizon: a reading accepted just below the horizon must never find its day missing
    /// before the next maintenance pass (that was a "no partition for row" stall).
    pub fn window(&self, now: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
        let first = (now - chrono::Duration::days(i64::from(self.retention_days))).date_naive();
        // The config bounds the skew to u32 hours, far inside what a TimeDelta holds.
        let skew = chrono::Duration::from_std(self.future_skew).unwrap_or(chrono::Duration::MAX);
        let last = (now + skew + chrono::Duration::days(1)).date_naive();
        (first, last)
    }
}

pub fn partition_name(day: NaiveDate) -> String {
    format!("readings_p{}", day.format("%Y%m%d"))
}

fn day_of(name: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(name.strip_prefix("readings_p")?, "%Y%m%d").ok()
}

struct Existing {
    attached: bool,
    detach_pending: bool,
}

/// Brings the partitions in line with the policy. Needs a connection outside any transaction.
pub async fn maintain(client: &Client, policy: PartitionPolicy, now: DateTime<Utc>) -> Result<PartitionChanges, StoreError> {
    let (first, last) = policy.window(now);
    let existing = list(client).await?;
    let mut changes = PartitionChanges::default();
    set_lock_timeout(client, policy.lock_timeout).await?;
    let result = async {
        let mut day = first;
        while day <= last {
            let name = partition_name(day);
            match existing.get(&day) {
                Some(Existing { attached: true, .. }) => {}
                found => {
                    let step = create(client, &name, day, found.is_some()).await;
                    record(step, name, &mut changes.created, &mut changes.deferred)?;
                }
            }
            day = day.checked_add_days(Days::new(1)).unwrap_or(NaiveDate::MAX);
        }
        for (day, partition) in existing.iter().filter(|(day, _)| **day < first) {
            let name = partition_name(*day);
            let step = drop_expired(client, &name, partition).await;
            record(step, name, &mut changes.dropped, &mut changes.deferred)?;
        }
        Ok::<_, StoreError>(())
    }
    .await;
    // The connection may be pooled by a caller: leave its session as it was.
    let reset = client.batch_execute("RESET lock_timeout").await;
    result?;
    reset.map_err(|e| StoreError::query("reset lock_timeout", e))?;
    Ok(changes)
}

fn record(step: Result<(), StoreError>, name: String, done: &mut Vec<String>, deferred: &mut Vec<String>) -> Result<(), StoreError> {
    match step {
        Ok(()) => done.push(name),
        Err(StoreError::LockTimeout(_)) => deferred.push(name),
        Err(other) => return Err(other),
    }
    Ok(())
}

async fn list(client: &Client) -> Result<BTreeMap<NaiveDate, Existing>, StoreError> {
    let rows = client.query(LIST_PARTITIONS, &[]).await.map_err(|e| StoreError::query("list readings partitions", e))?;
    Ok(rows
        .iter()
        .filter_map(|row| {
            let name: String = row.get("name");
            let existing = Existing { attached: row.get("attached"), detach_pending: row.get("detach_pending") };
            day_of(&name).map(|day| (day, existing))
        })
        .collect())
}

async fn set_lock_timeout(client: &Client, timeout: Duration) -> Result<(), StoreError> {
    client
        .batch_execute(&format!("SET lock_timeout = {}", timeout.as_millis().max(1)))
        .await
        .map_err(|e| StoreError::query("set lock_timeout", e))
}

/// Partition names are generated from dates above, never from input, so formatting them is safe.
async fn create(client: &Client, name: &str, day: NaiveDate, table_exists: bool) -> Result<(), StoreError> {
    let next = day.checked_add_days(Days::new(1)).unwrap_or(NaiveDate::MAX);
    if !table_exists {
        // A CHECK matching the bounds lets ATTACH skip its validation scan.
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {name} (LIKE readings INCLUDING DEFAULTS, \
             CONSTRAINT {name}_bounds CHECK (time >= '{day} 00:00:00+00' AND time < '{next} 00:00:00+00'))"
        );
        client.batch_execute(&ddl).await.map_err(|e| StoreError::query("create a readings partition", e))?;
    }
    let attach = format!(
        "ALTER TABLE readings ATTACH PARTITION {name} FOR VALUES FROM ('{day} 00:00:00+00') TO ('{next} 00:00:00+00')"
    );
    client.batch_execute(&attach).await.map_err(|e| StoreError::query("attach a readings partition", e))?;
    tracing::debug!(partition = name, "readings partition created");
    Ok(())
}

async fn drop_expired(client: &Client, name: &str, partition: &Existing) -> Result<(), StoreError> {
    if partition.detach_pending {
        // A concurrent detach was interrupted; it must be finalised before anything else.
        let finalize = format!("ALTER TABLE readings DETACH PARTITION {name} FINALIZE");
        client.batch_execute(&finalize).await.map_err(|e| StoreError::query("finalize a partition detach", e))?;
    } else if partition.attached {
        let detach = format!("ALTER TABLE readings DETACH PARTITION {name} CONCURRENTLY");
        client.batch_execute(&detach).await.map_err(|e| StoreError::query("detach a readings partition", e))?;
    }
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {name}"))
        .await
        .map_err(|e| StoreError::query("drop a readings partition", e))?;
    tracing::debug!(partition = name, "expired readings partition dropped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_spans_retention_back_and_a_day_beyond_the_skew_ahead() {
        let policy = PartitionPolicy { retention_days: 3, future_skew: Duration::from_secs(30 * 3600), lock_timeout: Duration::from_secs(1) };
        let now = DateTime::parse_from_rfc3339("2026-11-26T20:00:00Z").unwrap().with_timezone(&Utc);
        let (first, last) = policy.window(now);
        assert_eq!(first, NaiveDate::from_ymd_opt(2026, 11, 23).unwrap());
        // The horizon is 2026-11-28T02:00; its day and the next one exist.
        assert_eq!(last, NaiveDate::from_ymd_opt(2026, 11, 29).unwrap());
    }

    #[test]
    fn partition_names_round_trip_to_their_day() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 9).unwrap();
        assert_eq!(partition_name(day), "readings_p20260109");
        assert_eq!(day_of(&partition_name(day)), Some(day));
        assert_eq!(day_of("readings_pxyz"), None);
    }
}
