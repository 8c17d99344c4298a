use prometheus::{Histogram, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};

use crate::telemetry::{Metrics, histogram, register};

/// Ingest's collectors; the log line and the counter for an event come from the same place.
#[derive(Clone)]
pub struct IngestMetrics {
    pub messages_consumed: IntCounter,
    pub readings_consumed: IntCounter,
    pub readings_written: IntCounter,
    pub batches_stored: IntCounter,
    pub duplicates: IntCounter,
    pub dead_letters: IntCounterVec,
    pub chunk_readings: Histogram,
    pub chunk_seconds: Histogram,
    pub end_to_end_seconds: Histogram,
    pub consumer_lag: IntGaugeVec,
    pub paused: IntGauge,
    pub write_errors: IntCounterVec,
    pub pauses: IntCounterVec,
    pub systemic: IntGauge,
    pub isolations: IntCounter,
    pub consumer_replaced: IntCounter,
}

impl IngestMetrics {
    pub fn new(metrics: &Metrics) -> Self {
        let r = metrics.registry();
        let counter = |name: &str, help: &str| register(r, IntCounter::new(name, help));
        Self {
            messages_consumed: counter("manifold_ingest_messages_consumed_total", "Kafka messages consumed from the input topic"),
            readings_consumed: counter("manifold_ingest_readings_consumed_total", "Readings in consumed, decodable batches"),
            consumer_replaced: counter("manifold_ingest_consumer_replaced_total", "Kafka consumers replaced after librdkafka ended one for good (a fatal error such as a fence)"),
            readings_written: counter("manifold_ingest_readings_written_total", "Readings committed to the database"),
            batches_stored: counter("manifold_ingest_batches_stored_total", "Batches committed to the database"),
            duplicates: counter("manifold_ingest_duplicate_batches_total", "Batches skipped because their id was stored before"),
            dead_letters: register(r, IntCounterVec::new(Opts::new("manifold_ingest_dead_letters_total", "Messages dead-lettered, by reason"), &["reason"])),
            chunk_readings: histogram(r, "manifold_ingest_chunk_readings", "Readings per committed chunk", &[10.0, 100.0, 1e3, 5e3, 1e4, 2.5e4, 5e4, 1e5, 2.5e5]),
            chunk_seconds: histogram(r, "manifold_ingest_chunk_write_seconds", "Time to write and commit one chunk", &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            end_to_end_seconds: histogram(r, "manifold_ingest_end_to_end_delay_seconds", "Commit time minus the newest event time of each stored batch", &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0]),
            consumer_lag: register(r, IntGaugeVec::new(Opts::new("manifold_ingest_consumer_lag_messages", "Messages behind the high watermark, per partition"), &["partition"])),
            paused: register(r, IntGauge::new("manifold_ingest_paused", "1 while consumption is paused because the database is unavailable")),
            write_errors: register(r, IntCounterVec::new(Opts::new("manifold_ingest_write_errors_total", "Chunk writes that failed, by kind"), &["kind"])),
            pauses: register(r, IntCounterVec::new(Opts::new("manifold_ingest_pauses_total", "Times consumption was paused, by failure kind (transient or systemic)"), &["kind"])),
            systemic: register(r, IntGauge::new("manifold_ingest_systemic_failure", "1 while ingest is stopped by a failure an operator must fix")),
            isolations: counter("manifold_ingest_isolations_total", "Chunks the database refused for their content, narrowed down to the messages at fault"),
        }
    }
}

