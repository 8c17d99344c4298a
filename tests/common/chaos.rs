//! The chaos harness: real `manifold` processes (`run`, and `ingest` / `infer` / `api` replicas
//! on distinct ordinals) against the stack while `manifold simulate` streams, faults injected
//! by signal, and the checks every scenario ends with (`Chaos::finish`):
//! a) every good reading the simulator sent is stored exactly once: count and per-series checksum
//!    against its summary (`src/sim/checksum.rs`), no (series, time) twice, each bad message
//!    dead-lettered once;
//! b) every window revision marked ready in `windows` is published exactly once on the scores
//!    topic, read read_committed from its beginning;
//! c) after each fault the pipeline catches up within `recovery_bound` (`Chaos::recovered`);
//! d) each process's peak RSS (VmHWM) stays under `RSS_BOUND_MB`.
//! Each scenario prints one `chaos …` line with its figures.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use manifold::config::Config;
use manifold::sim::SimulateReport;
use rdkafka::consumer::{BaseConsumer, Consumer};

use super::pipeline::TestPipeline;

/// Generous next to the 40 MB goal per process: these are debug builds, and the figure is printed.
pub const RSS_BOUND_MB: f64 = 150.0;
/// The readings of one rig cycle in `data/uci-sample`: 17 sensors × 60 s at 1 Hz.
pub const READINGS_PER_CYCLE: u64 = 17 * 60;
/// `transaction.timeout.ms` of every transactional producer (`src/kafka/transactional.rs`): an
/// open transaction of a process killed for good holds read_committed readers back this long.
pub const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);
/// How often a relay that does not hold the lock tries again (`src/relay/mod.rs`).
const RELAY_LOCK_RETRY: Duration = Duration::from_secs(2);
/// A debug binary's start on a loaded 2-core box: connect, check the schema, join the group,
/// load the model.
const PROCESS_START: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);
/// The relay's advisory lock key (`RELAY_LOCK` in `src/relay/mod.rs`) as pg_locks shows it.
const RELAY_LOCK_CLASSID: i64 = 0x6d66_7265;
const RELAY_LOCK_OBJID: i64 = 0x6c61_7931;

/// How long the pipeline may take to catch up after one fault, from the timeouts `config`
/// sets: a killed consumer's partitions wait out the session timeout (ingest, then infer for
/// the windows it announced), a relay replica retries the lock every 2 s, and every retry
/// back-off and batching delay is added once, plus a process start. Kept in this one function
/// so a bound computed by manifold itself can replace it.
pub fn recovery_bound(config: &Config) -> Duration {
    config.ingest.session_timeout_ms
        + config.infer.session_timeout_ms
        + RELAY_LOCK_RETRY
        + config.relay.retry_max_ms
        + config.ingest.retry_max_ms
        + config.infer.retry_ms
        + config.ingest.chunk_max_delay_ms
        + config.relay.poll_interval_ms
        + config.infer.batch_wait_ms
        + PROCESS_START
}

/// The timeouts a chaos pipeline runs with (besides `TestPipeline`'s), so the bound stays short.
const CHAOS_ENV: [(&str, &str); 6] = [
    ("MANIFOLD__INGEST__SESSION_TIMEOUT_MS", "6000"),
    ("MANIFOLD__INFER__SESSION_TIMEOUT_MS", "6000"),
    ("MANIFOLD__RELAY__RETRY_MAX_MS", "1000"),
    ("MANIFOLD__INFER__RETRY_MS", "500"),
    ("MANIFOLD__TELEMETRY__LOG_FORMAT", "json"),
    ("MANIFOLD__API__LISTEN", "127.0.0.1:0"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// `manifold run`: ingest, infer and the API in one process.
    Run,
    Ingest,
    Infer,
    Api,
}

impl Role {
    pub fn command(self) -> &'static str {
        match self {
            Role::Run => "run",
            Role::Ingest => "ingest",
            Role::Infer => "infer",
            Role::Api => "api",
        }
    }

    /// The start-up log line naming the listener that serves this process's metrics.
    fn listener_line(self) -> &'static str {
        match self {
            Role::Run | Role::Ingest => "ingest operations listener up",
            Role::Infer => "infer operations listener up",
            Role::Api => "API listening",
        }
    }
}

