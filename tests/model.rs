//! The anomaly-scoring model: determinism of training, the shipped artifact and its recipe
//! (trained again: floors on the untouched blocks, and the artifact itself from every row), an
//! artifact of the older feature layout, and robustness of scoring. No services needed.
//!
//! Re-train the shipped artifact (models/README.md): `manifold model train --data
//! ../shared/data/uci-hydraulic --version uci-rig-v4 --held-out nothing --cross-validate --jobs 2`

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use manifold::model::{self, GraphSpec, Network, RigModel, TrainConfig};
use manifold::domain::Severity;
use manifold::rig;
use manifold::train::{self, Networks};


fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The full UCI copy lies in `../shared` beside the repository (as in CI).
fn full_data() -> Option<PathBuf> {
    let dir = repo("../shared/data/uci-hydraulic");
    if dir.join("profile.txt").exists() {
        Some(dir)
    } else {
        eprintln!("skipped: {} is not there", dir.display());
        None
    }
}

fn shipped() -> RigModel {
    RigModel::load(&repo(model::DEFAULT_MODEL_DIR)).expect("the shipped model loads")
}

/// Row `i` of a data directory as a scoring window.
fn window(dir: &Path, i: usize) -> HashMap<String, Vec<f64>> {
    rig::load(dir).unwrap()[i].window()
}

#[test]
fn training_twice_with_the_same_seed_gives_identical_weights() {
    let data = repo(rig::SAMPLE_DATA);
    let mut config = TrainConfig::new(7, 3);
    config.hidden = 16;
    config.mlp_hidden = 16;
    config.sensor_dropout = 0.1;
    let (a, _) = train::train(&data, "test-seed-7", &config, model::HeldOut::UntouchedBlocks).unwrap();
    let (b, report) = train::train(&data, "test-seed-7", &config, model::HeldOut::UntouchedBlocks).unwrap();
    assert_eq!(a.weights_sha256(), b.weights_sha256());
    assert_eq!(a.manifest().version, "test-seed-7", "the version is the caller's");
    let w = window(&data, 5);
    for network in [Network::Gnn, Network::Mlp] {
        assert_eq!(a.probabilities(&w, network).unwrap(), b.probabilities(&w, network).unwrap());
    }
    config.seed = 8;
    let (c, _) = train::train(&data, "test-seed-8", &config, model::HeldOut::UntouchedBlocks).unwrap();
    assert_ne!(a.weights_sha256(), c.weights_sha256(), "the seed matters");
    // Every block of the sample is one row long: about one in seven is the untouched test split.
    assert_eq!(report.train_rows + report.validation_rows, 144);
    assert!((15..=26).contains(&report.validation_rows), "{} rows held out", report.validation_rows);
    assert_eq!(a.manifest().training_data.held_out, model::HeldOut::UntouchedBlocks);
    assert_eq!(a.feature_layout(), model::FeatureLayout::NEWEST);
    // Training writes the class names, from the same table the shipped manifest was written from.
    assert_eq!(a.manifest().targets, shipped().manifest().targets, "targets, classes, names and severities");
    // And the sampling every input was trained on, as the shipped manifest records it.
    assert_eq!(a.manifest().sampling, shipped().manifest().sampling);
}

