//! One readiness rule a device clock cannot poison: a reading far ahead of the wall clock is
//! stored, but it cannot drag the watermark past now − lateness, and no window whose end is
//! still in the future is announced, by the watermark, by the idle close or by a rescore.

mod common;

use std::time::Duration;

use common::batch::{BatchBuilder, SECOND_US as S};
use common::pipeline::TestPipeline;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A JSON batch with one reading per (sensor, event time).
fn batch(system: &str, id: &str, readings: &[(&str, i64)]) -> Vec<u8> {
    readings.iter().fold(BatchBuilder::new(system).id(id), |batch, (sensor, t)| batch.per_second(sensor, *t, vec![50.0])).json()
}

/// A window-ready event in the outbox, with the database time it was announced at.
#[derive(Debug)]
struct Announced {
    window_start: i64,
    window_end: i64,
    revision: i64,
    closed_by: String,
    announced_at: i64,
}

async fn announced(p: &TestPipeline) -> Vec<Announced> {
    let client = common::connect(&p.db_url).await;
    let rows = client
        .query(
            "SELECT (e->>'window_start')::int8, (e->>'window_end')::int8, (e->>'revision')::int8, e->>'closed_by',
                    (extract(epoch FROM created_at) * 1000000)::int8
             FROM outbox CROSS JOIN LATERAL (SELECT convert_from(payload, 'UTF8')::jsonb AS e) AS j WHERE topic_role = 'windows_ready' ORDER BY seq",
            &[],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| Announced { window_start: r.get(0), window_end: r.get(1), revision: r.get(2), closed_by: r.get(3), announced_at: r.get(4) })
        .collect()
}

/// Ingest running for one rig with `length` s windows, 1 s allowed lateness and an idle timeout
/// of `idle` s: the pipeline, the rig's system, and ingest's stop token and task.
async fn ingest_with_windows(length: &str, idle: &str) -> (TestPipeline, String, CancellationToken, JoinHandle<()>) {
    let p = TestPipeline::new(&[
        ("MANIFOLD__WINDOWS__LENGTH_SECONDS", length),
        ("MANIFOLD__WINDOWS__ALLOWED_LATENESS_SECONDS", "1"),
        ("MANIFOLD__WINDOWS__IDLE_TIMEOUT_SECONDS", idle),
    ])
    .await;
    let system = format!("{}-0", p.rigs(1).await);
    let (stop, running) = p.spawn_ingest();
    (p, system, stop, running)
}

/// Waits until ingest is assigned and writing (a garbage message is dead-lettered), so the
/// messages that follow are stored within a fraction of a second.
async fn warm_up(p: &TestPipeline) {
    p.produce("warm-up", b"not a batch").await;
    p.wait_for("SELECT count(*) FROM dead_letters", 1, Duration::from_secs(30)).await;
}