/// A scenario's sizes, from the environment: `make test` runs the short defaults, `make chaos`
/// the long form (`CHAOS_READINGS=1000000 CHAOS_KILLS=20 …`).
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Readings to stream (rounded up to whole cycles of every system).
    pub readings: u64,
    /// Faults of the scenario's kind.
    pub kills: usize,
    /// How long the paced stream lasts.
    pub stream: Duration,
    pub systems: usize,
    /// Every n-th message is a bad one (dead-lettered, never stored).
    pub bad_every: usize,
    /// Seeds the random kill moments; printed, so a run can be repeated (`CHAOS_SEED`).
    pub seed: u64,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .unwrap_or_else(|_| panic!("{name}={text} does not parse")),
        Err(_) => default,
    }
}

impl Sizes {
    pub fn from_env() -> Sizes {
        let kills = env_or("CHAOS_KILLS", 3usize);
        let readings = env_or("CHAOS_READINGS", 32_000u64);
        // Long enough for each fault to be injected while data flows and recovered from.
        let stream = Duration::from_secs(env_or("CHAOS_STREAM_SECONDS", 8 * kills as u64 + 4));
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        Sizes {
            readings,
            kills,
            stream,
            systems: env_or("CHAOS_SYSTEMS", 4),
            bad_every: env_or("CHAOS_BAD_EVERY", 10),
            seed: env_or("CHAOS_SEED", clock),
        }
    }

    pub fn cycles(&self) -> usize {
        self.readings
            .div_ceil(READINGS_PER_CYCLE * self.systems as u64)
            .max(1) as usize
    }

    /// `simulate --speed`: the cycles spread over `stream`.
    pub fn speed(&self) -> f64 {
        60.0 * self.cycles() as f64 / self.stream.as_secs_f64().max(1.0)
    }
}

/// splitmix64: reproducible kill moments from `Sizes::seed`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Peak RSS per role, in kB, over every process of the scenario.
type Peaks = Arc<Mutex<BTreeMap<Role, u64>>>;

/// Where the pipeline was when a fault was injected: the input topic's ends and the window
/// revisions already ready. Caught up means all of it stored and scored.
pub struct Progress {
    at: Instant,
    ends: BTreeMap<i32, i64>,
    windows: (Vec<String>, Vec<DateTime<Utc>>, Vec<i32>),
}

pub struct Chaos {
    pub scenario: &'static str,
    pub p: TestPipeline,
    pub sizes: Sizes,
    /// System ids are `<rigs>-0`, `<rigs>-1`, …
    pub rigs: String,
    pub bound: Duration,
    logs: PathBuf,
    starts: AtomicU64,
    peaks: Peaks,
    rng: Rng,
    pub kills: usize,
    pub terms: usize,
    pub recoveries: Vec<Duration>,
    watermarks: BaseConsumer,
}

impl Chaos {
    /// A private pipeline (database, topics, groups) with the chaos timeouts and `extra`
    /// overrides, and its rigs registered before any process starts.
    pub async fn new(scenario: &'static str, extra: &[(&str, &str)]) -> Chaos {
        let model = concat!(env!("CARGO_MANIFEST_DIR"), "/models/uci-rig-v1");
        let mut env: Vec<(&str, &str)> = CHAOS_ENV.to_vec();
        env.push(("MANIFOLD__INFER__MODEL_DIR", model));
        env.extend_from_slice(extra);
        let p = TestPipeline::new(&env).await;
        let sizes = Sizes::from_env();
        let rigs = p.rigs(sizes.systems).await;
        let logs = std::env::temp_dir().join(format!("manifold-chaos-{}-{}", scenario, p.prefix));
        std::fs::create_dir_all(&logs).expect("log directory");
        let watermarks: BaseConsumer = manifold::kafka::client_config(&p.config.kafka)
            .create()
            .expect("watermark client");
        let bound = recovery_bound(&p.config);
        let rng = Rng(sizes.seed);
        Chaos {
            scenario,
            p,
            sizes,
            rigs,
            bound,
            logs,
            starts: AtomicU64::new(0),
            peaks: Peaks::default(),
            rng,
            kills: 0,
            terms: 0,
            recoveries: Vec::new(),
            watermarks,
        }
    }

