//! `manifold model eval --cross-validate`: the training recipe judged on blocks it never saw.
//!
//! Run `i` trains with seed `seed + i` on every fold but fold `i mod folds` and is scored on
//! that fold, so five runs cover five folds with five seeds and the spread holds both the seed's
//! and the data's share. With `--untouched`, each seed also trains on all folds and is scored on
//! the test split (`split::BlockSplit`): that figure is for a recipe that is final, not for
//! choosing one. With `--later-cycles`, each seed also trains on the first four fifths of every
//! block and is scored on the last fifth: new cycles of conditions the model has seen, as a rig
//! in service meets them, and the case of an artifact trained on every row. That judge trains on
//! the test split's first cycles; `--later-cycles-of-folds` asks the same question of the fold
//! blocks alone, so a recipe may be chosen on it. Every run is also
//! scored with each sensor missing from every window, as scoring sees a sensor that never
//! reported.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use candle_core::{Device, Tensor};
use serde::Serialize;

use super::TrainError;
use super::data;
use super::eval::{ensemble_accuracies, split_accuracies};
use super::fit::{Prepared, fit_on};
use super::split::{BlockSplit, TEST_EVERY};
use crate::model::{Accuracies, GraphSpec, HeldOut, TrainConfig};
use crate::rig;

#[derive(Debug, Clone)]
pub struct CvSettings {
    /// The recipe; its seed is the first run's.
    pub recipe: TrainConfig,
    pub runs: usize,
    pub folds: usize,
    pub untouched: bool,
    /// Also train each seed on the first four fifths of every block and score the last fifth.
    pub later_cycles: bool,
    /// The same within the fold blocks only: never a row of the test split.
    pub later_cycles_of_folds: bool,
    /// Runs trained at once, each on one thread (a run is deterministic whatever this is).
    pub jobs: usize,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunEval {
    pub seed: u64,
    /// The fold scored; None for a run scored on the test split or on later cycles.
    pub fold: Option<usize>,
    pub rows: usize,
    pub gnn: Accuracies,
    pub mlp: Accuracies,
    /// Both networks' class probabilities averaged.
    pub ensemble: Accuracies,
    /// Per sensor: the accuracies with that sensor absent from every window.
    pub missing: BTreeMap<String, (Accuracies, Accuracies)>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CvReport {
    pub recipe: TrainConfig,
    pub split: String,
    pub blocks: usize,
    pub test_rows: usize,
    pub fold_rows: Vec<usize>,
    pub cross_validation: Vec<RunEval>,
    pub untouched: Vec<RunEval>,
    /// Rows in the last fifth of each block, which the `later_cycles` runs score.
    pub later_rows: usize,
    pub later_cycles: Vec<RunEval>,
    /// Rows in the last fifth of each fold block, which the `later_cycles_of_folds` runs score.
    pub later_fold_rows: usize,
    pub later_cycles_of_folds: Vec<RunEval>,
}

/// What a run trains on and scores.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Judge {
    Fold(usize),
    Untouched,
    LaterCycles,
    LaterCyclesOfFolds,
}

/// Mean and sample standard deviation.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct Spread {
    pub mean: f64,
    pub sd: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        let n = values.len().max(1) as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = if values.len() > 1 { values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
        Spread { mean, sd: var.sqrt() }
    }
}

impl fmt::Display for Spread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:6.2} ± {:4.2} %", 100.0 * self.mean, 100.0 * self.sd)
    }
}

/// Per component, the spread of one accuracy over runs.
pub fn spread(runs: &[RunEval], pick: impl Fn(&RunEval) -> Option<&Accuracies>) -> BTreeMap<String, Spread> {
    let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for accuracies in runs.iter().filter_map(&pick) {
        for (component, a) in accuracies {
            values.entry(component.clone()).or_default().push(*a);
        }
    }
    values.into_iter().map(|(c, v)| (c, Spread::of(&v))).collect()
}

