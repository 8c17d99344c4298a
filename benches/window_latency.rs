//! From the last reading of a window produced to its score committed, with a device that sends
//! each window's readings when the window closes (issue 13, item 2: p95 ≤ 1 s).
//!
//! One rig (17 sensors, 1 Hz, the UCI sample replayed), real time, ingest (with the relay) and
//! infer (the rig model) in this process against the local stack, default lateness and idle
//! timeout, one private pipeline per window length, run side by side. The clock starts at the
//! window's end — the device's last sample period is over and it sends — and stops when a
//! read_committed consumer of `anomaly.scores.v1` receives the window's first score message.
//! Beside it, produce → rows visible: from just before the window's batch is produced until a
//! second connection sees its batch id, which commits with its readings (polled every 2 ms).
//!
//! `eval "$(scripts/stack env)"; cargo bench --bench window_latency` (env: WINDOW_LENGTHS, default
//! "10,60"; WINDOW_COUNT, windows per length, default 30 for lengths ≤ 10 s and 8 otherwise).

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::batch::BatchBuilder;
use common::pipeline::TestPipeline;
use manifold::rig::{self, Cycle};
use rdkafka::Message;
use schema_registry_converter::async_impl::avro::AvroDecoder;
use schema_registry_converter::async_impl::schema_registry::SrSettings;

const S: i64 = 1_000_000;
const VISIBLE: &str = "SELECT 1 FROM ingested_batches WHERE system_id = $1 AND batch_id = $2";

/// Latencies in ms of each window's first score, by window start.
type Received = Arc<Mutex<BTreeMap<i64, f64>>>;

/// Records, for each window, when its first score message was received (read_committed).
fn watch_scores(p: &TestPipeline, ends: Arc<Mutex<BTreeMap<i64, i64>>>, received: Received, stop: Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<()> {
    let reader = common::topic::committed_reader(&p.config, &p.config.topics.scores.name);
    let registry = p.config.schema_registry.url.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let decoder = AvroDecoder::new(SrSettings::new(registry));
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let Some(Ok(m)) = reader.poll(Duration::from_millis(20)) else { continue };
            let at = chrono::Utc::now().timestamp_micros();
            let value = runtime.block_on(decoder.decode(m.payload())).expect("a score message").value;
            let apache_avro::types::Value::Record(fields) = value else { continue };
            let Some(start) = fields.iter().find_map(|(n, v)| match (n.as_str(), v) {
                ("window_start", apache_avro::types::Value::TimestampMicros(t) | apache_avro::types::Value::Long(t)) => Some(*t),
                _ => None,
            }) else {
                continue;
            };
            let Some(end) = ends.lock().unwrap().get(&start).copied() else { continue };
            received.lock().unwrap().entry(start).or_insert((at - end) as f64 / 1000.0);
        }
    })
}

/// The readings of seconds `[from, from + n)` of the replayed stream (cycles back to back).
fn window_batch(system: &str, id: &str, cycles: &[Cycle], start_us: i64, from: usize, n: usize) -> Vec<u8> {
    let mut builder = BatchBuilder::new(system).id(id);
    for (k, sensor) in rig::RIG_SENSORS.iter().enumerate() {
        let values = (from..from + n).map(|s| cycles[(s / 60) % cycles.len()].series[k][s % 60]).collect();
        builder = builder.per_second(sensor.id, start_us, values);
    }
    builder.json()
}

