//! The baseline scorer for systems the rig model does not fit: each sensor's window mean
//! against its own recent history (robust z-score: median and MAD of 1-minute means), turned
//! into [0, 1] and spread over the topology graph to components.

use std::collections::{BTreeMap, HashMap};

use futures_util::future::BoxFuture;

use super::{ScoreError, WindowScorer, WindowToScore};
use crate::domain::{ComponentScore, Driver, ScoredWindow, Topology};
use crate::store::{Store, SystemInfo};

pub const BASELINE_VERSION: &str = "baseline-robust-z-v1";

/// A z-score of this size maps to about 0.63; bigger deviations approach 1.
const Z_SCALE: f64 = 3.0;
/// How much of a neighbour component's anomaly a component inherits over one connection.
const NEIGHBOUR_WEIGHT: f64 = 0.5;

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len().is_multiple_of(2) { (values[mid - 1] + values[mid]) / 2.0 } else { values[mid] })
}

/// The robust z-score of `value` against `history`; None without enough history.
pub fn robust_z(value: f64, history: &[f64]) -> Option<f64> {
    if history.len() < 3 {
        return None;
    }
    let mut h = history.to_vec();
    let med = median(&mut h)?;
    let mut deviations: Vec<f64> = history.iter().map(|v| (v - med).abs()).collect();
    let mad = median(&mut deviations)?;
    // A flat history (MAD 0) must not turn the smallest change into infinity.
    let scale = (1.4826 * mad).max(1e-9 + med.abs() * 1e-3);
    Some((value - med).abs() / scale)
}

/// Per component, the drivers of its score: its own sensors with the largest robust z-scores
/// (from the `"<sensor>.z"` features [`score`] gives). A component whose score comes only
/// from a neighbour names none: the neighbour's entry says which sensors moved it.
pub fn drivers(scores: &[ComponentScore]) -> BTreeMap<String, Vec<Driver>> {
    scores
        .iter()
        .map(|c| {
            let z = c.features.iter().flatten().filter_map(|(name, z)| Some(Driver { sensor_id: name.strip_suffix(".z")?.to_owned(), effect: *z }));
            (c.component_id.clone(), Driver::strongest(z, 0.0))
        })
        .filter(|(_, d)| !d.is_empty())
        .collect()
}

/// Every component's score; its features are the window mean and robust z-score of each of its
/// own sensors (`"PS1.mean"`, `"PS1.z"`).
pub fn score(topology: &Topology, window: &HashMap<String, Vec<f64>>, history: &BTreeMap<String, Vec<f64>>) -> Vec<ComponentScore> {
    let mut own: BTreeMap<&str, (f64, BTreeMap<String, f64>)> =
        topology.components.iter().map(|c| (c.id.as_str(), (0.0, BTreeMap::new()))).collect();
    for sensor in &topology.sensors {
        let Some(values) = window.get(sensor.id.as_str()).filter(|v| !v.is_empty()) else { continue };
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        let Some(entry) = own.get_mut(sensor.component.as_str()) else { continue };
        entry.1.insert(format!("{}.mean", sensor.id), mean);
        if let Some(z) = history.get(sensor.id.as_str()).and_then(|h| robust_z(mean, h)) {
            entry.1.insert(format!("{}.z", sensor.id), z);
            entry.0 = f64::max(entry.0, 1.0 - (-z / Z_SCALE).exp());
        }
    }
    topology
        .components
        .iter()
        .map(|c| {
            let neighbours = topology.connections.iter().filter_map(|k| {
                if k.from == c.id {
                    Some(k.to.as_str())
                } else if k.to == c.id {
                    Some(k.from.as_str())
                } else {
                    None
                }
            });
            let inherited = neighbours.map(|n| own.get(n).map_or(0.0, |o| o.0)).fold(0.0, f64::max) * NEIGHBOUR_WEIGHT;
            let (mine, features) = own.get(c.id.as_str()).cloned().unwrap_or_default();
            ComponentScore {
                component_id: c.id.to_string(),
                score: mine.max(inherited).clamp(0.0, 1.0),
                condition: None,
                condition_name: None,
                severity: None,
                probabilities: BTreeMap::new(),
                features: Some(features),
            }
        })
        .collect()
}

