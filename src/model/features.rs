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

/// The rig's load profile changes every 10 s (a sixth of the cycle), just before each sixth
/// ends. The step features describe each sixth apart: its settled level, how far its first
/// seconds sit from that level (the pressure still building or relaxing, which is where the
/// accumulator's pre-charge shows), and the 1 s mean of each switch against its neighbours.
pub const STEPS: usize = 6;
/// Features that describe the steps: a level and an early offset per step, a spike per switch.
const STEP_FEATURES: usize = 2 * STEPS + (STEPS - 1);
/// The step features are computed on this many equal slices of relative time (1 s of a 60 s
/// window), so a window sent with more or fewer samples gives nearly the same features.
const GRID: usize = 60;

/// Features computed from the values (the model adds a present/missing flag after them): every
/// layout's, the newest layout's being a superset of the older ones.
pub const RAW_FEATURES: usize = SUMMARY.len() + BINS + STEP_FEATURES;
/// Inputs per sensor node of the newest layout: its raw features plus the present flag.
pub const NODE_FEATURES: usize = RAW_FEATURES + 1;
/// Values beyond this many standard deviations are clipped, so one wild reading cannot
/// saturate every layer of the network.
const CLIP: f64 = 8.0;

/// Which of the raw features a model reads: a prefix of [`raw_features`]' output, named in its
/// manifest's `feature_names`, so an artifact trained before a layout was added still scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum FeatureLayout {
    /// Summary statistics and 12 bin means (the layout of `uci-rig-v1`).
    Summary,
    /// `Summary` plus the shape of each 10 s load step (`step{k}_level`, `step{k}_early`,
    /// `switch{k}_spike`).
    Steps,
}

impl FeatureLayout {
    /// What training uses unless told otherwise.
    pub const NEWEST: FeatureLayout = FeatureLayout::Steps;

    /// Manifests made before the layout was recorded used `Summary`.
    pub fn legacy() -> FeatureLayout {
        FeatureLayout::Summary
    }

    /// Raw features per sensor.
    pub fn raw(self) -> usize {
        match self {
            FeatureLayout::Summary => SUMMARY.len() + BINS,
            FeatureLayout::Steps => RAW_FEATURES,
        }
    }

    /// Inputs per sensor node: the raw features plus the present flag.
    pub fn node(self) -> usize {
        self.raw() + 1
    }

    /// The feature names, as stored in the manifest.
    pub fn names(self) -> Vec<String> {
        let mut names: Vec<String> = SUMMARY.iter().map(|s| (*s).to_string()).collect();
        names.extend((0..BINS).map(|b| format!("bin{b:02}")));
        if self == FeatureLayout::Steps {
            for k in 0..STEPS {
                names.push(format!("step{k}_level"));
                names.push(format!("step{k}_early"));
            }
            names.extend((0..STEPS - 1).map(|k| format!("switch{k}_spike")));
        }
        names.push("present".into());
        names
    }

    /// The layout whose names a manifest lists, if this build knows it.
    pub fn of_names(names: &[String]) -> Option<FeatureLayout> {
        [FeatureLayout::Summary, FeatureLayout::Steps].into_iter().find(|layout| layout.names() == names)
    }
}

/// The newest layout's feature names.
pub fn feature_names() -> Vec<String> {
    FeatureLayout::NEWEST.names()
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
    out[SUMMARY.len()..SUMMARY.len() + BINS].copy_from_slice(&bins);
    out[SUMMARY.len() + BINS..].copy_from_slice(&step_features(&v));
    Some(out)
}

