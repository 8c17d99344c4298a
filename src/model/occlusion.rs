//! Which sensors drove each component's score, by occlusion: the window is scored once more per
//! present sensor with that sensor left out, exactly as a window without it is scored (the
//! model was trained with sensors missing: a missing sensor's node gets zeros and a present
//! flag of 0, see `Normalisation::apply`). A sensor's effect on a component is the score with
//! every sensor minus the score without it.
//!
//! This works on the node inputs after feature extraction, so it explains whatever the features
//! make of the window (at any sampling rate) without touching how they are made. The cost is
//! one forward pass per present sensor: 17 more for a full rig window.

use std::collections::{BTreeMap, HashMap};

use super::features::NODE_FEATURES as F;
use super::{ComponentScore, Network, RigModel};
use crate::domain::Driver;

/// Per component id, its strongest drivers (see [`Driver::strongest`]).
pub type Drivers = BTreeMap<String, Vec<Driver>>;

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
        let full = self.anomaly_scores(&probs);
        let sensors = &self.manifest.graph.sensors;
        let mut effects: Vec<Vec<Driver>> = vec![Vec::with_capacity(sensors.len()); full.len()];
        for (s, (sensor, _)) in sensors.iter().enumerate() {
            let node = s * F..(s + 1) * F;
            // Already missing: leaving it out changes nothing.
            if x[node.end - 1] == 0.0 {
                continue;
            }
            let kept: Vec<f32> = x[node.clone()].to_vec();
            x[node.clone()].iter_mut().for_each(|v| *v = 0.0);
            let without = self.anomaly_scores(&self.forward(&x, network));
            x[node].copy_from_slice(&kept);
            for (t, (with, without)) in full.iter().zip(without).enumerate() {
                effects[t].push(Driver { sensor_id: sensor.clone(), effect: with - without });
            }
        }
        let drivers = self.manifest.targets.iter().zip(effects).map(|(target, e)| (target.component.clone(), Driver::strongest(e))).collect();
        (self.components(window, probs), drivers)
    }

    /// Each target's anomaly score, 1 − P(nominal), from its class probabilities.
    fn anomaly_scores(&self, probs: &[Vec<f32>]) -> Vec<f64> {
        self.manifest
            .targets
            .iter()
            .zip(probs)
            .map(|(target, p)| {
                let nominal = target.classes.iter().position(|c| *c == target.nominal).and_then(|i| p.get(i)).copied().unwrap_or(0.0);
                (1.0 - f64::from(nominal)).clamp(0.0, 1.0)
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
        assert_eq!(drivers.len(), scores.len(), "every scored component is explained");
        for score in &scores {
            let named = &drivers[&score.component_id];
            assert!(!named.is_empty() && named.len() <= MAX_DRIVERS, "{named:?}");
            for driver in named {
                let mut without = window.clone();
                without.remove(&driver.sensor_id);
                let rescored = model.score(&without).into_iter().find(|s| s.component_id == score.component_id).unwrap();
                assert!((score.score - rescored.score - driver.effect).abs() < 1e-6, "{driver:?}: {} vs {}", score.score, rescored.score);
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
