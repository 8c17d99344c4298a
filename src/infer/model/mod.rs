//! The anomaly-scoring model of the UCI hydraulic rig: a graph neural network over the rig's
//! equipment graph (sensors and components as nodes), written with candle, plus an MLP baseline
//! over the same features that ships in the same artifact so the graph's worth stays measurable.
//!
//! * [`RigModel::load`] reads `models/uci-rig-v1/` (weights + manifest).
//! * [`RigModel::score`] turns one window (sensor id → values in time order) into a score per
//!   labelled component: cooler, valve, pump and accumulator. The score is
//!   **1 − P(nominal class)**: the probability mass the head puts on any degraded condition
//!   (0 = surely healthy, 1 = surely degraded). Motor and tank have no labels in the data, so
//!   they get no score from this model.
//! * [`evaluate`] / [`evaluate_split`] report accuracy and confusion matrices; [`train_and_save`]
//!   trains both networks and writes the artifact.
//!
//! Scoring runs entirely on the calling thread, through a plain-Rust copy of the forward pass
//! (`fast.rs`) that a load-time check and a test hold equal to candle's.

mod artifact;
mod data;
mod eval;
mod fast;
mod features;
mod gnn;
mod params;
mod train;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

pub use artifact::{Accuracies, Manifest, TrainingData, Validation};
pub use data::{TargetSpec, validation_rows};
pub use eval::{EvalReport, NetEval, TargetEval, evaluate, evaluate_split};
pub use features::{NODE_FEATURES, Normalisation, RAW_FEATURES, feature_names, raw_features};
pub use gnn::{Arch, GraphSpec};
pub use train::{TrainConfig, TrainReport, train};

use features::NODE_FEATURES as F;
use fast::{FastGnn, FastMlp};
use gnn::{Gnn, Mlp, Net};
use params::Params;

