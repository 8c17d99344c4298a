//! The manifest of an artifact: everything needed to turn a window into the model's input, to
//! judge whether the model applies to a system, and to know how it was made.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::features::{FeatureLayout, Normalisation};
use super::sampling::InputSampling;
use crate::domain::Severity;
use super::graph::{Arch, GraphSpec};
use super::subset::Kinds;

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
    /// Which rows `validation` was measured on (manifests made before it was recorded: the last
    /// fifth of each block).
    #[serde(default)]
    pub held_out: HeldOut,
}

/// The rows a model was trained without, on which its manifest's `validation` was measured.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum HeldOut {
    /// The last fifth of each block of identical conditions (`train::validation_rows`): each
    /// has a training neighbour of its own block a minute away.
    #[default]
    LastFifthOfEachBlock,
    /// The untouched test split of whole blocks (`train::BlockSplit`), trained on the folds.
    UntouchedBlocks,
    /// None: trained on every row, as a final artifact is once its recipe has been judged.
    /// `validation` is empty; the recipe's figures are in `evaluation`.
    Nothing,
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
    /// The kind of each component and the kind and unit of each sensor of `graph`, by which a
    /// system whose topology is a subset of the rig's is mapped onto the model (`subset.rs`).
    /// Absent from manifests made before it was recorded: for those, the kinds of the rig
    /// topology whose hash is `topology_hash`, when it is the UCI rig's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Kinds>,
    /// Sensor ids in input order (the same as `graph.sensors`, for readers of the JSON).
    pub sensor_order: Vec<String>,
    /// The sampling each input was trained on, in input order; windows are brought to it before
    /// their features are computed (`sampling.rs`). Empty in a manifest made before it was
    /// recorded: such a model scores windows as sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sampling: Vec<InputSampling>,
    pub component_ids: Vec<String>,
    pub feature_names: Vec<String>,
    pub normalisation: Normalisation,
    pub targets: Vec<TargetSpec>,
    /// How `ComponentScore::score` is defined.
    pub score: String,
    pub arch: Arch,
    pub hyper_parameters: TrainConfig,
    pub training_data: TrainingData,
    /// Accuracies on the rows `training_data.held_out` names; empty when it names none.
    pub validation: Validation,
    pub training_seconds: f64,
    /// The recipe's cross-validation, when training ran it (`model train --cross-validate`):
    /// mean ± sd over seeds on the block folds, on the untouched split and on later cycles,
    /// and with each sensor missing in turn (`train::CvReport::summary`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<serde_json::Value>,
}

/// A labelled component and its classes, as in `profile.txt`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TargetSpec {
    pub component: String,
    pub unit: String,
    /// Class labels in head output order.
    pub classes: Vec<String>,
    /// The healthy class; a component's anomaly score is 1 − P(nominal).
    pub nominal: String,
    /// What each class means, one entry per class (in `classes` order). Absent from manifests
    /// made before classes had names: their scores carry no names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<ConditionSpec>,
}

/// A class's name and severity, as the model's documentation gives them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    pub class: String,
    pub name: String,
    pub severity: Severity,
}

impl TargetSpec {
    /// The name and severity of one of this target's classes, when the manifest names them.
    pub fn condition(&self, class: &str) -> Option<&ConditionSpec> {
        self.conditions.iter().find(|c| c.class == class)
    }

    /// Names are all or nothing: every class named exactly once, no other class named.
    pub fn check_conditions(&self) -> Result<(), String> {
        if self.conditions.is_empty() {
            return Ok(());
        }
        for class in &self.classes {
            let named = self.conditions.iter().filter(|c| c.class == *class).count();
            if named != 1 || self.condition(class).is_some_and(|c| c.name.trim().is_empty()) {
                return Err(format!("targets[{}].conditions: class {class:?} is named {named} times (or with an empty name), expected once", self.component));
            }
        }
        match self.conditions.iter().find(|c| !self.classes.contains(&c.class)) {
            Some(extra) => Err(format!("targets[{}].conditions: class {:?} is not one of {:?}", self.component, extra.class, self.classes)),
            None => Ok(()),
        }
    }
}

/// The hyper-parameters training ran with; stored in the manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TrainConfig {
    pub seed: u64,
    pub epochs: usize,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    /// Probability that a sensor of a training example is blanked out (as if missing), so the
    /// networks learn to live with a missing sensor.
    pub sensor_dropout: f64,
    pub hidden: usize,
    pub layers: usize,
    pub head_hidden: usize,
    pub readout: bool,
    pub mlp_hidden: usize,
    /// Use at most this many rows of the data (from the start); for quick tests.
    pub max_rows: Option<usize>,
    /// The features the networks read (manifests made before it was recorded: `summary`).
    #[serde(default = "FeatureLayout::legacy")]
    pub features: FeatureLayout,
}

impl TrainConfig {
    /// The configuration of the shipped artifact, with the given seed and epochs.
    pub fn new(seed: u64, epochs: usize) -> Self {
        TrainConfig {
            seed,
            epochs,
            batch_size: 32,
            learning_rate: 3e-3,
            weight_decay: 1e-2,
            sensor_dropout: 0.05,
            hidden: 32,
            layers: 3,
            head_hidden: 32,
            readout: true,
            mlp_hidden: 64,
            max_rows: None,
            features: FeatureLayout::NEWEST,
        }
    }
}