#[test]
fn every_class_the_shipped_model_can_output_has_the_documented_name_and_a_severity() {
    let m = shipped();
    assert_eq!(m.manifest().targets.len(), rig::RIG_TARGETS.len());
    for ((target, table), outputs) in m.manifest().targets.iter().zip(&rig::RIG_TARGETS).zip(&m.manifest().arch.classes) {
        assert_eq!(target.component, table.component);
        assert_eq!(target.classes.len(), *outputs, "{}: one class per head output", target.component);
        let named: Vec<(String, &str, Severity)> = target.classes.iter().map(|class| {
            let spec = target.condition(class).unwrap_or_else(|| panic!("{} class {class} has no name", target.component));
            (class.clone(), spec.name.as_str(), spec.severity)
        }).collect();
        let documented: Vec<(String, &str, Severity)> = table.classes.iter().map(|c| (c.label.to_string(), c.name, c.severity)).collect();
        assert_eq!(named, documented, "{}", target.component);
        assert_eq!(target.condition(&target.nominal).map(|c| c.severity), Some(Severity::Ok), "{}: the nominal class is ok", target.component);
    }
    // Whatever the model predicts, the score says what it means.
    let data = repo(rig::SAMPLE_DATA);
    for cycle in rig::load(&data).unwrap().iter().step_by(9) {
        for score in m.score(&cycle.window()) {
            let class = score.condition.as_deref().expect("the rig model always predicts a class");
            let target = m.manifest().targets.iter().find(|t| t.component == score.component_id).unwrap();
            let spec = target.condition(class).unwrap();
            assert_eq!((score.condition_name.as_deref(), score.severity), (Some(spec.name.as_str()), Some(spec.severity)));
        }
    }
}

#[test]
fn a_manifest_naming_classes_must_name_each_once_and_one_naming_none_scores_without_names() {
    let m = shipped();
    let mut unnamed = m.manifest().clone();
    unnamed.targets[2].conditions.pop();
    let err = RigModel::new(unnamed, m.weights().clone()).expect_err("a class without a name is refused").to_string();
    assert!(err.contains("targets[pump].conditions") && err.contains("\"2\""), "names the target and the class: {err}");
    let mut stray = m.manifest().clone();
    stray.targets[0].conditions[0].class = "4".into();
    let err = RigModel::new(stray, m.weights().clone()).expect_err("a name for no class is refused").to_string();
    assert!(err.contains("targets[cooler].conditions"), "{err}");

    // A manifest made before classes had names still loads; its scores carry none.
    let mut old = m.manifest().clone();
    old.targets.iter_mut().for_each(|t| t.conditions.clear());
    let text = serde_json::to_string(&old).unwrap();
    assert!(!text.contains("\"conditions\""), "no empty lists written either");
    let old = RigModel::new(serde_json::from_str(&text).unwrap(), m.weights().clone()).unwrap();
    let scores = old.score(&window(&repo(rig::SAMPLE_DATA), 0));
    assert!(scores.iter().all(|s| s.condition.is_some() && s.condition_name.is_none() && s.severity.is_none()), "{scores:?}");
}

#[test]
fn the_split_holds_out_the_last_fifth_of_every_run() {
    let Some(dir) = full_data() else { return };
    let cycles = rig::load(&dir).unwrap();
    let held = train::validation_rows(&cycles);
    let key = |i: usize| {
        let c = &cycles[i].conditions;
        (c.cooler, c.valve, c.pump, c.accumulator)
    };
    // Within a run, validation rows only follow training rows, never precede them.
    for i in 1..cycles.len() {
        if key(i) == key(i - 1) {
            assert!(!held[i - 1] || held[i], "row {i}: training row after a validation row of the same run");
        }
    }
    let n = held.iter().filter(|h| **h).count();
    assert!((350..=420).contains(&n), "{n} validation rows of {}", cycles.len());
}

#[test]
fn the_shipped_model_fits_the_rig() {
    let m = shipped();
    let manifest = m.manifest();
    assert!(model::DEFAULT_MODEL_DIR.ends_with(&format!("/{}", manifest.version)), "the shipped directory is named after its version");
    assert_eq!(manifest.topology_hash, rig::rig_topology().hash());
    assert_eq!(manifest.sensor_order.len(), 17);
    assert_eq!(manifest.training_data.rows, 1771);
    assert_eq!(m.feature_layout(), model::FeatureLayout::Steps);
    assert_eq!(manifest.training_data.held_out, model::HeldOut::Nothing, "the judged recipe, trained on every row");
    assert!(manifest.validation.gnn.is_empty() && manifest.validation.mlp.is_empty(), "no figures of its own");
    let size: u64 = std::fs::read_dir(repo(model::DEFAULT_MODEL_DIR)).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
    assert!(size < 1 << 20, "artifact is {size} bytes");
    println!("weights sha256 {}", m.weights_sha256());
}

