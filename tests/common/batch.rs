//! Sensor batches as devices send them, built in one place: tests say what they vary (system, id,
//! sensors, times, values) and the builder fills the rest, as JSON bytes for Kafka, a JSON body
//! for the API, or the `RawBatch` itself for the Avro encoder.

use manifold::domain::{RawBatch, RawSeries};

/// One second in the microseconds batches count time in.
pub const SECOND_US: i64 = 1_000_000;

/// `values` sampled every `interval_us` from `start`.
pub fn regular(sensor: &str, start: i64, interval_us: i64, values: Vec<f64>) -> RawSeries {
    RawSeries { sensor_id: sensor.into(), start, interval_us, times_us: vec![], values }
}

/// `values` sampled once a second from `start`.
pub fn per_second(sensor: &str, start: i64, values: Vec<f64>) -> RawSeries {
    regular(sensor, start, SECOND_US, values)
}

/// `values` at the given times (an irregular series: no interval).
pub fn timed(sensor: &str, start: i64, times_us: Vec<i64>, values: Vec<f64>) -> RawSeries {
    RawSeries { sensor_id: sensor.into(), start, interval_us: 0, times_us, values }
}

#[derive(Debug, Clone)]
pub struct BatchBuilder(RawBatch);

impl BatchBuilder {
    /// A batch for `system` without an id, a production time or any series yet.
    pub fn new(system: &str) -> Self {
        Self(RawBatch { batch_id: None, system_id: system.into(), produced_at: None, series: vec![] })
    }

    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.0.batch_id = Some(id.into());
        self
    }

    pub fn produced_at(mut self, time_us: i64) -> Self {
        self.0.produced_at = Some(time_us);
        self
    }

    pub fn series(mut self, series: impl IntoIterator<Item = RawSeries>) -> Self {
        self.0.series.extend(series);
        self
    }

    /// Adds a series of `values` sampled once a second from `start`.
    pub fn per_second(self, sensor: &str, start: i64, values: Vec<f64>) -> Self {
        self.series([per_second(sensor, start, values)])
    }

    /// Adds a series of `values` sampled every `interval_us` from `start`.
    pub fn regular(self, sensor: &str, start: i64, interval_us: i64, values: Vec<f64>) -> Self {
        self.series([regular(sensor, start, interval_us, values)])
    }

    pub fn build(self) -> RawBatch {
        self.0
    }

    /// The batch as a device's JSON message on the batches topic.
    pub fn json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.0).expect("a batch serializes")
    }

    /// The batch as a JSON body for `POST /ingestion/ingest`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::to_value(&self.0).expect("a batch serializes")
    }
}
