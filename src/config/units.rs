//! Durations read from the integer keys of the configuration (`retry_initial_ms = 200`).
//!
//! The key names keep their unit suffix and the values stay plain integers, so files and
//! `MANIFOLD__…` variables written for earlier versions mean the same; the conversion to a
//! `Duration` happens here, once, instead of at every call site. Each helper accepts exactly
//! the integers the field's former integer type accepted (negative values are refused).

use std::time::Duration;

use serde::de::{Deserialize, Deserializer, Error};

const SECONDS_PER_HOUR: u64 = 3600;

/// `#[serde(deserialize_with = "units::millis")]` for a `_ms` key.
pub fn millis<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    u64::deserialize(de).map(Duration::from_millis)
}

/// `#[serde(deserialize_with = "units::seconds")]` for a `_seconds` key.
pub fn seconds<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    u64::deserialize(de).map(Duration::from_secs)
}

/// `#[serde(deserialize_with = "units::hours")]` for an `_hours` key. Hours that do not fit a
/// `Duration` are refused here rather than overflowing where they are used.
pub fn hours<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    let hours = u64::deserialize(de)?;
    hours
        .checked_mul(SECONDS_PER_HOUR)
        .map(Duration::from_secs)
        .ok_or_else(|| D::Error::custom(format!("{hours} hours is too long a duration")))
}

/// Like [`hours`] for a key that was a `u32` (at most 4294967295 hours), keeping that bound.
pub fn hours_u32<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
    u32::deserialize(de).map(|hours| Duration::from_secs(u64::from(hours) * SECONDS_PER_HOUR))
}

/// `#[serde(deserialize_with = "units::number")]` for a decimal key that may be set from the
/// environment under a name the defaults do not have (`MANIFOLD__ALERTS__THRESHOLDS__VALVE__WARNING=0.8`):
/// such text is not typed by a default, so it arrives as a string and is read as a number here.
pub fn number<'de, D: Deserializer<'de>>(de: D) -> Result<f64, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum NumberOrText {
        Number(f64),
        Text(String),
    }
    match NumberOrText::deserialize(de)? {
        NumberOrText::Number(n) => Ok(n),
        NumberOrText::Text(text) => text.trim().parse().map_err(|_| D::Error::custom(format!("expected a number, got {text:?}"))),
    }
}