#[test]
fn the_rig_topology_gives_the_graph_the_shipped_weights_expect() {
    let spec = GraphSpec::from_topology(&rig::rig_topology());
    assert_eq!(spec, shipped().manifest().graph, "node order and edges as at training time");
    let ids: Vec<&str> = spec.sensors.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, rig::RIG_SENSORS.map(|s| s.id), "inputs in the data set's order");
}

#[test]
fn saving_the_shipped_model_writes_the_same_weights_and_manifest() {
    let m = shipped();
    let out = tempfile::tempdir().unwrap();
    m.save(out.path()).unwrap();
    let weights = |dir: &Path| std::fs::read(dir.join("model.safetensors")).unwrap();
    assert!(weights(out.path()) == weights(&repo(model::DEFAULT_MODEL_DIR)), "the weights file is byte for byte the shipped one");
    // The manifest's text may differ in a last digit: serde_json's float parsing is not exact
    // to the bit, so it is compared as read back.
    let again = RigModel::load(out.path()).unwrap();
    assert_eq!(again.manifest(), m.manifest());
    assert_eq!(again.weights_sha256(), m.weights_sha256());
}

/// The shipped recipe trained again, as `model train --held-out untouched-blocks` does it: the
/// shipped artifact's hyper-parameters and seed.
fn shipped_recipe_trained(held_out: model::HeldOut) -> Option<(RigModel, train::TrainReport)> {
    let data = full_data()?;
    let shipped = shipped();
    Some(train::train(&data, "recipe-again", &shipped.manifest().hyper_parameters, held_out).unwrap())
}

/// The shipped artifact was trained on every row, so its figures are its recipe's: this trains
/// the recipe again without the untouched blocks (about 80 s in a debug build) and scores them,
/// and those figures must clear the floors and sit within the spread the manifest records.
#[test]
fn the_shipped_recipe_meets_its_floors_on_the_untouched_blocks() {
    let Some((judged, report)) = shipped_recipe_trained(model::HeldOut::UntouchedBlocks) else { return };
    println!("{report}");
    assert_eq!(report.validation_rows, 250, "the untouched blocks");
    // A little below what the recipe measured on these rows (the manifest's `evaluation`).
    for (target, floor) in [("cooler", 0.99), ("valve", 0.99), ("pump", 0.97), ("accumulator", 0.88)] {
        let acc = report.gnn[target];
        assert!(acc >= floor, "{target}: {acc} < {floor}");
    }
    let model = shipped();
    let evaluation = model.manifest().evaluation.as_ref().expect("the shipped manifest keeps its recipe's evaluation");
    for part in ["cross_validation", "untouched", "later_cycles", "later_cycles_of_folds"] {
        assert_eq!(evaluation[part]["runs"], 5, "{part}");
    }
    // The seed's figure is one of the five untouched runs: within the spread.
    for (component, acc) in &report.gnn {
        let spread = &evaluation["untouched"]["gnn"][component];
        let (mean, sd) = (spread["mean"].as_f64().unwrap(), spread["sd"].as_f64().unwrap());
        assert!((acc - mean).abs() <= 2.0 * sd + 1e-9, "{component}: {acc} against {mean} ± {sd}");
        for sensor in rig::RIG_SENSORS.map(|s| s.id) {
            for part in ["missing", "missing_untouched", "missing_later_cycles", "missing_later_cycles_of_folds"] {
                assert!(evaluation[part][sensor]["gnn"][component]["mean"].is_f64(), "{part}: {sensor}, {component}");
            }
        }
    }
    assert_eq!(judged.manifest().training_data.held_out, model::HeldOut::UntouchedBlocks);
}

