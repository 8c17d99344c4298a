//! Exactly once under crashes and rebalances: the real `manifold ingest` process is killed with
//! SIGKILL mid-stream and restarted; two consumers share a group and one leaves midway.

mod common;

use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::batch::BatchBuilder;
use common::pipeline::TestPipeline;

const READINGS_PER_BATCH: i64 = 2 * 30;

/// Batch `i`: PS1 and PS2 with the same 30 values, 30 s after batch `i - 1`.
fn batch(system: &str, i: i64, start_us: i64) -> Vec<u8> {
    let values: Vec<f64> = (0..30).map(|k| ((i * 30 + k) % 200) as f64).collect();
    let start = start_us + i * 30_000_000;
    BatchBuilder::new(system).id(format!("b{i}")).per_second("PS1", start, values.clone()).per_second("PS2", start, values).json()
}

fn spawn_binary(p: &TestPipeline) -> Child {
    let mut command = p.manifold(&["ingest"]);
    command.stdout(Stdio::null()).stderr(Stdio::null());
    command.env("MANIFOLD__INGEST__CHUNK_MAX_READINGS", "300");
    // A restarted instance takes its partitions back at once instead of waiting out the session.
    command.env("MANIFOLD__INGEST__INSTANCE_ID", format!("{}-0", p.prefix));
    command.spawn().expect("start manifold ingest")
}

/// Pseudo-random milliseconds from the clock: different moments on every run.
fn jitter(max_ms: u64) -> Duration {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64;
    Duration::from_millis(nanos % max_ms)
}

async fn assert_exactly_once(p: &TestPipeline, batches: i64) {
    p.wait_for("SELECT count(*) FROM ingested_batches", batches, Duration::from_secs(90)).await;
    assert_eq!(p.query_i64("SELECT count(*) FROM readings").await, batches * READINGS_PER_BATCH);
    let repeated = p.query_i64("SELECT count(*) FROM (SELECT 1 FROM readings GROUP BY series_id, time HAVING count(*) > 1) d").await;
    assert_eq!(repeated, 0, "no reading stored twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_repeats_nothing() {
    let p = TestPipeline::new(&[]).await;
    let prefix = p.rigs(3).await;
    let start = chrono::Utc::now().timestamp_micros() - 3 * 3_600_000_000;
    let total = 240;
    let producer = {
        let p_env = p.config.clone();
        let prefix = prefix.clone();
        tokio::spawn(async move {
            let producer = manifold::kafka::producer(&p_env.kafka).unwrap();
            for i in 0..total {
                let system = format!("{prefix}-{}", i % 3);
                let payload = batch(&system, i, start);
                let record = rdkafka::producer::FutureRecord::to(&p_env.topics.batches.name).key(&system).payload(&payload);
                producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| e).unwrap();
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    let mut child = spawn_binary(&p);
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(700) + jitter(900)).await;
        child.kill().expect("SIGKILL");
        child.wait().unwrap();
        child = spawn_binary(&p);
    }
    producer.await.unwrap();
    assert_exactly_once(&p, total).await;
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_consumers_in_one_group_with_one_leaving_midway_lose_and_repeat_nothing() {
    let p = TestPipeline::new(&[("MANIFOLD__INGEST__CHUNK_MAX_READINGS", "300")]).await;
    let prefix = p.rigs(6).await;
    let start = chrono::Utc::now().timestamp_micros() - 3 * 3_600_000_000;
    let (stop_a, a) = p.spawn_ingest();
    let (stop_b, b) = p.spawn_ingest();
    let total = 240;
    let began = Instant::now();
    for i in 0..total {
        let system = format!("{prefix}-{}", i % 6);
        p.produce(&system, &batch(&system, i, start)).await;
        if i == total / 2 {
            stop_a.cancel(); // a leaves the group midway; b takes its partitions
        }
    }
    a.await.unwrap();
    assert_exactly_once(&p, total).await;
    assert!(began.elapsed() < Duration::from_secs(120));
    stop_b.cancel();
    b.await.unwrap();
}
