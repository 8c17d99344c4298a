//! Window bookkeeping end to end: ready windows are announced on windows.ready.v1 exactly once
//! per revision; late data opens a new revision; an idle window closes by processing time.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::batch::BatchBuilder;
use common::pipeline::TestPipeline;
use manifold::codec::WindowReady;

const MIN: i64 = 60_000_000;

/// PS1 and TS1, `seconds` readings each, once a second from `start_us`.
fn batch(system: &str, id: &str, start_us: i64, seconds: usize) -> Vec<u8> {
    BatchBuilder::new(system).id(id).per_second("PS1", start_us, vec![50.0; seconds]).per_second("TS1", start_us, vec![50.0; seconds]).json()
}

/// Reads window-ready events (read_committed) until `want` arrived or the timeout passes.
async fn read_events(p: &TestPipeline, want: usize, timeout: Duration) -> Vec<WindowReady> {
    let values = common::topic::read_committed_avro(&p.config, &p.config.topics.windows_ready.name, want, timeout).await;
    values.into_iter().map(|value| WindowReady::from_avro(value).unwrap()).collect()
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

/// Every rig sensor (17, 1 Hz in the rig topology) once a second over `[start, start + seconds)`.
fn rig_batch(system: &str, id: &str, start_us: i64, seconds: usize) -> Vec<u8> {
    let mut builder = BatchBuilder::new(system).id(id);
    for sensor in manifold::rig::rig_topology().sensors {
        builder = builder.per_second(sensor.id.as_str(), start_us, vec![(sensor.min + sensor.max) / 2.0; seconds]);
    }
    builder.json()
}

/// With the watermark and the idle close far away (1 h lateness and idle timeout), a window that
/// every sensor filled is announced by the chunk that completes it, as `COMPLETE`; a consumer
/// on the schema before that symbol (Python's AvroDeserializer) reads the enum's default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_window_is_announced_at_once_and_an_old_python_reader_decodes_complete() {
    let p = TestPipeline::new(&[
        ("MANIFOLD__WINDOWS__LENGTH_SECONDS", "10"),
        ("MANIFOLD__WINDOWS__ALLOWED_LATENESS_SECONDS", "3600"),
        ("MANIFOLD__WINDOWS__IDLE_TIMEOUT_SECONDS", "3600"),
    ])
    .await;
    let prefix = p.rigs(1).await;
    let system = format!("{prefix}-0");
    const TEN: i64 = 10_000_000;
    let t0 = (chrono::Utc::now().timestamp_micros() / TEN - 6) * TEN;
    let (stop, running) = p.spawn_ingest();

    // Window 0 complete; window 1 one second short on every sensor.
    p.produce(&system, &rig_batch(&system, "w0", t0, 10)).await;
    p.produce(&system, &rig_batch(&system, "w1", t0 + TEN, 9)).await;
    let events = read_events(&p, 1, Duration::from_secs(20)).await;
    let summary: Vec<(i64, i32, &str)> = events.iter().map(|e| ((e.window_start - t0) / TEN, e.revision, e.closed_by.as_str())).collect();
    assert_eq!(summary, vec![(0, 0, "COMPLETE")]);
    assert_eq!(events[0].reading_count, 170);
    p.wait_for("SELECT count(*) FROM windows", 2, Duration::from_secs(10)).await;
    assert_eq!(p.query_i64("SELECT count(*) FROM windows WHERE ready_revision IS NOT NULL").await, 1, "the short window waits");

    let out = std::process::Command::new(common::python())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/consume_windows.py"))
        .args([&p.config.kafka.brokers, &p.config.schema_registry.url, &p.config.topics.windows_ready.name, "1", "30"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/window_ready.avsc"))
        .output()
        .expect("run the Python consumer");
    assert!(out.status.success(), "python consumer failed: {}", String::from_utf8_lossy(&out.stderr));
    let python: serde_json::Value = serde_json::from_slice(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(python["window_start"].as_i64(), Some(t0));
    assert_eq!(python["closed_by"], "COMPLETE");
    assert_eq!(python["old_closed_by"], "WATERMARK", "an old reader decodes the enum default");
    stop.cancel();
    running.await.unwrap();
}

/// The completeness rule against the real ingest transaction, without Kafka: one system with a
/// 1 Hz sensor A (10 slots of a 10 s window) and a 0.25 Hz sensor B (3 slots kept, the last
/// partial; 2 needed), and a lateness and idle timeout far away so only completeness announces.
mod completeness {
    use std::collections::HashMap;

    use manifold::domain::{AcceptedBatch, Row, SystemId, Topology};
    use manifold::store::ingest::{write_chunk, Chunk};
    use manifold::store::{StorageEngine, Store};
    use manifold::window::WindowSpec;

    use super::common;

    const S: i64 = 1_000_000;

    fn topology(rate_b: f64) -> Topology {
        let json = serde_json::json!({
            "components": [{"id": "pump", "kind": "pump"}],
            "sensors": [
                {"id": "A", "kind": "pressure", "unit": "bar", "sample_rate_hz": 1.0, "min": 0.0, "max": 100.0, "component": "pump"},
                {"id": "B", "kind": "temperature", "unit": "C", "sample_rate_hz": rate_b, "min": 0.0, "max": 100.0, "component": "pump"},
            ],
        });
        serde_json::from_value::<Topology>(json).unwrap().validate().unwrap()
    }

    struct Rig {
        store: Store,
        client: tokio_postgres::Client,
        owner: uuid::Uuid,
        system: String,
        series: HashMap<String, i32>,
        spec: WindowSpec,
        /// Start of a 10 s window a minute ago: its end has passed.
        t0: i64,
    }

    impl Rig {
        async fn new() -> Rig {
            let (url, client) = common::migrated_database().await;
            let config = common::config_with(&[("DATABASE_URL", &url)]);
            manifold::store::maintenance::Maintenance::new(config.database.clone(), config.storage.clone(), manifold::telemetry::Metrics::new())
                .run_once(chrono::Utc::now())
                .await
                .expect("partitions");
            let store = Store::new(&config.database).unwrap();
            let owner = store.ensure_user("complete@manifold.test", "Completeness").await.unwrap();
            let system = common::unique("press");
            store.create_equipment(owner, &SystemId::parse(&system).unwrap(), "press", &topology(0.25)).await.unwrap();
            let rows = client.query("SELECT sensor_id, series_id FROM series WHERE system_id = $1", &[&system]).await.unwrap();
            let series = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            let spec = WindowSpec { length_us: 10 * S, origin_us: 0, lateness_us: 3600 * S, idle_timeout_us: 3600 * S };
            let t0 = (chrono::Utc::now().timestamp_micros() / (10 * S) - 6) * 10 * S;
            Rig { store, client, owner, system, series, spec, t0 }
        }

        /// Stores one batch (its own id) of readings at these offsets (ms from t0) per sensor.
        async fn send(&self, readings: &[(&str, &[i64])]) {
            let rows: Vec<Row> = readings
                .iter()
                .flat_map(|(sensor, ms)| ms.iter().map(|m| Row { series_id: self.series[*sensor], time_us: self.t0 + m * 1000, value: 1.0 }))
                .collect();
            let sensors = readings.iter().map(|(s, _)| (self.series[*s], s.to_string())).collect();
            let batch = AcceptedBatch { system_id: self.system.clone(), batch_id: common::unique("b"), rows, sensors };
            let mut client = self.store.client().await.unwrap();
            let tx = client.transaction().await.unwrap();
            let chunk = Chunk { batches: vec![&batch], dead_letters: vec![], offsets: vec![] };
            let mut trace = manifold::telemetry::traces::ChunkTrace::off();
            write_chunk(&tx, "complete-test", StorageEngine::Native, &self.spec, &chunk, &mut trace).await.unwrap();
            tx.commit().await.unwrap();
        }

        /// Window-ready events in the outbox: (window index, revision, closed_by).
        async fn announced(&self) -> Vec<(i64, i64, String)> {
            let rows = self.client.query("SELECT payload FROM outbox WHERE topic_role = 'windows_ready' ORDER BY seq", &[]).await.unwrap();
            rows.iter()
                .map(|r| {
                    let v: serde_json::Value = serde_json::from_slice(&r.get::<_, Vec<u8>>(0)).unwrap();
                    ((v["window_start"].as_i64().unwrap() - self.t0) / (10 * S), v["revision"].as_i64().unwrap(), v["closed_by"].as_str().unwrap().to_owned())
                })
                .collect()
        }
    }

    const A_ALL: &[i64] = &[0, 1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000];
    const B_NEED: &[i64] = &[0, 4000];

    #[tokio::test]
    async fn a_window_with_every_slot_is_complete_and_one_slot_short_is_not() {
        let rig = Rig::new().await;
        rig.send(&[("A", &A_ALL[..9]), ("B", B_NEED)]).await;
        assert_eq!(rig.announced().await, vec![], "A is one slot short");
        // Two readings in one slot of A (3.0 s and 3.5 s) still leave slot 9 empty.
        rig.send(&[("A", &[3500])]).await;
        assert_eq!(rig.announced().await, vec![]);
        rig.send(&[("A", &[9000])]).await;
        assert_eq!(rig.announced().await, vec![(0, 0, "COMPLETE".to_owned())], "the chunk filling the last slot announces it");
    }

    #[tokio::test]
    async fn the_same_batch_stored_twice_under_two_ids_does_not_complete_a_window() {
        let rig = Rig::new().await;
        let half: &[i64] = &A_ALL[..5];
        rig.send(&[("A", half), ("B", B_NEED)]).await;
        rig.send(&[("A", half), ("B", B_NEED)]).await;
        let count: i64 = rig.client.query_one("SELECT reading_count FROM windows", &[]).await.unwrap().get(0);
        assert_eq!(count, 14, "both copies are stored");
        assert_eq!(rig.announced().await, vec![], "10 readings of A but 5 slots");
    }

    #[tokio::test]
    async fn late_data_after_complete_opens_a_revision_only_when_it_adds_slots() {
        let rig = Rig::new().await;
        rig.send(&[("A", A_ALL), ("B", B_NEED)]).await;
        // A repeat of slots already filled: stored, but nothing new to score.
        rig.send(&[("A", &[2500, 7000]), ("B", &[1000])]).await;
        assert_eq!(rig.announced().await, vec![(0, 0, "COMPLETE".to_owned())]);
        let row = rig.client.query_one("SELECT revision, ready_revision, reading_count FROM windows", &[]).await.unwrap();
        assert_eq!((row.get::<_, i32>(0), row.get::<_, Option<i32>>(1), row.get::<_, i64>(2)), (0, Some(0), 15));
        // B's partial third slot (8–10 s) is new: a new revision, complete, so announced at once.
        rig.send(&[("B", &[8000])]).await;
        assert_eq!(rig.announced().await, vec![(0, 0, "COMPLETE".to_owned()), (0, 1, "LATE_DATA".to_owned())]);
    }

    #[tokio::test]
    async fn a_topology_change_mid_window_recomputes_completeness_of_open_windows() {
        let rig = Rig::new().await;
        // Window 0: B has one slot of the two it needs at 0.25 Hz. Window 1: A is complete,
        // B has none.
        rig.send(&[("A", A_ALL), ("B", &[0])]).await;
        rig.send(&[("A", &A_ALL.iter().map(|m| m + 10_000).collect::<Vec<_>>())]).await;
        assert_eq!(rig.announced().await, vec![]);
        // B at 0.1 Hz needs one slot per 10 s window: window 0 is complete now, window 1 is not.
        rig.store.update_equipment(rig.owner, &rig.system, "press", &topology(0.1), None).await.unwrap();
        assert_eq!(rig.announced().await, vec![(0, 0, "COMPLETE".to_owned())], "announced by the topology change");
        let bits: String = rig.client.query_one("SELECT slots::text FROM window_slots WHERE series_id = $1", &[&rig.series["B"]]).await.unwrap().get(0);
        assert_eq!(bits, "1", "B's coverage recounted at the new rate");
        // At 2 Hz B needs 20 slots per window: readings a second apart fill only half of them.
        rig.store.update_equipment(rig.owner, &rig.system, "press", &topology(2.0), None).await.unwrap();
        rig.send(&[("B", &A_ALL.iter().map(|m| m + 10_000).collect::<Vec<_>>())]).await;
        assert_eq!(rig.announced().await.len(), 1, "window 1 waits for B's other 10 slots");
        rig.send(&[("B", &A_ALL.iter().map(|m| m + 10_500).collect::<Vec<_>>())]).await;
        assert_eq!(rig.announced().await, vec![(0, 0, "COMPLETE".to_owned()), (1, 0, "COMPLETE".to_owned())]);
    }
}