/// The shipped artifact is its recipe trained on every row, not some other model: trained
/// again (about 90 s in a debug build), it gives the same class probabilities on every row.
#[test]
fn the_shipped_artifact_is_its_recipe_trained_on_every_row() {
    let Some((again, report)) = shipped_recipe_trained(model::HeldOut::Nothing) else { return };
    let shipped = shipped();
    let manifest = shipped.manifest();
    assert_eq!(manifest.training_data.held_out, model::HeldOut::Nothing);
    assert_eq!((manifest.training_data.train_rows, manifest.training_data.validation_rows), (1771, 0));
    assert_eq!((report.train_rows, report.validation_rows), (1771, 0));
    assert_eq!(again.manifest().training_data, manifest.training_data);
    // Bit for bit on this machine; a float's last bits could differ on another CPU's kernels,
    // which this tolerance allows and a different recipe or data would not.
    println!("weights sha256: shipped {}, trained again {}", shipped.weights_sha256(), again.weights_sha256());
    let data = full_data().unwrap();
    for row in (0..1771).step_by(7) {
        let w = window(&data, row);
        for network in [Network::Gnn, Network::Mlp] {
            let (a, b) = (shipped.probabilities(&w, network).unwrap(), again.probabilities(&w, network).unwrap());
            for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
                assert!((x - y).abs() < 1e-3, "row {row}, {network:?}: {x} against {y}");
            }
        }
    }
}

/// An artifact trained on every row has none held out: `model eval --held-out` says so and
/// where its figures are, rather than scoring rows it trained on as if it had not.
#[test]
fn held_out_evaluation_of_an_artifact_trained_on_every_row_is_refused() {
    let Some(data) = full_data() else { return };
    let err = train::evaluate_split(&repo(model::DEFAULT_MODEL_DIR), &data).unwrap_err().to_string();
    assert!(err.contains("trained on every row") && err.contains("evaluation"), "{err}");
}

/// `uci-rig-v1` predates the step features and the block split: it still loads with the summary
/// layout and measures what its manifest says on the rows it was validated on.
#[test]
fn an_artifact_of_the_summary_layout_still_scores_as_its_manifest_says() {
    let dir = repo("models/uci-rig-v1");
    let m = RigModel::load(&dir).unwrap();
    assert_eq!(m.feature_layout(), model::FeatureLayout::Summary);
    assert_eq!(m.manifest().training_data.held_out, model::HeldOut::LastFifthOfEachBlock);
    assert_eq!(m.node_features(), model::FeatureLayout::Summary.node());
    let Some(data) = full_data() else { return };
    let report = train::evaluate_split(&dir, &data).unwrap();
    assert_eq!(report.cycles, 409);
    assert_eq!(report.rows, "last fifth of each block");
    for t in &report.targets {
        assert!((m.manifest().validation.gnn[&t.component] - t.gnn.accuracy).abs() < 1e-9, "{}", t.component);
    }
}

#[test]
fn evaluate_renders_text_and_json() {
    let report = train::evaluate(&repo(model::DEFAULT_MODEL_DIR), &repo(rig::SAMPLE_DATA)).unwrap();
    let json = report.to_json();
    for key in ["cooler", "valve", "pump", "accumulator"] {
        let acc = json[key].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{key}: {acc}");
        assert!(json["baseline"][key].is_f64());
    }
    assert_eq!(json["cycles"], 144);
    let text = report.to_string();
    assert!(text.contains("accumulator") && text.contains("true\\pred"), "{text}");
    // The sample's rows are from the training data (mostly seen in training): a sanity check.
    assert!(report.accuracy("cooler").unwrap() > 0.9, "{text}");
}

