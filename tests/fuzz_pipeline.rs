//! Whole-path fuzzing: seeded hostile input (arbitrary bytes, Avro through the registry, JSON)
//! interleaved with good batches goes to a real topic, the real `manifold ingest` binary
//! consumes it, and every offset must end stored, a duplicate or dead-lettered, exactly once,
//! without ingest ever pausing, with the outbox drained and every good reading stored once.
//!
//! `FUZZ_SEED` (default fixed) reproduces a run, `FUZZ_CASES` sets its length (`make fuzz`
//! runs thousands), `FUZZ_SKIP_KNOWN=1` leaves out the inputs known to break the pipeline today
//! (see `KNOWN_KILLERS` in `common/adversarial.rs`), to check the rest of the harness, and
//! `FUZZ_SKIP=kind,kind` leaves out kinds by the names the report uses.
//! The wait ends when every offset is stored and the outbox drained, or after `FUZZ_STALL_SECS`
//! (default 20) without progress; the report then names the first offset never stored.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use common::adversarial::{Expect, Generator, register_wide_system};
use common::pipeline::TestPipeline;
use common::whole_path::{Ingest, Produced, State, ends, stored_offsets};
use futures_util::future::join_all;
use manifold::codec::RecordEncoder;
use rdkafka::producer::FutureRecord;

const DEFAULT_SEED: u64 = 0x5EED_F022;
const DEFAULT_CASES: usize = 150;

struct Settings {
    seed: u64,
    cases: usize,
    skip_known: bool,
    skip: Vec<String>,
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
            skip: var("FUZZ_SKIP").map(|v| v.split(',').map(|k| k.trim().to_owned()).collect()).unwrap_or_default(),
            stall: Duration::from_secs(var("FUZZ_STALL_SECS").map_or(20, |v| v.parse().expect("FUZZ_STALL_SECS is seconds"))),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_never_pauses_ingest_and_every_offset_is_stored_or_dead_lettered_once() {
    let settings = Settings::from_env();
    eprintln!(
        "fuzz_pipeline: FUZZ_SEED={:#x} FUZZ_CASES={} FUZZ_SKIP_KNOWN={} FUZZ_SKIP={} (re-run with these to reproduce)",
        settings.seed,
        settings.cases,
        settings.skip_known as u8,
        settings.skip.join(",")
    );
    let p = TestPipeline::new(&[("MANIFOLD__INGEST__CHUNK_MAX_READINGS", "3000")]).await;
    let rig = p.rigs(3).await;
    let systems: Vec<String> = (0..3).map(|i| manifold::sim::system_id(&rig, i)).collect();
    let cap = if settings.skip_known { 1e15 } else { f64::MAX };
    let wide = register_wide_system(&p.store(), &format!("{}-wide", p.prefix), cap).await;
    let wide_range = wide.as_ref().map(|w| w.range);
    let encoder = RecordEncoder::for_batches(&p.config.schema_registry, &p.config.topics.batches.name).expect("encoder");
    let mut generator = Generator::new(settings.seed, systems, wide, encoder, settings.skip_known);
    generator.skip = settings.skip.clone();

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
    let _ = writeln!(
        head,
        "fuzz_pipeline FUZZ_SEED={:#x} FUZZ_CASES={} FUZZ_SKIP_KNOWN={} FUZZ_SKIP={}",
        settings.seed,
        settings.cases,
        settings.skip_known as u8,
        settings.skip.join(",")
    );
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
