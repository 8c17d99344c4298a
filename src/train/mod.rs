//! `manifold model train` and `model eval`: the rig model made and measured. Training reads the
//! UCI data set (`crate::rig`), splits it by blocks of identical conditions, fits the GNN and the
//! MLP baseline with candle, and writes an artifact through `crate::model`, the scoring side it
//! builds on; evaluation reports accuracy and confusion matrices per target.
//!
//! Scoring never imports this module, so candle's networks and the training data stay out of
//! `manifold infer`; whenever candle's networks are built from a model they are checked
//! against the model's own forward pass ([`Networks::of`]).

mod cv;
mod data;
mod eval;
mod fit;
mod nets;
mod params;
mod split;

use std::path::{Path, PathBuf};

pub use cv::{CvReport, CvSettings, RunEval, Spread, cross_validate};
pub use data::validation_rows;
pub use split::{BlockSplit, TEST_EVERY, blocks};
pub use eval::{EvalReport, NetEval, TargetEval, evaluate, evaluate_split};
pub use fit::{TrainReport, train};
pub use nets::Networks;

use crate::model::{ModelError, Network, TrainConfig};
use crate::rig::DatasetError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("tensor error: {0}")]
    Candle(#[from] candle_core::Error),
    #[error("bad training data: {0}")]
    Data(String),
    #[error("{network:?}: the plain and the candle forward pass differ by {diff}")]
    ForwardPassesDiffer { network: Network, diff: f32 },
}

/// Trains on `data_dir` with the shipped configuration and writes the artifact, named
/// `version`, to `out_dir`.
pub fn train_and_save(data_dir: &Path, out_dir: &Path, version: &str, config: &TrainConfig) -> Result<TrainReport, TrainError> {
    let (model, report) = train(data_dir, version, config)?;
    model.save(out_dir)?;
    Ok(report)
}
