//! Whether the worker can make progress (its readiness), and the rebalance signal that keeps a
//! batch of revoked partitions from being committed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::Rebalance;

use crate::failure::FailureKind;

/// What readiness reports: a fenced worker is not ready until it commits again after the
/// supervisor restarted it (for good, when another instance holds its ordinal); a systemic
/// failure lasts until the next committed batch; transient failures make the worker not ready
/// once they have lasted longer than the bound.
pub struct InferHealth {
    unready_after: Duration,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    fenced: Option<String>,
    systemic: Option<String>,
    failing_since: Option<Instant>,
    last_failure: String,
}

impl InferHealth {
    pub fn new(unready_after: Duration) -> Self {
        Self { unready_after, state: Mutex::new(State::default()) }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn ready(&self) -> Result<(), String> {
        let state = self.state();
        if let Some(why) = &state.fenced {
            return Err(why.clone());
        }
        if let Some(why) = &state.systemic {
            return Err(why.clone());
        }
        match state.failing_since {
            Some(since) if since.elapsed() >= self.unready_after => {
                Err(format!("scoring has failed for {} s: {}", since.elapsed().as_secs(), state.last_failure))
            }
            _ => Ok(()),
        }
    }

    /// A batch committed: whatever failed before is over (a fenced worker stays fenced).
    pub fn progressing(&self) {
        let mut state = self.state();
        state.systemic = None;
        state.failing_since = None;
    }

    pub fn failed(&self, kind: FailureKind, why: &str) {
        let mut state = self.state();
        state.failing_since.get_or_insert_with(Instant::now);
        state.last_failure = crate::domain::text::message(why);
        if kind == FailureKind::Systemic {
            state.systemic = Some(state.last_failure.clone());
        }
    }

    pub fn fenced(&self, why: &str) {
        self.state().fenced = Some(crate::domain::text::message(why));
    }

    /// The worker starts again after a fence: not ready, as after a systemic failure, until its
    /// first committed batch.
    pub fn restarting_after_fence(&self) {
        let mut state = self.state();
        if let Some(why) = state.fenced.take() {
            state.systemic = Some(why);
        }
    }

    pub fn is_fenced(&self) -> bool {
        self.state().fenced.is_some()
    }
}

/// Counts revocations per partition. librdkafka calls it from inside `recv`, so a message
/// received before its partition's count moved came from an assignment that may now belong to
/// another member; one received after it, from the new assignment.
#[derive(Clone, Default)]
pub struct RebalanceSignal {
    revoked: Arc<Mutex<HashMap<(String, i32), u64>>>,
}

impl RebalanceSignal {
    /// How often `partition` of `topic` has been revoked from this consumer.
    pub fn generation(&self, topic: &str, partition: i32) -> u64 {
        let revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        revoked.get(&(topic.to_owned(), partition)).copied().unwrap_or(0)
    }
}

impl RebalanceSignal {
    /// Called by the consumer's context before librdkafka applies a rebalance.
    pub fn before_rebalance(&self, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance
            && partitions.count() > 0
        {
            let mut revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
            for p in partitions.elements() {
                *revoked.entry((p.topic().to_owned(), p.partition())).or_insert(0) += 1;
            }
            tracing::info!(partitions = partitions.count(), "infer partitions revoked; their messages in hand are dropped");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_systemic_failure_is_not_ready_until_a_batch_commits() {
        let health = InferHealth::new(Duration::from_secs(3600));
        assert!(health.ready().is_ok());
        health.failed(FailureKind::Transient, "broker unavailable");
        assert!(health.ready().is_ok(), "a short transient failure keeps the worker ready");
        health.failed(FailureKind::Systemic, "42P01: relation \"anomaly_scores\" does not exist");
        assert!(health.ready().unwrap_err().contains("42P01"));
        health.progressing();
        assert!(health.ready().is_ok());
    }

    #[test]
    fn failing_for_longer_than_the_bound_is_not_ready() {
        let health = InferHealth::new(Duration::ZERO);
        health.failed(FailureKind::Transient, "timed out");
        assert!(health.ready().unwrap_err().contains("timed out"));
    }

    #[test]
    fn a_fenced_worker_stays_not_ready() {
        let health = InferHealth::new(Duration::from_secs(3600));
        health.fenced("fenced by another instance with the same transactional id");
        health.progressing();
        assert!(health.ready().is_err());
        assert!(health.is_fenced());
    }
}
