//! Pausing for an outage or a systemic failure and resuming from it; starting over from the
//! stored offsets.

use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use super::consumer::{self, RebalanceEvent};
use super::pending::Pending;
use super::service::{IngestService, Loop, Transient};
use crate::domain::text;
use crate::failure::{FailureKind, sqlstate_hint};
use crate::kafka::KafkaError;

impl IngestService {
    /// Drops everything not yet stored and consumes again from the database's offsets.
    pub(super) async fn restart_from_stored(&self, state: &mut Loop) {
        state.pending = Pending::default();
        state.stalled = None;
        let assigned: Vec<i32> = state.partitions.keys().copied().collect();
        consumer::pause(&state.consumer, &self.topic, &assigned);
        self.reseek(state, &assigned).await;
    }

    /// librdkafka ended the consumer for good (a fatal error: a static member fenced, which a
    /// broker restart can do to a lone member, `kafka::fences`). What was taken and not stored
    /// is dropped, and a new consumer joins; its assignment seeks to the stored offsets, as
    /// every assignment does, so nothing is lost or stored twice.
    pub(super) async fn replace_consumer(&self, state: &mut Loop, events: &UnboundedSender<RebalanceEvent>) -> Result<(), KafkaError> {
        self.settle(state).await;
        state.pending = Pending::default();
        state.stalled = None;
        state.partitions.clear();
        state.consumer = consumer::create(&self.kafka, &self.config, &self.topic, self.metrics.clone(), events.clone())?;
        self.metrics.consumer_replaced.inc();
        Ok(())
    }

    /// Fatal consumer errors again and again (`kafka::fences`): another ingest instance has this
    /// one's `ingest.instance_id`. Readiness says so until shutdown; nothing more is consumed.
    pub(super) fn stop_fenced(&self, err: &rdkafka::error::KafkaError, fences: usize) {
        let what = format!("the kafka consumer failed for good {fences} times within ten session timeouts ({err}): two ingest instances share ingest.instance_id; give each its own");
        tracing::error!(error = %err, fences, "ingest stopped: two instances share an instance id");
        *self.health.systemic.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
    }

    /// Pauses every partition (polling goes on, so the group keeps us) until the retry timer.
    /// A systemic failure, or a run of transient ones the breaker turns systemic, also says what
    /// to fix; no failure of this kind ever dead-letters a message.
    pub(super) fn enter_outage(&self, state: &mut Loop, cause: Transient) {
        let (dependency, kind, error, fix) = match cause {
            Transient::Store(kind, err) => {
                let fix = match err.sqlstate() {
                    Some(code) => sqlstate_hint(code),
                    None => "the database has been unreachable for long: check that it runs and that database.url reaches it",
                };
                ("database", kind, err.to_string(), fix)
            }
            Transient::Registry(err) => ("dependency", FailureKind::Transient, err, "the schema registry has been unreachable or refusing for long: check schema_registry.url and its credentials (username and password, or token; ca_file)"),
        };
        let kind = state.breaker.failed(kind, Instant::now());
        self.metrics.write_errors.with_label_values(&[dependency]).inc();
        if state.retry_at.is_none() {
            // Entries into a pause, not retries within one.
            self.metrics.pauses.with_label_values(&[kind.as_str()]).inc();
        }
        let assigned: Vec<i32> = state.partitions.keys().copied().collect();
        consumer::pause(&state.consumer, &self.topic, &assigned);
        self.health.outage.store(true, Ordering::Relaxed);
        self.metrics.paused.set(1);
        if kind == FailureKind::Systemic {
            state.backoff = self.config.retry_max_ms;
            let what = text::message(&format!("{fix} ({dependency}: {error})"));
            *self.health.systemic.lock().unwrap_or_else(|p| p.into_inner()) = Some(what);
            self.metrics.systemic.set(1);
            tracing::error!(kind = dependency, error = %error, fix, retry_in_ms = state.backoff.as_millis() as u64, "ingest stopped: the deployment needs attention");
        } else {
            tracing::warn!(kind = dependency, error = %error, retry_in_ms = state.backoff.as_millis() as u64, "ingest paused; will retry");
        }
        state.retry_at = Some(Instant::now() + state.backoff);
        state.backoff = (state.backoff * 2).min(self.config.retry_max_ms);
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
        let was_systemic = self.health.systemic.lock().unwrap_or_else(|p| p.into_inner()).take().is_some();
        if self.health.outage.swap(false, Ordering::Relaxed) || was_systemic {
            tracing::info!("ingest resumed");
        }
        self.metrics.paused.set(0);
        self.metrics.systemic.set(0);
    }
}
