//! Per-sensor slot coverage of windows: which sample slots (event time quantized to 1/rate from
//! the window's start) a chunk's readings fill, so the database can tell a complete window.
//!
//! A window is complete when every sensor of its system has at least `floor(rate × length)`
//! distinct slots in it (README, "Windows and scores"). Slots, not readings: a batch stored twice
//! under two ids fills the same slots again and completes nothing early, and a sensor that
//! drifts (99.97 Hz) leaves a slot empty and falls back to the watermark. The chunk builds one
//! bitmap per (window, sensor) in memory; the upsert ORs it into the stored one, so the hot path
//! costs one row per (window, sensor) per chunk, not one per reading.

use std::collections::{BTreeMap, HashMap};

use super::WindowSpec;

/// Slack for float rounding at slot boundaries: a reading exactly on a boundary lands in the
/// later slot even when `dt × rate` comes out a hair below the integer.
const EPSILON: f64 = 1e-9;

/// A sensor's slots in a window of the spec: `len` bits are kept (`ceil(rate × length)`, the last
/// one possibly partial) and `need` of them (`floor(rate × length)`) make the sensor complete.
/// The database computes the same two numbers (`manifold_window_slot_len`, `manifold_window_complete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotShape {
    pub len: usize,
    pub need: usize,
}

impl SlotShape {
    /// `None` for a rate that is not a positive finite number: such a sensor never completes.
    pub fn of(rate_hz: f64, length_us: i64) -> Option<SlotShape> {
        if !(rate_hz.is_finite() && rate_hz > 0.0) {
            return None;
        }
        let slots = rate_hz * (length_us as f64 / 1e6);
        let len = (slots - 1e-9).ceil().max(0.0);
        // A bitmap longer than this is not a sampling rate anyone bookkeeps per window.
        if len > 10_000_000.0 {
            return None;
        }
        Some(SlotShape { len: len as usize, need: (slots + 1e-9).floor() as usize })
    }

    /// The slot of a reading `dt_us` after the window's start, if inside the kept bits.
    pub fn slot(&self, rate_hz: f64, dt_us: i64) -> Option<usize> {
        let x = (dt_us as f64) * rate_hz / 1e6 + EPSILON;
        (x >= 0.0 && x < self.len as f64).then_some(x as usize)
    }
}

/// What one chunk adds to one sensor's slots of one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotDelta {
    pub system_id: String,
    pub window_start: i64,
    pub series_id: i32,
    /// The bitmap as `bit varying` text ('0'/'1', slot 0 first).
    pub bits: String,
}

#[derive(Debug, Default)]
pub struct SlotAccumulator {
    bitmaps: BTreeMap<(String, i64, i32), Vec<bool>>,
}

impl SlotAccumulator {
    /// Adds one system's readings (series id, event time); `rates` gives each series' sampling
    /// rate (a series without one records no slots). Readings come in runs of one series and
    /// window: the bitmap is looked up once per run.
    pub fn add_batch(&mut self, spec: &WindowSpec, system_id: &str, rates: &HashMap<i32, f64>, readings: impl Iterator<Item = (i32, i64)>) {
        let mut local: HashMap<(i32, i64), Vec<bool>> = HashMap::new();
        let mut run: Option<(i32, i64, f64, SlotShape, Vec<bool>)> = None;
        for (series_id, time_us) in readings {
            let start = spec.start_of(time_us);
            let same = matches!(&run, Some((s, w, ..)) if *s == series_id && *w == start);
            if !same {
                if let Some((s, w, _, _, bits)) = run.take() {
                    merge(local.entry((s, w)).or_default(), &bits);
                }
                let Some(rate) = rates.get(&series_id).copied() else { continue };
                let Some(shape) = SlotShape::of(rate, spec.length_us) else { continue };
                run = Some((series_id, start, rate, shape, vec![false; shape.len]));
            }
            if let Some((_, w, rate, shape, bits)) = &mut run
                && let Some(i) = shape.slot(*rate, time_us - *w)
            {
                bits[i] = true;
            }
        }
        if let Some((s, w, _, _, bits)) = run {
            merge(local.entry((s, w)).or_default(), &bits);
        }
        for ((series_id, start), bits) in local {
            merge(self.bitmaps.entry((system_id.to_owned(), start, series_id)).or_default(), &bits);
        }
    }