/// The shipped artifact, relative to the repository root.
pub const DEFAULT_MODEL_DIR: &str = "models/uci-rig-v1";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read or write {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Dataset(#[from] crate::sim::DatasetError),
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("bad model artifact: {0}")]
    Artifact(String),
    #[error("bad training data: {0}")]
    Data(String),
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

/// A loaded model: the manifest and both networks.
#[derive(Debug, Clone)]
pub struct RigModel {
    manifest: Manifest,
    params: Params,
    gnn: Net,
    mlp: Net,
    /// The same networks for one window at a time without candle's per-matmul overhead.
    fast_gnn: FastGnn,
    fast_mlp: FastMlp,
}

impl RigModel {
    /// Loads an artifact directory and checks it by scoring an empty window with both forward
    /// passes, so a model that loads can always score, and scores as candle would.
    pub fn load(dir: &Path) -> Result<RigModel, ModelError> {
        let (manifest, params) = artifact::load(dir)?;
        let model = RigModel::from_parts(manifest, params)?;
        for network in [Network::Gnn, Network::Mlp] {
            let fast = model.probabilities(&HashMap::new(), network)?;
            let candle = model.probabilities_candle(&HashMap::new(), network)?;
            let diff = fast.iter().flatten().zip(candle.iter().flatten()).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            if diff > 1e-4 {
                return Err(ModelError::Artifact(format!("{network:?}: the two forward passes differ by {diff}")));
            }
        }
        Ok(model)
    }

    fn from_parts(manifest: Manifest, params: Params) -> Result<RigModel, ModelError> {
        let spec = &manifest.graph;
        let targets: Vec<String> = manifest.targets.iter().map(|t| t.component.clone()).collect();
        let s = spec.sensors.len();
        let norm = &manifest.normalisation;
        if manifest.arch.features != F || norm.mean.len() != s || norm.std.len() != s || norm.mean.iter().chain(&norm.std).any(|r| r.len() != features::RAW_FEATURES) {
            return Err(ModelError::Artifact("feature layout does not match this build".into()));
        }
        let gnn = Net::Gnn(Gnn::load(&params, spec, &manifest.arch, &targets)?);
        let mlp = Net::Mlp(Mlp::load(&params, s, &manifest.arch)?);
        let fast_gnn = FastGnn::load(&params, spec, &manifest.arch, &targets)?;
        let fast_mlp = FastMlp::load(&params, s, &manifest.arch)?;
        Ok(RigModel { manifest, params, gnn, mlp, fast_gnn, fast_mlp })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// SHA-256 over every tensor's name, shape and f32 values in name order: equal digests mean
    /// bit-identical weights.
    pub fn weights_sha256(&self) -> Result<String, ModelError> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for (name, t) in &self.params {
            h.update(format!("{name}{:?}", t.dims()).as_bytes());
            for v in t.flatten_all()?.to_vec1::<f32>()? {
                h.update(v.to_le_bytes());
            }
        }
        Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Writes the artifact (weights + manifest) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), ModelError> {
        artifact::save(dir, &self.manifest, &self.params)
    }

    /// Scores one window with the GNN. Sensors missing from the map, or with no finite value,
    /// are treated as missing; unknown sensor ids are ignored.
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

    /// Normalised node inputs of one window, `[sensor][feature]` flattened.
    fn inputs(&self, window: &HashMap<String, Vec<f64>>) -> Vec<f32> {
        let spec = &self.manifest.graph;
        let raw: Vec<_> = spec.sensors.iter().map(|(id, _)| window.get(id).and_then(|v| features::raw_features(v))).collect();
        let mut flat = Vec::with_capacity(raw.len() * F);
        self.manifest.normalisation.apply(&raw, &mut flat);
        flat
    }

    /// Class probabilities per target for one window (targets in manifest order), computed on
    /// the calling thread without candle (see `fast.rs` for why).
    pub fn probabilities(&self, window: &HashMap<String, Vec<f64>>, network: Network) -> Result<Vec<Vec<f32>>, ModelError> {
        let x = self.inputs(window);
        Ok(match network {
            Network::Gnn => self.fast_gnn.probabilities(&x),
            Network::Mlp => self.fast_mlp.probabilities(&x),
        })
    }

    /// The same probabilities through candle, as in training and evaluation.
    pub fn probabilities_candle(&self, window: &HashMap<String, Vec<f64>>, network: Network) -> Result<Vec<Vec<f32>>, ModelError> {
        let x = self.inputs(window);
        let x = Tensor::from_vec(x, (1, self.manifest.graph.sensors.len(), F), &Device::Cpu)?;
        let net = match network {
            Network::Gnn => &self.gnn,
            Network::Mlp => &self.mlp,
        };
        net.forward(&x)?.iter().map(|logits| Ok(candle_nn::ops::softmax_last_dim(logits)?.flatten_all()?.to_vec1::<f32>()?)).collect()
    }

    fn try_score(&self, window: &HashMap<String, Vec<f64>>, network: Network) -> Result<Vec<ComponentScore>, ModelError> {
        let probs = self.probabilities(window, network)?;
        let spec = &self.manifest.graph;
        Ok(self
            .manifest
            .targets
            .iter()
            .zip(probs)
            .map(|(target, p)| {
                let probabilities: BTreeMap<String, f64> = target.classes.iter().cloned().zip(p.iter().map(|x| f64::from(*x))).collect();
                let nominal = probabilities.get(&target.nominal).copied().unwrap_or(0.0);
                let best = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(i, _)| target.classes[i].clone());
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
                    probabilities,
                    features: Some(context),
                }
            })
            .collect())
    }
}

/// Trains on `data_dir` with the shipped configuration and writes the artifact to `out_dir`.
pub fn train_and_save(data_dir: &Path, out_dir: &Path, seed: u64, epochs: usize) -> Result<TrainReport, ModelError> {
    let (model, report) = train(data_dir, &TrainConfig::new(seed, epochs))?;
    model.save(out_dir)?;
    Ok(report)
}
