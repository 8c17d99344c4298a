//! Tumbling event-time windows per system: which window a reading belongs to, and each
//! system's newest event time in a chunk.
//!
//! This module is pure: the ingest transaction applies what it computes (see `store::windows`),
//! so window state survives crashes and counts once. When a window is ready is decided there,
//! in SQL with the database's clock, once for every announcing path (README, "Windows"); the
//! per-sensor slot coverage it needs to tell a complete window is built here (`slots`).

use std::collections::{BTreeMap, BTreeSet};

use crate::config::WindowsConfig;

mod slots;
pub use slots::{SlotAccumulator, SlotDelta, SlotShape};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    pub length_us: i64,
    pub origin_us: i64,
    pub lateness_us: i64,
    pub idle_timeout_us: i64,
}

impl WindowSpec {
    pub fn from_config(config: &WindowsConfig) -> Self {
        Self {
            length_us: config.length_seconds.as_micros() as i64,
            origin_us: config.origin.timestamp_micros(),
            lateness_us: config.allowed_lateness_seconds.as_micros() as i64,
            idle_timeout_us: config.idle_timeout_seconds.as_micros() as i64,
        }
    }

    /// Start of the window holding event time `t` (floor, also before the origin).
    pub fn start_of(&self, t: i64) -> i64 {
        self.origin_us + (t - self.origin_us).div_euclid(self.length_us) * self.length_us
    }
}

/// What one chunk adds to one window of one system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowDelta {
    pub system_id: String,
    pub window_start: i64,
    pub window_end: i64,
    pub readings: i64,
    pub sensors: BTreeSet<String>,
}

/// Accumulates a chunk's readings into window deltas and each system's newest event time.
#[derive(Debug, Default)]
pub struct WindowAccumulator {
    windows: BTreeMap<(String, i64), (i64, BTreeSet<String>)>,
    newest: BTreeMap<String, i64>,
}

impl WindowAccumulator {
    pub fn add(&mut self, spec: &WindowSpec, system_id: &str, sensor_id: &str, time_us: i64) {
        let start = spec.start_of(time_us);
        let entry = self.windows.entry((system_id.to_owned(), start)).or_default();
        entry.0 += 1;
        if !entry.1.contains(sensor_id) {
            entry.1.insert(sensor_id.to_owned());
        }
        let newest = self.newest.entry(system_id.to_owned()).or_insert(time_us);
        *newest = (*newest).max(time_us);
    }

    /// Adds one system's readings (sensor, event time), grouping locally first so the
    /// per-reading cost is a division and a map lookup, with no allocation.
    pub fn add_batch<'a>(&mut self, spec: &WindowSpec, system_id: &str, readings: impl Iterator<Item = (&'a str, i64)>) {
        let mut local: BTreeMap<i64, (i64, BTreeSet<&'a str>)> = BTreeMap::new();
        let mut newest = i64::MIN;
        // Readings come grouped by sensor and window: count runs, look maps up once per run.
        let mut run: Option<(&'a str, i64, i64)> = None;
        for (sensor, time_us) in readings {
            let start = spec.start_of(time_us);
            newest = newest.max(time_us);
            match &mut run {
                Some((s, w, n)) if *s == sensor && *w == start => *n += 1,
                _ => {
                    if let Some((s, w, n)) = run.replace((sensor, start, 1)) {
                        let entry = local.entry(w).or_default();
                        entry.0 += n;
                        entry.1.insert(s);
                    }
                }
            }
        }
        if let Some((s, w, n)) = run {
            let entry = local.entry(w).or_default();
            entry.0 += n;
            entry.1.insert(s);
        }
        if local.is_empty() {
            return;
        }
        for (start, (count, sensors)) in local {
            let entry = self.windows.entry((system_id.to_owned(), start)).or_default();
            entry.0 += count;
            entry.1.extend(sensors.into_iter().map(str::to_owned));
        }
        let slot = self.newest.entry(system_id.to_owned()).or_insert(newest);
        *slot = (*slot).max(newest);
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// Deltas in (system, window start) order, a stable lock order for the upsert.
    pub fn deltas(&self, spec: &WindowSpec) -> Vec<WindowDelta> {
        self.windows
            .iter()
            .map(|((system_id, start), (readings, sensors))| WindowDelta {
                system_id: system_id.clone(),
                window_start: *start,
                window_end: start + spec.length_us,
                readings: *readings,
                sensors: sensors.clone(),
            })
            .collect()
    }

    /// Each system's newest event time in this chunk.
    pub fn newest(&self) -> &BTreeMap<String, i64> {
        &self.newest
    }
}

#[cfg(test)]
mod tests;
