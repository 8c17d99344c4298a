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
