//! Windows infer set aside for their content (`scoring_failures`), and their retry.

use chrono::{DateTime, Utc};

use super::windows::{self, ReadyWindow};
use super::{outbox, q, Store, StoreError};
use crate::domain::{text, CloseReason};

const FAILURES_INSERT: &str = include_str!("sql/scoring_failures_insert.sql");
const WINDOWS_RESCORE_FAILED: &str = include_str!("sql/windows_rescore_failed.sql");
const FAILURES_RETRIED: &str = include_str!("sql/scoring_failures_retried.sql");
const FAILURES_OPEN: &str = include_str!("sql/scoring_failures_open.sql");

/// One window-ready record infer could not score, with what is known of its window.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoringFailure {
    pub source_topic: String,
    pub source_partition: i32,
    pub source_offset: i64,
    pub system_id: Option<String>,
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub revision: Option<i32>,
    pub reason: String,
    pub message: String,
}

/// What `manifold rescore --failed` did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedRescore {
    /// Windows re-opened as a new revision (announced for scoring).
    pub windows: usize,
    /// Failures marked retried.
    pub failures: u64,
    /// Failures still open: their window is not known (an undecodable record) or no longer stored.
    pub left: i64,
}

impl Store {
    /// Records each failure once (a retried batch finds its failures there already). The
    /// free text is sanitized here too, so this insert cannot be refused for its content.
    pub async fn record_scoring_failures(&self, failures: &[ScoringFailure]) -> Result<u64, StoreError> {
        if failures.is_empty() {
            return Ok(0);
        }
        let topics: Vec<String> = failures.iter().map(|f| text::sanitize(&f.source_topic, 256)).collect();
        let partitions: Vec<i32> = failures.iter().map(|f| f.source_partition).collect();
        let offsets: Vec<i64> = failures.iter().map(|f| f.source_offset).collect();
        let systems: Vec<Option<String>> = failures.iter().map(|f| f.system_id.as_deref().map(|s| text::sanitize(s, 256))).collect();
        let starts: Vec<Option<DateTime<Utc>>> = failures.iter().map(|f| f.window_start).collect();
        let ends: Vec<Option<DateTime<Utc>>> = failures.iter().map(|f| f.window_end).collect();
        let revisions: Vec<Option<i32>> = failures.iter().map(|f| f.revision).collect();
        let reasons: Vec<String> = failures.iter().map(|f| text::sanitize(&f.reason, 64)).collect();
        let messages: Vec<String> = failures.iter().map(|f| text::message(&f.message)).collect();
        let client = self.client().await?;
        let statement = client.prepare_cached(FAILURES_INSERT).await.map_err(q("prepare scoring failure insert"))?;
        client
            .execute(&statement, &[&topics, &partitions, &offsets, &systems, &starts, &ends, &revisions, &reasons, &messages])
            .await
            .map_err(q("record scoring failures"))
    }

    /// Opens a new revision of each failed window that is known (system and window), announces
    /// it for scoring, and marks its failures retried; all in one transaction.
    pub async fn rescore_failed(&self, system: Option<&str>) -> Result<(Vec<ReadyWindow>, FailedRescore), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(q("begin rescore of failed windows"))?;
        outbox::lock(&tx).await?;
        let statement = tx.prepare_cached(WINDOWS_RESCORE_FAILED).await.map_err(q("prepare rescore of failed windows"))?;
        let rows = tx.query(&statement, &[&system]).await.map_err(q("open new revisions of failed windows"))?;
        let reopened = windows::ready_rows(rows);
        let _spans = windows::announce(&tx, &reopened, CloseReason::Rescore).await?;
        let systems: Vec<&str> = reopened.iter().map(|w| w.system_id.as_str()).collect();
        let starts: Vec<DateTime<Utc>> = reopened.iter().map(|w| w.window_start).collect();
        let statement = tx.prepare_cached(FAILURES_RETRIED).await.map_err(q("prepare marking failures retried"))?;
        let failures = tx.execute(&statement, &[&systems, &starts]).await.map_err(q("mark failures retried"))?;
        let statement = tx.prepare_cached(FAILURES_OPEN).await.map_err(q("prepare counting open failures"))?;
        let left: i64 = tx.query_one(&statement, &[&system]).await.map_err(q("count open failures"))?.get(0);
        tx.commit().await.map_err(q("commit rescore of failed windows"))?;
        let report = FailedRescore { windows: reopened.len(), failures, left };
        Ok((reopened, report))
    }
}
