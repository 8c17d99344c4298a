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

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use manifold::config::Config;
use manifold::sim::SimulateReport;
use rdkafka::consumer::BaseConsumer;

use super::pipeline::TestPipeline;

mod checks;
mod process;
mod recovery;
mod stream;

pub use process::Proc;
use process::Sampler;
#[allow(unused_imports)] // named by scenarios that keep a snapshot
pub use recovery::Progress;
pub use stream::Stream;

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
        Ok(text) => text.parse().unwrap_or_else(|_| panic!("{name}={text} does not parse")),
        Err(_) => default,
    }
}

impl Sizes {
    pub fn from_env() -> Sizes {
        let kills = env_or("CHAOS_KILLS", 3usize);
        let readings = env_or("CHAOS_READINGS", 32_000u64);
        // Long enough for each fault to be injected while data flows and recovered from.
        let stream = Duration::from_secs(env_or("CHAOS_STREAM_SECONDS", 8 * kills as u64 + 4));
        let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos() as u64;
        Sizes { readings, kills, stream, systems: env_or("CHAOS_SYSTEMS", 4), bad_every: env_or("CHAOS_BAD_EVERY", 10), seed: env_or("CHAOS_SEED", clock) }
    }

    /// Cycles per system so that `readings` good readings are sent (every `bad_every`-th
    /// message takes a good one's place).
    pub fn cycles(&self) -> usize {
        let good_share = if self.bad_every > 1 { (self.bad_every - 1) as f64 / self.bad_every as f64 } else { 1.0 };
        let per_cycle = (READINGS_PER_CYCLE * self.systems.max(1) as u64) as f64 * good_share;
        (self.readings as f64 / per_cycle).ceil().max(1.0) as usize
    }

    /// `simulate --speed`: the cycles spread over `stream`.
    /// Wall time between two cycles of the stream.
    pub fn cycle_interval(&self) -> Duration {
        self.stream / self.cycles() as u32
    }

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
        let model = super::shipped_model_dir();
        let mut env: Vec<(&str, &str)> = CHAOS_ENV.to_vec();
        env.push(("MANIFOLD__INFER__MODEL_DIR", model.as_str()));
        env.extend_from_slice(extra);
        let p = TestPipeline::new(&env).await;
        let sizes = Sizes::from_env();
        let rigs = p.rigs(sizes.systems).await;
        let logs = std::env::temp_dir().join(format!("manifold-chaos-{}-{}", scenario, p.prefix));
        std::fs::create_dir_all(&logs).expect("log directory");
        let watermarks: BaseConsumer = manifold::kafka::client_config(&p.config.kafka).create().expect("watermark client");
        // Recovery is measured up to data sent after the fault: the stream's next cycle.
        let bound = recovery_bound(&p.config) + sizes.cycle_interval();
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
        self.start_with(role, ordinal, &[])
    }

    /// `start` with more environment for this process only (a database URL through a proxy,
    /// say), over the pipeline's.
    pub fn start_with(&self, role: Role, ordinal: u32, env: &[(&str, &str)]) -> Proc {
        let n = self.starts.fetch_add(1, Ordering::SeqCst);
        let log = self.logs.join(format!("{n:02}-{}-{ordinal}.log", role.command()));
        let mut command = self.p.manifold(&[role.command()]);
        command.stdout(Stdio::null()).stderr(std::fs::File::create(&log).expect("log file"));
        if matches!(role, Role::Run | Role::Ingest) {
            command.env("MANIFOLD__INGEST__INSTANCE_ID", format!("{}-ingest-{ordinal}", self.p.prefix));
        }
        if matches!(role, Role::Run | Role::Infer) {
            command.env("MANIFOLD__INFER__INSTANCE", ordinal.to_string());
        }
        command.envs(env.iter().copied());
        let child = command.spawn().unwrap_or_else(|e| panic!("start manifold {}: {e}", role.command()));
        let sampler = Sampler::start(child.id(), role, self.peaks.clone());
        Proc { role, ordinal, child, log, sampler, listening: Default::default() }
    }

    /// `start`, then waits until the process's listener is up (it has connected and built
    /// everything it runs).
    pub async fn started(&self, role: Role, ordinal: u32) -> Proc {
        self.started_with(role, ordinal, &[]).await
    }

    /// `started` with more environment for this process only (see `start_with`).
    pub async fn started_with(&self, role: Role, ordinal: u32, env: &[(&str, &str)]) -> Proc {
        let mut proc = self.start_with(role, ordinal, env);
        let deadline = Instant::now() + PROCESS_START * 2;
        while proc.listen().is_none() {
            if let Ok(Some(status)) = proc.child.try_wait() {
                panic!("manifold {} exited at start ({status}): {}", role.command(), proc.log_tail());
            }
            assert!(Instant::now() < deadline, "manifold {} not up: {}", role.command(), proc.log_tail());
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
        let status = std::process::Command::new("kill").args(["-TERM", &proc.child.id().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let deadline = Instant::now() + self.p.config.shutdown_deadline_seconds + Duration::from_secs(10);
        loop {
            if let Some(status) = proc.child.try_wait().expect("wait") {
                assert!(status.success(), "manifold {} ended with {status} after SIGTERM: {}", proc.role.command(), proc.log_tail());
                break;
            }
            assert!(Instant::now() < deadline, "manifold {} still running after SIGTERM: {}", proc.role.command(), proc.log_tail());
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
        let (systems, cycles, speed, bad) =
            (sizes.systems.to_string(), sizes.cycles().to_string(), format!("{:.4}", sizes.speed()), sizes.bad_every.to_string());
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
        command.stdout(Stdio::piped()).stderr(std::fs::File::create(&log).expect("log file"));
        let mut child = command.spawn().expect("start manifold simulate");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let out = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stdout, &mut text);
            text
        });
        let started = Instant::now();
        Stream { child, out: Some(out), log, started, last_cycle: started + self.sizes.stream }
    }

    /// The end of every scenario, after the stream: waits to catch up, asserts a), b) and d)
    /// (c was asserted at each fault) and prints the scenario's one line.
    pub async fn finish(self, report: &SimulateReport) {
        let end = self.progress().await;
        self.caught_up_with(&end).await;
        let readings = self.readings_exactly_once(report).await;
        let scores = self.scores_exactly_once().await;
        let peaks: BTreeMap<Role, f64> = self.peaks.lock().unwrap().iter().map(|(role, kb)| (*role, *kb as f64 / 1024.0)).collect();
        let rss = peaks.iter().map(|(role, mb)| format!("{}:{mb:.1}", role.command())).collect::<Vec<_>>().join(",");
        let worst = self.recoveries.iter().max().copied().unwrap_or_default();
        println!(
            "chaos {}: readings={} bad={} kills={} sigterms={} recovery_max_s={:.1} recovery_bound_s={:.0} windows={} scores={} rss_peak_mb={rss} duplicates={} lost={} score_duplicates={} scores_missing={} seed={}",
            self.scenario,
            report.readings,
            report.bad,
            self.kills,
            self.terms,
            worst.as_secs_f64(),
            self.bound.as_secs_f64(),
            scores.ready,
            scores.messages,
            readings.duplicates,
            readings.lost,
            scores.twice.len(),
            scores.missing.len(),
            self.sizes.seed
        );
        readings.assert();
        scores.assert();
        for (role, mb) in &peaks {
            assert!(*mb < RSS_BOUND_MB, "{}: peak RSS of {} {mb:.1} MB over {RSS_BOUND_MB} MB", self.scenario, role.command());
        }
        let _ = std::fs::remove_dir_all(&self.logs);
    }
}
