//! The anomaly-scoring model of the UCI hydraulic rig, as scoring uses it: a graph neural network
//! over the rig's equipment graph (sensors and components as nodes), plus an MLP baseline over
//! the same features that ships in the same artifact so the graph's worth stays measurable.
//!
//! * [`RigModel::load`] reads an artifact such as `models/uci-rig-v4/` (weights + manifest).
//! * [`RigModel::score`] turns one window (sensor id → values in time order) into a score per
//!   labelled component: cooler, valve, pump and accumulator. The score is
//!   **1 − P(nominal class)**: the probability mass the head puts on any degraded condition
//!   (0 = surely healthy, 1 = surely degraded). Motor and tank have no labels in the data, so
//!   they get no score from this model.
//!
//! Scoring runs entirely on the calling thread, in plain Rust (`fast.rs`), without a tensor
//! library. Training and evaluation (`crate::train`: the data split, the candle networks, the
//! metrics) build on this module and never the other way round; they make an artifact with
//! [`RigModel::new`] and [`RigModel::save`].

mod artifact;
mod conditions;
mod fast;
mod features;
mod graph;
mod manifest;
mod occlusion;
mod sampling;
mod subset;
mod weights;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

pub use artifact::{ARTIFACT_FORMAT, read_manifest};
pub use conditions::ConditionCatalogue;
pub use features::{FeatureLayout, NODE_FEATURES, Normalisation, RAW_FEATURES, feature_names, raw_features};
pub use graph::{Arch, Edge, GraphSpec, RELATIONS, edges};
pub use manifest::{Accuracies, ConditionSpec, HeldOut, Manifest, TargetSpec, TrainConfig, TrainingData, Validation};
pub use occlusion::Drivers;
pub use sampling::{Aggregate, InputSampling, MIN_COVERAGE, Refusal, Resampled};
pub use subset::{CONFIDENCE, Kinds, SensorKind, SubsetMap, Unmapped};
pub use weights::{Weight, Weights};

use fast::{FastGnn, FastMlp};

/// The shipped artifact, relative to the repository root.
pub const DEFAULT_MODEL_DIR: &str = "models/uci-rig-v4";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read or write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("bad model artifact: {0}")]
    Artifact(String),
}

/// One component's verdict for one window: the domain's, as every scorer gives it.
pub use crate::domain::ComponentScore;

/// Which network to score with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Gnn,
    /// The MLP baseline (for comparison and benchmarks).
    Mlp,
}

/// A loaded model: the manifest, the weights and both networks' forward passes.
#[derive(Debug, Clone)]
pub struct RigModel {
    manifest: Manifest,
    weights: Weights,
    gnn: FastGnn,
    mlp: FastMlp,
    /// The kinds of the graph's nodes, declared or derived (`subset.rs`).
    kinds: Option<Kinds>,
    /// Per target, each sensor's share of its evidence (`subset.rs`).
    evidence: Vec<Vec<f64>>,
    /// The features the manifest names.
    layout: FeatureLayout,
}

impl RigModel {
    /// Loads an artifact directory; every weight the networks need is there in its shape, so a
    /// model that loads can always score.
    pub fn load(dir: &Path) -> Result<RigModel, ModelError> {
        let (manifest, weights) = artifact::load(dir)?;
        RigModel::new(manifest, weights)
    }

