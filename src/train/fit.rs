//! Training: features → normalisation (training rows only) → GNN and MLP fitted with AdamW on
//! the block-aware split → validation accuracies → a `RigModel` with its manifest.
//!
//! Determinism: all randomness comes from `params::Rng` seeded by `TrainConfig::seed`, and the
//! whole run executes inside a one-thread rayon pool, so candle's matmuls cannot split work across
//! threads; the same seed and data give bit-identical weights.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use serde::Serialize;

use super::TrainError;
use super::data;
use super::nets::{Gnn, Mlp, Net, Networks};
use super::params::{Params, Rng, to_weights};
use super::split::{BlockSplit, TEST_EVERY};
use crate::model::{
    ARTIFACT_FORMAT, Accuracies, Arch, FeatureLayout, GraphSpec, HeldOut, Manifest, Normalisation, RigModel, TargetSpec, TrainConfig, TrainingData,
    Validation,
};
use crate::rig;

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
    /// `[rows, sensors, layout.node()]`.
    pub x: Tensor,
    /// Per target, `[rows]` class indices.
    pub y: Vec<Vec<u32>>,
}

pub(super) fn prepare(cycles: &[rig::Cycle], norm: &Normalisation, targets: &[TargetSpec], layout: FeatureLayout) -> Result<Prepared, TrainError> {
    let raw = data::cycle_features(cycles);
    let sensors = raw.first().map_or(0, Vec::len);
    let mut flat = Vec::with_capacity(raw.len() * sensors * layout.node());
    for row in &raw {
        norm.apply(row, &mut flat);
    }
    let mut y = vec![Vec::with_capacity(cycles.len()); targets.len()];
    for c in cycles {
        for (t, label) in data::labels(&c.conditions, targets)?.into_iter().enumerate() {
            y[t].push(label);
        }
    }
    Ok(Prepared { x: Tensor::from_vec(flat, (raw.len(), sensors, layout.node()), &Device::Cpu)?, y })
}

/// Trains both networks on `data_dir` without the rows `held_out` names and returns the model
/// named `version` (not yet saved) and its report, validated on those rows.
pub fn train(data_dir: &Path, version: &str, config: &TrainConfig, held_out: HeldOut) -> Result<(RigModel, TrainReport), TrainError> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().map_err(|e| TrainError::Data(format!("thread pool: {e}")))?;
    pool.install(|| train_here(data_dir, version, config, held_out))
}

fn train_here(data_dir: &Path, version: &str, config: &TrainConfig, held_out: HeldOut) -> Result<(RigModel, TrainReport), TrainError> {
    let started = Instant::now();
    let mut cycles = rig::load(data_dir)?;
    if let Some(max) = config.max_rows {
        cycles.truncate(max);
    }
    if cycles.is_empty() {
        return Err(TrainError::Data(format!("no cycles in {}", data_dir.display())));
    }
    let sha = data::data_sha256(data_dir)?;
    // The topology lists the sensors in the data set's order, so the graph's input order is
    // the order of each cycle's series.
    let topology = rig::rig_topology();
    let spec = GraphSpec::from_topology(&topology);
    let targets = data::rig_targets();
    // Held out the untouched blocks, this is the same model as `cross_validate`'s untouched run
    // of this seed; held out nothing, it is that recipe trained on every row.
    let val_rows = BlockSplit::held_out_rows(&cycles, held_out);
    let train_rows = BlockSplit::rows_without(&cycles, &val_rows);
    if train_rows.is_empty() || (val_rows.is_empty() && held_out != HeldOut::Nothing) {
        return Err(TrainError::Data(format!("{} rows are too few to hold some out", cycles.len())));
    }
    let Fitted { params, networks, norm, prepared, arch } = fit_on(&cycles, &train_rows, &spec, &targets, config)?;
    // Nothing held out, nothing measured: empty, rather than accuracies of 0 over no rows.
    let (gnn, mlp) = if val_rows.is_empty() { Default::default() } else { super::eval::split_accuracies(&networks, &targets, &prepared, &val_rows)? };
    let seconds = started.elapsed().as_secs_f64();
    let manifest = Manifest {
        format: ARTIFACT_FORMAT.into(),
        version: version.into(),
        created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        seed: config.seed,
        topology_hash: topology.hash(),
        sensor_order: spec.sensors.iter().map(|(s, _)| s.clone()).collect(),
        sampling: data::trained_sampling(),
        component_ids: spec.components.clone(),
        graph: spec.clone(),
        kinds: Some(crate::model::Kinds::of(&topology)),
        feature_names: config.features.names(),
        normalisation: norm,
        targets,
        score: "1 - P(nominal class) of the component's head (nominal: cooler 100 %, valve 100 %, pump leakage 0, accumulator 130 bar)".into(),
        arch,
        hyper_parameters: config.clone(),
        training_data: TrainingData {
            files: data::data_files(),
            sha256: sha.clone(),
            rows: cycles.len(),
            train_rows: train_rows.len(),
            validation_rows: val_rows.len(),
            split: split_text(held_out),
            held_out,
        },
        validation: Validation { gnn: gnn.clone(), mlp: mlp.clone() },
        training_seconds: seconds,
        evaluation: None,
    };
    let model = RigModel::new(manifest, to_weights(&params)?)?;
    networks.check_agreement(&model, &HashMap::new())?;
    let report = TrainReport { seed: config.seed, epochs: config.epochs, train_rows: train_rows.len(), validation_rows: val_rows.len(), seconds, data_sha256: sha, gnn, mlp };
    Ok((model, report))
}

