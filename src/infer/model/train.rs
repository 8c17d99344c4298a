//! Training: features → normalisation (training rows only) → GNN and MLP fitted with AdamW on
//! the block-aware split → validation accuracies → a `RigModel` with its manifest.
//!
//! Determinism: all randomness comes from `params::Rng` seeded by `TrainConfig::seed`, and the
//! whole run executes inside a one-thread rayon pool, so candle's matmuls cannot split work across
//! threads; the same seed and data give bit-identical weights.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

use super::artifact::{self, Accuracies, Manifest, TrainingData, Validation};
use super::data::{self, TargetSpec};
use super::features::{NODE_FEATURES, Normalisation, feature_names};
use super::gnn::{Arch, Gnn, GraphSpec, Mlp, Net};
use super::params::{Params, Rng};
use super::{ModelError, RigModel};

/// Hyper-parameters; stored in the manifest.
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
        }
    }
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrainReport {
    pub seed: u64,
    pub epochs: usize,
    pub train_rows: usize,
    pub validation_rows: usize,
    pub seconds: f64,
    pub data_sha256: String,
    pub gnn: Accuracies,
    pub mlp: Accuracies,
}

impl fmt::Display for TrainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "trained seed {} for {} epochs in {:.1} s on {} rows; validation on {} rows", self.seed, self.epochs, self.seconds, self.train_rows, self.validation_rows)?;
        writeln!(f, "{:<12} {:>8} {:>8}", "target", "GNN", "MLP")?;
        for (target, acc) in &self.gnn {
            writeln!(f, "{:<12} {:>7.2}% {:>7.2}%", target, 100.0 * acc, 100.0 * self.mlp.get(target).copied().unwrap_or(f64::NAN))?;
        }
        Ok(())
    }
}

/// Inputs and labels as tensors.
pub(super) struct Prepared {
    /// `[rows, sensors, NODE_FEATURES]`.
    pub x: Tensor,
    /// Per target, `[rows]` class indices.
    pub y: Vec<Vec<u32>>,
}

pub(super) fn prepare(cycles: &[crate::rig::Cycle], norm: &Normalisation, targets: &[TargetSpec]) -> Result<Prepared, ModelError> {
    let raw = data::cycle_features(cycles);
    let sensors = raw.first().map_or(0, Vec::len);
    let mut flat = Vec::with_capacity(raw.len() * sensors * NODE_FEATURES);
    for row in &raw {
        norm.apply(row, &mut flat);
    }
    let mut y = vec![Vec::with_capacity(cycles.len()); targets.len()];
    for c in cycles {
        for (t, label) in data::labels(&c.conditions, targets)?.into_iter().enumerate() {
            y[t].push(label);
        }
    }
    Ok(Prepared { x: Tensor::from_vec(flat, (raw.len(), sensors, NODE_FEATURES), &Device::Cpu)?, y })
}

/// Trains both networks on `data_dir` and returns the model (not yet saved) and its report.
pub fn train(data_dir: &Path, config: &TrainConfig) -> Result<(RigModel, TrainReport), ModelError> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().map_err(|e| ModelError::Data(format!("thread pool: {e}")))?;
    pool.install(|| train_here(data_dir, config))
}