impl CvReport {
    /// `{"cross_validation": {"gnn": {component: {mean, sd}}, "mlp": …}, "untouched": …,
    /// "missing": {sensor: {"gnn": …, "mlp": …}}, "missing_untouched": …}`: what a manifest keeps.
    pub fn summary(&self) -> serde_json::Value {
        let nets = |runs: &[RunEval]| {
            serde_json::json!({
                "runs": runs.len(),
                "gnn": spread(runs, |r| Some(&r.gnn)),
                "mlp": spread(runs, |r| Some(&r.mlp)),
                "ensemble": spread(runs, |r| Some(&r.ensemble)),
            })
        };
        serde_json::json!({
            "recipe": self.recipe,
            "split": self.split,
            "blocks": self.blocks,
            "test_rows": self.test_rows,
            "fold_rows": self.fold_rows,
            "cross_validation": nets(&self.cross_validation),
            "untouched": nets(&self.untouched),
            "later_rows": self.later_rows,
            "later_cycles": nets(&self.later_cycles),
            "missing": missing_spreads(&self.cross_validation),
            "missing_untouched": missing_spreads(&self.untouched),
            "missing_later_cycles": missing_spreads(&self.later_cycles),
            "later_fold_rows": self.later_fold_rows,
            "later_cycles_of_folds": nets(&self.later_cycles_of_folds),
            "missing_later_cycles_of_folds": missing_spreads(&self.later_cycles_of_folds),
        })
    }

    /// [`CvReport::summary`] with every run's figures under `"runs"`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut json = self.summary();
        json["runs"] = serde_json::json!({
            "cross_validation": self.cross_validation,
            "untouched": self.untouched,
            "later_cycles": self.later_cycles,
            "later_cycles_of_folds": self.later_cycles_of_folds,
        });
        json
    }
}

/// Per sensor left out, the spread of each network's accuracies over `runs`.
fn missing_spreads(runs: &[RunEval]) -> serde_json::Map<String, serde_json::Value> {
    let sensors: Vec<&String> = runs.first().map(|r| r.missing.keys().collect()).unwrap_or_default();
    sensors
        .into_iter()
        .map(|s| {
            let gnn = spread(runs, |r| r.missing.get(s).map(|m| &m.0));
            let mlp = spread(runs, |r| r.missing.get(s).map(|m| &m.1));
            (s.clone(), serde_json::json!({ "gnn": gnn, "mlp": mlp }))
        })
        .collect()
}

impl fmt::Display for CvReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.split)?;
        let r = &self.recipe;
        writeln!(
            f,
            "recipe: seed {} + run, {} epochs, sensor dropout {}, GNN width {}, weight decay {}, {:?} features",
            r.seed, r.epochs, r.sensor_dropout, r.hidden, r.weight_decay, r.features
        )?;
        // `unfolded` names, in the per-run lines, the rows a run without a fold scored.
        let table = |f: &mut fmt::Formatter<'_>, title: &str, unfolded: &str, runs: &[RunEval]| -> fmt::Result {
            if runs.is_empty() {
                return Ok(());
            }
            writeln!(f, "\n{title} ({} runs, mean ± sd):", runs.len())?;
            let (gnn, mlp, both) = (spread(runs, |r| Some(&r.gnn)), spread(runs, |r| Some(&r.mlp)), spread(runs, |r| Some(&r.ensemble)));
            for (component, g) in &gnn {
                writeln!(f, "  {component:<12} GNN {g}   MLP {}   both {}", mlp[component], both[component])?;
            }
            // Each run apart: a spread can hide one fold that fails while the others do well.
            writeln!(f, "  per run, GNN / MLP:")?;
            for run in runs {
                let part = run.fold.map_or_else(|| unfolded.to_owned(), |k| format!("fold {k}"));
                write!(f, "    seed {:<4} {part:<7} {:>4} rows", run.seed, run.rows)?;
                for (component, g) in &run.gnn {
                    write!(f, "   {component} {:5.1} / {:5.1}", 100.0 * g, 100.0 * run.mlp.get(component).copied().unwrap_or(f64::NAN))?;
                }
                writeln!(f)?;
            }
            Ok(())
        };
        table(f, "cross-validation", "", &self.cross_validation)?;
        table(f, "untouched test split", "test", &self.untouched)?;
        table(f, "later cycles: the last fifth of each block, trained on the rest", "later", &self.later_cycles)?;
        table(f, "later cycles of the fold blocks (no test row trained or scored)", "later", &self.later_cycles_of_folds)?;
        missing_table(f, "cross-validation", &self.cross_validation)?;
        missing_table(f, "untouched test split", &self.untouched)?;
        missing_table(f, "later cycles", &self.later_cycles)?;
        missing_table(f, "later cycles of the fold blocks", &self.later_cycles_of_folds)
    }
}

