//! Per-reading validation against the equipment catalogue: known sensor, finite value, inside
//! the sensor's range, event time neither too far ahead nor past retention. The one contract
//! both ways in (Kafka and HTTP) apply, so neither depends on the other.

use serde::Deserialize;

use super::{AcceptedBatch, DomainError, RawBatch, RejectKind, Row, Sensor, SensorBatch, Series, SystemMeta};

/// What happens to a batch with some bad readings (`ingest.bad_readings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadReadingsPolicy {
    RejectBatch,
    StoreValid,
}

#[derive(Debug, Clone, Copy)]
pub struct Validator {
    pub max_future_us: i64,
    pub retention_us: i64,
    pub policy: BadReadingsPolicy,
}

#[derive(Debug)]
pub enum Verdict {
    Accept(AcceptedBatch),
    Reject(DomainError),
    /// Good readings stored; the rest dead-lettered as `rejected`, a batch of their own.
    Partial { accepted: AcceptedBatch, rejected: RawBatch, error: DomainError },
}

struct Problem {
    kind: RejectKind,
    field: String,
    message: String,
}

impl Validator {
    /// Checks every reading of `batch` at time `now_us` (microseconds since the epoch).
    pub fn check(&self, batch: &SensorBatch, system: &SystemMeta, now_us: i64) -> Verdict {
        let mut rows = Vec::with_capacity(batch.reading_count());
        let mut problems: Vec<Problem> = Vec::new();
        let mut bad_count = 0usize;
        let mut bad_series: Vec<Series> = Vec::new();
        let earliest = now_us.saturating_sub(self.retention_us);
        let latest = now_us.saturating_add(self.max_future_us);
        for (i, series) in batch.series.iter().enumerate() {
            let Some(meta) = system.sensors.get(series.sensor_id.as_str()) else {
                bad_count += series.values.len();
                problems.push(Problem {
                    kind: RejectKind::UnknownSensor,
                    field: format!("series[{i}].sensor_id"),
                    message: format!("system {} has no sensor {}", batch.system_id, series.sensor_id),
                });
                bad_series.push(series.clone());
                continue;
            };
            // Ranges stored before topologies were bounded may be wider than the bound; every
            // accepted value stays within it, so the aggregate's sums stay finite.
            let (min, max) = (meta.min.max(-Sensor::MAX_MAGNITUDE), meta.max.min(Sensor::MAX_MAGNITUDE));
            let mut bad_here = Vec::new();
            for (j, reading) in series.readings().enumerate() {
                let problem = if !reading.value.is_finite() {
                    Some((RejectKind::NonFinite, format!("{} is not a finite number", reading.value)))
                } else if !(reading.value >= min && reading.value <= max) {
                    Some((RejectKind::OutOfRange, format!("{} is outside [{min}, {max}]", reading.value)))
                } else if reading.time_us > latest {
                    Some((RejectKind::FutureTime, format!("event time {} µs is beyond the allowed future skew", reading.time_us)))
                } else if reading.time_us < earliest {
                    Some((RejectKind::ExpiredTime, format!("event time {} µs is older than the retention", reading.time_us)))
                } else {
                    None
                };
                match problem {
                    None => rows.push(Row { series_id: meta.series_id, time_us: reading.time_us, value: reading.value }),
                    Some((kind, message)) => {
                        bad_here.push(j);
                        if problems.len() < 5 {
                            problems.push(Problem { kind, field: format!("series[{i}].values[{j}]"), message: format!("{}: {message}", series.sensor_id) });
                        }
                    }
                }
            }
            if !bad_here.is_empty() {
                bad_count += bad_here.len();
                if let Some(bad) = series.retain(|j| bad_here.binary_search(&j).is_ok()) {
                    bad_series.push(bad);
                }
            }
        }
        if problems.is_empty() {
            return Verdict::Accept(accepted(batch, system, rows));
        }
        let first = &problems[0];
        let mut message = format!("{bad_count} of {} readings rejected: ", batch.reading_count());
        message.push_str(&problems.iter().map(|p| format!("{} ({})", p.field, p.message)).collect::<Vec<_>>().join("; "));
        let error = DomainError::new(first.kind, first.field.clone(), message);
        if self.policy == BadReadingsPolicy::RejectBatch || rows.is_empty() {
            return Verdict::Reject(error);
        }
        let rejected = SensorBatch {
            batch_id: derived_batch_id(&batch.batch_id),
            system_id: batch.system_id.clone(),
            produced_at: batch.produced_at,
            series: bad_series,
        };
        Verdict::Partial { accepted: accepted(batch, system, rows), rejected: rejected.to_raw(), error }
    }
}

/// The id under which a batch's rejected readings are dead-lettered, so a replay after a fix
/// is stored and never collides with the accepted part.
fn derived_batch_id(batch_id: &str) -> String {
    format!("{batch_id}~rejected")
}

fn accepted(batch: &SensorBatch, system: &SystemMeta, rows: Vec<Row>) -> AcceptedBatch {
    let sensors = batch
        .series
        .iter()
        .filter_map(|s| system.sensors.get(s.sensor_id.as_str()).map(|m| (m.series_id, s.sensor_id.to_string())))
        .collect();
    AcceptedBatch { system_id: batch.system_id.to_string(), batch_id: batch.batch_id.clone(), rows, sensors }
}

#[cfg(test)]
mod tests;
