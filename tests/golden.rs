//! Golden checks: what a user sees (the API description, the bytes on the wire, the metric names
//! and the shipped model's scores) pinned in files under `tests/golden/`, so a refactor can prove
//! it changed none of it. A deliberate change regenerates them and the diff is reviewed:
//! `MANIFOLD_BLESS=1 cargo test --test golden`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use manifold::codec::{AnomalyScores, RecordEncoder, WindowReady, schemas};
use manifold::domain::{ComponentScore, Driver, Severity};
use manifold::model::{Network, RigModel};
use sha2::{Digest, Sha256};

const BLESS: &str = "MANIFOLD_BLESS";

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

fn blessing() -> bool {
    std::env::var(BLESS).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Compares `actual` with the golden file (`same` decides equality, so JSON can be compared
/// parsed); with `MANIFOLD_BLESS=1` rewrites the file instead.
fn check_golden(name: &str, actual: &str, same: impl Fn(&str, &str) -> bool) {
    let path = golden_path(name);
    if blessing() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        eprintln!("blessed {}", path.display());
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; create it with `{BLESS}=1 cargo test --test golden`", path.display()));
    if !same(&expected, actual) {
        panic!(
            "{name} differs from the golden file (- golden, + now):\n{}\nIf the change is intended, regenerate with \
             `{BLESS}=1 cargo test --test golden` and review the diff.",
            line_diff(&expected, actual)
        );
    }
}

/// A unified-ish diff: the changed lines with two lines of context, from a longest common
/// subsequence (files here are a few thousand lines, so the quadratic table is fine).
fn line_diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut ops) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i], i + 1));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            ops.push(('+', b[j], i + 1));
            j += 1;
        } else {
            ops.push(('-', a[i], i + 1));
            i += 1;
        }
    }
    let near = |k: usize| ops[k.saturating_sub(2)..(k + 3).min(ops.len())].iter().any(|(op, ..)| *op != ' ');
    let mut out = String::new();
    let mut gap = false;
    for (k, (op, line, at)) in ops.iter().enumerate() {
        if near(k) {
            if gap || out.is_empty() {
                out.push_str(&format!("@@ golden line {at} @@\n"));
            }
            out.push_str(&format!("{op}{line}\n"));
            gap = false;
        } else {
            gap = true;
        }
    }
    out
}

