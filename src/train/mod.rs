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
pub use split::{BlockSplit, FOLDS, TEST_EVERY, blocks};
pub use eval::{EvalReport, NetEval, TargetEval, evaluate, evaluate_split};
pub use fit::{TrainReport, train};
pub use nets::Networks;

use crate::model::{HeldOut, ModelError, Network, RigModel, TrainConfig};
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

/// Trains on `data_dir` with `config`, without the rows `held_out` names, and writes the
/// artifact, named `version`, to `out_dir`. With `cross_validation_jobs`, the recipe is first
/// judged (5 seeds from `config.seed`: block folds, the untouched split, later cycles and
/// later cycles of the folds, on that many cores) and the summary goes into the manifest's
/// `evaluation`, the judges it was chosen on beside those it was judged on once.
pub fn train_and_save(
    data_dir: &Path,
    out_dir: &Path,
    version: &str,
    config: &TrainConfig,
    held_out: HeldOut,
    cross_validation_jobs: Option<usize>,
) -> Result<TrainReport, TrainError> {
    let evaluation = match cross_validation_jobs {
        Some(jobs) => Some(cross_validate(
            data_dir,
            &CvSettings { recipe: config.clone(), runs: split::FOLDS, folds: split::FOLDS, untouched: true, later_cycles: true, later_cycles_of_folds: true, jobs },
        )?),
        None => None,
    };
    let (model, report) = train(data_dir, version, config, held_out)?;
    let model = match evaluation {
        Some(cv) => {
            // Held out the untouched blocks, the artifact and the untouched run of this seed
            // trained on the same rows: the same weights, so the same figures, or the
            // evaluation is not of this artifact's recipe.
            let same_run = cv.untouched.iter().find(|run| run.seed == config.seed).is_some_and(|run| run.gnn == report.gnn && run.mlp == report.mlp);
            if held_out == HeldOut::UntouchedBlocks && !same_run {
                return Err(TrainError::Data("the cross-validation's untouched run of this seed differs from the trained artifact".into()));
            }
            let mut manifest = model.manifest().clone();
            manifest.evaluation = Some(cv.summary());
            RigModel::new(manifest, model.weights().clone())?
        }
        None => model,
    };
    model.save(out_dir)?;
    Ok(report)
}
