//! The versioned artifact: `model.safetensors` (GNN tensors under `gnn.`, the MLP baseline's
//! under `mlp.`) and `manifest.json` (everything needed to turn a window into the model's input
//! and to judge whether the model applies to a system).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::ModelError;
use super::data::TargetSpec;
use super::features::Normalisation;
use super::gnn::{Arch, GraphSpec};
use super::params::Params;
use super::train::TrainConfig;

pub const FORMAT: &str = "manifold-rig-model/1";
pub const WEIGHTS: &str = "model.safetensors";
pub const MANIFEST: &str = "manifest.json";

/// Validation accuracy per target component.
pub type Accuracies = BTreeMap<String, f64>;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainingData {
    /// Files read, in order; `sha256` covers exactly these.
    pub files: Vec<String>,
    pub sha256: String,
    pub rows: usize,
    pub train_rows: usize,
    pub validation_rows: usize,
    pub split: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Validation {
    pub gnn: Accuracies,
    pub mlp: Accuracies,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub version: String,
    /// RFC 3339, UTC.
    pub created: String,
    pub seed: u64,
    /// `Topology::hash` of the equipment the model was trained on; the model applies to a system
    /// only when the system's topology hash is the same.
    pub topology_hash: String,
    pub graph: GraphSpec,
    /// Sensor ids in input order (the same as `graph.sensors`, for readers of the JSON).
    pub sensor_order: Vec<String>,
    pub component_ids: Vec<String>,
    pub feature_names: Vec<String>,
    pub normalisation: Normalisation,
    pub targets: Vec<TargetSpec>,
    /// How `ComponentScore::score` is defined.
    pub score: String,
    pub arch: Arch,
    pub hyper_parameters: TrainConfig,
    pub training_data: TrainingData,
    pub validation: Validation,
    pub training_seconds: f64,
}

/// Writes both files into `dir` (created if needed).
pub fn save(dir: &Path, manifest: &Manifest, params: &Params) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io { path: dir.to_owned(), source })?;
    let tensors: HashMap<String, Tensor> = params.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    candle_core::safetensors::save(&tensors, dir.join(WEIGHTS))?;
    let path = dir.join(MANIFEST);
    let mut json = serde_json::to_string_pretty(manifest)?;
    json.push('\n');
    std::fs::write(&path, json).map_err(|source| ModelError::Io { path, source })
}

/// Reads both files; the tensors' shapes are checked when the networks are built from them.
pub fn load(dir: &Path) -> Result<(Manifest, Params), ModelError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| ModelError::Artifact(format!("{}: {e}", path.display())))?;
    if manifest.format != FORMAT {
        return Err(ModelError::Artifact(format!("{}: format {:?}, expected {FORMAT:?}", path.display(), manifest.format)));
    }
    let path = dir.join(WEIGHTS);
    let bytes = std::fs::read(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)?;
    Ok((manifest, tensors.into_iter().collect()))
}