/// Latencies in ms, sorted: window end → first score, and produce → readings visible.
async fn measure(length_s: i64, count: usize) -> (Vec<f64>, Vec<f64>) {
    let model = common::shipped_model_dir();
    let length = length_s.to_string();
    let p = TestPipeline::new(&[("MANIFOLD__WINDOWS__LENGTH_SECONDS", &length), ("MANIFOLD__INFER__MODEL_DIR", model.as_str())]).await;
    let prefix = p.rigs(1).await;
    let system = format!("{prefix}-0");
    let cycles = rig::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/uci-sample"))).unwrap();
    let (stop_ingest, ingest) = p.spawn_ingest();
    let infer_token = tokio_util::sync::CancellationToken::new();
    let infer = tokio::spawn(manifold::startup::run(manifold::startup::ProcessSet::Infer, p.config.clone(), manifold::telemetry::Metrics::new(), infer_token.clone()));
    let ends = Arc::new(Mutex::new(BTreeMap::new()));
    let received: Received = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watcher = watch_scores(&p, ends.clone(), received.clone(), stop.clone());

    let probe = common::connect(&p.db_url).await;
    let mut visible = Vec::with_capacity(count);
    let len_us = length_s * S;
    // The first window starts at the next boundary (windows are aligned to the epoch origin).
    let first = (chrono::Utc::now().timestamp_micros() / len_us + 1) * len_us;
    for k in 0..count as i64 {
        let start = first + k * len_us;
        let end = start + len_us;
        let wait = end - chrono::Utc::now().timestamp_micros();
        if wait > 0 {
            tokio::time::sleep(Duration::from_micros(wait as u64)).await;
        }
        ends.lock().unwrap().insert(start, end);
        let from = (k * length_s) as usize;
        let batch = window_batch(&system, &format!("w{k}"), &cycles, start, from, length_s as usize);
        let sent = std::time::Instant::now();
        p.produce(&system, &batch).await;
        // Produce → row visible: the batch's readings are committed (its id is stored with them).
        while probe.query_opt(VISIBLE, &[&system, &format!("w{k}")]).await.unwrap().is_none() && sent.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        visible.push(sent.elapsed().as_secs_f64() * 1000.0);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(length_s as u64 * 3 + 30);
    while received.lock().unwrap().len() < count && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    watcher.join().unwrap();
    infer_token.cancel();
    stop_ingest.cancel();
    let _ = infer.await;
    let _ = ingest.await;
    let announced = p.query_i64("SELECT count(*) FROM windows WHERE ready_revision IS NOT NULL").await;
    let complete = p
        .query_i64("SELECT count(*) FROM outbox WHERE topic_role = 'windows_ready' AND convert_from(payload, 'UTF8')::jsonb ->> 'closed_by' = 'COMPLETE'")
        .await;
    eprintln!("{length_s} s windows: {} of {count} scored, {announced} announced, {complete} of them COMPLETE", received.lock().unwrap().len());
    let mut latencies: Vec<f64> = received.lock().unwrap().values().copied().collect();
    latencies.sort_by(f64::total_cmp);
    visible.sort_by(f64::total_cmp);
    (latencies, visible)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: then, like criterion, only a
    // smoke run (two 5 s windows) proves the path works, instead of the 8-minute measurement.
    let measuring = std::env::args().any(|a| a == "--bench");
    let (default_lengths, default_count) = if measuring { ("10,60", None) } else { ("5", Some(2)) };
    let lengths: Vec<i64> = std::env::var("WINDOW_LENGTHS").unwrap_or_else(|_| default_lengths.into()).split(',').map(|s| s.trim().parse().expect("WINDOW_LENGTHS: seconds")).collect();
    let count = |l: i64| {
        std::env::var("WINDOW_COUNT").ok().map(|c| c.parse().expect("WINDOW_COUNT: a number")).or(default_count).unwrap_or(if l <= 10 { 30 } else { 8 })
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let results = runtime.block_on(futures_util::future::join_all(lengths.iter().map(|l| measure(*l, count(*l)))));
    println!("| window | windows scored | end → score p50 | p95 | max | produce → rows visible p50 | p99 | max |");
    println!("|---|---|---|---|---|---|---|---|");
    for (l, (lat, vis)) in lengths.iter().zip(&results) {
        let max = |v: &[f64]| v.last().copied().unwrap_or(f64::NAN);
        println!(
            "| {l} s | {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
            lat.len(),
            percentile(lat, 0.5),
            percentile(lat, 0.95),
            max(lat),
            percentile(vis, 0.5),
            percentile(vis, 0.99),
            max(vis)
        );
        if !measuring {
            assert_eq!(lat.len(), count(*l), "every {l} s window of the smoke run is scored");
        }
    }
}
