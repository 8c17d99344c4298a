//! Traces end to end: the real `manifold ingest` and `manifold infer` processes export spans over
//! OTLP/HTTP to an in-test receiver (no collector runs here). One window's spans form one
//! parent chain — announce → relay publish → infer score — linked to the ingest chunks that
//! wrote its readings; another window has another trace; the score message carries the trace.
//! With export off, nothing is made: no span, no stored link, no trace header.

mod common;

#[path = "otel/receiver.rs"]
mod receiver;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use common::pipeline::TestPipeline;
use manifold::domain::{RawBatch, RawSeries};
use manifold::rig::{self, Cycle};
use manifold::sim;
use rdkafka::Message;
use rdkafka::message::Headers;
use receiver::Span;

/// The tests that start `manifold ingest` and `infer` processes take turns: four processes and
/// the test beside them on two cores already starve the spans' export (see the first test).
static PROCESSES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const MIN: i64 = 60_000_000;

/// A `manifold` process of the pipeline, its log in a file (printed when a test fails).
struct Process {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Process {
    fn start(p: &TestPipeline, command: &str, env: &[(&str, &str)]) -> Process {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join(format!("{command}.log"));
        let mut cmd = p.manifold(&[command]);
        cmd.stdout(Stdio::null()).stderr(std::fs::File::create(&log).expect("log file"));
        // Export is what the test says, whatever the shell running the tests has set.
        cmd.env_remove("OTEL_EXPORTER_OTLP_ENDPOINT").env_remove("MANIFOLD__TELEMETRY__OTLP_ENDPOINT");
        cmd.env("MANIFOLD__TELEMETRY__LOG_FORMAT", "json").env("RUST_LOG", "info").envs(env.iter().copied());
        Process { child: cmd.spawn().unwrap_or_else(|e| panic!("start manifold {command}: {e}")), log, _dir: dir }
    }

    fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- {}:\n{}", self.log.display(), self.log_text());
        }
    }
}

async fn pipeline() -> TestPipeline {
    let model = common::shipped_model_dir();
    // Windows close by watermark only: an idle close between two batches of one window would
    // announce it before its second chunk.
    TestPipeline::new(&[("MANIFOLD__WINDOWS__IDLE_TIMEOUT_SECONDS", "600"), ("MANIFOLD__INFER__MODEL_DIR", model.as_str())]).await
}

fn cycles() -> Vec<Cycle> {
    rig::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/uci-sample"))).unwrap()
}

/// A rig cycle's batch cut in two at half its length: two batches of the same window.
fn halves(batch: &RawBatch) -> [RawBatch; 2] {
    let cut = |first: bool| RawBatch {
        batch_id: batch.batch_id.as_ref().map(|id| format!("{id}-{}", if first { "a" } else { "b" })),
        series: batch
            .series
            .iter()
            .map(|s| {
                let half = s.values.len() / 2;
                let (start, values) = if first { (s.start, s.values[..half].to_vec()) } else { (s.start + half as i64 * s.interval_us, s.values[half..].to_vec()) };
                RawSeries { start, values, ..s.clone() }
            })
            .collect(),
        ..batch.clone()
    };
    [cut(true), cut(false)]
}

/// Produces each batch in turn, each only once the one before is stored: one chunk each.
async fn produce_one_chunk_each(p: &TestPipeline, system: &str, batches: &[RawBatch]) {
    let encoder = manifold::codec::RecordEncoder::for_batches(&p.config.schema_registry, &p.config.topics.batches.name).unwrap();
    for (i, batch) in batches.iter().enumerate() {
        p.produce(system, &encoder.encode_batch(batch).await.unwrap()).await;
        p.wait_for("SELECT count(*) FROM ingested_batches", i as i64 + 1, Duration::from_secs(20)).await;
    }
}

fn named<'s>(spans: &'s [Span], name: &str) -> Vec<&'s Span> {
    spans.iter().filter(|s| s.name == name).collect()
}

