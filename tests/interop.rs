//! Interoperability with third-party clients: batches from Python confluent-kafka's
//! AvroSerializer (schema registered by that client) are stored like manifold's own.

mod common;

use std::process::Command;
use std::time::Duration;

use common::pipeline::TestPipeline;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_from_python_confluent_kafka_avro_serializer_are_stored() {
    let p = TestPipeline::new(&[]).await;
    let prefix = p.rigs(1).await;
    let system = format!("{prefix}-0");
    let (stop, running) = p.spawn_ingest();
    let start = chrono::Utc::now().timestamp_micros() / 60_000_000 * 60_000_000 - 3_600_000_000;
    let count = 12;
    let out = Command::new(common::python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/produce_batches.py"))
        .args([&p.config.kafka.brokers, &p.config.schema_registry.url, &p.config.topics.batches.name])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/sensor_batch.avsc"))
        .args([&system, &count.to_string(), &start.to_string()])
        .output()
        .expect("run the Python producer");
    assert!(out.status.success(), "python producer failed: {}", String::from_utf8_lossy(&out.stderr));

    p.wait_for("SELECT count(*) FROM ingested_batches", count, Duration::from_secs(30)).await;
    assert_eq!(p.query_i64("SELECT count(*) FROM readings").await, count * 120);
    assert_eq!(p.query_i64("SELECT count(*) FROM dead_letters").await, 0);
    // PS1 of batch i, sample k = 100 + i + k/100 at start + i min + k s: check every value and time.
    let mismatched = p
        .query_i64(&format!(
            "SELECT count(*) FROM readings r JOIN series s USING (series_id) \
             CROSS JOIN LATERAL (SELECT (extract(epoch FROM r.time) * 1000000)::int8 - {start} AS us) t \
             WHERE s.sensor_id = 'PS1' AND abs(r.value - (100 + (t.us / 60000000) + (t.us % 60000000) / 1000000 / 100.0)) > 1e-9"
        ))
        .await;
    assert_eq!(mismatched, 0, "values and times arrive unchanged");
    stop.cancel();
    running.await.unwrap();
}