/// The shape of each load step on the 1 s grid: per step (slices `10k..10k+9` of 60) its
/// settled level (mean of its last four seconds before the switch second) and its early offset
/// (mean of its first three seconds minus that level); per switch (second `10k+9`), its value
/// minus the mean of the seconds either side.
fn step_features(v: &[f64]) -> [f64; STEP_FEATURES] {
    let regridded;
    let g: &[f64] = if v.len() == GRID {
        v
    } else {
        regridded = bin_means(v, GRID);
        &regridded
    };
    let span = GRID / STEPS;
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let mut out = [0.0; STEP_FEATURES];
    for k in 0..STEPS {
        let step = &g[k * span..(k + 1) * span - 1];
        let level = mean(&step[step.len() - 4..]);
        out[2 * k] = level;
        out[2 * k + 1] = mean(&step[..3]) - level;
    }
    for k in 0..STEPS - 1 {
        let at = (k + 1) * span - 1;
        out[2 * STEPS + k] = g[at] - 0.5 * (g[at - 1] + g[at + 1]);
    }
    out
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
    /// Statistics of `layout`'s features over the rows where the sensor was present.
    /// `rows[r][s]` is sensor `s` of row `r`.
    pub fn fit<'a>(rows: impl Iterator<Item = &'a Vec<Option<[f64; RAW_FEATURES]>>>, sensors: usize, layout: FeatureLayout) -> Self {
        let width = layout.raw();
        let mut sum = vec![vec![0.0; width]; sensors];
        let mut sq = vec![vec![0.0; width]; sensors];
        let mut count = vec![0.0; sensors];
        for row in rows {
            for (s, f) in row.iter().enumerate() {
                if let Some(f) = f {
                    count[s] += 1.0;
                    for (j, x) in f[..width].iter().enumerate() {
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
            for j in 0..width {
                mean[s][j] = sum[s][j] / c;
                let var = (sq[s][j] / c - mean[s][j] * mean[s][j]).max(0.0);
                // A constant feature (e.g. a virtual sensor's min) would divide by zero.
                std[s][j] = if var.sqrt() > 1e-9 { var.sqrt() } else { 1.0 };
            }
        }
        Normalisation { mean, std }
    }

    /// Normalised node inputs of one window, `[sensor][feature]` flattened, as many features
    /// per sensor as were fitted (the layout's) plus the present flag: a missing sensor gets
    /// zeros (its training mean) and a present flag of 0.
    pub fn apply(&self, row: &[Option<[f64; RAW_FEATURES]>], out: &mut Vec<f32>) {
        for (s, f) in row.iter().enumerate() {
            let width = self.mean[s].len();
            match f {
                Some(f) => {
                    for ((x, mean), std) in f[..width].iter().zip(&self.mean[s]).zip(&self.std[s]) {
                        out.push(((x - mean) / std).clamp(-CLIP, CLIP) as f32);
                    }
                    out.push(1.0);
                }
                None => out.extend(std::iter::repeat_n(0.0f32, width + 1)),
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

    #[test]
    fn every_layout_is_known_by_its_names_and_older_ones_are_prefixes() {
        let newest = FeatureLayout::NEWEST.names();
        for layout in [FeatureLayout::Summary, FeatureLayout::Steps] {
            let names = layout.names();
            assert_eq!(names.len(), layout.node());
            assert_eq!(FeatureLayout::of_names(&names), Some(layout));
            assert_eq!(names[..layout.raw()], newest[..layout.raw()], "{layout:?} reads a prefix of the raw features");
        }
        assert_eq!(FeatureLayout::of_names(&["mean".into(), "present".into()]), None);
    }

    #[test]
    fn step_features_see_each_load_step_and_switch() {
        // A 60 s cycle of six 10 s steps at levels 10, 20, ..., 60: each step's first second
        // still 3 below its level, and each switch second 7 above its neighbours' mean.
        let signal: Vec<f64> = (0..60)
            .map(|i| {
                let (k, at) = (i / 10, i % 10);
                let level = 10.0 * (k + 1) as f64;
                match at {
                    0 => level - 3.0,
                    9 if k < 5 => (level + level - 3.0 + 10.0) / 2.0 + 7.0,
                    _ => level,
                }
            })
            .collect();
        let f = raw_features(&signal).unwrap();
        let steps = &f[SUMMARY.len() + BINS..];
        for k in 0..STEPS {
            assert!((steps[2 * k] - 10.0 * (k + 1) as f64).abs() < 1e-9, "step {k} level {}", steps[2 * k]);
            assert!((steps[2 * k + 1] + 1.0).abs() < 1e-9, "step {k} early offset {}", steps[2 * k + 1]);
        }
        for k in 0..STEPS - 1 {
            assert!((steps[2 * STEPS + k] - 7.0).abs() < 1e-9, "switch {k} spike {}", steps[2 * STEPS + k]);
        }
        // The same cycle at 10 Hz gives the same step features.
        let fast: Vec<f64> = signal.iter().flat_map(|x| std::iter::repeat_n(*x, 10)).collect();
        let f10 = raw_features(&fast).unwrap();
        for j in SUMMARY.len() + BINS..RAW_FEATURES {
            assert!((f[j] - f10[j]).abs() < 1e-9, "feature {j}: {} vs {}", f[j], f10[j]);
        }
    }
}
