//! Whole-path fuzzing: seeded hostile input (arbitrary bytes, Avro through the registry, JSON)
//! interleaved with good batches goes to a real topic, the real `manifold ingest` binary
//! consumes it, and every offset must end stored, a duplicate or dead-lettered, exactly once,
//! without ingest ever pausing, with the outbox drained and every good reading stored once.
//!
//! `FUZZ_SEED` (default fixed) reproduces a run, `FUZZ_CASES` sets its length (`make fuzz`
//! runs thousands), `FUZZ_SKIP_KNOWN=1` leaves out the inputs known to break the pipeline today
//! (see `KNOWN_KILLERS` in `common/adversarial.rs`), to check the rest of the harness.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::adversarial::{Case, Expect, Generator, register_wide_system};
use common::pipeline::TestPipeline;
use futures_util::future::join_all;
use manifold::codec::RecordEncoder;
use rdkafka::producer::FutureRecord;

const DEFAULT_SEED: u64 = 0x5EED_F022;
const DEFAULT_CASES: usize = 150;

struct Settings {
    seed: u64,
    cases: usize,
    skip_known: bool,
    /// No progress (offsets or outbox) for this long ends the wait: ingest is stalled.
    stall: Duration,
}

impl Settings {
    fn from_env() -> Settings {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let seed = var("FUZZ_SEED").map_or(DEFAULT_SEED, |v| {
            let v = v.trim_start_matches("0x");
            u64::from_str_radix(v, 16).or_else(|_| v.parse()).expect("FUZZ_SEED is a number (hex with 0x)")
        });
        Settings {
            seed,
            cases: var("FUZZ_CASES").map_or(DEFAULT_CASES, |v| v.parse().expect("FUZZ_CASES is a count")),
            skip_known: var("FUZZ_SKIP_KNOWN").is_some_and(|v| v != "0"),
            stall: Duration::from_secs(var("FUZZ_STALL_SECS").map_or(20, |v| v.parse().expect("FUZZ_STALL_SECS is seconds"))),
        }
    }
}

/// One produced message and where it landed.
struct Produced {
    partition: i32,
    offset: i64,
    case: Case,
    size: usize,
}

/// The real binary, its stderr in a file (parsed for the listener address and pause lines).
struct Ingest {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ingest {
    fn start(p: &TestPipeline) -> Ingest {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("ingest.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_manifold"));
        command.arg("ingest").stdout(Stdio::null()).stderr(std::fs::File::create(&log).expect("log file"));
        for (k, v) in common::stack_env().into_iter().chain(p.env.iter().cloned()) {
            command.env(k, v);
        }
        command.env("MANIFOLD__TELEMETRY__LOG_FORMAT", "json").env("RUST_LOG", "info");
        Ingest { child: command.spawn().expect("start manifold ingest"), log, _dir: dir }
    }

    fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// The operations listener's address, from its start-up log line.
    fn listen(&self) -> Option<String> {
        let text = self.log_text();
        let line = text.lines().find(|l| l.contains("operations listener up"))?;
        let at = line.find("127.0.0.1:")?;
        Some(line[at..].chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect())
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_never_pauses_ingest_and_every_offset_is_stored_or_dead_lettered_once() {
    let settings = Settings::from_env();
    eprintln!(
        "fuzz_pipeline: FUZZ_SEED={:#x} FUZZ_CASES={} FUZZ_SKIP_KNOWN={} (re-run with these to reproduce)",
        settings.seed, settings.cases, settings.skip_known as u8
    );
    let p = TestPipeline::new(&[("MANIFOLD__INGEST__CHUNK_MAX_READINGS", "3000")]).await;
    let rig = p.rigs(3).await;
    let systems: Vec<String> = (0..3).map(|i| manifold::sim::system_id(&rig, i)).collect();
    let cap = if settings.skip_known { 1e15 } else { f64::MAX };
    let wide = register_wide_system(&p.store(), &format!("{}-wide", p.prefix), cap).await;
    let wide_range = wide.as_ref().map(|w| w.range);
    let encoder = RecordEncoder::for_batches(&p.config.schema_registry, &p.config.topics.batches.name).expect("encoder");
    let mut generator = Generator::new(settings.seed, systems, wide, encoder, settings.skip_known);

    let mut ingest = Ingest::start(&p);
    let produced = produce(&p, &mut generator, settings.cases).await;
    let began = Instant::now();
    let ending = wait_until_settled(&p, &produced, &mut ingest, settings.stall).await;
    let state = State::read(&p, &ingest, &produced).await;
    let mut report = check(&produced, &state);
    if !ending.starts_with("settled") {
        report.insert(0, format!("the run did not settle: {ending}"));
    }
    let mut head = String::new();
    let _ = writeln!(head, "fuzz_pipeline FUZZ_SEED={:#x} FUZZ_CASES={} FUZZ_SKIP_KNOWN={}", settings.seed, settings.cases, settings.skip_known as u8);
    let _ = writeln!(head, "  run ended: {ending} after {:.1} s; wide system range ±{wide_range:?}", began.elapsed().as_secs_f64());
    let _ = writeln!(head, "  database {} (kept for inspection), topic {}", p.db_url, p.config.topics.batches.name);
    let _ = writeln!(head, "  produced by kind: {:?}", kinds(&produced));
    let _ = writeln!(head, "  dead letters by reason: {:?}", state.reasons);
    if report.is_empty() {
        eprint!("{head}");
    }
    report.insert(0, head);
    assert!(report.len() == 1, "the whole path failed on hostile input:\n{}", report.join("\n"));
}

/// Produces every case, in groups awaited together (order within a partition is kept by the
/// idempotent producer), and records where each one landed.
async fn produce(p: &TestPipeline, generator: &mut Generator, cases: usize) -> Vec<Produced> {
    let producer = manifold::kafka::producer(&p.config.kafka).expect("producer");
    let topic = p.config.topics.batches.name.clone();
    let mut produced = Vec::with_capacity(cases);
    let mut made = 0;
    while made < cases {
        let mut group = Vec::new();
        while made < cases && group.len() < 32 {
            group.push(generator.next_case().await);
            made += 1;
        }
        let sends = group.iter().map(|case| {
            let mut record = FutureRecord::<[u8], [u8]>::to(&topic);
            if let Some(key) = &case.key {
                record = record.key(key.as_slice());
            }
            if let Some(value) = &case.value {
                record = record.payload(value.as_slice());
            }
            producer.send(record, Duration::from_secs(30))
        });
        let delivered = join_all(sends).await;
        for (case, delivery) in group.into_iter().zip(delivered) {
            let size = case.value.as_ref().map_or(0, Vec::len) + case.key.as_ref().map_or(0, Vec::len);
            match delivery {
                Ok(d) => produced.push(Produced { partition: d.partition, offset: d.offset, case, size }),
                Err((err, _)) => panic!("producing a {} case of {size} bytes failed: {err}", case.label),
            }
        }
    }
    produced
}

/// Waits until every partition's stored offset reached its end and the outbox is drained, or
/// until nothing moved for `stall`, or the process exited.
async fn wait_until_settled(p: &TestPipeline, produced: &[Produced], ingest: &mut Ingest, stall: Duration) -> String {
    let ends = ends(produced);
    // A hard cap besides the stall rule, for progress too slow to ever finish.
    let deadline = Instant::now() + Duration::from_secs(120) + Duration::from_millis(60) * produced.len() as u32;
    let mut last_progress = Instant::now();
    let mut last_seen = (-1, -1);
    loop {
        let offsets = stored_offsets(p).await;
        let consumed: i64 = offsets.values().sum();
        let client = common::connect(&p.db_url).await;
        let row = client.query_one("SELECT count(*) FILTER (WHERE published_at IS NULL), count(*) FROM outbox", &[]).await.expect("outbox");
        let (unpublished, total): (i64, i64) = (row.get(0), row.get(1));
        let done = ends.iter().all(|(part, end)| offsets.get(part) == Some(end));
        if done && unpublished == 0 {
            return "settled: every offset consumed, outbox drained".into();
        }
        if (consumed, total - unpublished) != last_seen {
            last_seen = (consumed, total - unpublished);
            last_progress = Instant::now();
        }
        if last_progress.elapsed() > stall {
            return format!("STALLED: no progress for {} s ({unpublished} outbox rows unpublished)", stall.as_secs());
        }
        if Instant::now() > deadline {
            return format!("TIMED OUT while still progressing ({unpublished} outbox rows unpublished)");
        }
        if let Ok(Some(status)) = ingest.child.try_wait() {
            return format!("EXITED: manifold ingest exited with {status}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn ends(produced: &[Produced]) -> BTreeMap<i32, i64> {
    let mut ends = BTreeMap::new();
    for m in produced {
        let end = ends.entry(m.partition).or_insert(0);
        *end = (*end).max(m.offset + 1);
    }
    ends
}

async fn stored_offsets(p: &TestPipeline) -> BTreeMap<i32, i64> {
    let client = common::connect(&p.db_url).await;
    let rows = client
        .query(
            "SELECT partition, next_offset FROM ingest_offsets WHERE consumer_group = $1 AND topic = $2",
            &[&p.config.ingest.group_id, &p.config.topics.batches.name],
        )
        .await
        .expect("ingest offsets");
    rows.iter().map(|r| (r.get(0), r.get(1))).collect()
}

/// What the database, the metrics and the log say after the run.
struct State {
    offsets: BTreeMap<i32, i64>,
    /// "reason: message" of each dead letter, by source (partition, offset).
    dead: HashMap<(i32, i64), Vec<String>>,
    reasons: BTreeMap<String, usize>,
    stored: HashSet<(String, String)>,
    /// (system, sensor) → (count, sum) from `readings`, and from `readings_1m`.
    readings: HashMap<(String, String), (i64, f64)>,
    aggregate: HashMap<(String, String), (i64, f64)>,
    outbox_unpublished: Vec<(i64, String, i32, String)>,
    /// The dead-letter topic, read committed: per source (partition, offset), how often it
    /// appears, and whether its value is the original (or cut to fit, saying so).
    topic: HashMap<(i32, i64), (usize, bool)>,
    pauses: Option<BTreeMap<String, f64>>,
    pause_lines: Vec<String>,
    relay_lines: Vec<String>,
}

impl State {
    async fn read(p: &TestPipeline, ingest: &Ingest, produced: &[Produced]) -> State {
        let client = common::connect(&p.db_url).await;
        let topic = &p.config.topics.batches.name;
        let mut dead: HashMap<(i32, i64), Vec<String>> = HashMap::new();
        let mut reasons = BTreeMap::new();
        let sql = "SELECT source_partition, source_offset, error_kind, left(error_message, 200) FROM dead_letters WHERE source_topic = $1";
        for r in client.query(sql, &[topic]).await.expect("dead letters") {
            let (kind, message): (String, String) = (r.get(2), r.get(3));
            *reasons.entry(kind.clone()).or_insert(0) += 1;
            dead.entry((r.get(0), r.get(1))).or_default().push(format!("{kind}: {message}"));
        }
        let stored = client.query("SELECT system_id, batch_id FROM ingested_batches", &[]).await.expect("batches").iter().map(|r| (r.get(0), r.get(1))).collect();
        let sums = |sql: &'static str| {
            let client = &client;
            async move {
                let rows = client.query(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                rows.iter()
                    .map(|r| {
                        let sum: String = r.get(3);
                        ((r.get(0), r.get(1)), (r.get::<_, i64>(2), sum.parse::<f64>().unwrap_or(f64::NAN)))
                    })
                    .collect::<HashMap<_, _>>()
            }
        };
        let readings = sums(
            "SELECT s.system_id, s.sensor_id, count(*)::int8, sum(r.value::numeric)::text FROM readings r JOIN series s USING (series_id) GROUP BY 1, 2",
        )
        .await;
        let aggregate = sums(
            "SELECT s.system_id, s.sensor_id, sum(m.n)::int8, sum(m.sum::numeric)::text FROM readings_1m m JOIN series s USING (series_id) GROUP BY 1, 2",
        )
        .await;
        let outbox_unpublished = client
            .query(
                "(SELECT seq, topic_role, octet_length(payload) + coalesce(octet_length(message_key), 0) AS size, left(headers::text, 300) FROM outbox WHERE published_at IS NULL ORDER BY seq LIMIT 1)
                 UNION ALL
                 (SELECT seq, topic_role, octet_length(payload) + coalesce(octet_length(message_key), 0) AS size, left(headers::text, 300) FROM outbox WHERE published_at IS NULL ORDER BY size DESC LIMIT 1)",
                &[],
            )
            .await
            .expect("outbox")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        let log = ingest.log_text();
        let clip = |l: &str| l.chars().filter(|c| !c.is_control()).take(500).collect::<String>();
        let pause_lines = log.lines().filter(|l| l.contains("ingest paused") || l.contains("ingest stopped: the deployment")).map(clip).collect();
        let relay_lines = log.lines().filter(|l| l.contains("relay") && (l.contains("\"WARN\"") || l.contains("\"ERROR\""))).map(clip).collect();
        let topic = read_dead_letter_topic(p, produced, dead.values().map(Vec::len).sum());
        State { offsets: stored_offsets(p).await, dead, reasons, topic, stored, readings, aggregate, outbox_unpublished, pauses: scrape_pauses(ingest).await, pause_lines, relay_lines }
    }
}

/// Reads the dead-letter topic (read committed) until `want` dead letters came or nothing more
/// comes for a while, and tells per source offset how often it came and whether its key and value
/// are the original (a value cut to fit must say so in `manifold.value.truncated`).
fn read_dead_letter_topic(p: &TestPipeline, produced: &[Produced], want: usize) -> HashMap<(i32, i64), (usize, bool)> {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Headers;
    let originals: HashMap<(i32, i64), &Case> = produced.iter().map(|m| ((m.partition, m.offset), &m.case)).collect();
    let mut config = manifold::kafka::client_config(&p.config.kafka);
    config.set("group.id", format!("{}-fuzz-dlq", p.prefix)).set("auto.offset.reset", "earliest").set("isolation.level", "read_committed");
    let reader: BaseConsumer = config.create().expect("dead-letter reader");
    reader.subscribe(&[&p.config.topics.dead_letters.name]).expect("subscribe");
    let mut seen: HashMap<(i32, i64), (usize, bool)> = HashMap::new();
    let (mut count, mut last_new) = (0, Instant::now());
    while count < want && last_new.elapsed() < Duration::from_secs(15) {
        let Some(Ok(m)) = reader.poll(Duration::from_millis(200)) else { continue };
        last_new = Instant::now();
        count += 1;
        let header = |name: &str| {
            m.headers().and_then(|h| h.iter().find(|h| h.key == name).and_then(|h| h.value).map(|v| String::from_utf8_lossy(v).into_owned()))
        };
        let source = (
            header("manifold.source.partition").and_then(|v| v.parse().ok()).unwrap_or(-1),
            header("manifold.source.offset").and_then(|v| v.parse().ok()).unwrap_or(-1),
        );
        let original = originals.get(&source).is_some_and(|case| {
            let value = case.value.as_deref().unwrap_or_default();
            let value_ok = m.payload().unwrap_or_default() == value
                || (header("manifold.value.truncated").is_some() && value.starts_with(m.payload().unwrap_or_default()));
            let key_ok = case.key.as_deref().unwrap_or_default() == m.key().unwrap_or_default();
            value_ok && key_ok
        });
        let entry = seen.entry(source).or_insert((0, true));
        entry.0 += 1;
        entry.1 &= original;
    }
    seen
}

/// Counters by label from the ingest listener: `manifold_ingest_pauses_total{kind}` counts each
/// entry into a pause; `manifold_ingest_write_errors_total{kind}` each failed write (the only
/// count before the pause counter existed).
async fn scrape_pauses(ingest: &Ingest) -> Option<BTreeMap<String, f64>> {
    let listen = ingest.listen()?;
    let body = reqwest::get(format!("http://{listen}/metrics")).await.ok()?.text().await.ok()?;
    let mut counts = BTreeMap::new();
    for line in body.lines().filter(|l| l.starts_with("manifold_ingest_pauses_total") || l.starts_with("manifold_ingest_write_errors_total")) {
        let (series, value) = line.rsplit_once(' ')?;
        counts.insert(series.trim_start_matches("manifold_ingest_").to_owned(), value.parse().ok()?);
    }
    Some(counts)
}

fn kinds(produced: &[Produced]) -> BTreeMap<&'static str, usize> {
    let mut kinds = BTreeMap::new();
    for m in produced {
        *kinds.entry(m.case.label).or_insert(0) += 1;
    }
    kinds
}

/// Every violation, one line each; the first line (added by the caller) is the run's summary.
fn check(produced: &[Produced], state: &State) -> Vec<String> {
    let mut out = Vec::new();
    let describe = |m: &Produced| format!("p{} offset {} ({}, {} bytes)", m.partition, m.offset, m.case.label, m.size);

    // 1. Ingest never paused: counted from the metric (entries, not a gauge) and the log.
    match &state.pauses {
        None => out.push("could not scrape the ingest listener's /metrics".into()),
        Some(counts) => {
            let has_pauses = counts.keys().any(|k| k.starts_with("pauses_total"));
            let entered: f64 = counts.iter().filter(|(k, _)| if has_pauses { k.starts_with("pauses_total") } else { k.starts_with("write_errors_total") && !k.contains("fenced") }).map(|(_, v)| v).sum();
            if entered > 0.0 {
                out.push(format!("ingest entered a pause {entered} times: {counts:?}"));
            }
        }
    }
    if !state.pause_lines.is_empty() {
        out.push(format!("{} pause log lines; the first: {}", state.pause_lines.len(), state.pause_lines[0]));
    }

    // 2. Every offset consumed: the stored next offset reached each partition's end.
    for (part, end) in ends(produced) {
        let at = state.offsets.get(&part).copied().unwrap_or(0);
        if at < end {
            let stuck = produced.iter().find(|m| m.partition == part && m.offset == at).map_or_else(|| "?".into(), describe);
            out.push(format!("partition {part}: stored next offset {at} of {end}: {} offsets never stored; the next is {stuck}", end - at));
        }
    }

    // 3. Per consumed offset: stored, a duplicate, or dead-lettered, exactly once.
    let mut expected: HashMap<(String, String), (i64, f64)> = HashMap::new();
    let mut add = |known: &common::adversarial::Known| {
        for (sensor, n, sum) in &known.per_sensor {
            let e = expected.entry((known.system_id.clone(), sensor.clone())).or_insert((0, 0.0));
            e.0 += *n as i64;
            e.1 += sum;
        }
    };
    let mut bad = Vec::new();
    for m in produced.iter().filter(|m| m.offset < state.offsets.get(&m.partition).copied().unwrap_or(0)) {
        let dead = state.dead.get(&(m.partition, m.offset)).map_or(0, Vec::len);
        let stored = |k: &common::adversarial::Known| state.stored.contains(&(k.system_id.clone(), k.batch_id.clone()));
        let problem = match &m.case.expect {
            _ if dead > 1 => Some(format!("dead-lettered {dead} times: {:?}", state.dead[&(m.partition, m.offset)])),
            Expect::DeadLetter if dead == 0 => Some("neither stored nor dead-lettered".to_owned()),
            Expect::DeadLetter => None,
            Expect::Stored(_) | Expect::Duplicate(_) if dead == 1 => Some(format!("a good batch dead-lettered as {:?}", state.dead[&(m.partition, m.offset)])),
            Expect::Stored(k) | Expect::Duplicate(k) if !stored(k) => Some(format!("good batch {} not stored", k.batch_id)),
            Expect::Stored(k) => {
                add(k);
                None
            }
            Expect::Duplicate(_) => None,
            Expect::Either(k) if stored(k) && dead == 1 => Some(format!("both stored and dead-lettered ({:?})", state.dead[&(m.partition, m.offset)])),
            Expect::Either(k) if stored(k) => {
                add(k);
                None
            }
            Expect::Either(_) if dead == 0 => Some("neither stored nor dead-lettered".to_owned()),
            Expect::Either(_) => None,
        };
        if let Some(problem) = problem {
            bad.push(format!("{}: {problem}", describe(m)));
        }
    }
    // Validation must catch what the database would refuse: a storage_rejected dead letter
    // means a value passed validation and still could not be written.
    for m in produced {
        if let Some(kinds) = state.dead.get(&(m.partition, m.offset)).filter(|k| k.iter().any(|k| k.starts_with("storage_rejected"))) {
            bad.push(format!("{}: refused by the database after validation accepted it ({kinds:?})", describe(m)));
        }
    }
    let offsets: HashSet<(i32, i64)> = produced.iter().map(|m| (m.partition, m.offset)).collect();
    let strays = state.dead.keys().filter(|k| !offsets.contains(k)).count();
    if strays > 0 {
        bad.push(format!("{strays} dead letters name offsets that were never produced"));
    }
    if !bad.is_empty() {
        out.push(format!("{} offsets broke exactly-once; the first {}:", bad.len(), bad.len().min(20)));
        out.extend(bad.into_iter().take(20).map(|b| format!("    {b}")));
    }

    // 4. Every good (and every accepted hostile) reading stored once; the aggregate agrees.
    let mut series: Vec<_> = expected.keys().chain(state.readings.keys()).cloned().collect::<HashSet<_>>().into_iter().collect();
    series.sort();
    for key in &series {
        let want = expected.get(key).copied().unwrap_or((0, 0.0));
        let got = state.readings.get(key).copied().unwrap_or((0, 0.0));
        let wide = key.1 == "W1";
        if got.0 != want.0 || (!wide && !close(got.1, want.1)) {
            out.push(format!("series {}/{}: stored {} readings summing to {}, produced {} summing to {}", key.0, key.1, got.0, got.1, want.0, want.1));
        }
        let agg = state.aggregate.get(key).copied().unwrap_or((0, 0.0));
        if !got.1.is_finite() || !agg.1.is_finite() {
            out.push(format!("series {}/{}: sums beyond a double: readings {}, 1-minute aggregate {} (validation accepted values whose sum overflows)", key.0, key.1, got.1, agg.1));
        } else if agg.0 != got.0 || !close(agg.1, got.1) {
            out.push(format!("series {}/{}: the 1-minute aggregate holds n={} sum={}, the readings n={} sum={}", key.0, key.1, agg.0, agg.1, got.0, got.1));
        }
    }

    // 5. Every dead letter on the dead-letter topic once, with the original key and value (the
    // outbox check below reports a relay that stopped; its missing records are not news).
    let mut published = Vec::new();
    for (source, kinds) in state.dead.iter().filter(|_| state.outbox_unpublished.is_empty()) {
        match state.topic.get(source) {
            None => published.push(format!("p{} offset {}: dead-lettered ({}) but not on the dead-letter topic", source.0, source.1, kinds[0])),
            Some((n, _)) if *n > 1 => published.push(format!("p{} offset {}: on the dead-letter topic {n} times", source.0, source.1)),
            Some((_, false)) => published.push(format!("p{} offset {}: on the dead-letter topic without its original key or value", source.0, source.1)),
            Some(_) => {}
        }
    }
    let foreign = state.topic.keys().filter(|k| !state.dead.contains_key(k)).count();
    if foreign > 0 {
        published.push(format!("{foreign} records on the dead-letter topic name no dead letter"));
    }
    if !published.is_empty() {
        published.sort();
        out.push(format!("{} dead-letter topic problems; the first {}:", published.len(), published.len().min(10)));
        out.extend(published.into_iter().take(10).map(|b| format!("    {b}")));
    }

    // 6. The outbox drained: every dead letter and window event published.
    if let Some((seq, role, size, headers)) = state.outbox_unpublished.first() {
        out.push(format!("outbox not drained: the first unpublished row is seq {seq} ({role}, {size} bytes of key and value; headers {headers})"));
        if let Some((seq, role, size, headers)) = state.outbox_unpublished.get(1).filter(|r| r.2 > *size) {
            out.push(format!("    the largest unpublished row is seq {seq} ({role}, {size} bytes of key and value; headers {headers})"));
        }
        if let Some(line) = state.relay_lines.last() {
            out.push(format!("    relay said ({} warnings): {line}", state.relay_lines.len()));
        }
    }
    out
}

/// Equal up to float rounding (sums are added in another order by PostgreSQL).
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}
