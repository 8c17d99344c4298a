//! Evaluation of a saved model on a data directory: accuracy and confusion matrix per target,
//! for the GNN and for the MLP baseline shipped beside it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use candle_core::{D, Device, Tensor};
use serde::Serialize;

use super::TrainError;
use super::fit::{Prepared, prepare};
use super::split::BlockSplit;
use super::nets::{Net, Networks};
use crate::model::{Accuracies, HeldOut, Network, RigModel, TargetSpec};
use crate::rig;

/// Rows per forward pass: bounds memory without costing speed.
const CHUNK: usize = 512;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NetEval {
    pub accuracy: f64,
    /// `confusion[true class][predicted class]`, classes in `TargetEval::classes` order.
    pub confusion: Vec<Vec<u64>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TargetEval {
    pub component: String,
    pub classes: Vec<String>,
    pub gnn: NetEval,
    pub mlp: NetEval,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EvalReport {
    pub model_version: String,
    /// Which rows: "all", or those the model was trained without: "untouched blocks" or (models
    /// before the block split) "last fifth of each block".
    pub rows: String,
    pub cycles: usize,
    pub targets: Vec<TargetEval>,
}

impl EvalReport {
    /// GNN accuracy of one target component.
    pub fn accuracy(&self, component: &str) -> Option<f64> {
        self.targets.iter().find(|t| t.component == component).map(|t| t.gnn.accuracy)
    }

    /// `{"cooler":…,"valve":…,"pump":…,"accumulator":…,"cycles":N,"baseline":{…}}`: GNN
    /// accuracies at the top, the MLP's under "baseline".
    pub fn to_json(&self) -> serde_json::Value {
        let mut top = serde_json::Map::new();
        let mut baseline = serde_json::Map::new();
        for t in &self.targets {
            top.insert(t.component.clone(), t.gnn.accuracy.into());
            baseline.insert(t.component.clone(), t.mlp.accuracy.into());
        }
        top.insert("cycles".into(), self.cycles.into());
        top.insert("rows".into(), self.rows.clone().into());
        top.insert("model_version".into(), self.model_version.clone().into());
        top.insert("baseline".into(), serde_json::Value::Object(baseline));
        serde_json::Value::Object(top)
    }
}

impl fmt::Display for EvalReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "model {}: {} cycles ({} rows)", self.model_version, self.cycles, self.rows)?;
        for t in &self.targets {
            writeln!(f, "\n{}: GNN {:.2}%   MLP baseline {:.2}%", t.component, 100.0 * t.gnn.accuracy, 100.0 * t.mlp.accuracy)?;
            for (name, net) in [("GNN", &t.gnn), ("MLP", &t.mlp)] {
                write!(f, "  {name} true\\pred")?;
                for c in &t.classes {
                    write!(f, "{c:>7}")?;
                }
                writeln!(f)?;
                for (class, row) in t.classes.iter().zip(&net.confusion) {
                    write!(f, "  {class:>13}")?;
                    for n in row {
                        write!(f, "{n:>7}")?;
                    }
                    writeln!(f)?;
                }
            }
        }
        Ok(())
    }
}

/// Predicted class per row and target.
fn predict(net: &Net, x: &Tensor, targets: usize) -> Result<Vec<Vec<u32>>, TrainError> {
    let rows = x.dim(0)?;
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); targets];
    let mut start = 0;
    while start < rows {
        let len = CHUNK.min(rows - start);
        let logits = net.forward(&x.narrow(0, start, len)?)?;
        for (t, l) in logits.iter().enumerate() {
            out[t].extend(l.argmax(D::Minus1)?.to_vec1::<u32>()?);
        }
        start += len;
    }
    Ok(out)
}

fn net_eval(predicted: &[u32], truth: &[u32], classes: usize) -> NetEval {
    let mut confusion = vec![vec![0u64; classes]; classes];
    for (p, t) in predicted.iter().zip(truth) {
        confusion[*t as usize][*p as usize] += 1;
    }
    let correct = predicted.iter().zip(truth).filter(|(p, t)| p == t).count();
    NetEval { accuracy: correct as f64 / truth.len().max(1) as f64, confusion }
}

