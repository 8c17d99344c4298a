//! Load benchmark: sustained readings/s from Kafka into PostgreSQL by `manifold ingest`, beside
//! the physical limit measured in the same run: one connection doing a plain binary COPY of the
//! same rows into the same partitioned, indexed table. Prints both, the ratio, and the ingest
//! process's peak resident memory.
//!
//! eval "$(scripts/stack env)"; BENCH_READINGS=2000000 cargo bench --bench ingest_load

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use manifold::config::{Config, Sources};
use manifold::domain::Row;
use manifold::rig::{self, RIG_SENSORS};
use manifold::sim;
use manifold::store::{Store, copy_rows, maintenance::Maintenance, migrate};
use rdkafka::producer::FutureRecord;
use stack::stack_addresses;

// The stack's addresses, as the tests find them.
#[path = "../tests/common/stack.rs"]
mod stack;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn fresh_database(admin_url: &str, name: &str) -> String {
    let (client, conn) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls).await.expect("stack PostgreSQL");
    tokio::spawn(conn);
    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).await.unwrap();
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    format!("{}/{name}", admin_url.rsplit_once('/').unwrap().0)
}

async fn prepared_config(db: &str, prefix: &str) -> (Config, Vec<(String, String)>) {
    let mut env: Vec<(String, String)> = vec![
        ("DATABASE_URL".into(), db.into()),
        ("KAFKA_BROKERS".into(), stack_addresses()["KAFKA_BROKERS"].clone()),
        ("SCHEMA_REGISTRY_URL".into(), stack_addresses()["SCHEMA_REGISTRY_URL"].clone()),
        ("ENV".into(), "test".into()),
        ("MANIFOLD__INGEST__GROUP_ID".into(), format!("{prefix}-ingest")),
        ("MANIFOLD__INGEST__LISTEN".into(), "127.0.0.1:0".into()),
        ("MANIFOLD__RELAY__TRANSACTIONAL_ID".into(), format!("{prefix}-relay")),
        ("MANIFOLD__TELEMETRY__LOG_LEVEL".into(), "warn".into()),
    ];
    for role in ["BATCHES", "DEAD_LETTERS", "WINDOWS_READY", "SCORES", "RELAY_POSITION"] {
        env.push((format!("MANIFOLD__TOPICS__{role}__NAME"), format!("{prefix}.{}", role.to_lowercase())));
    }
    let config = Config::load(&Sources::default(), &env.iter().cloned().collect()).expect("config");
    let mut client = Store::dedicated(&config.database).await.unwrap();
    migrate::up(&mut client).await.unwrap();
    Maintenance::new(config.database.clone(), config.storage.clone(), manifold::telemetry::Metrics::new())
        .run_once(chrono::Utc::now())
        .await
        .unwrap();
    (config, env)
}

fn rss_peak_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    // The machine is shared and noisy: alternate the baseline and ingest several times and
    // report every round and the median ratio.
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let rounds: usize = env_or("BENCH_ROUNDS", if benchmarking { "3" } else { "1" }).parse().unwrap();
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let (copy_rate, ingest_rate, rss_kb) = one_round(benchmarking, round).await;
        println!("round {round}: plain binary COPY {copy_rate:>10.0} readings/s | manifold ingest {ingest_rate:>10.0} readings/s | ratio {:.2} | ingest peak RSS {:.1} MB", ingest_rate / copy_rate, rss_kb as f64 / 1024.0);
        assert!(ingest_rate > 0.0 && copy_rate > 0.0);
        ratios.push(ingest_rate / copy_rate);
    }
    ratios.sort_by(f64::total_cmp);
    println!("median ratio ingest / COPY over {rounds} round(s): {:.2}", ratios[ratios.len() / 2]);
}