    /// Starts `manifold <role>` as replica `ordinal` (its ingest `instance_id` and infer
    /// `instance`), logging JSON to a file of its own, its RSS sampled until it ends.
    pub fn start(&self, role: Role, ordinal: u32) -> Proc {
        let n = self.starts.fetch_add(1, Ordering::SeqCst);
        let log = self
            .logs
            .join(format!("{n:02}-{}-{ordinal}.log", role.command()));
        let mut command = self.p.manifold(&[role.command()]);
        command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"));
        if matches!(role, Role::Run | Role::Ingest) {
            command.env(
                "MANIFOLD__INGEST__INSTANCE_ID",
                format!("{}-ingest-{ordinal}", self.p.prefix),
            );
        }
        if matches!(role, Role::Run | Role::Infer) {
            command.env("MANIFOLD__INFER__INSTANCE", ordinal.to_string());
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("start manifold {}: {e}", role.command()));
        let sampler = Sampler::start(child.id(), role, self.peaks.clone());
        Proc {
            role,
            ordinal,
            child,
            log,
            sampler,
        }
    }

    /// `start`, then waits until the process's listener is up (it has connected and built
    /// everything it runs).
    pub async fn started(&self, role: Role, ordinal: u32) -> Proc {
        let mut proc = self.start(role, ordinal);
        let deadline = Instant::now() + PROCESS_START * 2;
        while proc.listen().is_none() {
            if let Ok(Some(status)) = proc.child.try_wait() {
                panic!(
                    "manifold {} exited at start ({status}): {}",
                    role.command(),
                    proc.log_tail()
                );
            }
            assert!(
                Instant::now() < deadline,
                "manifold {} not up: {}",
                role.command(),
                proc.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
        proc
    }

    /// SIGKILL, counted as one of the scenario's kills.
    pub fn sigkill(&mut self, mut proc: Proc) {
        proc.sampler.sample();
        proc.child.kill().expect("SIGKILL");
        proc.child.wait().expect("reap");
        self.kills += 1;
    }

    /// SIGTERM, and the process must end by itself within its shutdown deadline.
    pub async fn sigterm(&mut self, mut proc: Proc) {
        proc.sampler.sample();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &proc.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline =
            Instant::now() + self.p.config.shutdown_deadline_seconds + Duration::from_secs(10);
        loop {
            if let Some(status) = proc.child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "manifold {} ended with {status} after SIGTERM: {}",
                    proc.role.command(),
                    proc.log_tail()
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "manifold {} still running after SIGTERM: {}",
                proc.role.command(),
                proc.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
        self.terms += 1;
    }

    /// A random pause up to `max` (reproducible from the seed).
    pub fn jitter(&mut self, max: Duration) -> Duration {
        let ms = max.as_millis().max(1) as u64;
        Duration::from_millis(self.rng.next() % ms)
    }

    /// Starts `manifold simulate` streaming this scenario's sizes, paced over `sizes.stream`.
    pub fn stream(&self) -> Stream {
        let sizes = &self.sizes;
        let (systems, cycles, speed, bad) = (
            sizes.systems.to_string(),
            sizes.cycles().to_string(),
            format!("{:.4}", sizes.speed()),
            sizes.bad_every.to_string(),
        );
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/uci-sample");
        let args = [
            "simulate",
            "--data",
            data,
            "--systems",
            &systems,
            "--prefix",
            &self.rigs,
            "--cycles",
            &cycles,
            "--speed",
            &speed,
            "--bad-every",
            &bad,
            "--checksums",
        ];
        let log = self.logs.join("simulate.log");
        let mut command = self.p.manifold(&args);
        command
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("log file"));
        let mut child = command.spawn().expect("start manifold simulate");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let out = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
            text
        });
        Stream {
            child,
            out: Some(out),
            log,
            started: Instant::now(),
        }
    }

    /// The input topic's ends and the window revisions ready now.
    pub async fn progress(&self) -> Progress {
        let at = Instant::now();
        let topic = self.p.config.topics.batches.name.clone();
        let mut ends = BTreeMap::new();
        for partition in 0..self
            .p
            .config
            .topics
            .partitions_of(&self.p.config.topics.batches)
        {
            let (_, high) = self
                .watermarks
                .fetch_watermarks(&topic, partition, Duration::from_secs(10))
                .expect("input topic watermarks");
            ends.insert(partition, high);
        }
        let client = super::connect(&self.p.db_url).await;
        let rows = client.query("SELECT system_id, window_start, ready_revision FROM windows WHERE ready_revision IS NOT NULL", &[]).await.expect("ready windows");
        let windows = (
            rows.iter().map(|r| r.get(0)).collect(),
            rows.iter().map(|r| r.get(1)).collect(),
            rows.iter().map(|r| r.get(2)).collect(),
        );
        Progress { at, ends, windows }
    }

