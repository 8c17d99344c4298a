//! Batches through real Kafka into real PostgreSQL: exactly the rows produced, duplicates
//! skipped, bad input dead-lettered (in the table and on the dead-letter topic) with the good
//! batches around it stored.

mod common;

use std::time::Duration;

use common::batch::BatchBuilder;
use common::pipeline::TestPipeline;
use manifold::codec::RecordEncoder;
use manifold::domain::RawBatch;
use rdkafka::Message;
use rdkafka::message::Headers;

/// PS1 with `values` and TS1 with a quarter of each, once a second from `start_us`.
fn batch(system: &str, id: &str, start_us: i64, values: Vec<f64>) -> RawBatch {
    let quarters = values.iter().map(|v| v / 4.0).collect();
    BatchBuilder::new(system).id(id).per_second("PS1", start_us, values).per_second("TS1", start_us, quarters).build()
}

fn minute_ago() -> i64 {
    chrono::Utc::now().timestamp_micros() - 60_000_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produced_batches_are_stored_exactly_with_their_values_and_times() {
    let p = TestPipeline::new(&[]).await;
    let prefix = p.rigs(3).await;
    let (stop, running) = p.spawn_ingest();
    let encoder = RecordEncoder::for_batches(&p.config.schema_registry, &p.config.topics.batches.name).unwrap();
    let start = minute_ago();
    let mut expected = Vec::new();
    for i in 0..30 {
        let system = format!("{prefix}-{}", i % 3);
        let values: Vec<f64> = (0..10).map(|k| 100.0 + i as f64 + k as f64 / 10.0).collect();
        let b = batch(&system, &format!("b{i}"), start + i * 10_000_000, values.clone());
        for (k, v) in values.iter().enumerate() {
            expected.push((system.clone(), "PS1".to_owned(), start + i * 10_000_000 + k as i64 * 1_000_000, *v));
        }
        let payload = if i % 2 == 0 { encoder.encode_batch(&b).await.unwrap() } else { serde_json::to_vec(&b).unwrap() };
        p.produce(&system, &payload).await;
    }
    p.wait_for("SELECT count(*) FROM readings", 600, Duration::from_secs(30)).await;

    let client = common::connect(&p.db_url).await;
    let rows = client
        .query(
            "SELECT s.system_id, s.sensor_id, (extract(epoch FROM r.time) * 1000000)::int8, r.value \
             FROM readings r JOIN series s USING (series_id) WHERE s.sensor_id = 'PS1' ORDER BY 1, 3",
            &[],
        )
        .await
        .unwrap();
    let mut stored: Vec<(String, String, i64, f64)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect();
    expected.sort_by_key(|a| (a.0.clone(), a.2));
    stored.sort_by_key(|a| (a.0.clone(), a.2));
    assert_eq!(stored, expected);
    assert_eq!(p.query_i64("SELECT count(*) FROM ingested_batches").await, 30);
    assert_eq!(p.query_i64("SELECT count(*) FROM latest_readings").await, 6, "a last value per series");
    assert_eq!(p.query_i64("SELECT sum(n)::int8 FROM readings_1m").await, 600, "the minute aggregate counts every reading");
    assert_eq!(p.query_i64("SELECT count(*) FROM dead_letters").await, 0);
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_batch_id_is_skipped_and_counted_once() {
    let p = TestPipeline::new(&[]).await;
    let prefix = p.rigs(1).await;
    let system = format!("{prefix}-0");
    let (stop, running) = p.spawn_ingest();
    let b = serde_json::to_vec(&batch(&system, "same-id", minute_ago(), vec![1.0, 2.0, 3.0])).unwrap();
    for _ in 0..3 {
        p.produce(&system, &b).await;
    }
    p.produce(&system, &serde_json::to_vec(&batch(&system, "other", minute_ago(), vec![4.0])).unwrap()).await;
    p.wait_for("SELECT count(*) FROM ingested_batches", 2, Duration::from_secs(30)).await;
    p.wait_for("SELECT coalesce(sum(next_offset), 0)::int8 FROM ingest_offsets", 4, Duration::from_secs(10)).await;
    assert_eq!(p.query_i64("SELECT count(*) FROM readings").await, 8, "3 + 3 readings of same-id stored once, plus 2");
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_bad_input_is_dead_lettered_with_its_reason_and_good_batches_are_stored() {
    let p = TestPipeline::new(&[]).await;
    let prefix = p.rigs(1).await;
    let system = format!("{prefix}-0");
    let now = chrono::Utc::now().timestamp_micros();
    let good = |id: &str| serde_json::to_vec(&batch(&system, id, minute_ago(), vec![5.0])).unwrap();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("malformed", b"\x07garbage".to_vec()),
        ("unknown_schema", vec![0, 0x7f, 0xff, 0xff, 0x03, 2, 4]),
        ("unknown_system", serde_json::to_vec(&batch("no-such-rig", "u1", minute_ago(), vec![1.0])).unwrap()),
        ("out_of_range", serde_json::to_vec(&batch(&system, "r1", minute_ago(), vec![999.0])).unwrap()),
        ("future_time", serde_json::to_vec(&batch(&system, "f1", now + 48 * 3_600_000_000, vec![1.0])).unwrap()),
        ("expired_time", serde_json::to_vec(&batch(&system, "e1", now - 400 * 86_400_000_000, vec![1.0])).unwrap()),
        ("empty_batch", BatchBuilder::new(&system).id("x").json()),
    ];
    let mut unknown_sensor = batch(&system, "s1", minute_ago(), vec![1.0]);
    unknown_sensor.series[0].sensor_id = "PS99".into();
    cases.push(("unknown_sensor", serde_json::to_vec(&unknown_sensor).unwrap()));
    let encoder = RecordEncoder::for_batches(&p.config.schema_registry, &p.config.topics.batches.name).unwrap();
    let nan = encoder.encode_batch(&batch(&system, "n1", minute_ago(), vec![f64::NAN])).await.unwrap();
    cases.push(("non_finite", nan));

    let (stop, running) = p.spawn_ingest();
    for (i, (_, payload)) in cases.iter().enumerate() {
        p.produce(&system, &good(&format!("good-{i}"))).await;
        p.produce(&system, payload).await;
    }
    p.produce(&system, &good("good-last")).await;
    let n = cases.len() as i64;
    p.wait_for("SELECT count(*) FROM dead_letters", n, Duration::from_secs(30)).await;
    p.wait_for("SELECT count(*) FROM ingested_batches", n + 1, Duration::from_secs(30)).await;
    let client = common::connect(&p.db_url).await;
    let mut kinds: Vec<String> = client.query("SELECT error_kind FROM dead_letters", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    kinds.sort();
    let mut want: Vec<String> = cases.iter().map(|(k, _)| k.to_string()).collect();
    want.sort();
    assert_eq!(kinds, want);

    // The relay publishes each dead letter, with the original value and the reason in headers.
    let mut seen = Vec::new();
    for m in common::topic::read_committed(&p.config, &p.config.topics.dead_letters.name, cases.len(), Duration::from_secs(30)) {
        let headers = m.headers().expect("dead letters carry headers");
        let kind = headers.iter().find(|h| h.key == "manifold.error.kind").and_then(|h| h.value).map(|v| String::from_utf8_lossy(v).to_string()).unwrap();
        let original = cases.iter().find(|(k, _)| *k == kind).map(|(_, v)| v.clone()).unwrap();
        assert_eq!(m.payload().unwrap_or_default(), original.as_slice(), "{kind}: the original value");
        assert_eq!(m.key(), Some(system.as_bytes()), "the original key");
        for header in ["manifold.error.message", "manifold.source.topic", "manifold.source.partition", "manifold.source.offset", "manifold.time"] {
            assert!(headers.iter().any(|h| h.key == header), "{header} missing");
        }
        seen.push(kind);
    }
    seen.sort();
    assert_eq!(seen, want, "each dead letter published exactly once");
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_valid_policy_stores_good_readings_and_dead_letters_the_rest_under_a_derived_id() {
    let p = TestPipeline::new(&[("MANIFOLD__INGEST__BAD_READINGS", "store_valid")]).await;
    let prefix = p.rigs(1).await;
    let system = format!("{prefix}-0");
    let (stop, running) = p.spawn_ingest();
    p.produce(&system, &serde_json::to_vec(&batch(&system, "mixed", minute_ago(), vec![1.0, 999.0, 3.0])).unwrap()).await;
    p.wait_for("SELECT count(*) FROM dead_letters", 1, Duration::from_secs(30)).await;
    // PS1 999 is out of [0, 250]; TS1 carries a quarter of it, 249.75, out of [-20, 100].
    assert_eq!(p.query_i64("SELECT count(*) FROM readings").await, 4, "6 readings, two out of range");
    let client = common::connect(&p.db_url).await;
    let row = client.query_one("SELECT batch_id, message_value FROM dead_letters", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "mixed~rejected");
    let rejected: RawBatch = serde_json::from_slice(&row.get::<_, Vec<u8>>(1)).unwrap();
    assert_eq!(rejected.series.iter().map(|s| s.values.clone()).collect::<Vec<_>>(), vec![vec![999.0], vec![249.75]]);
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_batch_is_stored_when_replayed_after_the_fix() {
    let p = TestPipeline::new(&[]).await;
    let (stop, running) = p.spawn_ingest();
    let system = format!("{}-late-rig-0", p.prefix);
    p.produce(&system, &serde_json::to_vec(&batch(&system, "before-equipment", minute_ago(), vec![7.0, 8.0])).unwrap()).await;
    p.wait_for("SELECT count(*) FROM dead_letters WHERE error_kind = 'unknown_system'", 1, Duration::from_secs(30)).await;

    // The fix: the equipment gets registered. Then the operator replays that reason.
    manifold::sim::ensure_equipment(&p.store(), &format!("{}-late-rig", p.prefix), 1).await.unwrap();
    assert_eq!(p.run_manifold(&["dlq", "replay", "--reason", "unknown_system"]).trim(), r#"{"replayed":1}"#);

    p.wait_for("SELECT count(*) FROM ingested_batches WHERE batch_id = 'before-equipment'", 1, Duration::from_secs(30)).await;
    assert_eq!(p.query_i64("SELECT count(*) FROM readings").await, 4);
    assert_eq!(p.query_i64("SELECT count(*) FROM dead_letters WHERE replayed_at IS NULL").await, 0, "replayed once, not again");
    stop.cancel();
    running.await.unwrap();
}