/// The watermark as the readiness rule sees it, and the database clock, both in µs.
async fn watermark_and_now(p: &TestPipeline, system: &str) -> (i64, i64) {
    let client = common::connect(&p.db_url).await;
    let row = client
        .query_one(
            "SELECT (extract(epoch FROM max_event_time - make_interval(secs => $2::int8)) * 1000000)::int8,
                    (extract(epoch FROM now()) * 1000000)::int8
             FROM system_watermarks WHERE system_id = $1",
            &[&system, &(p.config.windows.allowed_lateness_seconds.as_secs() as i64)],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reading_a_day_ahead_neither_drags_the_watermark_nor_makes_later_windows_announce_early() {
    // 3 s windows so a live device fills a few in seconds; no idle close to muddle the picture.
    let (p, system, stop, running) = ingest_with_windows("3", "3600").await;
    let lateness = S;

    // One reading 23 h ahead (within storage.future_skew_hours): stored, but the watermark stays
    // at or behind now − lateness.
    let ahead = now_us() + 23 * 3600 * S;
    p.produce(&system, &batch(&system, "ahead", &[("PS1", ahead)])).await;
    p.wait_for("SELECT count(*) FROM system_watermarks", 1, Duration::from_secs(20)).await;
    assert_eq!(p.query_i64("SELECT count(*) FROM readings WHERE time > now() + interval '22 hours'").await, 1, "the reading ahead is stored");
    let (watermark, now) = watermark_and_now(&p, &system).await;
    assert!(watermark <= now - lateness, "the watermark is {} s past now − lateness", (watermark - now + lateness) / S);

    // Then the device sends live data, one reading per sensor each second, each already
    // measured. With a watermark a day ahead, every message would announce its window at once
    // with what had arrived so far, and the next one would reopen it as a new revision.
    for i in 0..9 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t = now_us() / S * S - S;
        p.produce(&system, &batch(&system, &format!("live{i}"), &[("PS1", t), ("TS1", t)])).await;
    }
    p.wait_for("SELECT count(*) FROM readings", 1 + 18, Duration::from_secs(20)).await;

    let events = announced(&p).await;
    assert!(!events.is_empty(), "the watermark of the live data passed at least one window");
    assert!(events.iter().all(|e| e.revision == 0 && e.closed_by == "WATERMARK"), "no window announced early and reopened: {events:?}");
    assert_eq!(p.query_i64("SELECT count(*) FROM windows WHERE revision > 0").await, 0, "no spurious revision");
    assert!(events.iter().all(|e| e.window_end <= e.announced_at), "no window announced before its end: {events:?}");
    assert_eq!(
        p.query_i64("SELECT count(*) FROM windows WHERE window_start > now() + interval '22 hours' AND ready_revision IS NULL").await,
        1,
        "the window a day ahead waits for its end",
    );
    let (watermark, now) = watermark_and_now(&p, &system).await;
    assert!(watermark <= now - lateness, "the watermark is {} s past now − lateness", (watermark - now + lateness) / S);
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_window_whose_end_is_in_the_future_closes_only_once_its_end_has_passed() {
    let (p, system, stop, running) = ingest_with_windows("5", "1").await;
    warm_up(&p).await;

    // A stream that stops with two windows still in the future: `near` ends within 8 s, `far`
    // at least 15 s from now. Both are idle within a second; neither may close before its end.
    let sent = now_us();
    p.produce(&system, &batch(&system, "ahead", &[("PS1", sent + 3 * S), ("TS1", sent + 15 * S)])).await;
    let start_of = |t: i64| t - t.rem_euclid(5 * S);
    let (near, far) = (start_of(sent + 3 * S), start_of(sent + 15 * S));

    p.wait_for("SELECT least(count(*), 1) FROM outbox WHERE topic_role = 'windows_ready'", 1, Duration::from_secs(30)).await;
    let (_, now) = watermark_and_now(&p, &system).await;
    let events = announced(&p).await;
    assert!(now < far + 5 * S, "precondition: the far window's end has not passed yet (the machine stalled for seconds)");
    assert_eq!(events.len(), 1, "only the near window closed, though both were idle: {events:?}");
    let e = &events[0];
    assert_eq!((e.window_start, e.revision, e.closed_by.as_str()), (near, 0, "IDLE"));
    assert!(e.announced_at >= e.window_end, "closed {} ms before its end", (e.window_end - e.announced_at) / 1000);

    // Nothing more arrives: the idle close still closes the far window once its end passes.
    p.wait_for("SELECT count(*) FROM outbox WHERE topic_role = 'windows_ready'", 2, Duration::from_secs(40)).await;
    let events = announced(&p).await;
    let e = &events[1];
    assert_eq!((e.window_start, e.revision, e.closed_by.as_str()), (far, 0, "IDLE"));
    assert!(e.announced_at >= e.window_end, "closed {} ms before its end", (e.window_end - e.announced_at) / 1000);
    stop.cancel();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rescore_never_announces_a_window_whose_end_is_in_the_future() {
    let p = TestPipeline::new(&[]).await;
    // Two announced windows; the second ends in an hour, as one announced early by the rule
    // before this one could leave behind.
    let client = common::connect(&p.db_url).await;
    client
        .batch_execute(
            "INSERT INTO windows (system_id, window_start, window_end, reading_count, sensors, revision, ready_revision) VALUES
                 ('rig-r', date_trunc('minute', now()) - interval '2 min', date_trunc('minute', now()) - interval '1 min', 120, '{PS1,TS1}', 0, 0),
                 ('rig-r', date_trunc('minute', now()) + interval '1 hour', date_trunc('minute', now()) + interval '61 min', 1, '{PS1}', 0, 0)",
        )
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let rescored = p.store().rescore(now - chrono::Duration::days(1), now + chrono::Duration::days(1), None).await.unwrap();
    assert_eq!(rescored.len(), 1, "{rescored:?}");
    assert!(rescored[0].window_end <= now && rescored[0].revision == 1);
    let events = announced(&p).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0].revision, events[0].closed_by.as_str()), (1, "RESCORE"));
    assert_eq!(p.query_i64("SELECT count(*) FROM windows WHERE window_end > now() AND revision = 0 AND ready_revision = 0").await, 1, "the future window is left alone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_held_back_while_its_end_was_in_the_future_is_announced_by_the_next_chunk() {
    let (p, system, stop, running) = ingest_with_windows("3", "3600").await;
    warm_up(&p).await;

    // A reading 2 s ahead: its window ends in the future, so nothing passes it yet.
    let ahead = now_us() + 2 * S;
    let window = ahead - ahead.rem_euclid(3 * S);
    p.produce(&system, &batch(&system, "ahead", &[("PS1", ahead)])).await;
    p.wait_for("SELECT count(*) FROM windows", 1, Duration::from_secs(20)).await;
    assert!(announced(&p).await.is_empty());

    // Once its end (and the lateness) has passed by the clock, the next chunk announces it.
    let due = window + 3 * S + S;
    tokio::time::sleep(Duration::from_micros((due - now_us()).max(0) as u64 + 200_000)).await;
    let t = now_us() / S * S;
    p.produce(&system, &batch(&system, "next", &[("PS1", t)])).await;
    p.wait_for("SELECT count(*) FROM outbox WHERE topic_role = 'windows_ready'", 1, Duration::from_secs(20)).await;
    let events = announced(&p).await;
    assert_eq!((events[0].window_start, events[0].revision, events[0].closed_by.as_str()), (window, 0, "WATERMARK"));
    assert!(events[0].announced_at >= events[0].window_end);
    stop.cancel();
    running.await.unwrap();
}
