//! The relay against the real broker: no outbox event can stop it, and none is skipped silently.
//! A dead letter too large for the broker goes out cut with headers saying so; an event the
//! broker refuses is recorded once in outbox_failures and the relay moves past it; a restart
//! repeats nothing.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use common::batch::BatchBuilder;
use common::pipeline::TestPipeline;
use manifold::kafka::{client_config, topics};
use manifold::relay::Relay;
use manifold::telemetry::Metrics;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::message::Headers;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

/// A message as a read_committed consumer sees it.
#[derive(Debug)]
struct Seen {
    seq: i64,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: BTreeMap<String, String>,
}

/// Every committed message on `topic`: polls until `want` arrived, then a little longer so a
/// duplicate would show up too.
fn read_topic(p: &TestPipeline, topic: &str, want: usize) -> Vec<Seen> {
    let mut seen: Vec<Seen> = common::topic::read_committed(&p.config, topic, want, WAIT)
        .iter()
        .map(|m| {
            let headers: BTreeMap<String, String> = m
                .headers()
                .map(|h| h.iter().map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap_or_default()).into_owned())).collect())
                .unwrap_or_default();
            let seq = headers["manifold.outbox.seq"].parse().unwrap();
            Seen { seq, key: m.key().map(<[u8]>::to_vec), value: m.payload().unwrap_or_default().to_vec(), headers }
        })
        .collect();
    seen.sort_by_key(|s| s.seq);
    seen
}

/// A dead letter as ingest writes it: the original in `dead_letters`, the event in the outbox.
async fn insert_dead_letter(p: &TestPipeline, offset: i64, value: &[u8], message: &str) -> i64 {
    let client = common::connect(&p.db_url).await;
    let row = client
        .query_one(
            "WITH letter AS (
                 INSERT INTO dead_letters (source_topic, source_partition, source_offset, message_key, message_value, error_kind, error_message)
                 VALUES ($1, 0, $2, 'rig-key', $3, 'malformed', $4)
                 RETURNING dead_letter_id, source_topic, source_offset, message_key, message_value, error_kind, error_message)
             INSERT INTO outbox (topic_role, message_key, payload, headers)
             SELECT 'dead_letters', message_key, message_value, jsonb_build_object(
                 'manifold.error.kind', error_kind, 'manifold.error.message', error_message,
                 'manifold.source.topic', source_topic, 'manifold.source.partition', '0',
                 'manifold.source.offset', source_offset::text, 'manifold.dead_letter.id', dead_letter_id::text)
             FROM letter RETURNING seq",
            &[&p.config.topics.batches.name, &offset, &value, &message],
        )
        .await
        .unwrap();
    row.get(0)
}

/// A window-ready event as ingest writes it.
async fn insert_window(p: &TestPipeline, minute: i64) -> i64 {
    let start = (chrono::Utc::now().timestamp_micros() / 60_000_000 - 100 + minute) * 60_000_000;
    let payload = serde_json::json!({
        "system_id": "rig-key", "window_start": start, "window_end": start + 60_000_000, "revision": 0,
        "reading_count": 60, "sensors": ["PS1"], "closed_by": "WATERMARK",
    });
    let client = common::connect(&p.db_url).await;
    let row = client
        .query_one(
            "INSERT INTO outbox (topic_role, message_key, payload) VALUES ('windows_ready', 'rig-key', $1) RETURNING seq",
            &[&serde_json::to_vec(&payload).unwrap()],
        )
        .await
        .unwrap();
    row.get(0)
}

fn spawn_relay(p: &TestPipeline) -> (CancellationToken, tokio::task::JoinHandle<()>, Metrics) {
    let metrics = Metrics::new();
    let relay = Relay::new(&p.config, p.store(), &metrics);
    let token = CancellationToken::new();
    let handle = tokio::spawn(relay.run(token.clone()));
    (token, handle, metrics)
}