    /// A model from its manifest and weights (as training makes one), checked as `load` checks
    /// an artifact.
    pub fn new(manifest: Manifest, weights: Weights) -> Result<RigModel, ModelError> {
        let spec = &manifest.graph;
        let targets: Vec<String> = manifest.targets.iter().map(|t| t.component.clone()).collect();
        let s = spec.sensors.len();
        let norm = &manifest.normalisation;
        let layout = FeatureLayout::of_names(&manifest.feature_names)
            .ok_or_else(|| ModelError::Artifact("feature_names are not a feature layout this build computes".into()))?;
        if manifest.arch.features != layout.node() || norm.mean.len() != s || norm.std.len() != s || norm.mean.iter().chain(&norm.std).any(|r| r.len() != layout.raw()) {
            return Err(ModelError::Artifact(format!("arch.features or normalisation do not match the {layout:?} feature layout its feature_names name")));
        }
        for target in &manifest.targets {
            target.check_conditions().map_err(ModelError::Artifact)?;
        }
        let sensors: Vec<String> = spec.sensors.iter().map(|(id, _)| id.clone()).collect();
        sampling::check(&manifest.sampling, &sensors).map_err(ModelError::Artifact)?;
        let gnn = FastGnn::load(&weights, spec, &manifest.arch, &targets)?;
        let mlp = FastMlp::load(&weights, s, &manifest.arch)?;
        let kinds = subset::kinds_of(&manifest)?;
        let evidence = subset::evidence(&manifest)?;
        Ok(RigModel { manifest, weights, gnn, mlp, kinds, evidence, layout })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The features the networks read.
    pub fn feature_layout(&self) -> FeatureLayout {
        self.layout
    }

    /// Inputs per sensor node.
    pub fn node_features(&self) -> usize {
        self.layout.node()
    }

    pub fn weights(&self) -> &Weights {
        &self.weights
    }

    /// SHA-256 over every weight's name, shape and values: equal digests mean bit-identical
    /// weights.
    pub fn weights_sha256(&self) -> String {
        self.weights.sha256()
    }

    /// Writes the artifact (weights + manifest) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        artifact::save(dir, &self.manifest, &self.weights)
    }

    /// Scores one window of `seconds` as a device sent it, at any sampling rate: each sensor is
    /// first brought to the sampling the model was trained on (`Manifest::sampling`), so a
    /// faster sensor changes nothing but cost. A sensor that cannot be brought to it (slower
    /// than trained) is scored as missing, and every component's `features` say why under
    /// `<sensor>.refused_slower_than_trained_hz` (every head sees every sensor).
    pub fn score_window(&self, window: &HashMap<String, Vec<f64>>, seconds: f64) -> Vec<ComponentScore> {
        self.score_window_with(window, seconds, Network::Gnn)
    }

    /// [`RigModel::score_window`] with the chosen network.
    pub fn score_window_with(&self, window: &HashMap<String, Vec<f64>>, seconds: f64, network: Network) -> Vec<ComponentScore> {
        let resampled = self.at_trained_sampling(window, seconds);
        let mut scores = self.score_with(&resampled.values, network);
        resampled.note_refusals(&mut scores);
        scores
    }

    /// [`RigModel::score_window`] with the sensors that drove each score, found by occlusion on
    /// the window at the trained sampling ([`RigModel::score_explained`]).
    pub fn score_window_explained(&self, window: &HashMap<String, Vec<f64>>, seconds: f64) -> (Vec<ComponentScore>, Drivers) {
        let resampled = self.at_trained_sampling(window, seconds);
        let (mut scores, drivers) = self.score_explained(&resampled.values);
        resampled.note_refusals(&mut scores);
        (scores, drivers)
    }

    /// The window brought to the trained sampling (input sensors only), and the sensors refused.
    /// A manifest that records no sampling takes the window as sent.
    pub fn at_trained_sampling(&self, window: &HashMap<String, Vec<f64>>, seconds: f64) -> Resampled {
        if self.manifest.sampling.is_empty() {
            return Resampled { values: window.clone(), refused: Vec::new() };
        }
        let mut trained = HashMap::with_capacity(self.manifest.sampling.len());
        let mut refused = Vec::new();
        for input in &self.manifest.sampling {
            let Some(values) = window.get(&input.sensor) else { continue };
            match sampling::resample(values, seconds, input) {
                Ok(v) => {
                    trained.insert(input.sensor.clone(), v);
                }
                Err(why) => refused.push((input.sensor.clone(), why)),
            }
        }
        Resampled { values: trained, refused }
    }

