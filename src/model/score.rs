//! What scoring returns for one component of one window.

use std::collections::BTreeMap;

use serde::Serialize;

/// One component's verdict for one window.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ComponentScore {
    pub component_id: String,
    /// 1 − P(nominal class), in [0, 1].
    pub score: f64,
    /// The most probable class label (e.g. "100" for a cooler at 100 % efficiency).
    pub condition: Option<String>,
    /// Probability per class label.
    pub probabilities: BTreeMap<String, f64>,
    /// Context for a reader: the window mean of each of the component's own sensors
    /// (`"PS1.mean"`), and how many of them were missing (`"missing_sensors"`).
    pub features: Option<BTreeMap<String, f64>>,
}