fn exact(a: &str, b: &str) -> bool {
    a == b
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn openapi_document_is_unchanged() {
    let app = common::app::spawn_app(&[]).await;
    let doc: serde_json::Value = app.http.get(format!("{}/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
    app.stop.cancel();
    let pretty = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    // Parsed comparison: key order and whitespace are not what a client sees as a change.
    let parsed = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
    check_golden("openapi.json", &pretty, |golden, now| parsed(golden).is_some() && parsed(golden) == parsed(now));
}

/// Encodes with the codec's real encoder (registering under a subject of its own) and keeps
/// the Avro body: the 5-byte Confluent header carries the registry's id, which varies.
async fn avro_body(topic_role: &str, schema: &str, value: apache_avro::types::Value) -> Vec<u8> {
    let config = common::config_with(&[]);
    let topic = common::unique(&format!("golden_{topic_role}"));
    let encoder = RecordEncoder::new(&config.schema_registry, &topic, schema).unwrap();
    let framed = encoder.encode(value).await.expect("the stack's schema registry must be up");
    assert_eq!(framed[0], 0, "Confluent magic byte");
    framed[5..].to_vec()
}

#[tokio::test]
async fn window_ready_avro_bytes_are_unchanged() {
    let mut lines = String::new();
    // One event per close reason: the enum's index is part of the bytes. The outbox holds the
    // event as JSON, so the input starts where the relay starts.
    for (i, reason) in ["WATERMARK", "IDLE", "LATE_DATA", "RESCORE"].into_iter().enumerate() {
        let json = serde_json::json!({
            "system_id": "rig-golden-1", "window_start": 1_767_225_600_000_000i64 + i as i64 * 60_000_000,
            "window_end": 1_767_225_660_000_000i64 + i as i64 * 60_000_000, "revision": i as i32,
            "reading_count": 1020 + i as i64, "sensors": ["CE", "PS1", "TS4"], "closed_by": reason,
        });
        let event = WindowReady::from_json(json.to_string().as_bytes()).unwrap();
        let body = avro_body("windows", schemas::WINDOW_READY, event.to_avro().unwrap()).await;
        lines.push_str(&format!("{reason} {}\n", hex(&body)));
    }
    check_golden("window_ready.hex", &lines, exact);
}

#[tokio::test]
async fn anomaly_scores_avro_bytes_are_unchanged() {
    // One class per probability map: apache_avro writes a map's entries in HashMap order, so
    // a map of two or more entries has no fixed bytes (the same input encodes differently from
    // run to run). The map's encoding is still pinned through its one entry.
    let one = |class: &str, p: f64| BTreeMap::from([(class.to_owned(), p)]);
    let model = AnomalyScores {
        system_id: "rig-golden-1".into(),
        window_start: 1_767_225_600_000_000,
        window_end: 1_767_225_660_000_000,
        revision: 2,
        model_version: "uci-rig-v1".into(),
        overall_score: 0.125,
        components: vec![
            // Features are not in the schema: they must not change the bytes.
            ComponentScore { component_id: "cooler".into(), score: 0.125, condition: Some("100".into()), condition_name: Some("full efficiency".into()), severity: Some(Severity::Ok), probabilities: one("100", 0.875), features: None },
            ComponentScore { component_id: "valve".into(), score: 0.0, condition: Some("73".into()), condition_name: Some("close to total failure".into()), severity: Some(Severity::Failure), probabilities: one("73", 1.0), features: Some(one("PS1.mean", 2.5)) },
            ComponentScore { component_id: "pump".into(), score: 1.0 / 3.0, condition: None, condition_name: None, severity: None, probabilities: BTreeMap::new(), features: None },
        ],
        // The valve with two drivers, the others with none (null).
        drivers: BTreeMap::from([(
            "valve".to_owned(),
            vec![Driver { sensor_id: "PS2".into(), effect: 0.5 }, Driver { sensor_id: "PS3".into(), effect: -0.25 }],
        )]),
        computed_at: 1_767_225_661_234_567,
    };
    let baseline = AnomalyScores { model_version: "baseline-robust-z".into(), components: vec![], drivers: BTreeMap::new(), ..model.clone() };
    let mut lines = String::new();
    for (label, message) in [("model", model), ("empty", baseline)] {
        lines.push_str(&format!("{label} {}\n", hex(&avro_body("scores", schemas::ANOMALY_SCORES, message.to_avro()).await)));
    }
    check_golden("anomaly_scores.hex", &lines, exact);
}

#[tokio::test]
async fn metric_names_of_every_process_are_unchanged() {
    // Every component on one registry, as `manifold run` has (see common::promql).
    let names = common::promql::registered_metrics();
    assert!(names.len() > 20, "a plausible number of metrics: {names:?}");
    check_golden("metric_names.txt", &(names.join("\n") + "\n"), exact);
}

/// Row `row` of every sensor file of the sample (sensor id → 60 values), read straight from
/// the files so the check does not lean on the dataset reader it may be proving moved.
fn sample_windows() -> Vec<HashMap<String, Vec<f64>>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/uci-sample");
    let mut per_sensor: Vec<(String, Vec<Vec<f64>>)> = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let stem = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if path.extension().is_none_or(|e| e != "txt") || ["profile", "cycles"].contains(&stem.as_str()) {
            continue;
        }
        let rows = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .map(|line| line.split_ascii_whitespace().map(|v| v.parse::<f64>().unwrap()).collect())
            .collect();
        per_sensor.push((stem.trim_end_matches("_1hz").to_owned(), rows));
    }
    assert_eq!(per_sensor.len(), 17, "the rig has 17 sensors");
    let rows = per_sensor[0].1.len();
    (0..rows).map(|i| per_sensor.iter().map(|(id, r)| (id.clone(), r[i].clone())).collect()).collect()
}

/// The shipped artifact, and `uci-rig-v1` (the summary feature layout, kept so an artifact made
/// before the step features is proven to score as it always did).
#[test]
fn model_scores_are_bit_identical_on_the_sample() {
    let shipped = manifold::model::DEFAULT_MODEL_DIR.trim_start_matches("models/");
    for version in ["uci-rig-v1", shipped] {
        scores_are_bit_identical_on_the_sample(version);
    }
}

fn scores_are_bit_identical_on_the_sample(version: &str) {
    let model = RigModel::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("models").join(version)).expect("the model loads");
    let mut windows = sample_windows();
    assert_eq!(windows.len(), 144);
    // Degraded windows too: missing, short, long, non-finite and unknown sensors take other paths.
    let mut odd = windows[0].clone();
    odd.remove("PS1");
    odd.get_mut("TS1").unwrap().truncate(30);
    let long: Vec<f64> = odd["FS1"].iter().flat_map(|v| std::iter::repeat_n(*v, 10)).collect();
    odd.insert("FS1".into(), long);
    odd.insert("PS2".into(), vec![f64::NAN; 60]);
    odd.insert("XX9".into(), vec![1.0; 60]);
    windows.push(odd);
    windows.push(HashMap::new());

    let mut hash = Sha256::new();
    let mut scores = 0;
    for window in &windows {
        for network in [Network::Gnn, Network::Mlp] {
            for s in model.score_with(window, network) {
                hash.update(s.component_id.as_bytes());
                hash.update(s.score.to_bits().to_le_bytes());
                hash.update(s.condition.as_deref().unwrap_or("-").as_bytes());
                for (class, p) in &s.probabilities {
                    hash.update(class.as_bytes());
                    hash.update(p.to_bits().to_le_bytes());
                }
                for (name, v) in s.features.iter().flatten() {
                    hash.update(name.as_bytes());
                    hash.update(v.to_bits().to_le_bytes());
                }
                scores += 1;
            }
            // The raw f32 class probabilities as well: scores are derived from them in f64.
            for p in model.probabilities(window, network).unwrap().iter().flatten() {
                hash.update(p.to_bits().to_le_bytes());
            }
        }
    }
    assert_eq!(scores, windows.len() * 2 * 4, "four labelled components per window and network");
    let digest = hex(&hash.finalize());
    let first: Vec<_> = model.score(&windows[0]).into_iter().map(|s| (s.component_id, s.score)).collect();
    eprintln!("digest {digest}; window 0: {first:?}");
    check_golden(&format!("{version}.scores.sha256"), &format!("{digest}\n"), exact);
}
