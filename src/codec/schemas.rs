//! The Avro schemas of `schemas/`, compiled in.

pub const SENSOR_BATCH: &str = include_str!("../../schemas/sensor_batch.avsc");
pub const WINDOW_READY: &str = include_str!("../../schemas/window_ready.avsc");
pub const ANOMALY_SCORES: &str = include_str!("../../schemas/anomaly_scores.avsc");
pub const ALERT_EVENTS: &str = include_str!("../../schemas/alert_events.avsc");
