//! Storage maintenance on TimescaleDB.
//!
//! With the TSL license: retention policies for `readings` and `readings_1m`, added once and
//! altered in place when the configured retention changes (re-creating them every pass reset
//! their schedule and history); and the continuous aggregate refreshed over the hours ingest
//! recorded in `readings_refresh`, because its policy only covers the last day while readings
//! may arrive 30 days late. Every refresh window stays inside the raw data's retention:
//! refreshing a range whose chunks were dropped would erase its aggregate.
//!
//! With the Apache license (no policies): expired chunks dropped with `drop_chunks`.

use chrono::{DateTime, Duration, DurationRound, Utc};
use tokio_postgres::Client;

use crate::store::StoreError;

const RETENTION_JOB: &str = include_str!("../sql/timescale_retention_job.sql");
const RETENTION_ADD: &str = include_str!("../sql/timescale_retention_add.sql");
const RETENTION_ALTER: &str = include_str!("../sql/timescale_retention_alter.sql");
const REFRESH_PENDING: &str = include_str!("../sql/refresh_pending.sql");
const REFRESH_DONE: &str = include_str!("../sql/refresh_done.sql");
const REFRESH_AGGREGATE: &str = include_str!("../sql/refresh_aggregate.sql");
const DROP_CHUNKS: &str = include_str!("../sql/drop_chunks.sql");

/// A time range `[start, end)`.
pub type Window = (DateTime<Utc>, DateTime<Utc>);

/// What a pass changed on TimescaleDB.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TimescaleChanges {
    /// Relations whose retention policy was added or altered.
    pub retention_set: Vec<String>,
    /// Windows `[start, end)` of `readings_1m` refreshed.
    pub refreshed: Vec<Window>,
    /// Recorded hours left out because they lie outside the raw data's retention.
    pub skipped_hours: usize,
    /// Chunks of `readings` dropped (Apache license).
    pub chunks_dropped: i64,
}

/// Adds the retention policy of `relation`, or alters its `drop_after`; `true` when it changed.
pub async fn ensure_retention(client: &Client, relation: &str, days: u32) -> Result<bool, StoreError> {
    let drop_after = format!("{days} days");
    let job = client
        .query_opt(RETENTION_JOB, &[&relation, &drop_after])
        .await
        .map_err(|e| StoreError::query("look up a retention policy", e))?;
    match job {
        None => {
            client
                .execute(RETENTION_ADD, &[&relation, &drop_after])
                .await
                .map_err(|e| StoreError::query("add a retention policy", e))?;
        }
        Some(row) if row.get::<_, bool>("differs") => {
            let job_id: i32 = row.get("job_id");
            client
                .execute(RETENTION_ALTER, &[&job_id, &drop_after])
                .await
                .map_err(|e| StoreError::query("alter a retention policy", e))?;
        }
        Some(_) => return Ok(false),
    }
    tracing::info!(relation, days, "retention policy set");
    Ok(true)
}

/// The windows to refresh for the recorded `hours` (each covers `[hour, hour + 1h)`): adjacent
/// hours merged, clipped to `[oldest, now)` with both ends on whole minutes (the aggregate's
/// bucket). Returns the windows and how many hours fell entirely outside.
pub fn refresh_windows(hours: &[DateTime<Utc>], oldest: DateTime<Utc>, now: DateTime<Utc>) -> (Vec<Window>, usize) {
    let minute = Duration::minutes(1);
    let oldest = ceil_minute(oldest);
    let newest = now.duration_trunc(minute).unwrap_or(now);
    let mut sorted: Vec<DateTime<Utc>> = hours.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut windows: Vec<Window> = Vec::new();
    let mut skipped = 0;
    for hour in sorted {
        let (start, end) = (hour.max(oldest), (hour + Duration::hours(1)).min(newest));
        if start >= end {
            skipped += 1;
            continue;
        }
        match windows.last_mut() {
            Some(last) if last.1 >= start => last.1 = last.1.max(end),
            _ => windows.push((start, end)),
        }
    }
    (windows, skipped)
}

