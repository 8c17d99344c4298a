//! Overload (issue 12, scenario 6): a backlog far larger than ingest stores in a minute waits in
//! the input topic (preloaded: producing it live is impossible on a small box), then the real
//! `manifold ingest` process starts against it. Memory must stay bounded by configuration, not
//! by the backlog: librdkafka's prefetch is capped (`ingest.queued_max_kbytes`, one queue for the
//! high-level consumer) and a chunk holds at most `ingest.chunk_max_readings`. The lag must drain
//! to 0, nothing may be dead-lettered, and every reading must be stored exactly once.
//!
//! `cargo test` runs a small backlog. `CHAOS_OVERLOAD_READINGS=N` sets its size; the long form
//! (`make chaos`) is ten times what the box sustains per minute (README, "Sustained run": 322k
//! readings/s held for ten minutes, so about 195M readings).

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::pipeline::TestPipeline;
use common::whole_path::{Ingest, stored_offsets};
use manifold::rig::{self, RIG_SENSORS};
use manifold::sim;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::FutureRecord;

/// Readings of the short form: enough for several chunks on every partition.
const SHORT_FORM_READINGS: usize = 150_000;
const SYSTEMS: usize = 16;
/// What the process holds before any backlog: code, the runtimes, the pool, librdkafka's
/// threads and buffers. Measured idle against an empty topic: 41.6 MB (debug build, the larger
/// of the two); the margin is for allocator fragmentation.
const PROCESS_BASE_MB: f64 = 48.0;
/// One reading while a chunk is in hand: the decoded row (24 B), its share of the binary COPY
/// buffer (≈ 21 B), the window bookkeeping; generous, since a chunk is small beside the base.
const BYTES_PER_CHUNK_READING: f64 = 96.0;
/// ingest's `fetch.max.bytes` (src/ingest/consumer.rs): one fetch response, lz4-compressed as
/// manifold's producers send it, is held beside its decompressed messages while they are queued.
const FETCH_MAX_MB: f64 = 8.0;
/// How far the peak may still rise over the second half of the backlog: once the prefetch queue
/// is full, more backlog must not mean more memory (a leak of 100 B a batch shows over 100k batches).
const SECOND_HALF_RISE_MB: f64 = 8.0;

fn readings_wanted() -> usize {
    std::env::var("CHAOS_OVERLOAD_READINGS").ok().map_or(SHORT_FORM_READINGS, |v| v.parse().expect("CHAOS_OVERLOAD_READINGS is a number"))
}

/// The peak resident memory the configuration allows ingest, whatever the backlog: the process
/// base, the prefetch queue at its cap, one fetch response held compressed and decompressed
/// (counted three times, the decompressed copy taken as twice the compressed), and two chunks
/// (one being written while the next fills).
/// Measured (debug build, 5M readings): peak 90 MB, level from the first quarter of the backlog on.
fn rss_bound_mb(p: &TestPipeline) -> f64 {
    let prefetch_mb = p.config.ingest.queued_max_kbytes as f64 / 1024.0;
    let chunks_mb = 2.0 * p.config.ingest.chunk_max_readings as f64 * BYTES_PER_CHUNK_READING / (1024.0 * 1024.0);
    PROCESS_BASE_MB + prefetch_mb + 3.0 * FETCH_MAX_MB + chunks_mb
}

/// Produces `readings` (rounded up to whole rig cycles) as a backfill ending now, and returns
/// the batch and reading counts and each partition's end offset.
async fn preload(p: &TestPipeline, rigs: &str, readings: usize) -> (i64, i64, BTreeMap<i32, i64>) {
    let cycles = rig::load(std::path::Path::new(rig::SAMPLE_DATA)).expect("the sample data");
    let per_batch = RIG_SENSORS.len() * 60;
    let batches = readings.div_ceil(per_batch);
    let minute = 60_000_000;
    let now = chrono::Utc::now().timestamp_micros() / minute * minute;
    let first = now - (batches / SYSTEMS + 1) as i64 * minute;
    let topic = &p.config.topics.batches.name;
    let encoder = manifold::codec::RecordEncoder::for_batches(&p.config.schema_registry, topic).expect("encoder");
    let producer = manifold::kafka::producer(&p.config.kafka).expect("producer");
    let (mut ends, mut in_flight, mut total) = (BTreeMap::new(), Vec::new(), 0);
    for b in 0..batches {
        let system = sim::system_id(rigs, b % SYSTEMS);
        let batch = sim::cycle_batch(&system, &cycles[b % cycles.len()], first + (b / SYSTEMS) as i64 * minute);
        total += batch.series.iter().map(|s| s.values.len() as i64).sum::<i64>();
        let payload = encoder.encode_batch(&batch).await.expect("encode");
        in_flight.push(producer.send_result(FutureRecord::to(topic).key(&system).payload(&payload)).map_err(|(e, _)| e).expect("enqueue"));
        // Bounds the producer's queue; a failed delivery fails the test here.
        if in_flight.len() >= 2000 || b + 1 == batches {
            for delivery in in_flight.drain(..) {
                let d = delivery.await.expect("delivery").map_err(|(e, _)| e).expect("produce");
                let end = ends.entry(d.partition).or_insert(0);
                *end = (*end).max(d.offset + 1);
            }
        }
    }
    (batches as i64, total, ends)
}

