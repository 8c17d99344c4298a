//! The fault-injection suite, part B: the database and the broker fail under the real
//! `manifold` processes while `manifold simulate` streams — PostgreSQL restarted
//! (`pg_ctl restart -m fast`), the connections cut by a TCP proxy, the proxy stalled (open but
//! forwarding nothing) for longer than every timeout, the Kafka broker restarted. After each
//! fault clears, the pipeline must make progress again (a reading stored and a window scored)
//! within the bound `src/config/recovery.rs` derives from the configured timeouts, and catch up
//! with everything sent before the fault cleared; each scenario ends with the harness's checks
//! (`tests/common/chaos.rs`: every good reading stored once by count and per-series checksum,
//! every ready window revision published once on the scores topic, peak RSS) and prints its line.
//!
//! These scenarios restart the stack's PostgreSQL and Kafka: they run only against the stack
//! started from this checkout (`scripts/stack up`; others sharing a stack give theirs a private
//! one, see README), one at a time, and each leaves every service answering. `make test` runs
//! one fault per scenario; `make chaos` more (`CHAOS_FAULTS`) and longer streams
//! (`CHAOS_READINGS`, `CHAOS_STREAM_SECONDS`).

mod common;

#[path = "chaos_faults/broker.rs"]
mod broker;
#[path = "chaos_faults/database.rs"]
mod database;

use std::time::{Duration, Instant};

use common::chaos::Chaos;
use rdkafka::consumer::{BaseConsumer, Consumer};
use manifold::config::Config;
use manifold::config::recovery::{FaultClass, recovery_bound};

/// One scenario at a time: a restart breaks every other test's connections, and recovery times
/// would otherwise measure the neighbours.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Short timeouts, so the derived bounds (and the scenarios) are short: each is still one the
/// fault has to wait out.
const FAULT_ENV: [(&str, &str); 13] = [
    ("MANIFOLD__DATABASE__CONNECT_TIMEOUT_MS", "2000"),
    ("MANIFOLD__DATABASE__STATEMENT_TIMEOUT_MS", "5000"),
    ("MANIFOLD__DATABASE__KEEPALIVES_IDLE_MS", "1000"),
    ("MANIFOLD__DATABASE__KEEPALIVES_INTERVAL_MS", "1000"),
    ("MANIFOLD__DATABASE__KEEPALIVES_RETRIES", "2"),
    ("MANIFOLD__DATABASE__TCP_USER_TIMEOUT_MS", "3000"),
    ("MANIFOLD__KAFKA__REQUEST_TIMEOUT_MS", "5000"),
    ("MANIFOLD__KAFKA__TRANSACTION_TIMEOUT_MS", "10000"),
    ("MANIFOLD__KAFKA__CLIENT__RECONNECT_BACKOFF_MAX_MS", "1000"),
    ("MANIFOLD__INFER__SYSTEMIC_RETRY_MS", "3000"),
    ("MANIFOLD__RELAY__SYSTEMIC_RETRY_MS", "3000"),
    ("MANIFOLD__RELAY__LOCK_CHECK_MS", "500"),
    ("MANIFOLD__RELAY__LOCK_RELEASE_MS", "2000"),
];

const WRITTEN: &str = "manifold_ingest_readings_written_total";
/// How long a fresh process may take to do its first work while the stream flows.
const FIRST_WORK: Duration = Duration::from_secs(60);
/// Catching up with what piled up during a fault, after progress resumed: the short form's
/// backlog is seconds of stream, worked off by debug builds on a loaded 2-core box.
const CATCH_UP: Duration = Duration::from_secs(30);
/// How long the simulator may take to send again after a fault cleared: a cycle interval of
/// the long form, or its producer reconnecting after a broker restart.
const INPUT_AGAIN: Duration = Duration::from_secs(90);

/// Faults per scenario (`CHAOS_FAULTS`, default 1).
fn faults() -> usize {
    std::env::var("CHAOS_FAULTS").ok().and_then(|n| n.parse().ok()).unwrap_or(1).max(1)
}

/// A scenario's pipeline with the short timeouts, a stream long enough for every fault
/// (`per_fault` each: the fault, its clearing and the progress after it), and the harness's
/// recovery bound set from the derived one: progress resumes within the derived bound, then the
/// harness also waits for the stream's next cycle and for the backlog to be worked off.
async fn scenario(name: &'static str, fault: FaultClass, per_fault: impl Fn(&Config) -> Duration, extra: &[(&str, &str)]) -> Chaos {
    let mut env = FAULT_ENV.to_vec();
    env.extend_from_slice(extra);
    let mut chaos = Chaos::new(name, &env).await;
    let needed = per_fault(&chaos.p.config) * faults() as u32 + Duration::from_secs(10);
    chaos.sizes.stream = chaos.sizes.stream.max(needed);
    chaos.bound = recovery_bound(&chaos.p.config, fault).total() + chaos.sizes.cycle_interval() + CATCH_UP;
    chaos
}