    /// Scores one window whose sensors are already at the trained sampling (as training saw
    /// its cycles) with the GNN. Sensors missing from the map, or with no finite value, are
    /// treated as missing; unknown sensor ids are ignored.
    pub fn score(&self, window: &HashMap<String, Vec<f64>>) -> Vec<ComponentScore> {
        self.score_with(window, Network::Gnn)
    }

    /// Scores one window with the chosen network.
    pub fn score_with(&self, window: &HashMap<String, Vec<f64>>, network: Network) -> Vec<ComponentScore> {
        match self.try_score(window, network) {
            Ok(scores) => scores,
            Err(e) => {
                // Unreachable in practice: `load` proved the forward pass on this model.
                tracing::error!(error = %e, "model forward pass failed");
                Vec::new()
            }
        }
    }

    /// Normalised node inputs of one window, `[sensor][feature]` flattened: the input of
    /// either network.
    pub fn inputs(&self, window: &HashMap<String, Vec<f64>>) -> Vec<f32> {
        let spec = &self.manifest.graph;
        let raw: Vec<_> = spec.sensors.iter().map(|(id, _)| window.get(id).and_then(|v| features::raw_features(v))).collect();
        let mut flat = Vec::with_capacity(raw.len() * self.node_features());
        self.manifest.normalisation.apply(&raw, &mut flat);
        flat
    }

    /// Class probabilities per target for one window (targets in manifest order), computed on
    /// the calling thread (see `fast.rs` for why without candle).
    pub fn probabilities(&self, window: &HashMap<String, Vec<f64>>, network: Network) -> Result<Vec<Vec<f32>>, ModelError> {
        Ok(self.forward(&self.inputs(window), network))
    }

    /// Class probabilities per target from node inputs as [`RigModel::inputs`] makes them.
    fn forward(&self, x: &[f32], network: Network) -> Vec<Vec<f32>> {
        match network {
            Network::Gnn => self.gnn.probabilities(x),
            Network::Mlp => self.mlp.probabilities(x),
        }
    }

    /// Class logits per target (before the softmax), from node inputs.
    fn logits(&self, x: &[f32], network: Network) -> Vec<Vec<f32>> {
        match network {
            Network::Gnn => self.gnn.logits(x),
            Network::Mlp => self.mlp.logits(x),
        }
    }

    fn try_score(&self, window: &HashMap<String, Vec<f64>>, network: Network) -> Result<Vec<ComponentScore>, ModelError> {
        let probs = self.probabilities(window, network)?;
        Ok(self.components(window, probs))
    }

    /// Each target's verdict from its class probabilities (targets in manifest order).
    fn components(&self, window: &HashMap<String, Vec<f64>>, probs: Vec<Vec<f32>>) -> Vec<ComponentScore> {
        let spec = &self.manifest.graph;
        self
            .manifest
            .targets
            .iter()
            .zip(probs)
            .map(|(target, p)| {
                let probabilities: BTreeMap<String, f64> = target.classes.iter().cloned().zip(p.iter().map(|x| f64::from(*x))).collect();
                let nominal = probabilities.get(&target.nominal).copied().unwrap_or(0.0);
                let best = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| target.classes[i].clone());
                let named = best.as_deref().and_then(|class| target.condition(class));
                let mut context = BTreeMap::new();
                let mut missing = 0.0;
                for (sensor, _) in spec.sensors.iter().filter(|(_, c)| *c == target.component) {
                    match window.get(sensor).map(|v| v.iter().filter(|x| x.is_finite()).fold((0.0, 0usize), |(s, n), x| (s + x, n + 1))) {
                        Some((sum, n)) if n > 0 => {
                            context.insert(format!("{sensor}.mean"), sum / n as f64);
                        }
                        _ => missing += 1.0,
                    }
                }
                context.insert("missing_sensors".into(), missing);
                ComponentScore {
                    component_id: target.component.clone(),
                    score: (1.0 - nominal).clamp(0.0, 1.0),
                    condition: best,
                    condition_name: named.map(|c| c.name.clone()),
                    severity: named.map(|c| c.severity),
                    probabilities,
                    features: Some(context),
                }
            })
            .collect()
    }
}
