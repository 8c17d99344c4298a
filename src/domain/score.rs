//! A scorer's verdict on a window. One type from the scorer to every edge, each converting it
//! where it leaves: Avro in `codec`, rows in `store`, JSON in `api`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

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
    /// Per component, what each of its sensors contributed to its score (sensor id → share).
    /// No scorer explains itself yet, so this is empty and no edge stores or publishes it; it
    /// is the place for the explanations the scores issue adds.
    pub contributions: BTreeMap<String, BTreeMap<String, f64>>,
}

impl ScoredWindow {
    /// The window's overall score: its most anomalous component's (0 with no components).
    pub fn overall_score(&self) -> f64 {
        self.components.iter().map(|c| c.score).fold(0.0, f64::max)
    }
}
