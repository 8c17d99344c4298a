//! Which sensors drove each component's score, by occlusion: the window is scored once more per
//! present sensor with that sensor left out, exactly as a window without it is scored (the
//! model was trained with sensors missing: a missing sensor's node gets zeros and a present
//! flag of 0, see `Normalisation::apply`).
//!
//! A sensor's effect on a component is how much the log-odds of the component's score,
//! ln(score / (1 − score)), fall when the sensor is left out: positive when the sensor pushed
//! the score up. Log-odds, not the score itself, because the rig model is sure of itself: a
//! valve at 73 % scores 1.0 to the last digit with or without any one sensor (the others tell
//! the same story), while its log-odds still say which sensor the verdict leans on most. They
//! come straight from the logits (log-odds = logsumexp of the other classes' logits − the
//! nominal class's logit), so they do not saturate either.
//!
//! This works on the node inputs after feature extraction, so it explains whatever the features
//! make of the window (at any sampling rate) without touching how they are made. The cost is
//! one forward pass per present sensor: 17 more for a full rig window.

use std::collections::{BTreeMap, HashMap};

use super::{ComponentScore, Network, RigModel};
use crate::domain::Driver;

/// Per component id, its strongest drivers (see [`Driver::strongest`]).
pub type Drivers = BTreeMap<String, Vec<Driver>>;

/// A sensor whose absence lowers a score's log-odds by less than this (odds × 0.9) did not
/// drive it.
pub const MIN_EFFECT: f64 = 0.1;

impl RigModel {
    /// Scores one window with the GNN, as [`RigModel::score`] does, and says for each component
    /// which sensors drove its score.
    pub fn score_explained(&self, window: &HashMap<String, Vec<f64>>) -> (Vec<ComponentScore>, Drivers) {
        self.score_explained_with(window, Network::Gnn)
    }

    /// As [`RigModel::score_explained`], with the chosen network.
    pub fn score_explained_with(&self, window: &HashMap<String, Vec<f64>>, network: Network) -> (Vec<ComponentScore>, Drivers) {
        let mut x = self.inputs(window);
        let probs = self.forward(&x, network);
        let full = self.log_odds(&self.logits(&x, network));
        let sensors = &self.manifest.graph.sensors;
        let width = self.node_features();
        let mut effects: Vec<Vec<Driver>> = vec![Vec::with_capacity(sensors.len()); full.len()];
        for (s, (sensor, _)) in sensors.iter().enumerate() {
            let node = s * width..(s + 1) * width;
            // Already missing: leaving it out changes nothing.
            if x[node.end - 1] == 0.0 {
                continue;
            }
            let kept: Vec<f32> = x[node.clone()].to_vec();
            x[node.clone()].iter_mut().for_each(|v| *v = 0.0);
            let without = self.log_odds(&self.logits(&x, network));
            x[node].copy_from_slice(&kept);
            for (t, (with, without)) in full.iter().zip(without).enumerate() {
                effects[t].push(Driver { sensor_id: sensor.clone(), effect: with - without });
            }
        }
        let drivers = self.manifest.targets.iter().zip(effects).map(|(target, e)| (target.component.clone(), Driver::strongest(e, MIN_EFFECT))).collect();
        (self.components(window, probs), drivers)
    }

    /// Each target's anomaly score as log-odds, ln((1 − P(nominal)) / P(nominal)), from its
    /// class logits.
    fn log_odds(&self, logits: &[Vec<f32>]) -> Vec<f64> {
        self.manifest
            .targets
            .iter()
            .zip(logits)
            .map(|(target, z)| {
                let nominal = target.classes.iter().position(|c| *c == target.nominal);
                let z: Vec<f64> = z.iter().map(|v| f64::from(*v)).collect();
                let others = z.iter().enumerate().filter(|(i, _)| Some(*i) != nominal).map(|(_, v)| *v);
                let max = others.clone().fold(f64::NEG_INFINITY, f64::max);
                let lse = max + others.map(|v| (v - max).exp()).sum::<f64>().ln();
                lse - nominal.and_then(|i| z.get(i)).copied().unwrap_or(f64::NEG_INFINITY)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::domain::MAX_DRIVERS;

    fn shipped() -> RigModel {
        RigModel::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(super::super::DEFAULT_MODEL_DIR)).unwrap()
    }

    fn first_window() -> HashMap<String, Vec<f64>> {
        crate::rig::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(crate::rig::SAMPLE_DATA)).unwrap()[0].window()
    }

    #[test]
    fn explaining_scores_as_plain_scoring_does_and_each_effect_is_the_score_change_without_that_sensor() {
        let model = shipped();
        let window = first_window();
        let (scores, drivers) = model.score_explained(&window);
        assert_eq!(scores, model.score(&window), "the same verdicts as plain scoring");
        assert_eq!(drivers.len(), scores.len(), "every scored component has an entry");
        assert!(drivers.values().any(|d| !d.is_empty()), "something drove a score of the first cycle: {drivers:?}");
        for score in &scores {
            let named = &drivers[&score.component_id];
            assert!(named.len() <= MAX_DRIVERS && named.iter().all(|d| d.effect >= MIN_EFFECT), "{named:?}");
            let log_odds = |s: f64| (s / (1.0 - s)).ln();
            for driver in named {
                let mut without = window.clone();
                without.remove(&driver.sensor_id);
                let rescored = model.score(&without).into_iter().find(|s| s.component_id == score.component_id).unwrap();
                // Only where the f32 probabilities have not saturated can they check the logits.
                if (1e-4..1.0 - 1e-4).contains(&score.score) && (1e-4..1.0 - 1e-4).contains(&rescored.score) {
                    let change = log_odds(score.score) - log_odds(rescored.score);
                    assert!((change - driver.effect).abs() < 1e-2, "{driver:?}: log-odds change {change}");
                }
                assert!(rescored.score <= score.score + 1e-6, "{driver:?} pushed the score up: {} without it", rescored.score);
            }
        }
    }

    #[test]
    fn a_sensor_the_window_lacks_drives_nothing() {
        let model = shipped();
        let mut window = first_window();
        window.remove("PS2");
        window.insert("PS3".into(), vec![f64::NAN; 60]);
        let (_, drivers) = model.score_explained(&window);
        assert!(drivers.values().flatten().all(|d| d.sensor_id != "PS2" && d.sensor_id != "PS3"), "{drivers:?}");
    }
}
