//! The labelled data: targets and their classes, the block-aware split, and the checksum of
//! the files a model was trained on.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::TrainError;
use crate::model::{Aggregate, ConditionSpec, InputSampling, RAW_FEATURES, TargetSpec, raw_features};
use crate::rig::{Conditions, Cycle, RIG_SENSORS, RIG_TARGETS};

/// The four labelled components of the UCI rig (`rig::RIG_TARGETS`), nominal class first where
/// the data allows, each class with its name and severity.
pub fn rig_targets() -> Vec<TargetSpec> {
    RIG_TARGETS
        .iter()
        .map(|t| TargetSpec {
            component: t.component.into(),
            unit: t.unit.into(),
            classes: t.classes.iter().map(|c| c.label.to_string()).collect(),
            nominal: t.nominal.to_string(),
            conditions: t.classes.iter().map(|c| ConditionSpec { class: c.label.to_string(), name: c.name.into(), severity: c.severity }).collect(),
        })
        .collect()
}

/// The sampling every input is trained on: the data set's 1 Hz series, which for the sensors
/// the rig samples faster are means of 1 s blocks (see the data's README).
pub fn trained_sampling() -> Vec<InputSampling> {
    RIG_SENSORS.iter().map(|s| InputSampling { sensor: s.id.into(), rate_hz: 1.0, aggregate: Aggregate::Mean }).collect()
}

/// Class index of every target for one cycle; an unknown label is an error, not a guess.
pub fn labels(c: &Conditions, targets: &[TargetSpec]) -> Result<Vec<u32>, TrainError> {
    targets
        .iter()
        .map(|t| {
            let raw = c.label(&t.component).map(|v| v.to_string()).unwrap_or_default();
            t.classes
                .iter()
                .position(|class| *class == raw)
                .map(|i| i as u32)
                .ok_or_else(|| TrainError::Data(format!("{} label {raw:?} is not one of {:?}", t.component, t.classes)))
        })
        .collect()
}

/// Marks the validation rows: for each run of consecutive rows with identical (cooler, valve,
/// pump, accumulator) labels, the last fifth of the run (rounded; at least one row for runs of
/// three or more). The conditions were run in blocks and temperatures drift, so a random split
/// would let a model recognise *when* a cycle ran instead of *what* its condition is.
pub fn validation_rows(cycles: &[Cycle]) -> Vec<bool> {
    let key = |c: &Cycle| (c.conditions.cooler, c.conditions.valve, c.conditions.pump, c.conditions.accumulator);
    let mut out = vec![false; cycles.len()];
    let mut start = 0;
    while start < cycles.len() {
        let mut end = start + 1;
        while end < cycles.len() && key(&cycles[end]) == key(&cycles[start]) {
            end += 1;
        }
        let len = end - start;
        let held = ((len as f64 / 5.0).round() as usize).max(usize::from(len >= 3));
        for flag in &mut out[end - held..end] {
            *flag = true;
        }
        start = end;
    }
    out
}

/// Raw features of every sensor of every cycle (sensors in `RIG_SENSORS` order).
pub fn cycle_features(cycles: &[Cycle]) -> Vec<Vec<Option<[f64; RAW_FEATURES]>>> {
    cycles.iter().map(|c| c.series.iter().map(|values| raw_features(values)).collect()).collect()
}

/// The files `rig::load` reads, in the order it reads them.
pub fn data_files() -> Vec<String> {
    std::iter::once("profile.txt".to_string()).chain(RIG_SENSORS.iter().map(|sensor| format!("{}.txt", sensor.file))).collect()
}

/// SHA-256 over the data files: each file's name, a NUL, its SHA-256, a newline. So the digest
/// names the exact training data without depending on where it lies.
pub fn data_sha256(dir: &Path) -> Result<String, TrainError> {
    let mut all = Sha256::new();
    for name in data_files() {
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).map_err(|source| TrainError::Io { path: path.clone(), source })?;
        all.update(name.as_bytes());
        all.update([0]);
        all.update(hex(&Sha256::digest(&bytes)).as_bytes());
        all.update(b"\n");
    }
    Ok(hex(&all.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