/// `model eval --cross-validate`'s recipe knobs refuse a value no recipe can have, naming the
/// flag, before any training starts.
#[test]
fn a_recipe_knob_out_of_range_is_refused_naming_its_flag() {
    let data = repo(rig::SAMPLE_DATA);
    for (flag, value) in [("--hidden", "0"), ("--weight-decay", "-1"), ("--weight-decay", "NaN"), ("--sensor-dropout", "1.5")] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_manifold"))
            .args(["model", "eval", "--cross-validate", "--runs", "1", "--epochs", "1", "--data"])
            .arg(&data)
            .arg(format!("{flag}={value}"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag}={value} was accepted");
        assert!(stderr.contains(flag), "{flag}={value}: {stderr}");
    }
}

/// The cross-validation of `model eval --cross-validate`: run i is seed + i on fold i, each
/// run scores exactly its fold's (or the test split's) rows with every sensor missing in turn,
/// and a run's figures do not depend on how many runs train beside it.
#[test]
fn cross_validation_scores_held_out_blocks_alike_whatever_runs_beside_it() {
    let Some(data) = full_data() else { return };
    let settings = |jobs| {
        let mut recipe = TrainConfig::new(11, 1);
        recipe.hidden = 16;
        recipe.mlp_hidden = 16;
        train::CvSettings { recipe, runs: 2, folds: 5, untouched: true, later_cycles: true, later_cycles_of_folds: true, jobs }
    };
    let alone = train::cross_validate(&data, &settings(1)).unwrap();
    let beside = train::cross_validate(&data, &settings(2)).unwrap();
    assert_eq!(alone, beside, "two runs at once give what one at a time gives");
    let plan: Vec<(u64, Option<usize>)> = alone.cross_validation.iter().chain(&alone.untouched).map(|r| (r.seed, r.fold)).collect();
    assert_eq!(plan, [(11, Some(0)), (12, Some(1)), (11, None), (12, None)]);
    for run in &alone.cross_validation {
        assert_eq!(run.rows, alone.fold_rows[run.fold.unwrap()], "a run scores its whole fold");
    }
    assert!(alone.untouched.iter().all(|r| r.rows == alone.test_rows));
    // Later cycles: each seed trained on the first four fifths of every block, scored on the rest.
    assert_eq!(alone.later_cycles.iter().map(|r| (r.seed, r.fold)).collect::<Vec<_>>(), [(11, None), (12, None)]);
    let later = train::validation_rows(&rig::load(&data).unwrap()).iter().filter(|v| **v).count();
    assert_eq!(alone.later_rows, later);
    assert!(alone.later_cycles.iter().all(|r| r.rows == later));
    // Within the fold blocks: the same rows less the test split's, and none of its rows trained.
    let test_blocks_later = {
        let all = rig::load(&data).unwrap();
        let held = train::validation_rows(&all);
        let split = train::BlockSplit::new(&all, 5);
        split.test.iter().filter(|r| held[**r as usize]).count()
    };
    assert!(test_blocks_later > 0);
    assert_eq!(alone.later_fold_rows, later - test_blocks_later);
    assert_eq!(alone.later_cycles_of_folds.iter().map(|r| (r.seed, r.rows)).collect::<Vec<_>>(), [(11, alone.later_fold_rows), (12, alone.later_fold_rows)]);
    let sensors: Vec<&str> = rig::RIG_SENSORS.iter().map(|s| s.id).collect();
    for run in alone.cross_validation.iter().chain(&alone.untouched).chain(&alone.later_cycles).chain(&alone.later_cycles_of_folds) {
        assert_eq!(run.missing.keys().map(String::as_str).collect::<Vec<_>>().len(), sensors.len(), "every sensor missing in turn");
        for (gnn, mlp) in run.missing.values() {
            assert_eq!(gnn.len(), 4);
            assert_eq!(mlp.len(), 4);
        }
    }
    let json = alone.to_json();
    for component in ["cooler", "valve", "pump", "accumulator"] {
        for part in ["cross_validation", "untouched", "later_cycles", "later_cycles_of_folds"] {
            let mean = json[part]["gnn"][component]["mean"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&mean), "{part} {component}: {mean}");
            assert!(json[part]["mlp"][component]["sd"].as_f64().unwrap() >= 0.0);
            assert!(json[part]["ensemble"][component]["mean"].is_f64(), "{part} {component}: the two networks together");
        }
        for sensor in &sensors {
            assert!(json["missing"][sensor]["gnn"][component]["mean"].is_f64(), "{sensor} missing, {component}");
        }
    }
    let text = alone.to_string();
    assert!(text.contains("untouched test split (2 runs") && text.contains("PS3"), "{text}");
    assert!(text.contains("seed 12   fold 1") && text.contains("seed 11   test") && text.contains("seed 12   later"), "each run apart: {text}");
}