    /// Deltas in (system, window start, series) order, a stable lock order for the upsert.
    pub fn deltas(&self) -> Vec<SlotDelta> {
        self.bitmaps
            .iter()
            .map(|((system_id, start, series_id), bits)| SlotDelta {
                system_id: system_id.clone(),
                window_start: *start,
                series_id: *series_id,
                bits: bits.iter().map(|b| if *b { '1' } else { '0' }).collect(),
            })
            .collect()
    }

    /// Distinct slots per (system, window start, series), for tests and metrics.
    pub fn distinct(&self) -> BTreeMap<(String, i64, i32), usize> {
        self.bitmaps.iter().map(|(k, bits)| (k.clone(), bits.iter().filter(|b| **b).count())).collect()
    }
}

/// ORs `bits` into `into` (an empty `into` takes `bits`' length).
fn merge(into: &mut Vec<bool>, bits: &[bool]) {
    if into.len() < bits.len() {
        into.resize(bits.len(), false);
    }
    into.iter_mut().zip(bits).for_each(|(a, b)| *a |= *b);
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn spec(length_s: i64) -> WindowSpec {
        WindowSpec { length_us: length_s * S, origin_us: 0, lateness_us: 10 * S, idle_timeout_us: 120 * S }
    }

    #[test]
    fn shapes_follow_rate_times_length_and_refuse_rates_that_are_not_positive() {
        assert_eq!(SlotShape::of(1.0, 60 * S), Some(SlotShape { len: 60, need: 60 }));
        assert_eq!(SlotShape::of(100.0, 10 * S), Some(SlotShape { len: 1000, need: 1000 }));
        assert_eq!(SlotShape::of(0.25, 10 * S), Some(SlotShape { len: 3, need: 2 }));
        assert_eq!(SlotShape::of(0.0, 10 * S), None);
        assert_eq!(SlotShape::of(f64::NAN, 10 * S), None);
    }

    #[test]
    fn repeated_readings_fill_a_slot_once_and_a_drifting_sensor_leaves_one_empty() {
        let s = spec(60);
        let rates = HashMap::from([(1, 1.0), (2, 100.0)]);
        let mut acc = SlotAccumulator::default();
        // 60 readings at 1 Hz, sent twice (a retried batch under a new id).
        for _ in 0..2 {
            acc.add_batch(&s, "rig", &rates, (0..60).map(|k| (1, k * S)));
        }
        // 100 Hz declared, 99.97 Hz actual: 5998 readings in the window, not 6000 slots.
        let period_us = 1e6 / 99.97;
        acc.add_batch(&s, "rig", &rates, (0..5999).map(|k| (2, (k as f64 * period_us) as i64)).filter(|(_, t)| *t < 60 * S));
        let distinct = acc.distinct();
        assert_eq!(distinct[&("rig".to_owned(), 0, 1)], 60);
        assert!(distinct[&("rig".to_owned(), 0, 2)] < 6000, "{distinct:?}");
    }

    #[test]
    fn readings_split_into_their_windows_and_series_without_a_rate_record_nothing() {
        let s = spec(10);
        let rates = HashMap::from([(1, 1.0)]);
        let mut acc = SlotAccumulator::default();
        acc.add_batch(&s, "rig", &rates, [(1, 9 * S), (1, 10 * S), (9, 3 * S), (1, 19_999_999)].into_iter());
        let deltas = acc.deltas();
        let summary: Vec<(i64, i32, &str)> = deltas.iter().map(|d| (d.window_start / S, d.series_id, d.bits.as_str())).collect();
        assert_eq!(summary, vec![(0, 1, "0000000001"), (10, 1, "1000000001")]);
    }
}
