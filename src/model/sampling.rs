//! The sampling each input was trained on, and bringing a window to it before its features are
//! computed.
//!
//! The rig model learnt from 1 Hz means of every sensor (the data set's pressures and motor
//! power are 1 s means of 100 Hz samples, its flows 1 s means of 10 Hz samples), but a device
//! may send a sensor at its native rate. A faster sensor is brought to the trained sampling by
//! averaging each trained sample period, as the data set itself was made, so its features (and
//! the diagnosis) are those of the same signal at 1 Hz: the rate changes nothing but cost. A
//! sensor slower than trained cannot be brought to it (nothing invents the missing samples); it
//! is refused, scored as missing, and the score says why.
//!
//! A window's readings come as values in time order, without their times; they are taken as
//! evenly spread over the window, which is what a device sampling at a fixed rate sends.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::domain::ComponentScore;

/// How the samples of one trained period were reduced to one input sample.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Aggregate {
    Mean,
}

/// The sampling one input was trained on.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InputSampling {
    pub sensor: String,
    pub rate_hz: f64,
    pub aggregate: Aggregate,
}

/// Share of the trained samples a window must fill for a sensor to be scored: a 1 Hz sensor
/// missing a few readings of a minute is still the trained signal, one at half the rate is not.
pub const MIN_COVERAGE: f64 = 0.9;

/// Why a sensor's readings of a window could not be brought to the trained sampling.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Refusal {
    /// Fewer samples than `MIN_COVERAGE` of the trained rate over the window: the sensor is
    /// slower than trained (or silent for part of the window).
    SlowerThanTrained { rate_hz: f64, trained_hz: f64 },
}

impl Refusal {
    /// The key under which a score's `features` carry this refusal (the value is the sensor's
    /// rate in the window, in Hz), e.g. `TS1.refused_slower_than_trained_hz`.
    pub fn feature_key(&self, sensor: &str) -> String {
        match self {
            Refusal::SlowerThanTrained { .. } => format!("{sensor}.refused_slower_than_trained_hz"),
        }
    }

    pub fn value(&self) -> f64 {
        match self {
            Refusal::SlowerThanTrained { rate_hz, .. } => *rate_hz,
        }
    }
}

/// A window brought to the trained sampling.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resampled {
    /// The input sensors' values at the trained sampling (sensor id → values in time order).
    pub values: HashMap<String, Vec<f64>>,
    /// The sensors that could not be brought to it, and why.
    pub refused: Vec<(String, Refusal)>,
}

impl Resampled {
    /// Puts each refused sensor's reason into every component's features: every head sees every
    /// sensor, so a refusal concerns each score.
    pub fn note_refusals(&self, scores: &mut [ComponentScore]) {
        for score in scores {
            let features = score.features.get_or_insert_with(BTreeMap::new);
            for (sensor, why) in &self.refused {
                features.insert(why.feature_key(sensor), why.value());
            }
        }
    }
}

/// Checks a manifest's sampling against its sensors: empty (a manifest made before sampling was
/// recorded: windows are scored as sent), or one entry per sensor in input order, each with a
/// positive finite rate.
pub fn check(sampling: &[InputSampling], sensors: &[String]) -> Result<(), String> {
    if sampling.is_empty() {
        return Ok(());
    }
    let listed: Vec<&str> = sampling.iter().map(|s| s.sensor.as_str()).collect();
    if listed != sensors.iter().map(String::as_str).collect::<Vec<_>>() {
        return Err(format!("sampling: sensors {listed:?} are not the input sensors {sensors:?} in order"));
    }
    match sampling.iter().find(|s| !(s.rate_hz.is_finite() && s.rate_hz > 0.0)) {
        Some(bad) => Err(format!("sampling[{}].rate_hz: {} is not a positive rate", bad.sensor, bad.rate_hz)),
        None => Ok(()),
    }
}