fn vm_kb(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// The per-partition lag ingest itself reports (from librdkafka's statistics, every 5 s).
async fn reported_lag(ingest: &Ingest) -> Option<BTreeMap<String, i64>> {
    let body = reqwest::get(format!("http://{}/metrics", ingest.listen()?)).await.ok()?.text().await.ok()?;
    let lag: BTreeMap<String, i64> = body
        .lines()
        .filter(|l| l.starts_with("manifold_ingest_consumer_lag_messages{"))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(series, v)| Some((series.to_owned(), v.parse().ok()?))))
        .collect();
    Some(lag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preloaded_backlog_drains_with_bounded_memory_each_reading_stored_once_and_none_dead_lettered() {
    let p = TestPipeline::new(&[]).await;
    let rigs = p.rigs(SYSTEMS).await;
    let preload_began = Instant::now();
    let (batches, total, ends) = preload(&p, &rigs, readings_wanted()).await;
    let preload_s = preload_began.elapsed().as_secs_f64();
    let bound_mb = rss_bound_mb(&p);

    let began = Instant::now();
    let mut ingest = Ingest::start(&p);
    let pid = ingest.child.id();
    let probe = common::connect(&p.db_url).await;
    // Generous: a debug build on a loaded box stores tens of thousands of readings a second.
    let deadline = began + Duration::from_secs(120) + Duration::from_secs_f64(total as f64 / 5_000.0);
    let (mut peak_kb, mut quarters) = (0, Vec::new());
    loop {
        peak_kb = peak_kb.max(vm_kb(pid, "VmHWM:").unwrap_or(0));
        assert!(ingest.child.try_wait().expect("ingest status").is_none(), "ingest exited under the backlog:\n{}", ingest.log_text());
        let stored: i64 = probe.query_one("SELECT coalesce(sum(readings), 0)::int8 FROM ingested_batches", &[]).await.expect("progress").get(0);
        // The peak so far at each quarter of the backlog: a leak climbs from quarter to quarter,
        // a bounded process levels off once its queue and chunks are full.
        while quarters.len() < 4 && stored * 4 >= total * (quarters.len() as i64 + 1) {
            quarters.push(peak_kb as f64 / 1024.0);
        }
        if stored >= total {
            break;
        }
        assert!(Instant::now() < deadline, "{stored} of {total} readings stored after {:?}", began.elapsed());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained_s = began.elapsed().as_secs_f64();

    // The lag is 0 by the positions stored with the data, and by ingest's own gauge.
    let stored_at = stored_offsets(&p).await;
    assert_eq!(stored_at, ends, "stored positions are each partition's end");
    let gauge_deadline = Instant::now() + Duration::from_secs(30);
    loop {
        peak_kb = peak_kb.max(vm_kb(pid, "VmHWM:").unwrap_or(0));
        let lag = reported_lag(&ingest).await.unwrap_or_default();
        if lag.len() == ends.len() && lag.values().all(|l| *l == 0) {
            break;
        }
        assert!(Instant::now() < gauge_deadline, "ingest still reports lag {lag:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    let dead = p.query_i64("SELECT count(*) FROM dead_letters").await;
    assert_eq!(dead, 0, "nothing is dead-lettered for being late in a backlog");
    assert_eq!(p.query_i64("SELECT count(*) FROM ingested_batches").await, batches);
    assert_eq!(p.query_i64("SELECT count(*) FROM readings").await, total, "every reading stored");
    let repeated = p.query_i64("SELECT count(*) FROM (SELECT 1 FROM readings GROUP BY series_id, time HAVING count(*) > 1) d").await;
    assert_eq!(repeated, 0, "no (series, time) stored twice");
    let peak_mb = peak_kb as f64 / 1024.0;
    println!(
        "overload: {total} readings in {batches} batches preloaded in {preload_s:.1} s; drained {drained_s:.1} s after the process started ({:.0} readings/s); \
         ingest peak RSS {peak_mb:.1} MB (bound {bound_mb:.1} MB; by quarter of the backlog {}); lag 0 on {} partitions; dead letters 0; duplicates 0",
        total as f64 / drained_s,
        quarters.iter().map(|q| format!("{q:.1}")).collect::<Vec<_>>().join(" / "),
        ends.len()
    );
    assert!(peak_mb <= bound_mb, "ingest peak RSS {peak_mb:.1} MB over its bound {bound_mb:.1} MB");
    assert!(peak_mb - quarters[1] <= SECOND_HALF_RISE_MB, "ingest's peak RSS still rose over the second half of the backlog: {quarters:?} MB by quarter");
    drop(ingest);
    drop(probe);
    clean_up(&p).await;
}

/// The long form leaves gigabytes behind otherwise; a failed run keeps its database to look at.
/// Best effort: FORCE cannot end an autovacuum worker this role does not own, so it is retried
/// for a while and then left (the test has proven what it proves).
async fn clean_up(p: &TestPipeline) {
    let admin = common::connect(&common::stack_env()["DATABASE_URL"]).await;
    let name = p.db_url.rsplit_once('/').expect("a database URL").1;
    for attempt in 1..=15 {
        match admin.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)")).await {
            Ok(()) => break,
            Err(e) if attempt == 15 => eprintln!("overload: database {name} left behind: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_secs(2)).await,
        }
    }
    let kafka: AdminClient<DefaultClientContext> = manifold::kafka::client_config(&p.config.kafka).create().expect("admin client");
    if let Err(e) = kafka.delete_topics(&[p.config.topics.batches.name.as_str()], &AdminOptions::new()).await {
        eprintln!("overload: backlog topic left behind: {e}");
    }
}
