//! The relay's metrics, and the log lines that go with them (emitted together, from here).

use prometheus::{IntCounterVec, IntGauge, Opts};

use crate::domain::TopicRole;
use crate::failure::FailureKind;
use crate::telemetry::{Metrics, register};

#[derive(Clone)]
pub struct RelayMetrics {
    published: IntCounterVec,
    failed: IntCounterVec,
    cut: IntCounterVec,
    errors: IntCounterVec,
    backlog: IntGauge,
    last_seq: IntGauge,
    systemic: IntGauge,
}

impl RelayMetrics {
    /// The gauge that is 1 while the relay is stopped by a systemic failure (for readiness).
    pub(super) fn systemic_gauge(&self) -> IntGauge {
        self.systemic.clone()
    }

    pub fn new(metrics: &Metrics) -> Self {
        let registry = metrics.registry();
        Self {
            published: register(
                registry,
                IntCounterVec::new(Opts::new("manifold_relay_events_published_total", "Outbox events published, by topic role"), &["topic_role"]),
            ),
            failed: register(
                registry,
                IntCounterVec::new(
                    Opts::new("manifold_relay_events_failed_total", "Outbox events set aside because they cannot be published (see outbox_failures)"),
                    &["topic_role", "reason"],
                ),
            ),
            cut: register(
                registry,
                IntCounterVec::new(
                    Opts::new("manifold_relay_values_truncated_total", "Events published with their value cut to the size limit"),
                    &["topic_role"],
                ),
            ),
            errors: register(
                registry,
                IntCounterVec::new(Opts::new("manifold_relay_errors_total", "Relay restarts by failure kind"), &["kind"]),
            ),
            backlog: register(
                registry,
                IntGauge::new("manifold_relay_backlog_events", "Newest outbox sequence minus the last published one"),
            ),
            last_seq: register(registry, IntGauge::new("manifold_relay_last_published_seq", "The last outbox sequence the relay committed")),
            systemic: register(
                registry,
                IntGauge::new("manifold_relay_systemic", "1 while the relay is stopped by a deployment problem (see its error log)"),
            ),
        }
    }

    pub fn published(&self, role: TopicRole, count: u64) {
        self.published.with_label_values(&[role.as_str()]).inc_by(count);
    }

    pub fn committed(&self, seq: i64, newest: i64) {
        self.last_seq.set(seq);
        self.backlog.set((newest - seq).max(0));
        self.systemic.set(0);
    }

    /// The relay is making progress (or has none to make): a systemic failure is over.
    pub fn healthy(&self) {
        self.systemic.set(0);
    }

    pub fn backlog(&self, newest: i64, last: i64) {
        self.backlog.set((newest - last).max(0));
    }

    pub fn cut(&self, seq: i64, role: TopicRole, original: usize, sent: usize) {
        self.cut.with_label_values(&[role.as_str()]).inc();
        tracing::warn!(seq, topic_role = role.as_str(), original_bytes = original, sent_bytes = sent, "outbox event over the size limit: published with its value cut");
    }

    /// An event set aside. A window-ready event is built by manifold and small, so failing to
    /// publish one is a bug that leaves a window unscored: the log says so for whoever is paged.
    pub fn failed(&self, seq: i64, role: &str, reason: &str, message: &str) {
        let known = TopicRole::parse(role).filter(|r| r.is_outbox());
        // Outbox roles are a closed set (a CHECK constraint); anything else is one bounded label.
        self.failed.with_label_values(&[known.map_or("other", TopicRole::as_str), reason]).inc();
        if known == Some(TopicRole::WindowsReady) {
            tracing::error!(
                seq, topic_role = role, reason, error = message,
                "a window-ready event cannot be published (a bug: report it); it is recorded in outbox_failures, the relay goes on, the window stays unscored until `manifold rescore`"
            );
        } else {
            tracing::error!(
                seq, topic_role = role, reason, error = message,
                "outbox event cannot be published; recorded in outbox_failures (`manifold outbox failed`), the relay goes on"
            );
        }
    }

    /// A failure that restarts the relay; systemic ones also raise the gauge until a commit.
    pub fn interrupted(&self, kind: FailureKind, error: &dyn std::fmt::Display, fatal: bool, fix: &str) {
        self.errors.with_label_values(&[kind.as_str()]).inc();
        match kind {
            FailureKind::Systemic => {
                self.systemic.set(1);
                tracing::error!(error = %error, fatal, fix, "relay stopped by a deployment problem; retrying slowly until it is fixed");
            }
            _ => tracing::warn!(error = %error, kind = kind.as_str(), fatal, "relay interrupted; restarting from the committed position"),
        }
    }
}
