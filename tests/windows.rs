//! Window bookkeeping end to end: ready windows are announced on windows.ready.v1 exactly once
//! per revision; late data opens a new revision; an idle window closes by processing time.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::pipeline::TestPipeline;
use manifold::codec::WindowReady;
use manifold::domain::{RawBatch, RawSeries};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use schema_registry_converter::async_impl::avro::AvroDecoder;
use schema_registry_converter::async_impl::schema_registry::SrSettings;

const MIN: i64 = 60_000_000;

fn batch(system: &str, id: &str, start_us: i64, seconds: usize) -> Vec<u8> {
    let series = ["PS1", "TS1"]
        .iter()
        .map(|s| RawSeries { sensor_id: (*s).into(), start: start_us, interval_us: 1_000_000, times_us: vec![], values: vec![50.0; seconds] })
        .collect();
    serde_json::to_vec(&RawBatch { batch_id: Some(id.into()), system_id: system.into(), produced_at: None, series }).unwrap()
}

/// Reads window-ready events (read_committed) until `want` arrived or the timeout passes.
async fn read_events(p: &TestPipeline, want: usize, timeout: Duration) -> Vec<WindowReady> {
    let mut config = manifold::kafka::client_config(&p.config.kafka);
    config.set("group.id", common::unique("reader")).set("auto.offset.reset", "earliest").set("isolation.level", "read_committed");
    let reader: BaseConsumer = config.create().unwrap();
    reader.subscribe(&[&p.config.topics.windows_ready.name]).unwrap();
    let decoder = AvroDecoder::new(SrSettings::new(p.config.schema_registry.url.clone()));
    let mut events = Vec::new();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(Ok(m)) = reader.poll(Duration::from_millis(100)) {
            let value = decoder.decode(m.payload()).await.expect("Avro in the Confluent framing").value;
            events.push(WindowReady::from_avro(value).unwrap());
        } else if events.len() >= want {
            break; // nothing more within a poll after the expected count: no duplicates pending
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_are_announced_once_per_revision_late_data_reopens_and_idle_windows_close() {
    let p = TestPipeline::new(&[("MANIFOLD__WINDOWS__IDLE_TIMEOUT_SECONDS", "4")]).await;
    let prefix = p.rigs(1).await;
    let system = format!("{prefix}-0");
    let t0 = (chrono::Utc::now().timestamp_micros() / MIN - 10) * MIN;
    let (stop, running) = p.spawn_ingest();

    // Three full windows; the third is not passed by the watermark (newest - 10 s lateness).
    for w in 0..3 {
        p.produce(&system, &batch(&system, &format!("w{w}"), t0 + w * MIN, 60)).await;
    }
    p.wait_for("SELECT count(*) FROM windows WHERE ready_revision = 0", 2, Duration::from_secs(20)).await;
    // Late data for window 0, after it was announced.
    p.produce(&system, &batch(&system, "late", t0 + 30_000_000, 5)).await;
    // The idle timeout closes window 2 by processing time.
    let events = read_events(&p, 4, Duration::from_secs(30)).await;

    let by_key: BTreeMap<(i64, i32), &WindowReady> = events.iter().map(|e| ((e.window_start, e.revision), e)).collect();
    assert_eq!(by_key.len(), events.len(), "each window revision announced exactly once: {events:?}");
    let summary: Vec<(i64, i32, i64, &str)> =
        by_key.values().map(|e| ((e.window_start - t0) / MIN, e.revision, e.reading_count, e.closed_by.as_str())).collect();
    assert_eq!(
        summary,
        vec![(0, 0, 120, "WATERMARK"), (0, 1, 130, "LATE_DATA"), (1, 0, 120, "WATERMARK"), (2, 0, 120, "IDLE")],
    );
    assert!(events.iter().all(|e| e.system_id == system && e.sensors == vec!["PS1".to_owned(), "TS1".to_owned()]));
    assert!(events.iter().all(|e| e.window_end - e.window_start == MIN));
    stop.cancel();
    running.await.unwrap();
}
