//! Window bookkeeping in the ingest transaction, and window-ready events into the outbox.
//!
//! The readiness rule (README, "Windows and scores"): a window is ready when it is complete by
//! its sensors' sampling rates, or the watermark passes its end, or it is idle, or a rescore asks
//! for it; never while its end is in the future. The last clause is the view `windows_due`,
//! which every announcing statement updates through.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;

use super::{outbox, q, Store, StoreError};
use crate::codec::WindowReady;
use crate::domain::{CloseReason, TopicRole};
use crate::telemetry::traces::{self, TraceSpan};
use crate::window::{SlotAccumulator, WindowAccumulator, WindowSpec};

const WINDOWS_UPSERT: &str = include_str!("sql/windows_upsert.sql");
const WATERMARKS_UPSERT: &str = include_str!("sql/watermarks_upsert.sql");
const WINDOWS_READY: &str = include_str!("sql/windows_ready.sql");
const WINDOWS_IDLE: &str = include_str!("sql/windows_idle.sql");
const WINDOWS_COMPLETE: &str = include_str!("sql/windows_complete.sql");
const WINDOWS_RECOUNT_CLEAR: &str = include_str!("sql/windows_recount_clear.sql");
const WINDOWS_RECOUNT: &str = include_str!("sql/windows_recount.sql");
const SERIES_RATES: &str = include_str!("sql/series_rates.sql");

/// A window announced as ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyWindow {
    pub system_id: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub revision: i32,
    pub reading_count: i64,
    pub sensors: Vec<String>,
    /// `traceparent`s of the ingest chunks that wrote its readings (while trace export was on).
    pub trace_links: Vec<String>,
}

impl ReadyWindow {
    /// The event that announces this window; `reason` is why this round of windows closed.
    pub fn event(&self, reason: CloseReason) -> WindowReady {
        WindowReady {
            system_id: self.system_id.clone(),
            window_start: self.window_start.timestamp_micros(),
            window_end: self.window_end.timestamp_micros(),
            revision: self.revision,
            reading_count: self.reading_count,
            sensors: self.sensors.clone(),
            closed_by: reason.for_revision(self.revision),
        }
    }
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
            trace_links: r.get(6),
        })
        .collect()
}

/// The windows one chunk made ready, by why.
#[derive(Debug, Default)]
pub struct Ready {
    /// Complete by their sensors' sampling rates (`COMPLETE`).
    pub complete: Vec<ReadyWindow>,
    /// Passed by the watermark (`WATERMARK`).
    pub watermark: Vec<ReadyWindow>,
}

