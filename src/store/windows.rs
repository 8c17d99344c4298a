//! Window bookkeeping in the ingest transaction, and window-ready events into the outbox.
//!
//! The readiness rule (README, "Windows"): a window is ready when the watermark passes its end,
//! or it is idle, or a rescore asks for it; never while its end is in the future. The last
//! clause is the view `windows_due`, which every announcing statement updates through.

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;

use super::{q, Store, StoreError};
use crate::window::{WindowAccumulator, WindowSpec};

const WINDOWS_UPSERT: &str = include_str!("sql/windows_upsert.sql");
const WATERMARKS_UPSERT: &str = include_str!("sql/watermarks_upsert.sql");
const WINDOWS_READY: &str = include_str!("sql/windows_ready.sql");
const WINDOWS_IDLE: &str = include_str!("sql/windows_idle.sql");
const OUTBOX_WINDOWS: &str = include_str!("sql/outbox_windows.sql");
pub(super) const OUTBOX_LOCK: &str = include_str!("sql/outbox_lock.sql");

/// Why a window was announced (the `closed_by` of `window_ready.avsc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    Watermark,
    Idle,
    /// A new revision requested by `manifold rescore` (a new model).
    Rescore,
}

/// A window announced as ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyWindow {
    pub system_id: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub revision: i32,
    pub reading_count: i64,
    pub sensors: Vec<String>,
}


fn micros(t: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

pub(super) fn ready_rows(rows: Vec<tokio_postgres::Row>) -> Vec<ReadyWindow> {
    rows.iter()
        .map(|r| ReadyWindow {
            system_id: r.get(0),
            window_start: r.get(1),
            window_end: r.get(2),
            revision: r.get(3),
            reading_count: r.get(4),
            sensors: r.get(5),
        })
        .collect()
}

/// Counts the chunk's readings into their windows, moves the watermarks, and marks the windows
/// that became ready. Returns them; the caller announces them under the outbox lock.
pub async fn apply(tx: &Transaction<'_>, spec: &WindowSpec, acc: &WindowAccumulator) -> Result<Vec<ReadyWindow>, StoreError> {
    if acc.is_empty() {
        return Ok(Vec::new());
    }
    let deltas = acc.deltas(spec);
    let systems: Vec<&str> = deltas.iter().map(|d| d.system_id.as_str()).collect();
    let starts: Vec<DateTime<Utc>> = deltas.iter().map(|d| micros(d.window_start)).collect();
    let ends: Vec<DateTime<Utc>> = deltas.iter().map(|d| micros(d.window_end)).collect();
    let counts: Vec<i64> = deltas.iter().map(|d| d.readings).collect();
    let sensors: Vec<String> = deltas.iter().map(|d| d.sensors.iter().cloned().collect::<Vec<_>>().join(",")).collect();
    let statement = tx.prepare_cached(WINDOWS_UPSERT).await.map_err(q("prepare window upsert"))?;
    tx.execute(&statement, &[&systems, &starts, &ends, &counts, &sensors]).await.map_err(q("count readings into windows"))?;

    let (ids, newest): (Vec<&str>, Vec<DateTime<Utc>>) = acc.newest().iter().map(|(s, t)| (s.as_str(), micros(*t))).unzip();
    let statement = tx.prepare_cached(WATERMARKS_UPSERT).await.map_err(q("prepare watermark upsert"))?;
    tx.execute(&statement, &[&ids, &newest]).await.map_err(q("move watermarks"))?;

    let statement = tx.prepare_cached(WINDOWS_READY).await.map_err(q("prepare ready windows"))?;
    let rows = tx.query(&statement, &[&ids, &spec.lateness_us]).await.map_err(q("mark ready windows"))?;
    Ok(ready_rows(rows))
}

/// Adds window-ready events to the outbox. The caller holds the outbox lock.
pub async fn announce(tx: &Transaction<'_>, windows: &[ReadyWindow], reason: CloseReason) -> Result<(), StoreError> {
    if windows.is_empty() {
        return Ok(());
    }
    let systems: Vec<&str> = windows.iter().map(|w| w.system_id.as_str()).collect();
    let starts: Vec<i64> = windows.iter().map(|w| w.window_start.timestamp_micros()).collect();
    let ends: Vec<i64> = windows.iter().map(|w| w.window_end.timestamp_micros()).collect();
    let revisions: Vec<i32> = windows.iter().map(|w| w.revision).collect();
    let counts: Vec<i64> = windows.iter().map(|w| w.reading_count).collect();
    let sensors: Vec<String> = windows.iter().map(|w| w.sensors.join(",")).collect();
    let reasons: Vec<&str> = windows
        .iter()
        .map(|w| match (w.revision, reason) {
            (_, CloseReason::Rescore) => "RESCORE",
            (r, _) if r > 0 => "LATE_DATA",
            (_, CloseReason::Idle) => "IDLE",
            (_, CloseReason::Watermark) => "WATERMARK",
        })
        .collect();
    let statement = tx.prepare_cached(OUTBOX_WINDOWS).await.map_err(q("prepare window events"))?;
    tx.execute(&statement, &[&systems, &starts, &ends, &revisions, &counts, &sensors, &reasons])
        .await
        .map_err(q("add window-ready events"))?;
    Ok(())
}

impl Store {
    /// Closes windows idle for longer than the spec's timeout and announces them.
    pub async fn close_idle_windows(&self, spec: &WindowSpec) -> Result<Vec<ReadyWindow>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(q("begin idle close"))?;
        let statement = tx.prepare_cached(WINDOWS_IDLE).await.map_err(q("prepare idle close"))?;
        let windows = ready_rows(tx.query(&statement, &[&spec.idle_timeout_us]).await.map_err(q("close idle windows"))?);
        if !windows.is_empty() {
            let lock = tx.prepare_cached(OUTBOX_LOCK).await.map_err(q("prepare outbox lock"))?;
            tx.execute(&lock, &[]).await.map_err(q("take the outbox lock"))?;
            announce(&tx, &windows, CloseReason::Idle).await?;
        }
        tx.commit().await.map_err(q("commit idle close"))?;
        Ok(windows)
    }
}

#[cfg(test)]
mod tests {
    /// Holds every statement that marks a window ready to the rule: it must go through
    /// `windows_due`, or a window whose end is in the future could be announced.
    #[test]
    fn every_statement_that_announces_a_window_goes_through_windows_due() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/store/sql");
        let mut announcing = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let code: String = text.lines().map(|l| l.split("--").next().unwrap_or("")).collect::<Vec<_>>().join(" ");
            let code = code.split_whitespace().collect::<Vec<_>>().join(" ");
            // Setting ready_revision to anything but NULL announces (NULL withdraws).
            let announces = code.match_indices("ready_revision =").any(|(i, m)| !code[i + m.len()..].trim_start().starts_with("NULL"));
            if announces {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                assert!(code.contains("UPDATE windows_due "), "{name} marks windows ready without going through windows_due");
                assert!(!code.contains("UPDATE windows "), "{name} updates the windows table directly");
                announcing.push(name);
            }
        }
        announcing.sort();
        assert_eq!(announcing, ["windows_idle.sql", "windows_ready.sql", "windows_rescore.sql", "windows_rescore_failed.sql"], "the announcing paths");
    }
}