#[test]
fn scoring_tolerates_missing_short_long_and_bad_sensors() {
    let m = shipped();
    let mut w = window(&repo(rig::SAMPLE_DATA), 0);
    let full = m.score(&w);
    assert_eq!(full.iter().map(|s| s.component_id.as_str()).collect::<Vec<_>>(), ["cooler", "valve", "pump", "accumulator"]);
    w.remove("PS1");
    w.get_mut("TS1").unwrap().truncate(30);
    let long: Vec<f64> = w["FS1"].iter().flat_map(|v| std::iter::repeat_n(*v, 10)).collect();
    w.insert("FS1".into(), long);
    w.insert("PS2".into(), vec![f64::NAN; 60]);
    w.insert("XX9".into(), vec![1.0; 60]);
    for network in [Network::Gnn, Network::Mlp] {
        for s in m.score_with(&w, network) {
            assert!((0.0..=1.0).contains(&s.score), "{s:?}");
            let total: f64 = s.probabilities.values().sum();
            assert!((total - 1.0).abs() < 1e-4, "{s:?}");
            assert!(s.condition.is_some());
        }
    }
    let pump = m.score(&w).into_iter().find(|s| s.component_id == "pump").unwrap();
    assert_eq!(pump.features.unwrap()["missing_sensors"], 1.0, "PS1 is the pump's");
    for s in m.score(&HashMap::new()) {
        assert!((0.0..=1.0).contains(&s.score));
    }
}

#[test]
fn the_plain_forward_pass_agrees_with_candle() {
    let m = shipped();
    let networks = Networks::of(&m).unwrap();
    let data = repo(rig::SAMPLE_DATA);
    let cycles = rig::load(&data).unwrap();
    for (i, c) in cycles.iter().enumerate() {
        let mut w = c.window();
        if i % 2 == 1 {
            w.remove(rig::RIG_SENSORS[i % 17].id);
        }
        for network in [Network::Gnn, Network::Mlp] {
            let fast = m.probabilities(&w, network).unwrap();
            let candle = networks.probabilities(&m, &w, network).unwrap();
            for (a, b) in fast.iter().flatten().zip(candle.iter().flatten()) {
                assert!((a - b).abs() < 1e-4, "row {i} {network:?}: {fast:?} vs {candle:?}");
            }
        }
    }
}

/// The cycle as a device at native rates might send it with a smoother signal than steps: each
/// 1 s value spread over its second along the slope between its neighbours (the spread is
/// symmetric, so the second's mean is the data set's value again, as a real 1 s mean is).
fn interpolated_native_window(cycle: &rig::Cycle) -> HashMap<String, Vec<f64>> {
    cycle
        .readings()
        .map(|(sensor, v)| {
            let k = sensor.native_rate_hz as usize;
            let values = (0..v.len())
                .flat_map(|i| {
                    let slope = (v[(i + 1).min(v.len() - 1)] - v[i.saturating_sub(1)]) / 2.0;
                    (0..k).map(move |j| v[i] + slope * ((j as f64 + 0.5) / k as f64 - 0.5))
                })
                .collect();
            (sensor.id.to_string(), values)
        })
        .collect()
}