impl Ready {
    pub fn len(&self) -> usize {
        self.complete.len() + self.watermark.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The sampling rate of each of these series, as the topology stored now says.
pub async fn rates(tx: &Transaction<'_>, series: &[i32]) -> Result<HashMap<i32, f64>, StoreError> {
    if series.is_empty() {
        return Ok(HashMap::new());
    }
    let statement = tx.prepare_cached(SERIES_RATES).await.map_err(q("prepare series rates"))?;
    let rows = tx.query(&statement, &[&series]).await.map_err(q("read series rates"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Counts the chunk's readings into their windows (with the chunk's `traceparent`, when it has
/// one, as a link) and their slots into each sensor's coverage, moves the watermarks, and marks
/// the windows that became ready: first those of this chunk that are complete, then those the
/// watermark passed. Returns them; the caller announces them under the outbox lock.
pub async fn apply(
    tx: &Transaction<'_>,
    spec: &WindowSpec,
    acc: &WindowAccumulator,
    slots: &SlotAccumulator,
    chunk_trace: Option<&str>,
) -> Result<Ready, StoreError> {
    if acc.is_empty() {
        return Ok(Ready::default());
    }
    let deltas = acc.deltas(spec);
    let systems: Vec<&str> = deltas.iter().map(|d| d.system_id.as_str()).collect();
    let starts: Vec<DateTime<Utc>> = deltas.iter().map(|d| micros(d.window_start)).collect();
    let ends: Vec<DateTime<Utc>> = deltas.iter().map(|d| micros(d.window_end)).collect();
    let counts: Vec<i64> = deltas.iter().map(|d| d.readings).collect();
    let sensors: Vec<String> = deltas.iter().map(|d| d.sensors.iter().cloned().collect::<Vec<_>>().join(",")).collect();
    let slot_deltas = slots.deltas();
    let slot_systems: Vec<&str> = slot_deltas.iter().map(|d| d.system_id.as_str()).collect();
    let slot_starts: Vec<DateTime<Utc>> = slot_deltas.iter().map(|d| micros(d.window_start)).collect();
    let slot_series: Vec<i32> = slot_deltas.iter().map(|d| d.series_id).collect();
    let slot_bits: Vec<&str> = slot_deltas.iter().map(|d| d.bits.as_str()).collect();
    let (ids, newest): (Vec<&str>, Vec<DateTime<Utc>>) = acc.newest().iter().map(|(s, t)| (s.as_str(), micros(*t))).unzip();
    let upsert = tx.prepare_cached(WINDOWS_UPSERT).await.map_err(q("prepare window upsert"))?;
    let watermarks = tx.prepare_cached(WATERMARKS_UPSERT).await.map_err(q("prepare watermark upsert"))?;
    let complete = tx.prepare_cached(WINDOWS_COMPLETE).await.map_err(q("prepare complete windows"))?;
    let ready = tx.prepare_cached(WINDOWS_READY).await.map_err(q("prepare ready windows"))?;
    // Four statements in one round trip: prepared above, each is sent when first polled, so
    // they go out in this order and the server runs them in it; the last two see the counts and
    // watermarks of the first two, and complete windows are marked before the watermark's.
    let (_, _, complete, watermark) = futures_util::future::try_join4(
        async {
            tx.execute(&upsert, &[&systems, &starts, &ends, &counts, &sensors, &chunk_trace, &slot_systems, &slot_starts, &slot_series, &slot_bits])
                .await
                .map_err(q("count readings into windows"))
        },
        async { tx.execute(&watermarks, &[&ids, &newest]).await.map_err(q("move watermarks")) },
        async { tx.query(&complete, &[&systems, &starts]).await.map_err(q("mark complete windows")) },
        async { tx.query(&ready, &[&ids, &spec.lateness_us]).await.map_err(q("mark ready windows")) },
    )
    .await?;
    Ok(Ready { complete: ready_rows(complete), watermark: ready_rows(watermark) })
}

/// Marks those of these windows that are complete (and whose end has passed) ready.
async fn mark_complete(tx: &Transaction<'_>, systems: &[&str], starts: &[DateTime<Utc>]) -> Result<Vec<ReadyWindow>, StoreError> {
    let statement = tx.prepare_cached(WINDOWS_COMPLETE).await.map_err(q("prepare complete windows"))?;
    let rows = tx.query(&statement, &[&systems, &starts]).await.map_err(q("mark complete windows"))?;
    Ok(ready_rows(rows))
}

/// After a topology change of `system_id` (in its transaction, after the series are synced):
/// recounts the slot coverage of the system's open windows at the new sampling rates, and
/// announces those now complete. Returns them.
pub async fn recount(tx: &Transaction<'_>, system_id: &str) -> Result<Vec<ReadyWindow>, StoreError> {
    tx.execute(WINDOWS_RECOUNT_CLEAR, &[&system_id]).await.map_err(q("forget slot coverage"))?;
    let rows = tx.query(WINDOWS_RECOUNT, &[&system_id]).await.map_err(q("recount slot coverage"))?;
    let systems: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    let systems: Vec<&str> = systems.iter().map(String::as_str).collect();
    let starts: Vec<DateTime<Utc>> = rows.iter().map(|r| r.get(1)).collect();
    let complete = if systems.is_empty() { Vec::new() } else { mark_complete(tx, &systems, &starts).await? };
    if !complete.is_empty() {
        outbox::lock(tx).await?;
        // The spans end here: this transaction is the API's, and it commits right after.
        let _spans = announce(tx, &complete, CloseReason::Complete).await?;
    }
    Ok(complete)
}

/// Adds window-ready events to the outbox, keyed by system. The caller holds the outbox lock.
/// Each window's trace starts here: the spans returned (none with export off) are kept until
/// the transaction ends, and their `traceparent`s go with the events.
#[must_use = "the announce spans end when dropped: keep them until the transaction ends"]
pub async fn announce(tx: &Transaction<'_>, windows: &[ReadyWindow], reason: CloseReason) -> Result<Vec<TraceSpan>, StoreError> {
    if windows.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<&[u8]> = windows.iter().map(|w| w.system_id.as_bytes()).collect();
    let payloads: Vec<Vec<u8>> = windows.iter().map(|w| w.event(reason).to_json()).collect();
    let payloads: Vec<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    let spans: Vec<TraceSpan> =
        windows.iter().map(|w| traces::announce(&w.system_id, w.window_start, w.revision, reason.for_revision(w.revision).as_str(), &w.trace_links)).collect();
    let parents: Vec<Option<String>> = spans.iter().map(TraceSpan::traceparent).collect();
    outbox::insert(tx, TopicRole::WindowsReady, &keys, &payloads, &parents).await?;
    Ok(spans)
}

impl Store {
    /// Closes windows idle for longer than the spec's timeout and announces them.
    pub async fn close_idle_windows(&self, spec: &WindowSpec) -> Result<Vec<ReadyWindow>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(q("begin idle close"))?;
        let statement = tx.prepare_cached(WINDOWS_IDLE).await.map_err(q("prepare idle close"))?;
        let windows = ready_rows(tx.query(&statement, &[&spec.idle_timeout_us]).await.map_err(q("close idle windows"))?);
        let mut spans = Vec::new();
        if !windows.is_empty() {
            outbox::lock(&tx).await?;
            spans = announce(&tx, &windows, CloseReason::Idle).await?;
        }
        if let Err(err) = tx.commit().await {
            spans.iter().for_each(|s| s.failed("the announcing transaction did not commit"));
            return Err(q("commit idle close")(err));
        }
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
            // Setting ready_revision to anything but NULL announces (NULL withdraws), unless it
            // is a CASE whose every branch is NULL or the row's own ready_revision (it keeps an
            // announcement, as late data that adds nothing to a complete window does).
            let announces = code.match_indices("ready_revision =").any(|(i, m)| {
                let value = code[i + m.len()..].trim_start();
                if let Some(case) = value.strip_prefix("CASE ") {
                    let case = &case[..case.find(" END").unwrap_or(case.len())];
                    let branches = case.split(" THEN ").skip(1).chain(case.split(" ELSE ").skip(1));
                    branches.map(|b| b.split_whitespace().next().unwrap_or("")).any(|v| v != "NULL" && v != "w.ready_revision")
                } else {
                    !value.starts_with("NULL")
                }
            });
            if announces {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                assert!(code.contains("UPDATE windows_due "), "{name} marks windows ready without going through windows_due");
                assert!(!code.contains("UPDATE windows "), "{name} updates the windows table directly");
                announcing.push(name);
            }
        }
        announcing.sort();
        assert_eq!(
            announcing,
            ["windows_complete.sql", "windows_idle.sql", "windows_ready.sql", "windows_rescore.sql", "windows_rescore_failed.sql"],
            "the announcing paths"
        );
    }
}