fn only<'s>(spans: &'s [Span], name: &str, parent: &Span) -> &'s Span {
    let children: Vec<&Span> = spans.iter().filter(|s| s.name == name && s.parent_span_id == parent.span_id).collect();
    assert_eq!(children.len(), 1, "one {name} span under {} {}: {spans:#?}", parent.name, parent.span_id);
    assert_eq!(children[0].trace_id, parent.trace_id, "{name} is in its parent's trace");
    children[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windows_spans_form_one_chain_linked_to_its_chunks_and_the_score_message_carries_it() {
    let _turn = PROCESSES.lock().await;
    let (endpoint, received) = receiver::start().await;
    let p = pipeline().await;
    let system = format!("{}-0", p.rigs(1).await);
    let export = [("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()), ("OTEL_BSP_SCHEDULE_DELAY", "100")];
    let ingest = Process::start(&p, "ingest", &export);
    let infer = Process::start(&p, "infer", &export);

    // Window A in two chunks (the second completes it and announces it), then B (complete).
    let all = cycles();
    let t0 = (chrono::Utc::now().timestamp_micros() / MIN - 30) * MIN;
    let [a1, a2] = halves(&sim::cycle_batch(&system, &all[0], t0));
    let b = sim::cycle_batch(&system, &all[1], t0 + MIN);
    produce_one_chunk_each(&p, &system, &[a1, a2, b]).await;

    let spans = received
        .wait_until(Duration::from_secs(30), "two windows scored", |spans| named(spans, "infer.score").len() >= 2 && named(spans, "ingest.chunk").len() >= 3)
        .await;
    assert!(received.refused().is_empty(), "every export was OTLP/JSON: {:?}", received.refused());
    let announced = named(&spans, "window.announce");
    assert_eq!(announced.len(), 2, "one trace per announced window: {announced:#?}");
    let window = |start: i64| {
        let at = chrono::DateTime::from_timestamp_micros(start).unwrap().to_rfc3339();
        *announced.iter().find(|s| s.attributes.get("manifold.window_start") == Some(&at)).unwrap_or_else(|| panic!("window {at} announced: {announced:#?}"))
    };
    let (a, b) = (window(t0), window(t0 + MIN));
    assert_ne!(a.trace_id, b.trace_id, "different windows, different traces");

    // Each chain: the announce span is the root, the relay's its child, infer's the relay's.
    let chunks = named(&spans, "ingest.chunk");
    let chunk_of = |link: &(String, String)| chunks.iter().find(|c| (&c.trace_id, &c.span_id) == (&link.0, &link.1)).copied();
    for announce in [a, b] {
        assert!(announce.parent_span_id.is_empty(), "a window's trace starts at its announce span: {announce:#?}");
        assert_eq!(announce.attributes.get("manifold.system_id"), Some(&system));
        assert_eq!(announce.attributes.get("manifold.closed_by").map(String::as_str), Some("COMPLETE"));
        let relay = only(&spans, "relay.publish", announce);
        let score = only(&spans, "infer.score", relay);
        assert_eq!(announce.service, "manifold");
        assert!(!announce.error && !relay.error && !score.error, "nothing failed: {announce:?} {relay:?} {score:?}");
        for link in &announce.links {
            let chunk = chunk_of(link).unwrap_or_else(|| panic!("{link:?} links an exported chunk span: {chunks:#?}"));
            assert_ne!(chunk.trace_id, announce.trace_id, "chunks are linked, not parents");
        }
    }
    // A's readings came in two chunks, B's in one; B's chunk wrote none of A's readings.
    assert_eq!(a.links.len(), 2, "A links both chunks that wrote it: {a:#?}");
    assert_eq!(b.links.len(), 1, "B links its one chunk: {b:#?}");
    assert!(!a.links.contains(&b.links[0]), "B's chunk wrote none of A's readings");
    let readings = |link: &(String, String)| chunk_of(link).and_then(|c| c.attributes.get("manifold.readings")).and_then(|n| n.parse::<usize>().ok());
    let a_readings: usize = a.links.iter().map(|l| readings(l).unwrap()).sum();
    assert_eq!(a_readings, all[0].readings().map(|(_, v)| v.len()).sum::<usize>(), "A's two chunks hold exactly its readings");

    // The score messages carry their window's trace: the infer span's own context.
    let scores = common::topic::read_committed(&p.config, &p.config.topics.scores.name, 2, Duration::from_secs(30));
    let carried: BTreeSet<String> = scores
        .iter()
        .map(|m| {
            let header = m.headers().and_then(|h| h.iter().find(|h| h.key == "traceparent")).and_then(|h| h.value);
            String::from_utf8(header.expect("a traceparent header on the score message").to_vec()).unwrap()
        })
        .collect();
    let expected: BTreeSet<String> = [a, b]
        .iter()
        .map(|announce| {
            let score = only(&spans, "infer.score", only(&spans, "relay.publish", announce));
            format!("00-{}-{}-01", score.trace_id, score.span_id)
        })
        .collect();
    assert_eq!(carried, expected, "each score message carries its window's infer span");
    assert!(ingest.log_text().contains("exporting traces"), "ingest says where traces go");

    // A rescore, from another process, starts new traces linked to the same chunks: the links
    // were stored with the windows.
    let at = |t: i64| chrono::DateTime::from_timestamp_micros(t).unwrap().to_rfc3339();
    let out = p.manifold(&["rescore", "--from", &at(t0), "--to", &at(t0 + 2 * MIN)]).envs(export).output().expect("run manifold rescore");
    assert!(out.status.success(), "rescore: {}", String::from_utf8_lossy(&out.stderr));
    let spans = received.wait_until(Duration::from_secs(30), "two rescored windows scored", |spans| named(spans, "infer.score").len() >= 4).await;
    let rescored: Vec<&Span> = named(&spans, "window.announce").into_iter().filter(|s| s.attributes.get("manifold.revision").map(String::as_str) == Some("1")).collect();
    assert_eq!(rescored.len(), 2, "{rescored:#?}");
    for revision_0 in [a, b] {
        let again = rescored.iter().find(|s| s.attributes.get("manifold.window_start") == revision_0.attributes.get("manifold.window_start")).expect("rescored");
        assert_eq!(again.attributes.get("manifold.closed_by").map(String::as_str), Some("RESCORE"));
        assert!(again.parent_span_id.is_empty() && again.trace_id != a.trace_id && again.trace_id != b.trace_id, "a new trace: {again:#?}");
        assert_eq!(again.links, revision_0.links, "the same chunks wrote the readings");
        only(&spans, "infer.score", only(&spans, "relay.publish", again));
    }
    drop(infer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_export_off_no_span_link_or_trace_header_is_made() {
    let _turn = PROCESSES.lock().await;
    let p = pipeline().await;
    let system = format!("{}-0", p.rigs(1).await);
    let ingest = Process::start(&p, "ingest", &[]);
    let all = cycles();
    let t0 = (chrono::Utc::now().timestamp_micros() / MIN - 30) * MIN;
    let batches = [sim::cycle_batch(&system, &all[0], t0), sim::cycle_batch(&system, &all[1], t0 + MIN)];
    produce_one_chunk_each(&p, &system, &batches).await;
    // Both windows are complete: each is announced by its own chunk.
    p.wait_for("SELECT count(*) FROM outbox WHERE topic_role = 'windows_ready'", 2, Duration::from_secs(20)).await;

    assert_eq!(p.query_i64("SELECT count(*) FROM windows WHERE trace_links <> '{}'").await, 0, "no chunk links stored");
    assert_eq!(p.query_i64("SELECT count(*) FROM outbox WHERE headers ? 'traceparent'").await, 0, "no trace context in the outbox");
    let events = common::topic::read_committed(&p.config, &p.config.topics.windows_ready.name, 2, Duration::from_secs(20));
    assert_eq!(events.len(), 2);
    for event in &events {
        let keys: Vec<&str> = event.headers().map(|h| h.iter().map(|h| h.key).collect()).unwrap_or_default();
        assert!(!keys.contains(&"traceparent"), "no trace header on the window-ready event: {keys:?}");
    }
    assert!(!ingest.log_text().contains("exporting traces"), "no exporter was built");
}

/// A window fed by many chunks keeps only the newest links, in order: one stored row per window
/// stays small however the stream is chunked (the bound its announce span links to).
#[tokio::test]
async fn a_window_keeps_only_its_newest_chunk_links() {
    use manifold::telemetry::traces::MAX_LINKS;
    use manifold::window::{SlotAccumulator, WindowAccumulator, WindowSpec};
    let (url, client) = common::migrated_database().await;
    let config = common::config_with(&[("DATABASE_URL", &url)]);
    let store = manifold::store::Store::new(&config.database).unwrap();
    let spec = WindowSpec::from_config(&config.windows);
    let t = (chrono::Utc::now().timestamp_micros() / MIN - 30) * MIN;
    let link = |i: usize| format!("00-{:032x}-{:016x}-01", i + 1, i + 1);
    for i in 0..MAX_LINKS + 4 {
        let mut acc = WindowAccumulator::default();
        acc.add_batch(&spec, "rig-0", [("s1", t + i as i64)].into_iter());
        let mut db = store.client().await.unwrap();
        let tx = db.transaction().await.unwrap();
        // A chunk written while export was off adds no link and keeps the ones there.
        let trace = (i != 3).then(|| link(i));
        manifold::store::windows::apply(&tx, &spec, &acc, &SlotAccumulator::default(), trace.as_deref()).await.unwrap();
        tx.commit().await.unwrap();
    }
    let links: Vec<String> = client.query_one("SELECT trace_links FROM windows", &[]).await.unwrap().get(0);
    let expected: Vec<String> = (4..MAX_LINKS + 4).map(link).collect();
    assert_eq!(links, expected, "the newest {MAX_LINKS}, oldest first");
}
