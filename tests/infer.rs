//! Scoring end to end: rig cycles with known faults → one score message per window revision,
//! the faulty component above the healthy ones; exactly once when infer is killed mid-stream.

mod common;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::pipeline::TestPipeline;
use manifold::rig::{self, Cycle};
use manifold::sim;

const MIN: i64 = 60_000_000;

fn sample() -> Vec<Cycle> {
    rig::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/uci-sample"))).unwrap()
}

fn find(cycles: &[Cycle], cooler: u8, valve: u8, pump: u8, accumulator: u8) -> Cycle {
    cycles
        .iter()
        .find(|c| (c.conditions.cooler, c.conditions.valve, c.conditions.pump, c.conditions.accumulator) == (cooler, valve, pump, accumulator))
        .cloned()
        .expect("the sample holds every condition combination")
}

fn model_dir() -> String {
    common::shipped_model_dir()
}

async fn pipeline() -> TestPipeline {
    let dir = model_dir();
    TestPipeline::new(&[("MANIFOLD__WINDOWS__IDLE_TIMEOUT_SECONDS", "3"), ("MANIFOLD__INFER__MODEL_DIR", &dir)]).await
}

async fn produce_cycles(p: &TestPipeline, system: &str, cycles: &[Cycle], t0: i64) {
    let encoder = manifold::codec::RecordEncoder::for_batches(&p.config.schema_registry, &p.config.topics.batches.name).unwrap();
    for (i, cycle) in cycles.iter().enumerate() {
        let batch = sim::cycle_batch(system, cycle, t0 + i as i64 * MIN);
        p.produce(system, &encoder.encode_batch(&batch).await.unwrap()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_components_score_above_healthy_ones_once_per_window() {
    let p = pipeline().await;
    let prefix = p.rigs(1).await;
    let system = format!("{prefix}-0");
    let all = sample();
    let cases = [
        ("cooler", find(&all, 3, 100, 0, 130)),
        ("valve", find(&all, 100, 73, 0, 130)),
        ("pump", find(&all, 100, 100, 2, 130)),
        ("accumulator", find(&all, 100, 100, 0, 90)),
    ];
    let cycles: Vec<Cycle> = cases.iter().map(|(_, c)| c.clone()).collect();
    let t0 = (chrono::Utc::now().timestamp_micros() / MIN - 30) * MIN;
    let (stop_ingest, ingest) = p.spawn_ingest();
    let infer_token = tokio_util::sync::CancellationToken::new();
    let infer_metrics = manifold::telemetry::Metrics::new();
    let infer = tokio::spawn(manifold::startup::run(manifold::startup::ProcessSet::Infer, p.config.clone(), infer_metrics.clone(), infer_token.clone()));
    produce_cycles(&p, &system, &cycles, t0).await;

    let messages = common::scores::read(&p, cases.len(), Duration::from_secs(60)).await;
    let mut by_window: BTreeMap<(i64, i32), usize> = BTreeMap::new();
    for m in &messages {
        *by_window.entry((m.window_start, m.revision)).or_default() += 1;
    }
    assert_eq!(by_window.len(), cases.len(), "{messages:?}");
    assert!(by_window.values().all(|n| *n == 1), "one message per window revision: {by_window:?}");
    for m in &messages {
        let (faulty, _) = &cases[((m.window_start - t0) / MIN) as usize];
        assert_eq!(m.system_id, system);
        assert_eq!(m.model_version, common::shipped_model_version());
        let scores: BTreeMap<&str, f64> = m.components.iter().map(|(c, s)| (c.as_str(), *s)).collect();
        let top = scores.iter().max_by(|a, b| a.1.total_cmp(b.1)).map(|(c, _)| *c).unwrap();
        assert_eq!(top, *faulty, "the {faulty} fault scores highest: {scores:?}");
    }
    assert_eq!(p.query_i64("SELECT count(DISTINCT (window_start, revision)) FROM anomaly_scores").await, cases.len() as i64);

    // A downstream consumer in Python (AvroDeserializer, read_committed) reads them unchanged.
    let out = Command::new(common::python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/consume_scores.py"))
        .args([&p.config.kafka.brokers, &p.config.schema_registry.url, &p.config.topics.scores.name])
        .args([&cases.len().to_string(), "60"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/anomaly_scores.avsc"))
        .output()
        .expect("run the Python consumer");
    assert!(out.status.success(), "python consumer failed: {}", String::from_utf8_lossy(&out.stderr));
    let manifest = manifold::model::read_manifest(std::path::Path::new(&model_dir())).unwrap();
    let python: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(python.len(), messages.len());
    for m in &messages {
        let twin = python.iter().find(|v| v["window_start"] == m.window_start && v["revision"] == m.revision).expect("same message in Python");
        assert_eq!(twin["system_id"], m.system_id.as_str());
        assert_eq!(twin["model_version"], m.model_version.as_str());
        for (component, score) in &m.components {
            // serde_json's default float parser may differ from Python's repr in the last bit.
            let theirs = twin["components"][component].as_f64().expect("a score per component");
            assert!((theirs - score).abs() < 1e-12, "{component}: {theirs} vs {score}");
            // The class's name and severity, as the model's manifest gives them.
            let [class, name, severity] = [0, 1, 2].map(|i| twin["conditions"][component][i].as_str().map(str::to_owned));
            let spec = manifest.targets.iter().find(|t| t.component == *component).and_then(|t| t.condition(class.as_deref()?)).expect("a named class");
            assert_eq!((name.as_deref(), severity.as_deref()), (Some(spec.name.as_str()), Some(spec.severity.as_str())), "{component}");
        }
        let (faulty, _) = &cases[((m.window_start - t0) / MIN) as usize];
        assert_ne!(twin["conditions"][faulty][2], "ok", "the faulty {faulty} is not in an ok condition: {twin}");
        // The rig model names what drove each score: the faulty component's, at least one sensor.
        let drivers = twin["drivers"][faulty].as_array().unwrap_or_else(|| panic!("drivers of {faulty}: {twin}"));
        assert!((1..=3).contains(&drivers.len()) && drivers.iter().all(|d| d["sensor_id"].is_string() && d["effect"].as_f64() > Some(0.0)), "{twin}");
        // A consumer still on the schema before the names reads the same message, without them.
        assert_eq!(twin["old_fields"], serde_json::json!(["component_id", "condition", "probabilities", "score"]), "{twin}");
    }

    // `make demo` shows the newest window's classes by name: its query (psql variables as
    // parameters) over these real scores names every class as the manifest does.
    let demo_sql = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/demo.d/newest-scores.sql")).unwrap();
    let demo_sql = demo_sql.replace(":'manifest'", "$1::text").replace(":'system'", "$2::text");
    let manifest_text = std::fs::read_to_string(std::path::Path::new(&model_dir()).join("manifest.json")).unwrap();
    let rows = common::connect(&p.db_url).await.query(&demo_sql, &[&manifest_text, &system]).await.unwrap();
    let lines: Vec<Vec<String>> = rows.iter().map(|r| (0..r.len()).map(|i| r.get::<_, String>(i).trim_end().to_owned()).collect()).collect();
    assert_eq!(lines.len(), 4, "the four labelled components of the newest window: {lines:?}");
    for line in &lines {
        let spec = manifest.targets.iter().find(|t| t.component == line[2]).and_then(|t| t.condition(&line[4])).expect("a named class");
        assert_eq!(line[5], format!("{} ({})", spec.name, spec.severity), "{line:?}");
    }
    assert_ne!(lines[0][5].rsplit_once(" (").map(|(_, s)| s), Some("ok)"), "the most anomalous component first, not ok: {lines:?}");

    // After a model upgrade: new revisions of the range are scored, the old ones are kept.
    let from = chrono::DateTime::from_timestamp_micros(t0).unwrap();
    let to = chrono::DateTime::from_timestamp_micros(t0 + 2 * MIN).unwrap();
    let reopened = p.store().rescore(from, to, Some(&system)).await.unwrap();
    assert_eq!(reopened.iter().map(|w| w.revision).collect::<Vec<_>>(), vec![1, 1]);
    p.wait_for("SELECT count(DISTINCT (window_start, revision)) FROM anomaly_scores WHERE revision = 1", 2, Duration::from_secs(30)).await;
    assert_eq!(p.query_i64("SELECT count(DISTINCT (window_start, revision)) FROM anomaly_scores WHERE revision = 0").await, cases.len() as i64);

    // Caught up, infer reports its lag as 0 for the partitions it read: its offsets are
    // committed in the producer's transaction, so the lag is measured from the offsets stored
    // as messages were handed over, past the relay's transaction markers (a fresh group has no
    // committed offset the consumer could have measured from).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let lags = infer_lags(&infer_metrics);
        if !lags.is_empty() && lags.iter().all(|lag| *lag == 0) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "infer's consumer lag is not reported as caught up: {lags:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    infer_token.cancel();
    infer.await.unwrap().unwrap();
    stop_ingest.cancel();
    ingest.await.unwrap();
}

/// Each partition's `manifold_infer_consumer_lag_messages` in the exposition.
fn infer_lags(metrics: &manifold::telemetry::Metrics) -> Vec<i64> {
    metrics
        .render()
        .lines()
        .filter(|line| line.starts_with("manifold_infer_consumer_lag_messages{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_infer_mid_stream_publishes_each_window_revision_exactly_once() {
    let p = pipeline().await;
    let prefix = p.rigs(2).await;
    let all = sample();
    let t0 = (chrono::Utc::now().timestamp_micros() / MIN - 120) * MIN;
    let (stop_ingest, ingest) = p.spawn_ingest();
    let per_system = 30;
    for s in 0..2 {
        let cycles: Vec<Cycle> = all.iter().skip(s * 40).take(per_system).cloned().collect();
        produce_cycles(&p, &format!("{prefix}-{s}"), &cycles, t0).await;
    }
    let windows = 2 * per_system as i64;
    p.wait_for("SELECT count(*) FROM windows WHERE ready_revision IS NOT NULL", windows, Duration::from_secs(60)).await;

    let spawn = || {
        let mut command = p.manifold(&["infer"]);
        command.stdout(Stdio::null()).stderr(Stdio::null());
        command.env("MANIFOLD__INFER__BATCH_SIZE", "4").env("MANIFOLD__INFER__MODEL_DIR", model_dir());
        command.spawn().unwrap()
    };
    for wait_ms in [900, 1300, 1700] {
        let mut child = spawn();
        tokio::time::sleep(Duration::from_millis(wait_ms)).await;
        child.kill().unwrap();
        child.wait().unwrap();
    }
    let mut child = spawn();
    let messages = common::scores::read(&p, windows as usize, Duration::from_secs(90)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let mut counts: BTreeMap<(String, i64, i32), usize> = BTreeMap::new();
    for m in &messages {
        *counts.entry((m.system_id.clone(), m.window_start, m.revision)).or_default() += 1;
    }
    assert_eq!(counts.len() as i64, windows, "every window scored");
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "published twice: {repeated:?}");
    stop_ingest.cancel();
    ingest.await.unwrap();
}

/// A device sending the rig's native rates (PS1-6 and EPS1 at 100 Hz, FS1-2 at 10 Hz: 43,680
/// readings a cycle, in one batch) gets the diagnosis of one sending the data set's 1 Hz: the
/// same degraded-valve cycle, once each way, is stored whole and scored alike.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_sent_at_native_rates_is_diagnosed_as_at_1_hz() {
    let p = pipeline().await;
    let prefix = p.rigs(1).await;
    let system = format!("{prefix}-0");
    let cycle = find(&sample(), 100, 73, 0, 130);
    let t0 = (chrono::Utc::now().timestamp_micros() / MIN - 30) * MIN;
    let (stop_ingest, ingest) = p.spawn_ingest();
    let infer_token = tokio_util::sync::CancellationToken::new();
    let infer = tokio::spawn(manifold::startup::run(manifold::startup::ProcessSet::Infer, p.config.clone(), manifold::telemetry::Metrics::new(), infer_token.clone()));
    let encoder = manifold::codec::RecordEncoder::for_batches(&p.config.schema_registry, &p.config.topics.batches.name).unwrap();
    for batch in [sim::cycle_batch(&system, &cycle, t0), sim::native_cycle_batch(&system, &cycle, t0 + MIN)] {
        p.produce(&system, &encoder.encode_batch(&batch).await.unwrap()).await;
    }
    let messages = common::scores::read(&p, 2, Duration::from_secs(60)).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    let client = common::connect(&p.db_url).await;
    let rows = client
        .query("SELECT w.reading_count, s.component_id, s.class, s.score FROM anomaly_scores s JOIN windows w USING (system_id, window_start) WHERE s.system_id = $1 ORDER BY s.component_id, s.window_start", &[&system])
        .await
        .unwrap();
    assert_eq!(rows.len(), 8, "four components in two windows");
    for pair in rows.chunks(2) {
        let (one_hz, native) = (&pair[0], &pair[1]);
        assert_eq!((one_hz.get::<_, i64>(0), native.get::<_, i64>(0)), (1_020, 43_680), "both cycles stored whole");
        let component: String = one_hz.get(1);
        assert_eq!(one_hz.get::<_, Option<String>>(2), native.get::<_, Option<String>>(2), "{component}: the same class");
        let (a, b): (f32, f32) = (one_hz.get(3), native.get(3));
        assert!((a - b).abs() < 1e-5, "{component}: {a} vs {b}");
    }
    let valve: Vec<Option<String>> = rows.iter().filter(|r| r.get::<_, String>(1) == "valve").map(|r| r.get(2)).collect();
    assert_eq!(valve, [Some("73".to_owned()), Some("73".to_owned())], "the degraded valve is diagnosed both ways");
    infer_token.cancel();
    infer.await.unwrap().unwrap();
    stop_ingest.cancel();
    ingest.await.unwrap();
}