/// One sensor's values of a window of `seconds`, at the trained sampling: the finite values of
/// each trained period averaged, periods without one left out (as non-finite values are).
/// A sensor with no finite value gives an empty series (it is missing, not refused).
pub fn resample(values: &[f64], seconds: f64, trained: &InputSampling) -> Result<Vec<f64>, Refusal> {
    let n = values.len();
    // Trained periods in the window; at least one, so a window shorter than a period still
    // yields the mean of what it holds.
    let periods = ((seconds * trained.rate_hz).round() as usize).max(1);
    // Sample i sits at (i + 0.5) / n of the window, so period p holds the samples from the
    // first i with (2i + 1)·periods ≥ 2np on: in integers, so that n == periods gives sample i
    // to period i exactly, and one division per period rather than per sample.
    let first = |p: usize| (2 * n * p).saturating_sub(periods).div_ceil(2 * periods);
    let mut out = Vec::with_capacity(periods.min(n));
    let mut finite = 0u32;
    for p in 0..periods {
        // -0.0 is the exact identity of addition: a period of one sample is that sample, bit
        // for bit, so a window at the trained rate comes out as sent.
        let (sum, count) = values[first(p)..first(p + 1)].iter().filter(|x| x.is_finite()).fold((-0.0, 0u32), |(s, c), x| (s + x, c + 1));
        if count > 0 {
            out.push(sum / f64::from(count));
            finite += count;
        }
    }
    if out.is_empty() {
        return Ok(out);
    }
    if (out.len() as f64) < MIN_COVERAGE * periods as f64 {
        return Err(Refusal::SlowerThanTrained { rate_hz: f64::from(finite) / seconds.max(f64::MIN_POSITIVE), trained_hz: trained.rate_hz });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_hz() -> InputSampling {
        InputSampling { sensor: "PS1".into(), rate_hz: 1.0, aggregate: Aggregate::Mean }
    }

    #[test]
    fn a_window_at_the_trained_rate_comes_out_bit_for_bit() {
        let v: Vec<f64> = (0..60).map(|i| 100.0 + (i as f64).sin() * 7.3).collect();
        let back = resample(&v, 60.0, &one_hz()).unwrap();
        assert_eq!(back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), v.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        assert_eq!(resample(&[-0.0, 1.0], 2.0, &one_hz()).unwrap()[0].to_bits(), (-0.0f64).to_bits());
        // A few readings short is still the trained signal, scored as sent.
        assert_eq!(resample(&v[..55], 60.0, &one_hz()).unwrap(), v[..55]);
    }

    #[test]
    fn faster_sensors_become_means_per_trained_period() {
        let v: Vec<f64> = (0..60).map(|i| 100.0 + i as f64).collect();
        let fast: Vec<f64> = v.iter().flat_map(|x| (0..100).map(move |k| x + (k as f64 - 49.5) * 0.01)).collect();
        let back = resample(&fast, 60.0, &one_hz()).unwrap();
        assert_eq!(back.len(), 60);
        for (a, b) in back.iter().zip(&v) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
        // A drifting clock (99.97 Hz: 5998 samples) still fills every second, with every sample
        // used once.
        let drift = resample(&fast[..5998], 60.0, &one_hz()).unwrap();
        assert_eq!(drift.len(), 60);
        let ones = resample(&[1.0; 5998], 60.0, &one_hz()).unwrap();
        assert!(ones.iter().all(|x| *x == 1.0));
        // Periods hold 99 or 100 samples, in time order: the means still climb one a second.
        assert!(drift.windows(2).all(|w| (w[1] - w[0] - 1.0).abs() < 0.02), "{drift:?}");
    }

    #[test]
    fn a_slower_sensor_is_refused_with_its_rate() {
        let v = vec![1.0; 30];
        let err = resample(&v, 60.0, &one_hz()).unwrap_err();
        assert_eq!(err, Refusal::SlowerThanTrained { rate_hz: 0.5, trained_hz: 1.0 });
        assert_eq!(err.feature_key("TS1"), "TS1.refused_slower_than_trained_hz");
        // Non-finite readings are no samples: 100 Hz of which most are NaN is too few.
        let mut v = vec![f64::NAN; 6000];
        v[0] = 1.0;
        assert!(resample(&v, 60.0, &one_hz()).is_err());
        assert!(resample(&[f64::NAN; 60], 60.0, &one_hz()).unwrap().is_empty(), "missing, not refused");
    }

    #[test]
    fn the_manifest_lists_every_input_once_with_a_rate() {
        let sensors = vec!["PS1".to_string()];
        assert!(check(&[], &sensors).is_ok());
        assert!(check(&[one_hz()], &sensors).is_ok());
        let mut bad = one_hz();
        bad.rate_hz = 0.0;
        assert!(check(&[bad], &sensors).unwrap_err().contains("sampling[PS1].rate_hz"));
        assert!(check(&[one_hz(), one_hz()], &sensors).is_err());
    }
}
