//! Sensor batches: the wire shape (`RawBatch`, shared by Avro and JSON) and the structurally
//! valid `SensorBatch`. Checks that need equipment metadata (known sensor, range, time) happen
//! in validation (`validate.rs`), per reading, so a partial-accept policy can split a batch.

use std::collections::HashSet;

use serde::{Deserialize, Deserializer, Serialize};

use super::{DomainError, RejectKind, SensorId, SystemId};

const MAX_BATCH_ID_LEN: usize = 160;

/// The fields of `schemas/sensor_batch.avsc`. Times are microseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBatch {
    #[serde(default)]
    pub batch_id: Option<String>,
    pub system_id: String,
    /// Microseconds since the epoch, or an RFC 3339 time.
    #[serde(default, deserialize_with = "micros_or_rfc3339_opt")]
    pub produced_at: Option<i64>,
    pub series: Vec<RawSeries>,
}

/// One sensor's samples. Regularly sampled data needs only `start` and `interval_us`; irregular
/// data lists `times_us` (absolute, one per value) and leaves the interval at 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSeries {
    pub sensor_id: String,
    /// Time of the first value: microseconds since the epoch, or an RFC 3339 time.
    #[serde(deserialize_with = "micros_or_rfc3339")]
    pub start: i64,
    #[serde(default)]
    pub interval_us: i64,
    #[serde(default)]
    pub times_us: Vec<i64>,
    pub values: Vec<f64>,
}

#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_readings: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self { max_readings: 100_000 }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SensorBatch {
    pub batch_id: String,
    pub system_id: SystemId,
    pub produced_at: Option<i64>,
    pub series: Vec<Series>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub sensor_id: SensorId,
    times: Times,
    pub values: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
enum Times {
    Regular { start: i64, interval_us: i64 },
    Explicit(Vec<i64>),
}

/// One sample, as written to the database.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    pub time_us: i64,
    pub value: f64,
}

impl SensorBatch {
    /// Checks the structure of a batch: ids, lengths, sizes. Values are checked later.
    pub fn parse(raw: RawBatch, limits: &BatchLimits) -> Result<SensorBatch, DomainError> {
        let batch_id = match raw.batch_id {
            Some(id) => check_batch_id(id)?,
            None => return Err(DomainError::invalid("batch_id", "is required (it makes redelivery safe)")),
        };
        let system_id = SystemId::parse(&raw.system_id)?;
        if raw.series.is_empty() {
            return Err(DomainError::new(RejectKind::EmptyBatch, "series", "a batch needs at least one series"));
        }
        let total: usize = raw.series.iter().map(|s| s.values.len()).sum();
        if total == 0 {
            return Err(DomainError::new(RejectKind::EmptyBatch, "series", "the batch holds no values"));
        }
        if total > limits.max_readings {
            return Err(DomainError::new(
                RejectKind::OversizedBatch,
                "series",
                format!("{total} readings; at most {} per batch", limits.max_readings),
            ));
        }
        let mut seen = HashSet::with_capacity(raw.series.len());
        let mut series = Vec::with_capacity(raw.series.len());
        for (i, s) in raw.series.into_iter().enumerate() {
            let sensor_id = SensorId::parse_at(&format!("series[{i}].sensor_id"), &s.sensor_id)?;
            if !seen.insert(sensor_id.clone()) {
                return Err(DomainError::invalid(
                    format!("series[{i}].sensor_id"),
                    format!("sensor {sensor_id} appears twice; send one series per sensor"),
                ));
            }
            series.push(Series::parse(i, sensor_id, s)?);
        }
        Ok(SensorBatch { batch_id, system_id, produced_at: raw.produced_at, series })
    }

    pub fn reading_count(&self) -> usize {
        self.series.iter().map(|s| s.values.len()).sum()
    }

    /// The wire form again (for re-publishing an HTTP batch to Kafka, or a derived batch).
    pub fn to_raw(&self) -> RawBatch {
        RawBatch {
            batch_id: Some(self.batch_id.clone()),
            system_id: self.system_id.to_string(),
            produced_at: self.produced_at,
            series: self.series.iter().map(Series::to_raw).collect(),
        }
    }
}

fn check_batch_id(id: String) -> Result<String, DomainError> {
    if id.is_empty() || id.len() > MAX_BATCH_ID_LEN {
        return Err(DomainError::invalid("batch_id", format!("must be 1 to {MAX_BATCH_ID_LEN} characters")));
    }
    if id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(DomainError::invalid("batch_id", "must not contain whitespace or control characters"));
    }
    Ok(id)
}

