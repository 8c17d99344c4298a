use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts};

use crate::telemetry::{Metrics, histogram, register};

#[derive(Clone)]
pub struct InferMetrics {
    pub windows_scored: IntCounterVec,
    /// Alert events published, by kind (opened, escalated, cleared, revised, withdrawn).
    pub alert_events: IntCounterVec,
    /// Window-ready records set aside for their content, by reason (a bounded set).
    pub windows_failed: IntCounterVec,
    pub scoring_seconds: HistogramVec,
    pub end_to_end_seconds: Histogram,
    pub errors: IntCounterVec,
    pub fenced: IntCounter,
    pub producer_recreated: IntCounter,
    pub model_info: IntGaugeVec,
    /// Windows the rig model did not apply to (their system's topology does not map onto its
    /// graph), by reason (a bounded set): the baseline scored them.
    pub model_refusals: IntCounterVec,
    pub consumer_lag: IntGaugeVec,
}

impl InferMetrics {
    pub fn new(metrics: &Metrics) -> Self {
        let r = metrics.registry();
        Self {
            alert_events: register(r, IntCounterVec::new(Opts::new("manifold_infer_alert_events_total", "Condition alert events published, by kind"), &["kind"])),
            windows_scored: register(r, IntCounterVec::new(Opts::new("manifold_infer_windows_scored_total", "Window revisions scored and published, by scorer"), &["scorer"])),
            windows_failed: register(
                r,
                IntCounterVec::new(
                    Opts::new("manifold_infer_windows_failed_total", "Window-ready records set aside for their content (see scoring_failures), by reason"),
                    &["reason"],
                ),
            ),
            scoring_seconds: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new("manifold_infer_scoring_seconds", "Time to score one window, by scorer")
                        .buckets(vec![1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5]),
                    &["scorer"],
                ),
            ),
            end_to_end_seconds: histogram(r, "manifold_infer_end_to_end_delay_seconds", "Score commit time minus the window's end", &[0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 3600.0]),
            errors: register(
                r,
                IntCounterVec::new(
                    Opts::new("manifold_infer_errors_total", "Failed scoring batches, by the dependency that failed and the kind of failure"),
                    &["kind", "failure"],
                ),
            ),
            fenced: register(r, IntCounter::new("manifold_infer_fenced_total", "Workers stopped because another instance took their ordinal")),
            producer_recreated: register(
                r,
                IntCounter::new("manifold_infer_producer_recreated_total", "Transactional producers recreated after a fatal librdkafka error"),
            ),
            model_info: register(r, IntGaugeVec::new(Opts::new("manifold_infer_model_info", "The loaded model version (value 1)"), &["version"])),
            model_refusals: register(
                r,
                IntCounterVec::new(
                    Opts::new("manifold_infer_model_refusals_total", "Windows the rig model did not apply to (left to the baseline), by reason"),
                    &["reason"],
                ),
            ),
            consumer_lag: register(
                r,
                IntGaugeVec::new(Opts::new("manifold_infer_consumer_lag_messages", "Window-ready messages behind the last stable offset, per partition"), &["partition"]),
            ),
        }
    }
}