/// The baseline as a window scorer: it applies to every system, and scores those without a
/// topology as having no components.
pub struct BaselineScorer {
    store: Store,
    /// How far back the history of 1-minute means reaches.
    history_minutes: i64,
}

impl BaselineScorer {
    pub fn new(store: Store, history_minutes: i64) -> Self {
        Self { store, history_minutes }
    }
}

impl WindowScorer for BaselineScorer {
    fn version(&self) -> &str {
        BASELINE_VERSION
    }

    fn label(&self) -> &'static str {
        "baseline"
    }

    fn applies(&self, _: &SystemInfo) -> bool {
        true
    }

    fn score<'a>(&'a self, window: &'a WindowToScore<'a>) -> BoxFuture<'a, Result<ScoredWindow, ScoreError>> {
        Box::pin(async move {
            let Some(topology) = &window.system.topology else {
                return Ok(window.scored(BASELINE_VERSION, Vec::new()));
            };
            let history = self.store.minute_means(&window.event.system_id, window.start(), self.history_minutes).await?;
            let components = score(topology, window.values, &history);
            let mut scored = window.scored(BASELINE_VERSION, components);
            scored.contributions = drivers(&scored.components);
            Ok(scored)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rig::rig_topology;

    #[test]
    fn a_deviating_sensor_marks_its_component_and_half_of_that_spreads_to_neighbours() {
        let topology = rig_topology();
        let history: BTreeMap<String, Vec<f64>> =
            [("PS1".to_owned(), vec![150.0, 151.0, 149.0, 150.5, 149.5]), ("TS3".to_owned(), vec![40.0, 40.2, 39.8, 40.1])].into();
        let window: HashMap<String, Vec<f64>> = [("PS1".to_owned(), vec![180.0; 60]), ("TS3".to_owned(), vec![40.05; 60])].into();
        let scores: BTreeMap<String, f64> = score(&topology, &window, &history).into_iter().map(|s| (s.component_id, s.score)).collect();
        assert!(scores["pump"] > 0.99, "{scores:?}");
        assert!(scores["cooler"] < 0.1, "{scores:?}");
        assert!((scores["valve"] - scores["pump"] * NEIGHBOUR_WEIGHT).abs() < 1e-9, "the valve is next to the pump: {scores:?}");
        assert!(scores.values().all(|s| (0.0..=1.0).contains(s)));
    }

    #[test]
    fn the_baseline_names_the_own_sensors_with_the_largest_z_scores() {
        let topology = rig_topology();
        let calm = vec![150.0, 151.0, 149.0, 150.5, 149.5];
        let history: BTreeMap<String, Vec<f64>> = ["PS1", "FS1", "SE", "VS1"].iter().map(|s| ((*s).to_owned(), calm.clone())).collect();
        let window: HashMap<String, Vec<f64>> =
            [("PS1".to_owned(), vec![180.0; 60]), ("FS1".to_owned(), vec![150.2; 60]), ("SE".to_owned(), vec![160.0; 60]), ("VS1".to_owned(), vec![140.0; 60])].into();
        let drivers = drivers(&score(&topology, &window, &history));
        let pump: Vec<&str> = drivers["pump"].iter().map(|d| d.sensor_id.as_str()).collect();
        assert_eq!(pump, ["PS1", "SE", "VS1"], "largest z first, the calm FS1 left out: {drivers:?}");
        assert!(!drivers.contains_key("valve"), "the valve only inherits from the pump: {drivers:?}");
    }

    #[test]
    fn without_history_every_component_scores_zero() {
        let window: HashMap<String, Vec<f64>> = [("PS1".to_owned(), vec![1.0])].into();
        assert!(score(&rig_topology(), &window, &BTreeMap::new()).iter().all(|s| s.score == 0.0));
    }

    #[test]
    fn a_flat_history_does_not_explode() {
        let z = robust_z(100.1, &[100.0; 10]).unwrap();
        assert!(z.is_finite() && z > 0.0);
    }
}