async fn one_round(benchmarking: bool, round: usize) -> (f64, f64, u64) {
    // `cargo bench` passes --bench; under `cargo test` this runs as a small smoke test.
    let readings: usize = env_or("BENCH_READINGS", if benchmarking { "1000000" } else { "20000" }).parse().unwrap();
    let systems = 8;
    let admin = stack_addresses()["DATABASE_URL"].clone();
    let cycles = rig::load(std::path::Path::new(rig::SAMPLE_DATA)).unwrap();
    let per_batch = RIG_SENSORS.len() * 60;
    let batches = readings.div_ceil(per_batch);
    let now = chrono::Utc::now().timestamp_micros() / 60_000_000 * 60_000_000;
    let start = now - (batches / systems + 1) as i64 * 60_000_000;
    if round == 1 {
        println!("ingest load benchmark: {} readings in {batches} batches of {per_batch}, {} cores", batches * per_batch, num_cpus());
    }

    // Baseline: the same rows, one connection, one binary COPY.
    let pid = format!("{}_{round}", std::process::id());
    let base_db = fresh_database(&admin, &format!("bench_copy_{pid}")).await;
    let (base_config, _) = prepared_config(&base_db, "bench-copy").await;
    let store = Store::new(&base_config.database).unwrap();
    sim::ensure_equipment(&store, "rig", systems).await.unwrap();
    let series_of = |system: usize, sensor: usize| (system * RIG_SENSORS.len() + sensor + 1) as i32;
    let mut rows = Vec::with_capacity(batches * per_batch);
    for b in 0..batches {
        let (system, cycle) = (b % systems, &cycles[b % cycles.len()]);
        for (sensor, values) in cycle.series.iter().enumerate() {
            for (k, v) in values.iter().enumerate() {
                rows.push(Row { series_id: series_of(system, sensor), time_us: start + (b / systems) as i64 * 60_000_000 + k as i64 * 1_000_000, value: *v });
            }
        }
    }
    let mut client = store.client().await.unwrap();
    let began = Instant::now();
    let tx = client.transaction().await.unwrap();
    copy_rows(&tx, &rows).await.unwrap();
    tx.commit().await.unwrap();
    let copy_rate = rows.len() as f64 / began.elapsed().as_secs_f64();
    drop(rows);

    // manifold: preload the topic, then time ingest from its first stored chunk to the last.
    let ingest_db = fresh_database(&admin, &format!("bench_ingest_{pid}")).await;
    let prefix = format!("bench{pid}");
    let (config, env) = prepared_config(&ingest_db, &prefix).await;
    manifold::kafka::topics::create(&config.kafka, &config.topics).await.unwrap();
    let store = Store::new(&config.database).unwrap();
    sim::ensure_equipment(&store, "rig", systems).await.unwrap();
    let encoder = manifold::codec::RecordEncoder::for_batches(&config.schema_registry, &config.topics.batches.name).unwrap();
    let producer = manifold::kafka::producer(&config.kafka).unwrap();
    let mut pending = Vec::new();
    for b in 0..batches {
        let system = sim::system_id("rig", b % systems);
        let batch = sim::cycle_batch(&system, &cycles[b % cycles.len()], start + (b / systems) as i64 * 60_000_000);
        let payload = encoder.encode_batch(&batch).await.unwrap();
        pending.push(producer.send_result(FutureRecord::to(&config.topics.batches.name).key(&system).payload(&payload)).map_err(|(e, _)| e).unwrap());
        if pending.len() >= 2000 {
            for p in pending.drain(..) {
                p.await.unwrap().map_err(|(e, _)| e).unwrap();
            }
        }
    }
    for p in pending {
        p.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_manifold"));
    child.arg("ingest").stdout(Stdio::null()).stderr(Stdio::inherit());
    for (k, v) in &env {
        child.env(k, v);
    }
    let mut child = child.spawn().expect("manifold ingest");
    let spawned = Instant::now();
    let probe = store.client().await.unwrap();
    let total = (batches * per_batch) as i64;
    let (mut first, mut peak_rss) = (None, 0);
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let stored: i64 = probe.query_one("SELECT coalesce(sum(readings), 0)::int8 FROM ingested_batches", &[]).await.unwrap().get(0);
        peak_rss = peak_rss.max(rss_peak_kb(child.id()));
        if stored > 0 && first.is_none() {
            first = Some((Instant::now(), stored));
        }
        if stored >= total {
            break;
        }
        assert!(Instant::now() < deadline, "ingest did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (t0, n0) = first.unwrap();
    // Sustained rate from the first stored chunk on; a run small enough to fit one chunk
    // (the smoke test) can only be timed from the process start.
    let ingest_rate = if n0 < total {
        (total - n0) as f64 / t0.elapsed().as_secs_f64()
    } else {
        total as f64 / spawned.elapsed().as_secs_f64()
    };
    let _ = child.kill();
    let _ = child.wait();
    (copy_rate, ingest_rate, peak_rss)
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
