//! One startup for every process set: a set stops within the shutdown deadline even when one of
//! its tasks does not stop on its own, and a task that fails stops the others and names itself.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::pipeline::TestPipeline;
use manifold::startup::{ProcessSet, StartupError};
use manifold::telemetry::Metrics;
use tokio_util::sync::CancellationToken;

/// A scoring service that takes every connection and never answers; returns its URL and how
/// many connections it took.
async fn silent_service() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/score", listener.local_addr().unwrap());
    let taken = Arc::new(AtomicUsize::new(0));
    let counter = taken.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (url, taken)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_process_stops_within_the_deadline_while_scoring_hangs() {
    let (url, taken) = silent_service().await;
    // The worker waits for the service as long as configured (10 minutes) and looks at the
    // shutdown signal only between batches.
    let p = TestPipeline::new(&[
        ("GNN_SERVICE_URL", &url),
        ("MANIFOLD__GNN__TIMEOUT_MS", "600000"),
        ("MANIFOLD__GNN__ATTEMPTS", "1"),
        ("MANIFOLD__WINDOWS__IDLE_TIMEOUT_SECONDS", "3"),
        ("MANIFOLD__API__LISTEN", "127.0.0.1:0"),
        ("MANIFOLD__SHUTDOWN_DEADLINE_SECONDS", "3"),
    ])
    .await;
    let deadline = p.config.shutdown_deadline_seconds;
    assert_eq!(deadline, Duration::from_secs(3), "the deadline is the configured one");
    let system = format!("{}-0", p.rigs(1).await);
    let token = CancellationToken::new();
    let running = tokio::spawn(manifold::startup::run(ProcessSet::All, p.config.clone(), Metrics::new(), token.clone()));

    let cycle = manifold::rig::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/uci-sample"))).unwrap().remove(0);
    let minute = 60_000_000;
    let batch = manifold::sim::cycle_batch(&system, &cycle, (chrono::Utc::now().timestamp_micros() / minute - 30) * minute);
    let encoder = manifold::codec::RecordEncoder::for_batches(&p.config.schema_registry, &p.config.topics.batches.name).unwrap();
    p.produce(&system, &encoder.encode_batch(&batch).await.unwrap()).await;
    // Stored, its window closed by the idle timeout, relayed, and handed to the scorer.
    let asked_by = Instant::now() + Duration::from_secs(90);
    while taken.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < asked_by, "infer never asked the scoring service");
        assert!(!running.is_finished(), "the process stopped by itself");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let stopping = Instant::now();
    token.cancel();
    let stopped = tokio::time::timeout(deadline + Duration::from_secs(10), running).await;
    let took = stopping.elapsed();
    stopped.expect("the process stops within the deadline").expect("no panic").expect("a stop on request is not a failure");
    assert!(took >= deadline - Duration::from_millis(500), "infer was abandoned at the deadline, not finished: {took:?}");
    assert_eq!(p.query_i64("SELECT count(*) FROM anomaly_scores").await, 0, "the window in hand was not scored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_fails_stops_the_others_and_names_itself() {
    // librdkafka checks the value when a client is created: the consumer cannot start (the
    // relay's producer cannot either, but the relay retries in its own loop).
    let p = TestPipeline::new(&[]).await;
    let mut env: Vec<(&str, &str)> = p.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.push(("MANIFOLD__KAFKA__CLIENT__QUEUED_MIN_MESSAGES", "not-a-number"));
    let config = common::config_with(&env);
    let deadline = config.shutdown_deadline_seconds;
    let started = Instant::now();
    let result = tokio::time::timeout(
        deadline,
        manifold::startup::run(ProcessSet::Ingest, config, Metrics::new(), CancellationToken::new()),
    )
    .await
    .expect("the other tasks stop without a shutdown signal");
    let err = result.expect_err("a failed task fails the process");
    assert!(matches!(err.downcast_ref::<StartupError>(), Some(StartupError::Failed { task: "ingest", .. })), "{err:#}");
    assert!(err.to_string().starts_with("ingest failed"), "{err:#}");
    assert!(started.elapsed() < deadline, "the others stopped at once, not at the deadline");
}
