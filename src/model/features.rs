//! Per-sensor features of one window: the model's input.
//!
//! A window is nominally 60 s of 1 Hz samples, but a device may send fewer or more samples, drop
//! a sensor entirely, or send a non-finite value that slipped through. Every feature is therefore
//! defined on the window's *relative* time (sample `i` of `n` sits at `(i + 0.5) / n` of the
//! window), so 30, 60 or 600 samples of the same signal give nearly the same features, and a
//! sensor with no usable sample is reported as missing instead of guessed at. The rig scorer
//! first brings each sensor to the sampling the model was trained on (`sampling.rs`), so these
//! features see the trained signal whatever rate a device sends.

use serde::{Deserialize, Serialize};

/// Number of equal-length time bins whose means are kept (5 s each for a 60 s window): the
/// rig repeats the same load profile every cycle, so the coarse shape of a signal over the cycle
/// carries most of what distinguishes the conditions (especially for the accumulator).
pub const BINS: usize = 12;

/// Names of the summary features, in order; the `BINS` bin means follow them.
const SUMMARY: [&str; 14] = [
    "mean", "std", "min", "max", "slope", "first10", "last10", "p10", "p50", "p90", "mean_abs_diff", "max_abs_diff", "max_rise",
    "max_fall",
];

/// Features computed from the values (the model adds a present/missing flag after them).
pub const RAW_FEATURES: usize = SUMMARY.len() + BINS;
/// Inputs per sensor node: the normalised raw features plus the present flag.
pub const NODE_FEATURES: usize = RAW_FEATURES + 1;
/// Values beyond this many standard deviations are clipped, so one wild reading cannot
/// saturate every layer of the network.
const CLIP: f64 = 8.0;

/// The feature names, as stored in the manifest.
pub fn feature_names() -> Vec<String> {
    let mut names: Vec<String> = SUMMARY.iter().map(|s| (*s).to_string()).collect();
    names.extend((0..BINS).map(|b| format!("bin{b:02}")));
    names.push("present".into());
    names
}

/// Raw features of one sensor's values in time order; `None` when no finite value is left.
pub fn raw_features(values: &[f64]) -> Option<[f64; RAW_FEATURES]> {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return None;
    }
    let nf = n as f64;
    let mean = v.iter().sum::<f64>() / nf;
    let std = (v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / nf).sqrt();
    let mut sorted = v.clone();
    sorted.sort_by(f64::total_cmp);
    // Slope per window (value change from start to end of the window), by least squares on
    // the relative time, so it does not depend on the sample rate.
    let slope = if n > 1 {
        let t_mean = 0.5;
        let (mut num, mut den) = (0.0, 0.0);
        for (i, x) in v.iter().enumerate() {
            let t = (i as f64 + 0.5) / nf - t_mean;
            num += t * (x - mean);
            den += t * t;
        }
        num / den
    } else {
        0.0
    };
    // Differences scaled to "per 1/60 of the window" (per second at 60 samples), again to be
    // independent of the sample count.
    let scale = nf / 60.0;
    let diffs: Vec<f64> = v.windows(2).map(|w| (w[1] - w[0]) * scale).collect();
    let (mad, maxad, rise, fall) = if diffs.is_empty() {
        (0.0, 0.0, 0.0, 0.0)
    } else {
        let mad = diffs.iter().map(|d| d.abs()).sum::<f64>() / diffs.len() as f64;
        let maxad = diffs.iter().fold(0.0f64, |m, d| m.max(d.abs()));
        let rise = diffs.iter().fold(f64::MIN, |m, d| m.max(*d));
        let fall = diffs.iter().fold(f64::MAX, |m, d| m.min(*d));
        (mad, maxad, rise, fall)
    };
    let bins = bin_means(&v, BINS);
    let edge = bin_means(&v, 6); // first and last sixth: 10 s of a 60 s window
    let mut out = [0.0; RAW_FEATURES];
    let summary = [
        mean,
        std,
        sorted[0],
        sorted[n - 1],
        slope,
        edge[0],
        edge[5],
        percentile(&sorted, 0.1),
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.9),
        mad,
        maxad,
        rise,
        fall,
    ];
    out[..SUMMARY.len()].copy_from_slice(&summary);
    out[SUMMARY.len()..].copy_from_slice(&bins);
    Some(out)
}