impl Series {
    /// A series is regular (`interval_us > 0`, no `times_us`; a single value may keep the
    /// interval at 0) or irregular (`times_us`, one per value, all distinct, `interval_us = 0`).
    /// Anything in between has no one meaning, so it is refused rather than guessed at.
    fn parse(index: usize, sensor_id: SensorId, raw: RawSeries) -> Result<Series, DomainError> {
        let field = |name: &str| format!("series[{index}].{name}");
        if raw.values.is_empty() {
            return Err(DomainError::invalid(field("values"), "must not be empty"));
        }
        if raw.interval_us < 0 {
            return Err(DomainError::invalid(field("interval_us"), "must not be negative"));
        }
        let times = if raw.times_us.is_empty() {
            if raw.interval_us == 0 && raw.values.len() > 1 {
                return Err(DomainError::invalid(
                    field("interval_us"),
                    "must be positive for more than one value (or give times_us)",
                ));
            }
            let last = (raw.values.len() as i64 - 1).checked_mul(raw.interval_us).and_then(|d| raw.start.checked_add(d));
            if last.is_none() {
                return Err(DomainError::invalid(field("interval_us"), "the last sample time overflows"));
            }
            Times::Regular { start: raw.start, interval_us: raw.interval_us }
        } else {
            if raw.interval_us != 0 {
                return Err(DomainError::invalid(field("interval_us"), "must be 0 (or absent) when times_us is given"));
            }
            if raw.times_us.len() != raw.values.len() {
                return Err(DomainError::invalid(
                    field("times_us"),
                    format!("has {} entries for {} values", raw.times_us.len(), raw.values.len()),
                ));
            }
            if let Some(j) = first_repeat(&raw.times_us) {
                return Err(DomainError::invalid(
                    format!("series[{index}].times_us[{j}]"),
                    format!("{} µs appears earlier in this series; one value per time", raw.times_us[j]),
                ));
            }
            Times::Explicit(raw.times_us)
        };
        Ok(Series { sensor_id, times, values: raw.values })
    }

    pub fn time_of(&self, index: usize) -> i64 {
        match &self.times {
            Times::Regular { start, interval_us } => start + index as i64 * interval_us,
            Times::Explicit(times) => times[index],
        }
    }

    pub fn readings(&self) -> impl Iterator<Item = Reading> + '_ {
        self.values.iter().enumerate().map(|(i, &value)| Reading { time_us: self.time_of(i), value })
    }

    /// Keeps the samples whose index `keep` accepts (for partial acceptance).
    pub fn retain(&self, mut keep: impl FnMut(usize) -> bool) -> Option<Series> {
        let indices: Vec<usize> = (0..self.values.len()).filter(|i| keep(*i)).collect();
        if indices.is_empty() {
            return None;
        }
        if indices.len() == self.values.len() {
            return Some(self.clone());
        }
        Some(Series {
            sensor_id: self.sensor_id.clone(),
            times: Times::Explicit(indices.iter().map(|&i| self.time_of(i)).collect()),
            values: indices.iter().map(|&i| self.values[i]).collect(),
        })
    }

    fn to_raw(&self) -> RawSeries {
        let (start, interval_us, times_us) = match &self.times {
            Times::Regular { start, interval_us } => (*start, *interval_us, Vec::new()),
            Times::Explicit(times) => (times.first().copied().unwrap_or_default(), 0, times.clone()),
        };
        RawSeries { sensor_id: self.sensor_id.to_string(), start, interval_us, times_us, values: self.values.clone() }
    }
}

/// The index of the first time that repeats an earlier one. Devices send times in order, so
/// the common case is one pass; otherwise a set finds the repeat in linear time.
fn first_repeat(times: &[i64]) -> Option<usize> {
    if times.windows(2).all(|w| w[0] < w[1]) {
        return None;
    }
    let mut seen = HashSet::with_capacity(times.len());
    times.iter().position(|t| !seen.insert(*t))
}

/// JSON devices may send RFC 3339 text or microseconds; Avro always carries microseconds.
fn micros_or_rfc3339<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Time {
        Micros(i64),
        Text(String),
    }
    match Time::deserialize(d)? {
        Time::Micros(us) => Ok(us),
        Time::Text(text) => chrono::DateTime::parse_from_rfc3339(&text)
            .map(|t| t.timestamp_micros())
            .map_err(|e| serde::de::Error::custom(format!("{} is not an RFC 3339 time: {e}", super::text::echo(&text)))),
    }
}

fn micros_or_rfc3339_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrap(#[serde(deserialize_with = "micros_or_rfc3339")] i64);
    Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
}

#[cfg(test)]
mod tests;