#[test]
fn a_cycle_sent_at_native_rates_gets_the_same_classes_as_at_1_hz() {
    let m = shipped();
    assert!(m.manifest().sampling.iter().all(|s| s.rate_hz == 1.0 && s.aggregate == model::Aggregate::Mean), "trained on 1 Hz means");
    // The held-out rows of the full copy when it is there (the model never trained on them),
    // and the committed sample (144 cycles) always.
    let mut cycles = rig::load(&repo(rig::SAMPLE_DATA)).unwrap();
    if let Some(dir) = full_data() {
        let all = rig::load(&dir).unwrap();
        let held = train::validation_rows(&all);
        // Every fourth of them (about 100) keeps the debug-build test within seconds; all 409
        // agree as well (measured once with the whole list).
        cycles.extend(all.into_iter().zip(held).filter(|(_, h)| *h).map(|(c, _)| c).step_by(4));
    }
    let mut compared = 0;
    for (i, cycle) in cycles.iter().enumerate() {
        let one_hz = m.score_window(&cycle.window(), 60.0);
        assert_eq!(one_hz, m.score(&cycle.window()), "cycle {i}: a 1 Hz window is scored as sent");
        let native = cycle.native_window();
        assert_eq!(native.values().map(Vec::len).sum::<usize>(), 43_680, "the real rig's readings per cycle");
        for (how, window) in [("repeated", native), ("interpolated", interpolated_native_window(cycle))] {
            for network in [Network::Gnn, Network::Mlp] {
                let a = m.score_window_with(&cycle.window(), 60.0, network);
                let b = m.score_window_with(&window, 60.0, network);
                for (a, b) in a.iter().zip(&b) {
                    assert_eq!(a.condition, b.condition, "cycle {i}, {how}, {network:?}, {}", a.component_id);
                    assert!((a.score - b.score).abs() < 1e-6, "cycle {i}, {how}, {network:?}: {} vs {}", a.score, b.score);
                }
                compared += a.len();
            }
        }
    }
    eprintln!("{} cycles, {compared} component scores compared per rate", cycles.len());
}

#[test]
fn a_sensor_slower_than_trained_is_scored_as_missing_and_the_score_says_why() {
    let m = shipped();
    let mut w = window(&repo(rig::SAMPLE_DATA), 3);
    let mut without = w.clone();
    without.remove("PS2");
    // PS2 every other second (0.5 Hz), PS1 at 100 Hz: one refused, one averaged.
    w.insert("PS2".into(), w["PS2"].iter().step_by(2).copied().collect());
    w.insert("PS1".into(), w["PS1"].iter().flat_map(|v| std::iter::repeat_n(*v, 100)).collect());
    let scores = m.score_window(&w, 60.0);
    let expected = m.score_window(&without, 60.0);
    for (s, e) in scores.iter().zip(&expected) {
        let features = s.features.as_ref().unwrap();
        assert_eq!(features["PS2.refused_slower_than_trained_hz"], 0.5, "{}: {features:?}", s.component_id);
        assert_eq!(s.probabilities, e.probabilities, "{}: scored as if PS2 were not sent", s.component_id);
    }
    let valve = scores.iter().find(|s| s.component_id == "valve").unwrap();
    assert_eq!(valve.features.as_ref().unwrap()["missing_sensors"], 1.0, "PS2 is the valve's");
    // A few readings short of 1 Hz is still the trained signal: nothing refused.
    let mut short = window(&repo(rig::SAMPLE_DATA), 3);
    short.get_mut("PS2").unwrap().truncate(56);
    assert!(m.at_trained_sampling(&short, 60.0).refused.is_empty());
}

