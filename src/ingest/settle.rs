//! Applying a write's report: offsets, counters and log lines of what committed, and the
//! outage or restart for what did not.

use std::time::Duration;

use super::consumer;
use super::service::{IngestService, Loop, Transient, now_us};
use super::writer::{Committed, Report, WriteFailure};

impl IngestService {
    pub(super) async fn settled(&self, state: &mut Loop, report: Report) {
        for committed in &report.committed {
            for (partition, next) in &committed.offsets {
                if let Some(s) = state.partitions.get_mut(partition) {
                    s.stored = Some(*next);
                }
            }
            consumer::commit_for_lag_tools(&state.consumer, &self.topic, &committed.offsets);
            self.record(committed, report.took);
        }
        if report.isolated {
            self.metrics.isolations.inc();
            tracing::info!(transactions = report.committed.len(), "a chunk the database refused was narrowed down to its culprits");
        }
        match report.failure {
            None => {
                let now = now_us();
                for newest in &report.left.event_times {
                    self.metrics.end_to_end_seconds.observe(((now - newest) as f64 / 1e6).max(0.0));
                }
                state.breaker.succeeded();
                state.backoff = self.config.retry_initial_ms;
            }
            Some(WriteFailure::Fenced { partition }) => {
                self.metrics.write_errors.with_label_values(&["fenced"]).inc();
                tracing::warn!(topic = %self.topic, partition, "another consumer moved a partition; re-reading stored offsets");
                self.restart_from_stored(state).await;
            }
            Some(WriteFailure::Store { kind, error }) => {
                state.stalled = Some(report.left);
                self.enter_outage(state, Transient::Store(kind, error));
            }
        }
    }

    /// The log lines and counters of a committed transaction, from one place.
    fn record(&self, committed: &Committed, took: Duration) {
        let (m, outcome) = (&self.metrics, &committed.outcome);
        m.readings_written.inc_by(outcome.readings_written);
        m.batches_stored.inc_by(outcome.batches_stored as u64);
        m.duplicates.inc_by(outcome.duplicates.len() as u64);
        m.chunk_readings.observe(outcome.readings_written as f64);
        m.chunk_seconds.observe(took.as_secs_f64());
        for (reason, partition, offset, message) in &committed.letters {
            m.dead_letters.with_label_values(&[reason]).inc();
            tracing::info!(reason, partition, offset, message = %message, "message dead-lettered");
        }
        for (system_id, batch_id) in &outcome.duplicates {
            tracing::info!(%system_id, %batch_id, "duplicate batch skipped");
        }
        tracing::debug!(readings = outcome.readings_written, batches = outcome.batches_stored, took_ms = took.as_millis() as u64, "chunk committed");
    }
}