/// Longer than every timeout a database fault could trip (statement, idle transaction, TCP,
/// connect, lock release, group session, Kafka transaction), so each one fires.
fn longer_than_every_timeout(config: &Config) -> Duration {
    let db = &config.database;
    [
        db.statement_timeout_ms,
        db.tcp_user_timeout_ms,
        db.keepalives_idle_ms + db.keepalives_interval_ms * db.keepalives_retries,
        db.connect_timeout_ms,
        config.relay.lock_release_ms,
        config.ingest.session_timeout_ms,
        config.infer.session_timeout_ms,
        config.kafka.transaction_timeout_ms,
    ]
    .into_iter()
    .max()
    .unwrap_or_default()
        + Duration::from_secs(2)
}

/// Stored readings and scored windows, read directly (never through a proxy under test).
async fn counts(chaos: &Chaos) -> (i64, i64) {
    let client = common::connect(&chaos.p.db_url).await;
    let row = client
        .query_one("SELECT (SELECT count(*) FROM readings), (SELECT count(*) FROM anomaly_scores)", &[])
        .await
        .expect("count readings and scores");
    (row.get(0), row.get(1))
}

/// Waits until a reading is stored and a window scored that were not before; fails past the
/// derived bound of `fault`, counted from the fault clearing or, when nothing was waiting to be
/// stored then, from the moment new input arrived (the stream sends one cycle per system every
/// `cycle_interval`: nothing can be stored or scored before it). Returns how long it took.
async fn resumed(chaos: &Chaos, fault: FaultClass, cleared: Instant) -> Duration {
    let bound = recovery_bound(&chaos.p.config, fault);
    let (readings, scores) = counts(chaos).await;
    let input = input_end(chaos).await;
    let stored: i64 = common::whole_path::stored_offsets(&chaos.p).await.values().sum();
    let start = if stored < input { cleared } else { input_flows(chaos, cleared).await };
    loop {
        let (now_readings, now_scores) = counts(chaos).await;
        let took = start.elapsed();
        if now_readings > readings && now_scores > scores {
            return took;
        }
        assert!(
            took <= bound.total(),
            "{}: no progress {took:.1?} after the fault cleared and input was there (readings {readings} → {now_readings}, scores {scores} → {now_scores}); derived bound {bound}",
            chaos.scenario
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The input topic's end summed over partitions, once its partitions have a leader.
async fn input_end(chaos: &Chaos) -> i64 {
    let client: BaseConsumer = manifold::kafka::client_config(&chaos.p.config.kafka).create().expect("client");
    let topic = chaos.p.config.topics.batches.name.clone();
    let partitions = chaos.p.config.topics.partitions_of(&chaos.p.config.topics.batches);
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        loop {
            let end: Option<i64> = (0..partitions).map(|p| client.fetch_watermarks(&topic, p, Duration::from_secs(2)).ok().map(|(_, high)| high)).sum();
            if let Some(end) = end {
                return end;
            }
            // A restarted broker answers metadata before it leads its partitions again.
            assert!(started.elapsed() < INPUT_AGAIN, "no leader for every partition of {topic} after {INPUT_AGAIN:?}");
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .expect("join")
}

/// The moment the input topic grows past its end now; `since` bounds the wait.
async fn input_flows(chaos: &Chaos, since: Instant) -> Instant {
    let before = input_end(chaos).await;
    while input_end(chaos).await <= before {
        assert!(since.elapsed() < INPUT_AGAIN, "the simulator sent nothing within {INPUT_AGAIN:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Instant::now()
}

/// `scripts/stack restart <service>` of this checkout's stack, which must be the one the
/// tests use: restarting another would break tests that did not ask for it.
async fn restart(service: &'static str) -> Duration {
    let (database, brokers) = (common::stack::stack_setting("DATABASE_URL"), common::stack::stack_setting("KAFKA_BROKERS"));
    let ports = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.stack/state/ports")).unwrap_or_default();
    let port = |name: &str| ports.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).unwrap_or("?").to_owned();
    let pg_port = reqwest::Url::parse(&database).ok().and_then(|u| u.port()).map(|p| p.to_string());
    assert!(
        pg_port.as_deref() == Some(port("PG_PORT").as_str()) && brokers.ends_with(&format!(":{}", port("KAFKA_PORT"))),
        "these scenarios restart the stack started from this checkout (PostgreSQL :{}, Kafka :{}), but the tests use {database} and {brokers}: run `scripts/stack up` here and `eval \"$(scripts/stack env)\"`",
        port("PG_PORT"),
        port("KAFKA_PORT")
    );
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/stack")).args(["restart", service]).output()
    })
    .await
    .expect("join")
    .expect("run scripts/stack restart");
    assert!(out.status.success(), "scripts/stack restart {service}: {}", String::from_utf8_lossy(&out.stderr));
    started.elapsed()
}

/// When fault `k` of `n` is due: at a random moment of the first half of its share of the
/// stream, so that the stream still flows when the fault clears.
fn due(chaos: &mut Chaos, started: Instant, k: usize, n: usize) -> Instant {
    let share = chaos.sizes.stream / n.max(1) as u32;
    started + share * k as u32 + chaos.jitter(share / 3)
}

async fn sleep_until(at: Instant) {
    tokio::time::sleep(at.saturating_duration_since(Instant::now())).await;
}