/// How a manifest describes the rows it trained on.
fn split_text(held_out: HeldOut) -> String {
    match held_out {
        HeldOut::UntouchedBlocks => format!(
            "whole blocks of identical (cooler, valve, pump, accumulator) labels: about 1 row in {TEST_EVERY}, in whole blocks spread over the file, is the untouched test split that validates; the rest trains"
        ),
        HeldOut::LastFifthOfEachBlock => "per run of identical (cooler, valve, pump, accumulator) labels: last fifth (rounded) validates, the rest trains".into(),
        HeldOut::Nothing => "every row trains; nothing validates. The recipe was judged on held-out rows before (`evaluation`)".into(),
    }
}

/// Both networks fitted on some rows, with what scoring and evaluation need beside them.
pub(super) struct Fitted {
    pub params: Params,
    pub networks: Networks,
    /// Fitted on the training rows only.
    pub norm: Normalisation,
    /// Every row of the data, normalised with `norm`.
    pub prepared: Prepared,
    pub arch: Arch,
}

/// Fits the GNN and the MLP of `config` on `train_rows` of `cycles`; the normalisation sees
/// only those rows, so whatever is evaluated on the others is unseen in every respect.
pub(super) fn fit_on(cycles: &[rig::Cycle], train_rows: &[u32], spec: &GraphSpec, targets: &[TargetSpec], config: &TrainConfig) -> Result<Fitted, TrainError> {
    let raw = data::cycle_features(cycles);
    let norm = Normalisation::fit(train_rows.iter().map(|r| &raw[*r as usize]), spec.sensors.len(), config.features);
    let prepared = prepare(cycles, &norm, targets, config.features)?;
    let arch = Arch {
        features: config.features.node(),
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
    Gnn::init(&mut init, &mut rng, spec, &arch)?;
    let gnn_params = fit(init, |p| Ok(Net::Gnn(Gnn::load(p, spec, &arch, &target_ids)?)), &prepared, train_rows, config, Rng::new(config.seed ^ 0x6E6E))?;
    let mut rng = Rng::new(config.seed.wrapping_add(1));
    let mut init = Params::new();
    Mlp::init(&mut init, &mut rng, spec.sensors.len(), &arch)?;
    let mlp_params = fit(init, |p| Ok(Net::Mlp(Mlp::load(p, spec.sensors.len(), &arch)?)), &prepared, train_rows, config, Rng::new(config.seed ^ 0x6D6C70))?;

    let mut params = gnn_params;
    params.extend(mlp_params);
    let networks = Networks::load(&params, spec, &arch, &target_ids)?;
    Ok(Fitted { params, networks, norm, prepared, arch })
}

/// Fits one network from its initial parameters; returns the trained parameters, detached.
fn fit(
    init: Params,
    build: impl Fn(&Params) -> Result<Net, TrainError>,
    data: &Prepared,
    rows: &[u32],
    config: &TrainConfig,
    mut rng: Rng,
) -> Result<Params, TrainError> {
    let vars: BTreeMap<String, Var> = init.iter().map(|(k, t)| Ok((k.clone(), Var::from_tensor(t)?))).collect::<Result<_, TrainError>>()?;
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