fn train_here(data_dir: &Path, config: &TrainConfig) -> Result<(RigModel, TrainReport), ModelError> {
    let started = Instant::now();
    let mut cycles = crate::rig::load(data_dir)?;
    if let Some(max) = config.max_rows {
        cycles.truncate(max);
    }
    if cycles.is_empty() {
        return Err(ModelError::Data(format!("no cycles in {}", data_dir.display())));
    }
    let sha = data::data_sha256(data_dir)?;
    let spec = GraphSpec::rig();
    let targets = data::rig_targets();
    let is_val = data::validation_rows(&cycles);
    let raw = data::cycle_features(&cycles);
    let norm = Normalisation::fit(raw.iter().zip(&is_val).filter(|(_, v)| !**v).map(|(r, _)| r), spec.sensors.len());
    let prepared = prepare(&cycles, &norm, &targets)?;
    let train_rows: Vec<u32> = (0..cycles.len() as u32).filter(|i| !is_val[*i as usize]).collect();
    let val_rows: Vec<u32> = (0..cycles.len() as u32).filter(|i| is_val[*i as usize]).collect();
    let arch = Arch {
        features: NODE_FEATURES,
        hidden: config.hidden,
        layers: config.layers,
        head_hidden: config.head_hidden,
        readout: config.readout,
        mlp_hidden: config.mlp_hidden,
        classes: targets.iter().map(|t| t.classes.len()).collect(),
    };
    let target_ids: Vec<String> = targets.iter().map(|t| t.component.clone()).collect();

    // Separate generator streams, so changing one network's size does not reshuffle the other.
    let mut rng = Rng::new(config.seed);
    let mut init = Params::new();
    Gnn::init(&mut init, &mut rng, &spec, &arch)?;
    let gnn_params = fit(init, |p| Ok(Net::Gnn(Gnn::load(p, &spec, &arch, &target_ids)?)), &prepared, &train_rows, config, Rng::new(config.seed ^ 0x6E6E))?;
    let mut rng = Rng::new(config.seed.wrapping_add(1));
    let mut init = Params::new();
    Mlp::init(&mut init, &mut rng, spec.sensors.len(), &arch)?;
    let mlp_params = fit(init, |p| Ok(Net::Mlp(Mlp::load(p, spec.sensors.len(), &arch)?)), &prepared, &train_rows, config, Rng::new(config.seed ^ 0x6D6C70))?;

    let mut params = gnn_params;
    params.extend(mlp_params);
    let manifest_without_metrics = |validation: Validation, seconds: f64| Manifest {
        format: artifact::FORMAT.into(),
        version: "uci-rig-v1".into(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        seed: config.seed,
        topology_hash: crate::rig::rig_topology().hash(),
        sensor_order: spec.sensors.iter().map(|(s, _)| s.clone()).collect(),
        component_ids: spec.components.clone(),
        graph: spec.clone(),
        feature_names: feature_names(),
        normalisation: norm.clone(),
        targets: targets.clone(),
        score: "1 - P(nominal class) of the component's head (nominal: cooler 100 %, valve 100 %, pump leakage 0, accumulator 130 bar)".into(),
        arch: arch.clone(),
        hyper_parameters: config.clone(),
        training_data: TrainingData {
            files: data::data_files(),
            sha256: sha.clone(),
            rows: cycles.len(),
            train_rows: train_rows.len(),
            validation_rows: val_rows.len(),
            split: "per run of identical (cooler, valve, pump, accumulator) labels: last fifth (rounded) validates, the rest trains".into(),
        },
        validation,
        training_seconds: seconds,
    };
    let empty = Validation { gnn: BTreeMap::new(), mlp: BTreeMap::new() };
    let mut model = RigModel::from_parts(manifest_without_metrics(empty, 0.0), params)?;
    let (gnn, mlp) = super::eval::split_accuracies(&model, &prepared, &val_rows)?;
    let seconds = started.elapsed().as_secs_f64();
    model.manifest = manifest_without_metrics(Validation { gnn: gnn.clone(), mlp: mlp.clone() }, seconds);
    let report = TrainReport { seed: config.seed, epochs: config.epochs, train_rows: train_rows.len(), validation_rows: val_rows.len(), seconds, data_sha256: sha, gnn, mlp };
    Ok((model, report))
}

/// Fits one network from its initial parameters; returns the trained parameters, detached.
fn fit(
    init: Params,
    build: impl Fn(&Params) -> Result<Net, ModelError>,
    data: &Prepared,
    rows: &[u32],
    config: &TrainConfig,
    mut rng: Rng,
) -> Result<Params, ModelError> {
    let vars: BTreeMap<String, Var> = init.iter().map(|(k, t)| Ok((k.clone(), Var::from_tensor(t)?))).collect::<Result<_, ModelError>>()?;
    let live: Params = vars.iter().map(|(k, v)| (k.clone(), v.as_tensor().clone())).collect();
    let net = build(&live)?;
    let adamw = ParamsAdamW { lr: config.learning_rate, weight_decay: config.weight_decay, ..ParamsAdamW::default() };
    let mut opt = AdamW::new(vars.values().cloned().collect(), adamw)?;
    let labels: Vec<Tensor> = data.y.iter().map(|y| Tensor::new(y.as_slice(), &Device::Cpu)).collect::<Result<_, _>>()?;
    let sensors = data.x.dim(1)?;
    let mut order = rows.to_vec();
    for epoch in 0..config.epochs {
        // Cosine decay: large steps early, a quiet finish so the last epoch's weights are stable.
        let progress = epoch as f64 / config.epochs.max(1) as f64;
        opt.set_learning_rate(config.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()));
        rng.shuffle(&mut order);
        for batch in order.chunks(config.batch_size.max(1)) {
            let idx = Tensor::new(batch, &Device::Cpu)?;
            let mut x = data.x.index_select(&idx, 0)?;
            if config.sensor_dropout > 0.0 {
                let keep: Vec<f32> = (0..batch.len() * sensors).map(|_| if rng.uniform() < config.sensor_dropout { 0.0 } else { 1.0 }).collect();
                x = x.broadcast_mul(&Tensor::from_vec(keep, (batch.len(), sensors, 1), &Device::Cpu)?)?;
            }
            let logits = net.forward(&x)?;
            let mut loss: Option<Tensor> = None;
            for (l, y) in logits.iter().zip(&labels) {
                let ce = candle_nn::loss::cross_entropy(l, &y.index_select(&idx, 0)?)?;
                loss = Some(match loss {
                    Some(total) => (total + ce)?,
                    None => ce,
                });
            }
            if let Some(loss) = loss {
                opt.backward_step(&loss)?;
            }
        }
    }
    vars.into_iter().map(|(k, v)| Ok((k, v.as_tensor().copy()?.detach()))).collect()
}