fn ceil_minute(at: DateTime<Utc>) -> DateTime<Utc> {
    let down = at.duration_trunc(Duration::minutes(1)).unwrap_or(at);
    if down < at { down + Duration::minutes(1) } else { down }
}

/// Refreshes `readings_1m` over the hours ingest recorded, then forgets exactly those rows. The
/// client must not be in a transaction: `refresh_continuous_aggregate` refuses to run in one.
/// A failure leaves the rows for the next pass (a refresh is idempotent).
pub async fn refresh_touched(client: &Client, now: DateTime<Utc>, retention_days: u32, changes: &mut TimescaleChanges) -> Result<(), StoreError> {
    let rows = client.query(REFRESH_PENDING, &[&now]).await.map_err(|e| StoreError::query("read the hours to refresh", e))?;
    if rows.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.get("id")).collect();
    let hours: Vec<DateTime<Utc>> = rows.iter().map(|r| r.get("hour")).collect();
    // An hour of margin: the retention job may run meanwhile with a later clock.
    let oldest = now - Duration::days(i64::from(retention_days)) + Duration::hours(1);
    let (windows, skipped) = refresh_windows(&hours, oldest, now);
    for (start, end) in &windows {
        client
            .execute(REFRESH_AGGREGATE, &[start, end])
            .await
            .map_err(|e| StoreError::query("refresh the 1-minute aggregate", e))?;
        changes.refreshed.push((*start, *end));
    }
    changes.skipped_hours += skipped;
    client.execute(REFRESH_DONE, &[&ids]).await.map_err(|e| StoreError::query("forget refreshed hours", e))?;
    tracing::debug!(windows = windows.len(), skipped, "continuous aggregate refreshed over recorded hours");
    Ok(())
}

/// Drops the chunks of `readings` entirely older than `cutoff` (Apache license).
pub async fn drop_expired_chunks(client: &Client, cutoff: DateTime<Utc>) -> Result<i64, StoreError> {
    let row = client.query_one(DROP_CHUNKS, &[&cutoff]).await.map_err(|e| StoreError::query("drop expired chunks", e))?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn adjacent_and_repeated_hours_merge_into_one_window() {
        let hours = [at("2026-11-20T11:00:00Z"), at("2026-11-20T10:00:00Z"), at("2026-11-20T10:00:00Z"), at("2026-11-20T14:00:00Z")];
        let (windows, skipped) = refresh_windows(&hours, at("2026-11-01T00:00:00Z"), at("2026-12-01T00:00:00Z"));
        assert_eq!(
            windows,
            vec![(at("2026-11-20T10:00:00Z"), at("2026-11-20T12:00:00Z")), (at("2026-11-20T14:00:00Z"), at("2026-11-20T15:00:00Z"))]
        );
        assert_eq!(skipped, 0);
    }

    #[test]
    fn windows_never_reach_below_the_retention_horizon() {
        // Retention ends at 10:20:30; the hour from 10:00 is refreshed from 10:21 only, the one
        // before is dropped data and left alone.
        let hours = [at("2026-11-20T09:00:00Z"), at("2026-11-20T10:00:00Z")];
        let (windows, skipped) = refresh_windows(&hours, at("2026-11-20T10:20:30Z"), at("2026-12-01T00:00:00Z"));
        assert_eq!(windows, vec![(at("2026-11-20T10:21:00Z"), at("2026-11-20T11:00:00Z"))]);
        assert_eq!(skipped, 1);
    }

    #[test]
    fn the_current_hour_is_refreshed_up_to_the_current_minute_only() {
        let hours = [at("2026-11-20T10:00:00Z")];
        let (windows, _) = refresh_windows(&hours, at("2026-11-01T00:00:00Z"), at("2026-11-20T10:42:17Z"));
        assert_eq!(windows, vec![(at("2026-11-20T10:00:00Z"), at("2026-11-20T10:42:00Z"))]);
    }
}