#[test]
fn a_native_rate_cycle_fits_the_ingest_limits() {
    let cycle = &rig::load(&repo(rig::SAMPLE_DATA)).unwrap()[0];
    let raw = manifold::sim::native_cycle_batch("rig-0", cycle, 1_700_000_040_000_000);
    let env: std::collections::BTreeMap<String, String> = [("DATABASE_URL", "postgres://u@localhost/db")].iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let config = manifold::config::Config::load(&Default::default(), &env).expect("the default config loads");
    let json = serde_json::to_vec(&raw).unwrap();
    assert!(json.len() <= config.api.body_limit_bytes, "{} bytes of JSON over api.body_limit_bytes", json.len());
    let limits = manifold::domain::BatchLimits { max_readings: config.ingest.max_batch_readings };
    let batch = manifold::domain::SensorBatch::parse(raw, &limits).expect("within ingest.max_batch_readings");
    assert_eq!(batch.reading_count(), 43_680);
    assert!(config.ingest.chunk_max_readings >= 43_680, "one cycle fits one chunk");
}

/// Over every cycle of `dir`, per valve class, how many cycles there are and in how many the
/// valve's top-3 drivers (occlusion, the shipped GNN) include a valve-side sensor (PS2, PS3).
fn valve_side_drivers(model: &RigModel, dir: &Path) -> std::collections::BTreeMap<u8, (usize, usize)> {
    let mut per_class = std::collections::BTreeMap::new();
    for cycle in rig::load(dir).unwrap() {
        let (_, drivers) = model.score_explained(&cycle.window());
        let valve_side = drivers["valve"].iter().any(|d| d.sensor_id == "PS2" || d.sensor_id == "PS3");
        let entry: &mut (usize, usize) = per_class.entry(cycle.conditions.valve).or_default();
        entry.0 += 1;
        entry.1 += usize::from(valve_side);
    }
    per_class
}

/// Share of valve-side drivers in healthy (100 %) and in degraded (< 100 %) valve cycles.
fn healthy_and_degraded(per_class: &std::collections::BTreeMap<u8, (usize, usize)>) -> (f64, f64) {
    let share = |f: &dyn Fn(u8) -> bool| {
        let (n, hit) = per_class.iter().filter(|(c, _)| f(**c)).fold((0, 0), |(n, h), (_, (cn, ch))| (n + cn, h + ch));
        hit as f64 / n.max(1) as f64
    };
    (share(&|c| c == 100), share(&|c| c < 100))
}

/// The measure: every degraded valve cycle names PS2 or PS3, at most one healthy one in ten.
fn check_valve_side_drivers(dir: &Path) {
    let per_class = valve_side_drivers(&shipped(), dir);
    let (healthy, degraded) = healthy_and_degraded(&per_class);
    eprintln!("{}: valve class → (cycles, with PS2/PS3 among the valve's drivers): {per_class:?}; healthy {healthy:.3}, degraded {degraded:.3}", dir.display());
    assert!(per_class.contains_key(&100) && per_class.keys().any(|c| *c < 100), "both kinds of cycle are in {}", dir.display());
    assert!(degraded >= 0.9 && healthy <= 0.1, "degraded {degraded:.3} vs healthy {healthy:.3} in {}", dir.display());
}

#[test]
fn a_degraded_valve_is_explained_by_valve_side_sensors_far_more_often_than_a_healthy_one() {
    check_valve_side_drivers(&repo(rig::SAMPLE_DATA));
}

/// The same over all 2,205 cycles of the full data (about 2 minutes in a debug build, too long
/// for `make test`): `cargo test --test model -- --ignored --exact
/// a_degraded_valve_is_explained_by_valve_side_sensors_over_the_full_data --nocapture`.
#[test]
#[ignore]
fn a_degraded_valve_is_explained_by_valve_side_sensors_over_the_full_data() {
    if let Some(dir) = full_data() {
        check_valve_side_drivers(&dir);
    }
}