    /// Whether everything in `since` is stored (each partition's stored offset at its end then)
    /// and every window revision ready then is scored.
    async fn caught_up(&self, since: &Progress) -> bool {
        let client = super::connect(&self.p.db_url).await;
        let stored = super::whole_path::stored_offsets(&self.p).await;
        if since
            .ends
            .iter()
            .any(|(partition, end)| *end > 0 && stored.get(partition).copied().unwrap_or(0) < *end)
        {
            return false;
        }
        let unscored: i64 = client
            .query_one(
                "SELECT count(*) FROM unnest($1::text[], $2::timestamptz[], $3::int4[]) AS t(system_id, window_start, revision)
                 WHERE NOT EXISTS (SELECT 1 FROM anomaly_scores a WHERE (a.system_id, a.window_start, a.revision) = (t.system_id, t.window_start, t.revision))",
                &[&since.windows.0, &since.windows.1, &since.windows.2],
            )
            .await
            .expect("unscored windows")
            .get(0);
        unscored == 0
    }

    /// Waits until the pipeline has caught up with `since` (taken as the fault was injected)
    /// and records how long that took; fails past the recovery bound.
    pub async fn recovered(&mut self, since: &Progress) -> Duration {
        loop {
            if self.caught_up(since).await {
                let took = since.at.elapsed();
                self.recoveries.push(took);
                return took;
            }
            let took = since.at.elapsed();
            assert!(
                took < self.bound,
                "{}: not caught up {took:.1?} after the fault (bound {:.1?}); logs in {}",
                self.scenario,
                self.bound,
                self.logs.display()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Which of `procs` holds the relay's advisory lock: the one whose log says it leads, while
    /// the lock is held in this pipeline's database. Waits up to the recovery bound for one.
    pub async fn relay_holder(&self, procs: &[Proc]) -> usize {
        let client = super::connect(&self.p.db_url).await;
        let deadline = Instant::now() + self.bound;
        loop {
            let held: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND classid::int8 = $1 AND objid::int8 = $2",
                    &[&RELAY_LOCK_CLASSID, &RELAY_LOCK_OBJID],
                )
                .await
                .expect("pg_locks")
                .get(0);
            let leading: Vec<usize> = procs
                .iter()
                .enumerate()
                .filter(|(_, p)| p.log_text().contains("relay leading"))
                .map(|(i, _)| i)
                .collect();
            assert!(
                leading.len() <= 1,
                "{}: two relays lead at once: {leading:?}",
                self.scenario
            );
            if let (1, [holder]) = (held, leading.as_slice()) {
                return *holder;
            }
            assert!(
                Instant::now() < deadline,
                "{}: no relay leads (lock held: {held}); logs in {}",
                self.scenario,
                self.logs.display()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// The end of every scenario, after the stream: waits to catch up, asserts a), b) and d)
    /// (c was asserted at each fault) and prints the scenario's one line.
    pub async fn finish(mut self, report: &SimulateReport) {
        let end = self.progress().await;
        self.recovered(&end).await;
        let readings = self.readings_exactly_once(report).await;
        let (windows, scores) = self.scores_exactly_once().await;
        let peaks: BTreeMap<Role, f64> = self
            .peaks
            .lock()
            .unwrap()
            .iter()
            .map(|(role, kb)| (*role, *kb as f64 / 1024.0))
            .collect();
        let rss = peaks
            .iter()
            .map(|(role, mb)| format!("{}:{mb:.1}", role.command()))
            .collect::<Vec<_>>()
            .join(",");
        let worst = self.recoveries.iter().max().copied().unwrap_or_default();
        println!(
            "chaos {}: readings={} bad={} kills={} sigterms={} recovery_max_s={:.1} recovery_bound_s={:.0} windows={windows} scores={scores} rss_peak_mb={rss} duplicates={} lost={} seed={}",
            self.scenario,
            report.readings,
            report.bad,
            self.kills,
            self.terms,
            worst.as_secs_f64(),
            self.bound.as_secs_f64(),
            readings.duplicates,
            readings.lost,
            self.sizes.seed
        );
        readings.assert();
        for (role, mb) in &peaks {
            assert!(
                *mb < RSS_BOUND_MB,
                "{}: peak RSS of {} {mb:.1} MB over {RSS_BOUND_MB} MB",
                self.scenario,
                role.command()
            );
        }
        let _ = std::fs::remove_dir_all(&self.logs);
    }

    async fn readings_exactly_once(&self, report: &SimulateReport) -> Readings {
        let client = super::connect(&self.p.db_url).await;
        let stored = manifold::sim::checksum::stored(&client)
            .await
            .expect("stored checksums");
        let duplicates: i64 = client
            .query_one("SELECT count(*) FROM (SELECT 1 FROM readings GROUP BY series_id, time HAVING count(*) > 1) d", &[])
            .await
            .expect("duplicates")
            .get(0);
        let dead: i64 = client
            .query_one("SELECT count(*) FROM dead_letters", &[])
            .await
            .expect("dead letters")
            .get(0);
        let sent: BTreeMap<(String, String), (u64, String)> = report
            .series
            .iter()
            .map(|s| {
                (
                    (s.system_id.clone(), s.sensor_id.clone()),
                    (s.readings, s.checksum.clone()),
                )
            })
            .collect();
        let kept: BTreeMap<(String, String), (u64, String)> = stored
            .iter()
            .map(|s| {
                (
                    (s.system_id.clone(), s.sensor_id.clone()),
                    (s.readings, s.checksum.clone()),
                )
            })
            .collect();
        let lost = sent
            .iter()
            .map(|(k, (n, _))| n.saturating_sub(kept.get(k).map_or(0, |(m, _)| *m)))
            .sum();
        let differ: Vec<String> = sent
            .keys()
            .chain(kept.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|k| sent.get(*k) != kept.get(*k))
            .map(|k| format!("{k:?}: sent {:?}, stored {:?}", sent.get(k), kept.get(k)))
            .collect();
        Readings {
            scenario: self.scenario,
            expected: report.readings,
            stored: stored.iter().map(|s| s.readings).sum(),
            duplicates,
            lost,
            differ,
            dead,
            bad: report.bad,
        }
    }

    /// Every (system, window, revision) ready in `windows` against the scores topic, read
    /// committed: each once, with distinct components, and nothing else.
    async fn scores_exactly_once(&self) -> (usize, usize) {
        let client = super::connect(&self.p.db_url).await;
        let rows = client.query("SELECT system_id, window_start, ready_revision FROM windows WHERE ready_revision IS NOT NULL", &[]).await.expect("windows");
        let ready: BTreeSet<(String, i64, i32)> = rows
            .iter()
            .flat_map(|r| {
                let (system, start): (String, DateTime<Utc>) = (r.get(0), r.get(1));
                (0..=r.get::<_, i32>(2))
                    .map(move |revision| (system.clone(), start.timestamp_micros(), revision))
            })
            .collect();
        // A replica killed for good may leave a transaction open until the broker aborts it.
        let messages =
            super::scores::read(&self.p, ready.len(), self.bound + TRANSACTION_TIMEOUT).await;
        let mut seen: BTreeMap<(String, i64, i32), usize> = BTreeMap::new();
        for m in &messages {
            *seen
                .entry((m.system_id.clone(), m.window_start, m.revision))
                .or_default() += 1;
            let components: BTreeSet<&str> = m.components.iter().map(|(c, _)| c.as_str()).collect();
            assert!(
                !components.is_empty() && components.len() == m.components.len(),
                "{}: components of {m:?}",
                self.scenario
            );
        }
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
        let missing: Vec<_> = ready.iter().filter(|k| !seen.contains_key(*k)).collect();
        let unexpected: Vec<_> = seen.keys().filter(|k| !ready.contains(*k)).collect();
        assert!(
            twice.is_empty(),
            "{}: score messages published twice: {twice:?}",
            self.scenario
        );
        assert!(
            missing.is_empty(),
            "{}: {} ready window revisions not published: {missing:?}",
            self.scenario,
            missing.len()
        );
        assert!(
            unexpected.is_empty(),
            "{}: scores for windows not ready: {unexpected:?}",
            self.scenario
        );
        assert!(
            !ready.is_empty(),
            "{}: no window became ready",
            self.scenario
        );
        (ready.len(), messages.len())
    }
}

struct Readings {
    scenario: &'static str,
    expected: u64,
    stored: u64,
    duplicates: i64,
    lost: u64,
    differ: Vec<String>,
    dead: i64,
    bad: u64,
}

impl Readings {
    fn assert(&self) {
        let s = self.scenario;
        assert_eq!(
            self.duplicates, 0,
            "{s}: (series, time) stored more than once"
        );
        assert_eq!(self.lost, 0, "{s}: readings lost");
        assert_eq!(self.stored, self.expected, "{s}: readings stored");
        assert!(
            self.differ.is_empty(),
            "{s}: per-series count or checksum differs: {:#?}",
            self.differ
        );
        assert_eq!(
            self.dead, self.bad as i64,
            "{s}: each bad message dead-lettered once"
        );
    }
}

/// A running `manifold` process.
pub struct Proc {
    pub role: Role,
    pub ordinal: u32,
    child: Child,
    log: PathBuf,
    sampler: Sampler,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The address of the listener serving its metrics (`/metrics`), from its start-up log.
    pub fn listen(&self) -> Option<String> {
        let wanted = self.role.listener_line();
        self.log_text()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find_map(|v| {
                let fields = if v.get("fields").is_some() {
                    &v["fields"]
                } else {
                    &v
                };
                (fields["message"] == wanted)
                    .then(|| fields["listen"].as_str().map(str::to_owned))
                    .flatten()
            })
    }

    /// The sum of a metric's series on the process's listener (None until it answers).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let listen = self.listen()?;
        let body = reqwest::get(format!("http://{listen}/metrics"))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let values = body.lines().filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        });
        Some(
            values
                .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
                .sum(),
        )
    }

    /// Waits until `metric` is above zero: the process did its work at least once (ingest:
    /// `manifold_ingest_readings_written_total`, so it owns partitions and writes).
    pub async fn working(&self, metric: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.metric(metric).await.unwrap_or(0.0) <= 0.0 {
            assert!(
                Instant::now() < deadline,
                "manifold {}-{}: {metric} still 0 after {timeout:?}: {}",
                self.role.command(),
                self.ordinal,
                self.log_tail()
            );
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Samples a process's VmHWM (peak resident set) while it lives, into the scenario's peaks.
struct Sampler {
    pid: u32,
    role: Role,
    peaks: Peaks,
    stop: Arc<AtomicBool>,
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

impl Sampler {
    fn start(pid: u32, role: Role, peaks: Peaks) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = Sampler {
            pid,
            role,
            peaks: peaks.clone(),
            stop: stop.clone(),
        };
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                Sampler::record(pid, role, &peaks);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        sampler
    }

    fn record(pid: u32, role: Role, peaks: &Peaks) {
        // A process that ended (a zombie) has no VmHWM any more: its last sample stands.
        if let Some(kb) = vm_hwm_kb(pid) {
            let mut peaks = peaks.lock().unwrap();
            let peak = peaks.entry(role).or_default();
            *peak = (*peak).max(kb);
        }
    }

    /// Once more, right before a signal.
    fn sample(&self) {
        Sampler::record(self.pid, self.role, &self.peaks);
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The simulator streaming in the background; its JSON summary is read when it ends.
pub struct Stream {
    child: Child,
    /// What it prints, read as it comes (a summary with checksums may outgrow a pipe's buffer).
    out: Option<std::thread::JoinHandle<String>>,
    log: PathBuf,
    pub started: Instant,
}

impl Stream {
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the simulator to end and returns its summary (with per-series checksums).
    pub async fn finish(mut self) -> SimulateReport {
        while self.running() {
            tokio::time::sleep(POLL).await;
        }
        let out = self
            .out
            .take()
            .map(|reader| reader.join().unwrap_or_default())
            .unwrap_or_default();
        let status = self.child.wait().expect("simulate status");
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(
            status.success(),
            "manifold simulate failed ({status}): {log}"
        );
        let summary: serde_json::Value = serde_json::from_str(out.trim())
            .unwrap_or_else(|e| panic!("simulate summary {out:?}: {e}"));
        let series =
            serde_json::from_value(summary["series"].clone()).expect("per-series checksums");
        let count = |k: &str| {
            summary[k]
                .as_u64()
                .unwrap_or_else(|| panic!("{k} in {summary}"))
        };
        SimulateReport {
            batches: count("batches"),
            readings: count("readings"),
            bad: count("bad"),
            series,
        }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
