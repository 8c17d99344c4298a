//! Pausing for an outage and resuming from it; starting over from the stored offsets.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::consumer;
use super::pending::Pending;
use super::service::{IngestService, Loop, Transient};

impl IngestService {
    /// Drops everything not yet stored and consumes again from the database's offsets.
    pub(super) async fn restart_from_stored(&self, state: &mut Loop) {
        state.pending = Pending::default();
        let assigned: Vec<i32> = state.partitions.keys().copied().collect();
        consumer::pause(&state.consumer, &self.topic, &assigned);
        self.reseek(state, &assigned).await;
    }

    pub(super) fn enter_outage(&self, state: &mut Loop, cause: Transient) {
        let (kind, text) = match cause {
            Transient::Store(err) => ("database", err.to_string()),
            Transient::Registry(err) => ("dependency", err),
        };
        self.metrics.write_errors.with_label_values(&[kind]).inc();
        let assigned: Vec<i32> = state.partitions.keys().copied().collect();
        consumer::pause(&state.consumer, &self.topic, &assigned);
        self.health.outage.store(true, Ordering::Relaxed);
        self.metrics.paused.set(1);
        tracing::warn!(kind, error = %text, retry_in_ms = state.backoff.as_millis() as u64, "ingest paused; will retry");
        state.retry_at = Some(Instant::now() + state.backoff);
        state.backoff = (state.backoff * 2).min(Duration::from_millis(self.config.retry_max_ms));
    }

    pub(super) async fn leave_outage(&self, state: &mut Loop) {
        state.retry_at = None;
        let not_ready: Vec<i32> = state.partitions.iter().filter(|(_, s)| !s.ready).map(|(p, _)| *p).collect();
        if !not_ready.is_empty() {
            self.reseek(state, &not_ready).await;
            if state.retry_at.is_some() {
                return;
            }
        }
        let assigned: Vec<i32> = state.partitions.keys().copied().collect();
        consumer::resume(&state.consumer, &self.topic, &assigned);
        if self.health.outage.swap(false, Ordering::Relaxed) {
            tracing::info!("ingest resumed");
        }
        self.metrics.paused.set(0);
    }
}