/// Means of `k` equal slices of relative time; a slice with no sample (fewer samples than
/// slices) takes the sample nearest its centre.
fn bin_means(v: &[f64], k: usize) -> Vec<f64> {
    let n = v.len();
    let mut sums = vec![0.0; k];
    let mut counts = vec![0usize; k];
    for (i, x) in v.iter().enumerate() {
        let b = (i * k / n).min(k - 1);
        sums[b] += x;
        counts[b] += 1;
    }
    (0..k)
        .map(|b| {
            if counts[b] > 0 {
                sums[b] / counts[b] as f64
            } else {
                v[(((b as f64 + 0.5) * n as f64 / k as f64) as usize).min(n - 1)]
            }
        })
        .collect()
}

/// Linear-interpolated percentile of sorted values, `q` in [0, 1].
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Per-sensor, per-feature mean and standard deviation of the training rows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Normalisation {
    /// `[sensor][feature]`, sensors in the manifest's sensor order.
    pub mean: Vec<Vec<f64>>,
    pub std: Vec<Vec<f64>>,
}

impl Normalisation {
    /// Statistics over the rows where the sensor was present. `rows[r][s]` is sensor `s` of row `r`.
    pub fn fit<'a>(rows: impl Iterator<Item = &'a Vec<Option<[f64; RAW_FEATURES]>>>, sensors: usize) -> Self {
        let mut sum = vec![vec![0.0; RAW_FEATURES]; sensors];
        let mut sq = vec![vec![0.0; RAW_FEATURES]; sensors];
        let mut count = vec![0.0; sensors];
        for row in rows {
            for (s, f) in row.iter().enumerate() {
                if let Some(f) = f {
                    count[s] += 1.0;
                    for (j, x) in f.iter().enumerate() {
                        sum[s][j] += x;
                        sq[s][j] += x * x;
                    }
                }
            }
        }
        let mut mean = sum.clone();
        let mut std = sq.clone();
        for s in 0..sensors {
            let c = f64::max(count[s], 1.0);
            for j in 0..RAW_FEATURES {
                mean[s][j] = sum[s][j] / c;
                let var = (sq[s][j] / c - mean[s][j] * mean[s][j]).max(0.0);
                // A constant feature (e.g. a virtual sensor's min) would divide by zero.
                std[s][j] = if var.sqrt() > 1e-9 { var.sqrt() } else { 1.0 };
            }
        }
        Normalisation { mean, std }
    }

    /// Normalised node inputs of one window, `[sensor][NODE_FEATURES]` flattened: a missing
    /// sensor gets zeros (its training mean) and a present flag of 0.
    pub fn apply(&self, row: &[Option<[f64; RAW_FEATURES]>], out: &mut Vec<f32>) {
        for (s, f) in row.iter().enumerate() {
            match f {
                Some(f) => {
                    for ((x, mean), std) in f.iter().zip(&self.mean[s]).zip(&self.std[s]) {
                        out.push(((x - mean) / std).clamp(-CLIP, CLIP) as f32);
                    }
                    out.push(1.0);
                }
                None => out.extend(std::iter::repeat_n(0.0f32, NODE_FEATURES)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_barely_depend_on_the_sample_count() {
        let signal = |n: usize| (0..n).map(|i| 100.0 + 20.0 * ((i as f64 + 0.5) / n as f64)).collect::<Vec<_>>();
        let a = raw_features(&signal(60)).unwrap();
        let b = raw_features(&signal(600)).unwrap();
        for j in 0..RAW_FEATURES {
            assert!((a[j] - b[j]).abs() < 0.5, "feature {j}: {} vs {}", a[j], b[j]);
        }
        assert!((a[4] - 20.0).abs() < 1e-9, "slope is per window");
    }

    #[test]
    fn short_empty_and_non_finite_windows() {
        assert!(raw_features(&[]).is_none());
        assert!(raw_features(&[f64::NAN, f64::INFINITY]).is_none());
        let one = raw_features(&[5.0]).unwrap();
        assert!(one.iter().all(|x| x.is_finite()));
        assert_eq!(one[SUMMARY.len() + BINS - 1], 5.0);
        assert_eq!(feature_names().len(), NODE_FEATURES);
    }
}