/// Per sensor left out of every window, each component's mean accuracy over `runs`.
fn missing_table(f: &mut fmt::Formatter<'_>, title: &str, runs: &[RunEval]) -> fmt::Result {
    let Some(first) = runs.first() else { return Ok(()) };
    writeln!(f, "\none sensor missing from every window ({title}, GNN / MLP mean):")?;
    let components: Vec<&String> = first.gnn.keys().collect();
    write!(f, "  {:<6}", "sensor")?;
    for c in &components {
        write!(f, " {c:>17}")?;
    }
    writeln!(f)?;
    for sensor in first.missing.keys() {
        write!(f, "  {sensor:<6}")?;
        let gnn = spread(runs, |r| r.missing.get(sensor).map(|m| &m.0));
        let mlp = spread(runs, |r| r.missing.get(sensor).map(|m| &m.1));
        for c in &components {
            write!(f, "    {:6.2} / {:6.2}", 100.0 * gnn[*c].mean, 100.0 * mlp[*c].mean)?;
        }
        writeln!(f)?;
    }
    Ok(())
}

/// Cross-validates the recipe on the data in `data_dir` (and, if asked, scores it on the
/// untouched test split).
pub fn cross_validate(data_dir: &Path, settings: &CvSettings) -> Result<CvReport, TrainError> {
    let cycles = rig::load(data_dir)?;
    let split = BlockSplit::new(&cycles, settings.folds);
    if split.folds.iter().any(Vec::is_empty) || split.test.is_empty() {
        return Err(TrainError::Data(format!("{} blocks are too few for {} folds and a test split", split.blocks, settings.folds)));
    }
    let spec = GraphSpec::from_topology(&rig::rig_topology());
    let later = BlockSplit::held_out_rows(&cycles, HeldOut::LastFifthOfEachBlock);
    // Both sorted: the later rows of the fold blocks are those not in the test split.
    let later_of_folds: Vec<u32> = later.iter().copied().filter(|r| split.test.binary_search(r).is_err()).collect();
    let seeds = || (0..settings.runs).map(|i| settings.recipe.seed + i as u64);
    let mut plan: Vec<(u64, Judge)> = seeds().enumerate().map(|(i, seed)| (seed, Judge::Fold(i % split.folds.len()))).collect();
    if settings.untouched {
        plan.extend(seeds().map(|seed| (seed, Judge::Untouched)));
    }
    if settings.later_cycles {
        plan.extend(seeds().map(|seed| (seed, Judge::LaterCycles)));
    }
    if settings.later_cycles_of_folds {
        plan.extend(seeds().map(|seed| (seed, Judge::LaterCyclesOfFolds)));
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<RunEval, TrainError>>>> = Mutex::new(plan.iter().map(|_| None).collect());
    let work = || -> Result<(), TrainError> {
        // One thread per run, as `model train` does, so a run's weights do not depend on how
        // many run beside it.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().map_err(|e| TrainError::Data(format!("thread pool: {e}")))?;
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(seed, judge)) = plan.get(i) else { return Ok(()) };
            let outcome = pool.install(|| one_run(&cycles, &split, (&later, &later_of_folds), &spec, &settings.recipe, seed, judge));
            results.lock().map_err(|_| TrainError::Data("a training run panicked".into()))?[i] = Some(outcome);
        }
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..settings.jobs.clamp(1, plan.len().max(1))).map(|_| scope.spawn(work)).collect();
        workers.into_iter().try_for_each(|w| w.join().unwrap_or_else(|_| Err(TrainError::Data("a training run panicked".into()))))
    })?;
    let (mut cross_validation, mut untouched, mut later_cycles, mut later_cycles_of_folds) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let results = results.into_inner().map_err(|_| TrainError::Data("a training run panicked".into()))?;
    for (outcome, (_, judge)) in results.into_iter().zip(&plan) {
        let run = outcome.ok_or_else(|| TrainError::Data("a training run did not finish".into()))??;
        match judge {
            Judge::Fold(_) => cross_validation.push(run),
            Judge::Untouched => untouched.push(run),
            Judge::LaterCycles => later_cycles.push(run),
            Judge::LaterCyclesOfFolds => later_cycles_of_folds.push(run),
        }
    }
    Ok(CvReport {
        recipe: settings.recipe.clone(),
        split: format!(
            "whole blocks of identical (cooler, valve, pump, accumulator) labels: about 1 row in {TEST_EVERY} (whole blocks, spread over the file) is the untouched test split, the other blocks fill {} folds in time order, each to the fold with the fewest rows",
            split.folds.len()
        ),
        blocks: split.blocks,
        test_rows: split.test.len(),
        fold_rows: split.folds.iter().map(Vec::len).collect(),
        cross_validation,
        untouched,
        later_rows: later.len(),
        later_cycles,
        later_fold_rows: later_of_folds.len(),
        later_cycles_of_folds,
    })
}

