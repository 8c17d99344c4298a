//! The on-call CLI against the real stack: `manifold offsets show|reset` (stored offsets and
//! Kafka's copy move together, a re-read stores nothing twice, a running group is never moved
//! under its feet) and `manifold dlq replay` filtered by system and time, with a dry run.

mod common;

use std::time::Duration;

use common::batch::BatchBuilder;
use common::pipeline::TestPipeline;
use rdkafka::producer::FutureRecord;
use serde_json::Value;

fn batch(system: &str, id: &str) -> Vec<u8> {
    let start = chrono::Utc::now().timestamp_micros() - 60_000_000;
    BatchBuilder::new(system).id(id).per_second("PS1", start, vec![1.0, 2.0, 3.0]).json()
}

fn show(p: &TestPipeline) -> Value {
    serde_json::from_str(&p.run_manifold(&["offsets", "show", "--format", "json"])).expect("show prints JSON")
}

fn partitions(shown: &Value) -> &Vec<Value> {
    shown["partitions"].as_array().expect("a partitions array")
}

/// Sum of one numeric column over the partitions (a missing value counts as 0).
fn total(shown: &Value, column: &str) -> i64 {
    partitions(shown).iter().map(|p| p[column].as_i64().unwrap_or(0)).sum()
}

/// Ingests three batches of a registered system and one undecodable message, then stops ingest.
async fn ingest_three_and_a_bad_one(p: &TestPipeline) -> String {
    let system = format!("{}-0", p.rigs(1).await);
    let (stop, running) = p.spawn_ingest();
    for i in 0..3 {
        p.produce(&system, &batch(&system, &format!("b{i}"))).await;
    }
    p.produce(&system, b"not a batch").await;
    p.wait_for("SELECT count(*) FROM ingested_batches", 3, Duration::from_secs(30)).await;
    p.wait_for("SELECT coalesce(sum(next_offset), 0)::int8 FROM ingest_offsets", 4, Duration::from_secs(15)).await;
    p.wait_for("SELECT count(*) FROM dead_letters", 1, Duration::from_secs(5)).await;
    stop.cancel();
    running.await.unwrap();
    system
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_reports_stored_offsets_watermarks_lag_and_kafkas_copy() {
    let p = TestPipeline::new(&[]).await;
    ingest_three_and_a_bad_one(&p).await;
    let shown = show(&p);
    assert_eq!(shown["group"], p.config.ingest.group_id.as_str(), "the ingest group by default");
    assert_eq!(partitions(&shown).len(), 3, "{shown}");
    assert_eq!(total(&shown, "high"), 4, "{shown}");
    assert_eq!(total(&shown, "stored"), 4, "{shown}");
    assert_eq!(total(&shown, "lag"), 0, "{shown}");
    for partition in partitions(&shown) {
        if partition["high"].as_i64() > Some(0) {
            assert_eq!(partition["stored"], partition["high"], "{shown}");
        }
    }
    let text = p.run_manifold(&["offsets", "show"]);
    assert!(text.contains(&p.config.ingest.group_id) && text.contains("kafka-committed"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_to_earliest_rereads_and_stores_nothing_twice() {
    let p = TestPipeline::new(&[]).await;
    ingest_three_and_a_bad_one(&p).await;
    let readings = p.query_i64("SELECT count(*) FROM readings").await;

    let out = p.run_manifold(&["offsets", "reset", "--to-earliest"]);
    assert!(out.contains("read again"), "{out}");
    assert!(out.contains("duplicate") && out.contains("dead-lettered"), "says what a re-read does: {out}");
    let shown = show(&p);
    assert_eq!(total(&shown, "stored"), 0, "{shown}");
    assert_eq!(total(&shown, "lag"), 4, "{shown}");
    assert_eq!(total(&shown, "kafka_committed"), 0, "Kafka's committed offsets moved too: {shown}");
    for partition in partitions(&shown) {
        assert_eq!(partition["kafka_committed"], 0, "lag tools agree: {shown}");
    }

    let (stop, running) = p.spawn_ingest();
    p.wait_for("SELECT coalesce(sum(next_offset), 0)::int8 FROM ingest_offsets", 4, Duration::from_secs(30)).await;
    stop.cancel();
    running.await.unwrap();
    assert_eq!(p.query_i64("SELECT count(*) FROM ingested_batches").await, 3);
    assert_eq!(p.query_i64("SELECT count(*) FROM readings").await, readings, "re-read batches skipped as duplicates");
    assert_eq!(p.query_i64("SELECT count(*) FROM dead_letters").await, 1, "the bad message is recorded once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_is_refused_while_a_consumer_of_the_group_runs() {
    let p = TestPipeline::new(&[]).await;
    let system = format!("{}-0", p.rigs(1).await);
    let (stop, running) = p.spawn_ingest();
    p.produce(&system, &batch(&system, "only")).await;
    p.wait_for("SELECT coalesce(sum(next_offset), 0)::int8 FROM ingest_offsets", 1, Duration::from_secs(30)).await;

    let out = p.manifold(&["offsets", "reset", "--to-earliest"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&p.config.ingest.group_id), "names the group: {stderr}");
    assert!(stderr.contains("active member") && stderr.contains("Stop every `manifold ingest`"), "says how to stop it: {stderr}");
    assert_eq!(p.query_i64("SELECT coalesce(sum(next_offset), 0)::int8 FROM ingest_offsets").await, 1, "nothing moved");
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_to_time_picks_the_first_message_at_or_after_it() {
    let p = TestPipeline::new(&[]).await;
    let producer = manifold::kafka::producer(&p.config.kafka).unwrap();
    let topic = &p.config.topics.batches.name;
    let t0 = chrono::Utc::now().timestamp_millis() - 600_000;
    for i in 0..4 {
        let record = FutureRecord::to(topic).partition(1).key("k").payload("x").timestamp(t0 + i * 60_000);
        producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| e).unwrap();
    }
    let between = chrono::DateTime::from_timestamp_millis(t0 + 90_000).unwrap().to_rfc3339();
    let out = p.run_manifold(&["offsets", "reset", "--to-time", &between, "--partition", "1"]);
    assert!(out.contains("partition   1: 0 -> 2"), "the third message is the first at or after the time: {out}");
    let stored = p.query_i64("SELECT next_offset FROM ingest_offsets WHERE partition = 1").await;
    assert_eq!(stored, 2);
    assert_eq!(p.query_i64("SELECT count(*) FROM ingest_offsets").await, 1, "only the partition asked for");
    let shown = show(&p);
    let one = partitions(&shown).iter().find(|s| s["partition"] == 1).unwrap().clone();
    assert_eq!(one["kafka_committed"], 2, "{shown}");
    assert_eq!(one["lag"], 2, "{shown}");

    let later = chrono::DateTime::from_timestamp_millis(t0 + 3_600_000).unwrap().to_rfc3339();
    let out = p.run_manifold(&["offsets", "reset", "--to-time", &later, "--partition", "1"]);
    assert!(out.contains("2 -> 4"), "nothing at or after the time: resume after the newest: {out}");
}

/// Two dead letters of `system` (an old one and a new one) and one of another system.
async fn dead_letters(p: &TestPipeline, system: &str) {
    let client = common::connect(&p.db_url).await;
    client
        .batch_execute(&format!(
            "INSERT INTO dead_letters (received_at, source_topic, source_partition, source_offset, message_key, message_value, error_kind, error_message, system_id) VALUES \
             (now() - interval '2 days', 't', 0, 1, 'k', 'old', 'unknown_system', 'm', '{system}'), \
             (now(), 't', 0, 2, 'k', 'new', 'unknown_system', 'm', '{system}'), \
             (now(), 't', 0, 3, 'k', 'other', 'unknown_system', 'm', 'someone-else')"
        ))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dlq_replay_filters_by_system_and_time_and_a_dry_run_changes_nothing() {
    let p = TestPipeline::new(&[]).await;
    let system = common::unique("sys");
    dead_letters(&p, &system).await;
    let since = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let outbox = p.query_i64("SELECT count(*) FROM outbox").await;

    let dry = p.run_manifold(&["dlq", "replay", "--system", &system, "--since", &since, "--dry-run"]);
    assert_eq!(dry.lines().filter(|l| l.starts_with("would replay")).count(), 1, "{dry}");
    assert!(dry.contains(&format!("system={system}")) && dry.contains(r#""would_replay":1"#), "{dry}");
    let everything = p.run_manifold(&["dlq", "replay", "--system", &system, "--dry-run"]);
    assert!(everything.contains(r#""would_replay":2"#), "{everything}");
    assert_eq!(p.query_i64("SELECT count(*) FROM dead_letters WHERE replayed_at IS NOT NULL").await, 0, "a dry run marks nothing");
    assert_eq!(p.query_i64("SELECT count(*) FROM outbox").await, outbox);
    let sent = common::topic::read_committed(&p.config, &p.config.topics.batches.name, 0, Duration::from_secs(3));
    assert!(sent.is_empty(), "a dry run sends nothing");

    let replayed = p.run_manifold(&["dlq", "replay", "--system", &system, "--since", &since]);
    assert_eq!(replayed.trim(), r#"{"replayed":1}"#);
    let sent = common::topic::read_committed(&p.config, &p.config.topics.batches.name, 1, Duration::from_secs(10));
    let payloads: Vec<&[u8]> = sent.iter().filter_map(rdkafka::Message::payload).collect();
    assert_eq!(payloads, vec![b"new".as_slice()]);
    let pending: Vec<String> = common::connect(&p.db_url)
        .await
        .query("SELECT convert_from(message_value, 'UTF8') FROM dead_letters WHERE replayed_at IS NULL ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(pending, vec!["old", "other"]);
}
