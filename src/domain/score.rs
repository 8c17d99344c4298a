//! A scorer's verdict on a window. One type from the scorer to every edge, each converting it
//! where it leaves: Avro in `codec`, rows in `store`, JSON in `api`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Severity;

/// One component's verdict for one window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ComponentScore {
    pub component_id: String,
    /// In [0, 1]: 0 surely healthy, 1 surely degraded (the rig model: 1 − P(nominal class)).
    pub score: f64,
    /// The most probable class label (e.g. "100" for a cooler at 100 % efficiency), when the
    /// scorer has classes.
    pub condition: Option<String>,
    /// What `condition` means, from the model's manifest (e.g. "reduced efficiency"); None when
    /// the scorer has no classes or the model does not name them.
    pub condition_name: Option<String>,
    /// How bad `condition` is, from the model's manifest; None as `condition_name`.
    pub severity: Option<Severity>,
    /// Probability per class label; empty when the scorer has no classes.
    pub probabilities: BTreeMap<String, f64>,
    /// Context for a reader: what the scorer saw of the component's own sensors (`"PS1.mean"`,
    /// the rig model's `"missing_sensors"`, the baseline's `"PS1.z"`); None when it tells nothing.
    pub features: Option<BTreeMap<String, f64>>,
}

/// One revision of one window as one scorer saw it, at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredWindow {
    pub system_id: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub revision: i32,
    pub model_version: String,
    pub computed_at: DateTime<Utc>,
    pub components: Vec<ComponentScore>,
    /// Per component id, the sensors that drove its score, strongest first (at most
    /// [`MAX_DRIVERS`]). A component the scorer does not explain has no entry; stored with the
    /// score, published in the score message and shown by the API.
    pub contributions: BTreeMap<String, Vec<Driver>>,
}

/// How many sensors a scorer names per component.
pub const MAX_DRIVERS: usize = 3;

/// A sensor that drove a component's score up, and how much. What `effect` measures is the
/// scorer's: the rig model's is how much the log-odds of the score, ln(score / (1 − score)),
/// fall when the sensor is left out (`model/occlusion.rs`); the baseline's is the sensor's
/// robust z-score. Either way larger is stronger, and only a positive
/// effect drives: a sensor whose absence would raise the score held it down instead (for a
/// healthy valve the valve's own pressures do that, and naming them would explain nothing).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Driver {
    pub sensor_id: String,
    pub effect: f64,
}

impl Driver {
    /// The strongest `MAX_DRIVERS` of `candidates` with an effect of at least `min` (and above
    /// zero), largest first (ties by sensor id, so the answer does not depend on the order they
    /// come in); non-finite effects are left out.
    pub fn strongest(candidates: impl IntoIterator<Item = Driver>, min: f64) -> Vec<Driver> {
        let mut all: Vec<Driver> = candidates.into_iter().filter(|d| d.effect.is_finite() && d.effect > 0.0 && d.effect >= min).collect();
        all.sort_by(|a, b| b.effect.total_cmp(&a.effect).then_with(|| a.sensor_id.cmp(&b.sensor_id)));
        all.truncate(MAX_DRIVERS);
        all
    }
}

impl ScoredWindow {
    /// The window's overall score: its most anomalous component's (0 with no components).
    pub fn overall_score(&self) -> f64 {
        self.components.iter().map(|c| c.score).fold(0.0, f64::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_strongest_drivers_are_the_three_largest_positive_effects_above_the_floor() {
        let d = |id: &str, effect: f64| Driver { sensor_id: id.into(), effect };
        let picked = Driver::strongest([d("PS1", 0.1), d("PS2", -0.5), d("PS3", 0.0), d("TS1", f64::NAN), d("FS1", 0.3), d("CE", 0.2), d("CP", 0.2)], 0.0);
        let ids: Vec<&str> = picked.iter().map(|d| d.sensor_id.as_str()).collect();
        assert_eq!(ids, ["FS1", "CE", "CP"], "largest first, ties by id, the one that held the score down left out: {picked:?}");
        assert!(Driver::strongest([d("PS3", 0.0)], 0.0).is_empty());
        let floored = Driver::strongest([d("PS1", 0.1), d("FS1", 0.005)], 0.01);
        assert_eq!(floored, [d("PS1", 0.1)], "below the floor drives nothing");
    }
}