/// The report of `networks`, whose heads are `targets`, on `rows` of `data`.
fn report(networks: &Networks, targets: &[TargetSpec], data: &Prepared, rows: &[u32], version: &str, label: &str) -> Result<EvalReport, TrainError> {
    let n = targets.len();
    let truth: Vec<Vec<u32>> = data.y.iter().map(|y| rows.iter().map(|r| y[*r as usize]).collect()).collect();
    let (gnn, mlp) = if rows.is_empty() {
        (vec![Vec::new(); n], vec![Vec::new(); n])
    } else {
        let x = data.x.index_select(&Tensor::new(rows, &Device::Cpu)?, 0)?;
        (predict(networks.get(Network::Gnn), &x, n)?, predict(networks.get(Network::Mlp), &x, n)?)
    };
    let targets = targets
        .iter()
        .enumerate()
        .map(|(t, spec)| TargetEval {
            component: spec.component.clone(),
            classes: spec.classes.clone(),
            gnn: net_eval(&gnn[t], &truth[t], spec.classes.len()),
            mlp: net_eval(&mlp[t], &truth[t], spec.classes.len()),
        })
        .collect();
    Ok(EvalReport { model_version: version.into(), rows: label.into(), cycles: rows.len(), targets })
}

/// Accuracy per target of the two networks together: the mean of their class probabilities,
/// its most probable class.
pub(super) fn ensemble_accuracies(networks: &Networks, targets: &[TargetSpec], data: &Prepared, rows: &[u32]) -> Result<Accuracies, TrainError> {
    let mut correct = vec![0usize; targets.len()];
    let mut start = 0;
    while start < rows.len() {
        let part = &rows[start..(start + CHUNK).min(rows.len())];
        let x = data.x.index_select(&Tensor::new(part, &Device::Cpu)?, 0)?;
        let gnn = networks.get(Network::Gnn).forward(&x)?;
        let mlp = networks.get(Network::Mlp).forward(&x)?;
        for (t, (g, m)) in gnn.iter().zip(&mlp).enumerate() {
            let mean = ((candle_nn::ops::softmax_last_dim(g)? + candle_nn::ops::softmax_last_dim(m)?)? * 0.5)?;
            let predicted = mean.argmax(D::Minus1)?.to_vec1::<u32>()?;
            correct[t] += predicted.iter().zip(part).filter(|(p, r)| **p == data.y[t][**r as usize]).count();
        }
        start += part.len();
    }
    Ok(targets.iter().zip(correct).map(|(spec, n)| (spec.component.clone(), n as f64 / rows.len().max(1) as f64)).collect())
}

/// Validation accuracies per target of both networks, for the training report.
pub(super) fn split_accuracies(networks: &Networks, targets: &[TargetSpec], data: &Prepared, rows: &[u32]) -> Result<(Accuracies, Accuracies), TrainError> {
    let r = report(networks, targets, data, rows, "", "validation")?;
    let pick = |f: fn(&TargetEval) -> f64| r.targets.iter().map(|t| (t.component.clone(), f(t))).collect::<BTreeMap<_, _>>();
    Ok((pick(|t| t.gnn.accuracy), pick(|t| t.mlp.accuracy)))
}

fn evaluate_rows(model_dir: &Path, data_dir: &Path, validation_only: bool) -> Result<EvalReport, TrainError> {
    let model = RigModel::load(model_dir)?;
    let networks = Networks::of(&model)?;
    let manifest = model.manifest();
    let which = match (validation_only, manifest.training_data.held_out) {
        (false, _) => "all",
        (true, HeldOut::UntouchedBlocks) => "untouched blocks",
        (true, HeldOut::LastFifthOfEachBlock) => "last fifth of each block",
        (true, HeldOut::Nothing) => {
            return Err(TrainError::Data(format!(
                "{} was trained on every row, so none is held out: its recipe's figures are in the manifest's evaluation (model eval --cross-validate judges the recipe again)",
                manifest.version
            )));
        }
    };
    let cycles = rig::load(data_dir)?;
    let data = prepare(&cycles, &manifest.normalisation, &manifest.targets, model.feature_layout())?;
    let rows: Vec<u32> = if validation_only {
        BlockSplit::held_out_rows(&cycles, manifest.training_data.held_out)
    } else {
        (0..cycles.len() as u32).collect()
    };
    report(&networks, &manifest.targets, &data, &rows, &manifest.version, which)
}

/// Evaluates the model in `model_dir` on every row of `data_dir` (e.g. held-out data).
pub fn evaluate(model_dir: &Path, data_dir: &Path) -> Result<EvalReport, TrainError> {
    evaluate_rows(model_dir, data_dir, false)
}

/// Evaluates only the validation rows of the block-aware split of `data_dir`: on the training
/// data, the rows the model did not see.
pub fn evaluate_split(model_dir: &Path, data_dir: &Path) -> Result<EvalReport, TrainError> {
    evaluate_rows(model_dir, data_dir, true)
}