/// Sets the topic's `max.message.bytes` and waits until the broker reports it.
async fn set_topic_limit(p: &TestPipeline, topic: &str, bytes: usize) {
    let admin: AdminClient<DefaultClientContext> = client_config(&p.config.kafka).create().unwrap();
    let value = bytes.to_string();
    let mut alter = AlterConfig::new(ResourceSpecifier::Topic(topic));
    alter.entries = HashMap::from([("max.message.bytes", value.as_str())]);
    let results = admin.alter_configs(&[alter], &AdminOptions::new()).await.unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let deadline = Instant::now() + WAIT;
    while topics::max_message_bytes(&p.config.kafka, &[topic]).await.unwrap().get(topic) != Some(&bytes) {
        assert!(Instant::now() < deadline, "the broker never applied max.message.bytes = {bytes}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn metric(metrics: &Metrics, line_start: &str) -> Option<f64> {
    metrics.render().lines().find(|l| l.starts_with(line_start)).and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_too_large_for_the_broker_is_published_cut_with_headers_and_the_events_after_it_follow_in_order() {
    let p = TestPipeline::new(&[]).await;
    let dlq = p.config.topics.dead_letters.name.clone();
    let limits = topics::max_message_bytes(&p.config.kafka, &[&p.config.topics.batches.name, &dlq]).await.unwrap();
    assert_eq!(limits[&dlq], limits[&p.config.topics.batches.name] + topics::DEAD_LETTER_HEADER_ROOM, "topics create leaves room for headers");

    let huge: Vec<u8> = (0..1_500_000u32).map(|i| (i % 251) as u8).collect();
    // The issue's example: an error message echoing a 600 KB field name, with control characters.
    let message = format!("unknown field \u{1}{}\u{7f}", "n".repeat(600_000));
    let small = insert_dead_letter(&p, 1, b"{\"bad\": 1}", "malformed JSON").await;
    let big = insert_dead_letter(&p, 2, &huge, &message).await;
    let window = insert_window(&p, 0).await;
    let after = insert_dead_letter(&p, 3, b"\x00\x01", "malformed Avro").await;

    let (stop, running, metrics) = spawn_relay(&p);
    p.wait_for("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL", 4, WAIT).await;
    stop.cancel();
    running.await.unwrap();

    let letters = read_topic(&p, &dlq, 3);
    assert_eq!(letters.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![small, big, after], "each dead letter once, in order");
    let cut = &letters[1];
    assert_eq!(cut.headers.get("manifold.value.truncated").map(String::as_str), Some("true"));
    assert_eq!(cut.headers.get("manifold.value.original_size").map(String::as_str), Some("1500000"));
    assert!(cut.value.len() < huge.len() && huge.starts_with(&cut.value), "the value is the original's beginning, cut");
    let wire = cut.key.as_ref().map_or(0, Vec::len) + cut.value.len() + cut.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
    assert!(wire <= limits[&dlq], "{wire} bytes on a topic taking {}", limits[&dlq]);
    let error = &cut.headers["manifold.error.message"];
    assert!(error.len() <= 1024 && !error.chars().any(char::is_control), "headers are sanitized and bounded");
    assert_eq!(cut.key.as_deref(), Some(b"rig-key".as_slice()));
    assert!(!letters[0].headers.contains_key("manifold.value.truncated"), "a letter that fits is sent whole");
    assert_eq!(letters[2].value, b"\x00\x01");

    let windows = read_topic(&p, &p.config.topics.windows_ready.name, 1);
    assert_eq!(windows.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![window]);

    // The original stays whole for `dlq list` and `dlq replay`.
    assert_eq!(p.query_i64("SELECT length(message_value)::int8 FROM dead_letters WHERE source_offset = 2").await, 1_500_000);
    assert_eq!(p.query_i64("SELECT count(*) FROM outbox_failures").await, 0);
    assert_eq!(metric(&metrics, "manifold_relay_values_truncated_total{topic_role=\"dead_letters\"}"), Some(1.0));
    assert_eq!(metric(&metrics, "manifold_relay_events_published_total{topic_role=\"dead_letters\"}"), Some(3.0));
    assert_eq!(metric(&metrics, "manifold_relay_backlog_events"), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_broker_refuses_is_recorded_once_the_relay_moves_past_it_and_outbox_failed_shows_it() {
    let p = TestPipeline::new(&[]).await;
    let dlq = p.config.topics.dead_letters.name.clone();
    let (stop, running, metrics) = spawn_relay(&p);
    let first = insert_window(&p, 0).await;
    p.wait_for(&format!("SELECT count(*) FROM outbox WHERE seq = {first} AND published_at IS NOT NULL"), 1, WAIT).await;

    // The relay has read the dead-letter topic's limit already; an operator now lowers it below
    // what any dead letter needs, so the broker itself refuses the next one.
    set_topic_limit(&p, &dlq, 100).await;
    let refused = insert_dead_letter(&p, 7, &[b'x'; 2048], "malformed JSON").await;
    let later = insert_window(&p, 1).await;
    p.wait_for(&format!("SELECT count(*) FROM outbox WHERE seq = {later} AND published_at IS NOT NULL"), 1, WAIT).await;
    stop.cancel();
    running.await.unwrap();

    let client = common::connect(&p.db_url).await;
    let rows = client.query("SELECT seq, topic_role, reason, message FROM outbox_failures", &[]).await.unwrap();
    assert_eq!(rows.len(), 1, "recorded exactly once");
    assert_eq!(rows[0].get::<_, i64>(0), refused);
    assert_eq!(rows[0].get::<_, String>(1), "dead_letters");
    assert_eq!(rows[0].get::<_, String>(2), "record_too_large");
    assert!(!rows[0].get::<_, String>(3).is_empty());
    assert!(read_topic(&p, &dlq, 0).is_empty(), "nothing of the refused event is visible");
    let windows = read_topic(&p, &p.config.topics.windows_ready.name, 2);
    assert_eq!(windows.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![first, later], "the events around it, once each");
    assert_eq!(metric(&metrics, "manifold_relay_events_failed_total{reason=\"record_too_large\",topic_role=\"dead_letters\"}"), Some(1.0));
    assert_eq!(metric(&metrics, "manifold_relay_last_published_seq"), Some(later as f64));

    let listed: serde_json::Value = serde_json::from_str(&p.run_manifold(&["outbox", "failed", "--format", "json"])).unwrap();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["failures"][0]["seq"], refused);
    assert_eq!(listed["failures"][0]["reason"], "record_too_large");
    assert!(p.run_manifold(&["outbox", "failed"]).contains("record_too_large"));
    assert!(p.run_manifold(&["dlq", "list"]).contains("1 outbox event"), "dlq list points at the failures");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_relay_republishes_nothing_and_records_no_failure_again() {
    let p = TestPipeline::new(&[]).await;
    let dlq = p.config.topics.dead_letters.name.clone();
    set_topic_limit(&p, &dlq, 100).await;
    let w1 = insert_window(&p, 0).await;
    let refused = insert_dead_letter(&p, 1, b"{}", "malformed JSON").await;
    let w2 = insert_window(&p, 1).await;

    let (stop, running, first_metrics) = spawn_relay(&p);
    p.wait_for(&format!("SELECT count(*) FROM outbox WHERE seq = {w2} AND published_at IS NOT NULL"), 1, WAIT).await;
    stop.cancel();
    running.await.unwrap();
    assert_eq!(metric(&first_metrics, "manifold_relay_events_failed_total{reason=\"record_too_large\",topic_role=\"dead_letters\"}"), Some(1.0));

    let (stop, running, second_metrics) = spawn_relay(&p);
    let w3 = insert_window(&p, 2).await;
    p.wait_for(&format!("SELECT count(*) FROM outbox WHERE seq = {w3} AND published_at IS NOT NULL"), 1, WAIT).await;
    stop.cancel();
    running.await.unwrap();

    let windows = read_topic(&p, &p.config.topics.windows_ready.name, 3);
    assert_eq!(windows.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![w1, w2, w3], "each event once across the restart");
    assert_eq!(p.query_i64(&format!("SELECT count(*) FROM outbox_failures WHERE seq = {refused}")).await, 1);
    assert_eq!(p.query_i64("SELECT count(*) FROM outbox_failures").await, 1);
    assert_eq!(metric(&second_metrics, "manifold_relay_events_failed_total"), None, "the second relay recorded nothing");
    assert_eq!(metric(&second_metrics, "manifold_relay_events_published_total{topic_role=\"windows_ready\"}"), Some(1.0));
}

/// The issue's example end to end, at the largest size a device's producer sends: a JSON message
/// with a huge unknown field name used to stop the relay for good (its dead letter, value plus
/// headers, was over the producer's limit), so no window was ever announced again. Now it goes
/// out whole (the dead-letter topic and the relay's producer have room for any input message
/// plus headers) and the windows after it are announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maximal_message_with_a_huge_unknown_field_is_dead_lettered_whole_and_windows_after_it_are_announced() {
    let p = TestPipeline::new(&[]).await;
    let prefix = p.rigs(1).await;
    let system = format!("{prefix}-0");
    let frame = format!(r#"{{"system_id": "{system}", "series": [], "": 1}}"#).len();
    // Just under librdkafka's default message.max.bytes with the key and framing.
    let poison = format!(r#"{{"system_id": "{system}", "series": [], "{}": 1}}"#, "f".repeat(999_800 - frame)).into_bytes();
    let t0 = (chrono::Utc::now().timestamp_micros() / 60_000_000 - 10) * 60_000_000;
    let (stop, running) = p.spawn_ingest();
    p.produce(&system, &poison).await;
    for w in 0..3 {
        let batch = BatchBuilder::new(&system).id(format!("w{w}")).per_second("PS1", t0 + w * 60_000_000, vec![50.0; 60]);
        p.produce(&system, &batch.json()).await;
    }
    let letters = read_topic(&p, &p.config.topics.dead_letters.name, 1);
    let windows = read_topic(&p, &p.config.topics.windows_ready.name, 2);
    stop.cancel();
    running.await.unwrap();

    assert_eq!(letters.len(), 1, "{:?}", letters.iter().map(|l| &l.headers).collect::<Vec<_>>());
    assert_eq!(letters[0].value, poison, "the dead letter carries the whole original");
    assert!(!letters[0].headers.contains_key("manifold.value.truncated"));
    assert!(letters[0].headers.values().all(|v| v.len() <= 1024), "no header echoes the 600 KB name");
    assert!(windows.len() >= 2, "windows after the poison message are announced: {}", windows.len());
    assert!(windows.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(p.query_i64("SELECT count(*) FROM outbox_failures").await, 0);
}

/// The broker counts a whole batch against the topic's limit and refuses every record in it, so
/// one refusal names several suspects; the relay publishes them one at a time, and records fine
/// on their own are published, not set aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_refused_together_are_narrowed_down_and_published_when_each_fits_alone() {
    let p = TestPipeline::new(&[]).await;
    let dlq = p.config.topics.dead_letters.name.clone();
    let (stop, running, metrics) = spawn_relay(&p);
    let first = insert_window(&p, 0).await;
    p.wait_for(&format!("SELECT count(*) FROM outbox WHERE seq = {first} AND published_at IS NOT NULL"), 1, WAIT).await;

    // Each letter fits the new limit alone; two in one batch (same key, same partition) do not.
    set_topic_limit(&p, &dlq, 6_000).await;
    // One statement, so the relay reads both in one run.
    let client = common::connect(&p.db_url).await;
    let seqs: Vec<i64> = client
        .query(
            "WITH letters AS (
                 INSERT INTO dead_letters (source_topic, source_partition, source_offset, message_key, message_value, error_kind, error_message)
                 SELECT $1, 0, g, 'rig-key', convert_to(repeat('ab', 1750), 'UTF8'), 'malformed', 'malformed JSON'
                 FROM generate_series(1::int8, 2::int8) g
                 RETURNING dead_letter_id, source_offset, message_key, message_value)
             INSERT INTO outbox (topic_role, message_key, payload, headers)
             SELECT 'dead_letters', message_key, message_value, jsonb_build_object('manifold.error.kind', 'malformed',
                    'manifold.source.offset', source_offset::text, 'manifold.dead_letter.id', dead_letter_id::text)
             FROM letters ORDER BY dead_letter_id RETURNING seq",
            &[&p.config.topics.batches.name],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let (a, b) = (seqs[0].min(seqs[1]), seqs[0].max(seqs[1]));
    p.wait_for(&format!("SELECT count(*) FROM outbox WHERE seq IN ({a}, {b}) AND published_at IS NOT NULL"), 2, WAIT).await;
    stop.cancel();
    running.await.unwrap();

    let letters = read_topic(&p, &dlq, 2);
    assert_eq!(letters.iter().map(|s| s.seq).collect::<Vec<_>>(), vec![a, b], "each once, in order");
    assert!(letters.iter().all(|l| l.value.len() == 3_500 && !l.headers.contains_key("manifold.value.truncated")));
    assert_eq!(p.query_i64("SELECT count(*) FROM outbox_failures").await, 0, "no event was at fault alone");
    assert_eq!(metric(&metrics, "manifold_relay_events_failed_total"), None);
}

/// A deployment problem (here the window-ready topic does not exist) is systemic: the relay
/// raises its gauge and retries, sets no event aside, and goes on by itself once it is fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topic_stops_the_relay_loudly_without_setting_any_event_aside() {
    // librdkafka waits this long for a topic to appear before it fails its records.
    let p = TestPipeline::new(&[("MANIFOLD__KAFKA__CLIENT__TOPIC_METADATA_PROPAGATION_MAX_MS", "1000")]).await;
    let mut config = p.config.clone();
    config.topics.windows_ready.name = format!("{}.windows-missing", p.prefix);
    config.relay.systemic_retry_ms = std::time::Duration::from_millis(500);
    let metrics = Metrics::new();
    let relay = Relay::new(&config, p.store(), &metrics);
    let token = CancellationToken::new();
    let running = tokio::spawn(relay.run(token.clone()));
    let window = insert_window(&p, 0).await;

    let deadline = Instant::now() + WAIT;
    while metric(&metrics, "manifold_relay_systemic") != Some(1.0) {
        assert!(Instant::now() < deadline, "the relay never reported the systemic failure");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(p.query_i64("SELECT count(*) FROM outbox_failures").await, 0, "no event is at fault");
    assert_eq!(p.query_i64(&format!("SELECT count(*) FROM outbox WHERE seq = {window} AND published_at IS NOT NULL")).await, 0);

    // The fix: create the topic. The relay publishes the event and clears its gauge.
    topics::create(&config.kafka, &config.topics).await.unwrap();
    p.wait_for(&format!("SELECT count(*) FROM outbox WHERE seq = {window} AND published_at IS NOT NULL"), 1, WAIT).await;
    token.cancel();
    running.await.unwrap();
    assert_eq!(metric(&metrics, "manifold_relay_systemic"), Some(0.0));
    assert_eq!(p.query_i64("SELECT count(*) FROM outbox_failures").await, 0);
    assert_eq!(read_topic(&p, &config.topics.windows_ready.name, 1).iter().map(|s| s.seq).collect::<Vec<_>>(), vec![window]);
}

/// Not a check, a measurement: events per second through the relay (delivery reports kept,
/// every record measured against its limit), start-up included.
/// `cargo test --test relay_poison relay_throughput -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn relay_throughput() {
    let p = TestPipeline::new(&[]).await;
    let n: i64 = 20_000;
    let client = common::connect(&p.db_url).await;
    client
        .execute(
            "WITH letters AS (
                 INSERT INTO dead_letters (source_topic, source_partition, source_offset, message_key, message_value, error_kind, error_message)
                 SELECT $1, 0, g, convert_to('rig-' || (g % 50), 'UTF8'), convert_to(repeat('x', 1000), 'UTF8'), 'malformed', 'malformed JSON'
                 FROM generate_series(1::int8, $2::int8) g
                 RETURNING dead_letter_id, source_offset, message_key, message_value)
             INSERT INTO outbox (topic_role, message_key, payload, headers)
             SELECT 'dead_letters', message_key, message_value, jsonb_build_object('manifold.error.kind', 'malformed',
                    'manifold.source.offset', source_offset::text, 'manifold.dead_letter.id', dead_letter_id::text)
             FROM letters ORDER BY dead_letter_id",
            &[&p.config.topics.batches.name, &n],
        )
        .await
        .unwrap();
    let started = Instant::now();
    let (stop, running, _metrics) = spawn_relay(&p);
    p.wait_for("SELECT count(*) FROM outbox WHERE published_at IS NULL", 0, Duration::from_secs(600)).await;
    let elapsed = started.elapsed();
    stop.cancel();
    running.await.unwrap();
    println!("relay: {n} dead letters of 1 KB in {:.2} s = {:.0} events/s (start-up included)", elapsed.as_secs_f64(), n as f64 / elapsed.as_secs_f64());
}