/// `later`: the last fifth of every block, and of the fold blocks only.
fn one_run(cycles: &[rig::Cycle], split: &BlockSplit, later: (&[u32], &[u32]), spec: &GraphSpec, recipe: &TrainConfig, seed: u64, judge: Judge) -> Result<RunEval, TrainError> {
    let (train_rows, scored_rows, fold) = rows_of(cycles, split, later, judge);
    let targets = data::rig_targets();
    let config = TrainConfig { seed, ..recipe.clone() };
    let fitted = fit_on(cycles, &train_rows, spec, &targets, &config)?;
    let (gnn, mlp) = split_accuracies(&fitted.networks, &targets, &fitted.prepared, &scored_rows)?;
    let ensemble = ensemble_accuracies(&fitted.networks, &targets, &fitted.prepared, &scored_rows)?;
    let mut missing = BTreeMap::new();
    for (s, (sensor, _)) in spec.sensors.iter().enumerate() {
        let without = without_sensor(&fitted.prepared, s)?;
        missing.insert(sensor.clone(), split_accuracies(&fitted.networks, &targets, &without, &scored_rows)?);
    }
    Ok(RunEval { seed, fold, rows: scored_rows.len(), gnn, mlp, ensemble, missing })
}

/// The inputs with sensor `s` absent from every row: all of its features and its present flag
/// 0, exactly what `Normalisation::apply` gives a sensor that never reported.
fn without_sensor(data: &Prepared, s: usize) -> Result<Prepared, TrainError> {
    let sensors = data.x.dim(1)?;
    let keep: Vec<f32> = (0..sensors).map(|i| if i == s { 0.0 } else { 1.0 }).collect();
    let mask = Tensor::from_vec(keep, (1, sensors, 1), &Device::Cpu)?;
    Ok(Prepared { x: data.x.broadcast_mul(&mask)?, y: data.y.clone() })
}

/// The rows a run of `judge` trains on and scores, and the fold it scores.
fn rows_of(cycles: &[rig::Cycle], split: &BlockSplit, (later, later_of_folds): (&[u32], &[u32]), judge: Judge) -> (Vec<u32>, Vec<u32>, Option<usize>) {
    match judge {
        Judge::Fold(k) => (split.training_for(k), split.folds[k].clone(), Some(k)),
        Judge::Untouched => (split.all_folds(), split.test.clone(), None),
        Judge::LaterCycles => (BlockSplit::rows_without(cycles, later), later.to_vec(), None),
        Judge::LaterCyclesOfFolds => {
            let mut held: Vec<u32> = later_of_folds.iter().chain(&split.test).copied().collect();
            held.sort_unstable();
            (BlockSplit::rows_without(cycles, &held), later_of_folds.to_vec(), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    #[test]
    fn later_cycles_of_the_folds_never_train_on_or_score_a_test_row() {
        let cycles = rig::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/uci-hydraulic")).expect("the UCI data beside the repository");
        let split = BlockSplit::new(&cycles, 5);
        let later = BlockSplit::held_out_rows(&cycles, HeldOut::LastFifthOfEachBlock);
        let of_folds: Vec<u32> = later.iter().copied().filter(|r| split.test.binary_search(r).is_err()).collect();
        let set = |rows: &[u32]| rows.iter().copied().collect::<BTreeSet<u32>>();
        let test = set(&split.test);
        let (train, scored, fold) = rows_of(&cycles, &split, (&later, &of_folds), Judge::LaterCyclesOfFolds);
        assert_eq!(fold, None);
        assert!(set(&train).is_disjoint(&test) && set(&scored).is_disjoint(&test), "no test row");
        assert!(set(&train).is_disjoint(&set(&scored)), "no scored row trained on");
        assert_eq!(train.len() + scored.len() + test.len(), cycles.len(), "every fold row trains or is scored");
        // Every block judged has its earlier cycles in training.
        let (train_all, scored_all, _) = rows_of(&cycles, &split, (&later, &of_folds), Judge::LaterCycles);
        assert!(set(&scored_all).is_superset(&set(&scored)) && set(&train_all).is_superset(&set(&train)));
        assert!(!set(&train_all).is_disjoint(&test), "the plain later-cycles judge does train on the test split's blocks");
    }
}
