//! The versioned artifact on disk: `model.safetensors` (GNN tensors under `gnn.`, the MLP
//! baseline's under `mlp.`) and `manifest.json` (see `manifest.rs`).

use std::path::Path;

use super::ModelError;
use super::manifest::Manifest;
use super::weights::Weights;

/// The `format` every manifest this build reads carries.
pub const ARTIFACT_FORMAT: &str = "manifold-rig-model/1";
const WEIGHTS: &str = "model.safetensors";
const MANIFEST: &str = "manifest.json";

/// Writes both files into `dir` (created if needed).
pub fn save(dir: &Path, manifest: &Manifest, weights: &Weights) -> Result<(), ModelError> {
    std::fs::create_dir_all(dir).map_err(|source| ModelError::Io { path: dir.to_owned(), source })?;
    let path = dir.join(WEIGHTS);
    let bytes = weights.to_safetensors().map_err(|e| ModelError::Artifact(format!("{}: {e}", path.display())))?;
    std::fs::write(&path, bytes).map_err(|source| ModelError::Io { path, source })?;
    let path = dir.join(MANIFEST);
    let mut json = serde_json::to_string_pretty(manifest)?;
    json.push('\n');
    std::fs::write(&path, json).map_err(|source| ModelError::Io { path, source })
}

/// Reads the manifest of the artifact in `dir` alone (for readers that need no weights, such as
/// the API looking up class names).
pub fn read_manifest(dir: &Path) -> Result<Manifest, ModelError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
    let manifest: Manifest = serde_json::from_str(&text).map_err(|e| ModelError::Artifact(format!("{}: {e}", path.display())))?;
    if manifest.format != ARTIFACT_FORMAT {
        return Err(ModelError::Artifact(format!("{}: format {:?}, expected {ARTIFACT_FORMAT:?}", path.display(), manifest.format)));
    }
    Ok(manifest)
}

/// Reads both files; the weights' shapes are checked when the networks are built from them.
pub fn load(dir: &Path) -> Result<(Manifest, Weights), ModelError> {
    let manifest = read_manifest(dir)?;
    let path = dir.join(WEIGHTS);
    let bytes = std::fs::read(&path).map_err(|source| ModelError::Io { path: path.clone(), source })?;
    let weights = Weights::from_safetensors(&bytes).map_err(|e| ModelError::Artifact(format!("{}: {e}", path.display())))?;
    Ok((manifest, weights))
}
