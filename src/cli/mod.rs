//! The command line: parse, load config, run one subcommand. Exit codes: 0 ok, 1 a dependency
//! or operation failed, 2 bad usage or configuration.

mod commands;
mod grants;
mod offsets;
mod outbox;
mod pipeline;
mod scoring;

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{Config, Sources};

#[derive(Debug, Parser)]
#[command(name = "manifold", version, about = "Hydraulic sensor data plane: Kafka → PostgreSQL → GNN anomaly scores")]
pub struct Cli {
    /// A TOML file layered over the built-in defaults (environment variables still win).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply (up, the default) or revert (down) database migrations.
    Migrate {
        #[command(subcommand)]
        direction: Option<MigrateDirection>,
    },
    /// Kafka topic administration.
    Topics {
        #[command(subcommand)]
        action: TopicsAction,
    },
    /// Connect to every configured dependency and report, per dependency, OK or how to fix it.
    Check {
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Consume sensor batches into the database (with the outbox relay and maintenance) until stopped.
    Ingest,
    /// Avro schema registry administration.
    Schemas {
        #[command(subcommand)]
        action: SchemasAction,
    },
    /// Virtual devices replaying the UCI hydraulic rig into the input topic.
    Simulate(SimulateArgs),
    /// Inspect and replay dead letters.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
    /// Where ingest resumes: show or reset the offsets stored with the data (and Kafka's copy).
    /// Acts on the ingest consumer group (ingest.group_id) unless --group names another.
    Offsets {
        #[command(subcommand)]
        action: offsets::OffsetsAction,
    },
    /// Database roles for tools beside manifold (Grafana's read-only role).
    Grants {
        #[command(subcommand)]
        action: grants::GrantsAction,
    },
    /// Outbox events the relay could not publish.
    Outbox {
        #[command(subcommand)]
        action: outbox::OutboxAction,
    },
    /// Score window-ready events and publish per-component anomaly scores until stopped.
    Infer,
    /// Serve the HTTP API (health, metrics, users and keys, equipment metadata) until stopped.
    Api,
    /// User administration.
    Users {
        #[command(subcommand)]
        action: UsersAction,
    },
    /// Ingest (with relay and maintenance), infer and the API in one process: the single-machine default.
    Run,
    /// Open new revisions of scored windows in a time range, to score them with a new model.
    Rescore {
        /// Start of the range (RFC 3339).
        #[arg(long, required_unless_present = "failed")]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// End of the range, exclusive (RFC 3339).
        #[arg(long, required_unless_present = "failed")]
        to: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long)]
        system: Option<String>,
        /// Instead of a range: the windows whose scoring failed (`scoring_failures`).
        #[arg(long, conflicts_with_all = ["from", "to"])]
        failed: bool,
    },
    /// Train or evaluate the rig model.
    Model {
        #[command(subcommand)]
        action: ModelAction,
    },
    /// Storage maintenance: create partitions ahead, drop expired ones, prune old rows.
    Maintain {
        /// One pass, then exit (default: repeat every storage.maintenance_interval_seconds).
        #[arg(long)]
        once: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MigrateDirection {
    /// Apply every pending migration, then create the readings partitions.
    Up,
    /// Revert the newest migration (or more).
    Down {
        /// How many migrations to revert.
        #[arg(long, default_value_t = 1, conflicts_with = "all")]
        steps: usize,
        /// Revert every migration (drops all manifold tables and their data).
        #[arg(long)]
        all: bool,
    },
    /// Print the applied and latest schema versions.
    Status,
}

#[derive(Debug, Subcommand)]
pub enum TopicsAction {
    /// Create the four topics with the configured partitions and retention (idempotent).
    Create,
}

#[derive(Debug, Subcommand)]
pub enum UsersAction {
    /// Create an admin user and print its API key (shown once).
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ModelAction {
    /// Train the GNN and the MLP baseline on a directory in the UCI layout; write the artifact.
    Train {
        #[arg(long)]
        data: PathBuf,
        /// The model version, written into the manifest (and reported with every score).
        #[arg(long, default_value = "uci-rig-v4")]
        version: String,
        /// Where to write the artifact; default: models/<version>.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The shipped artifact was trained with seed 42 and 120 epochs (the defaults).
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 120)]
        epochs: usize,
        /// The features the networks read.
        #[arg(long, value_enum, default_value_t = crate::model::FeatureLayout::NEWEST)]
        features: crate::model::FeatureLayout,
        /// First judge the recipe (5 seeds on the block folds, the untouched split, later cycles
        /// and later cycles of the folds, as `model eval --cross-validate --untouched
        /// --later-cycles --later-cycles-of-folds`) and keep the
        /// figures in the manifest. Required with `--held-out nothing`: an artifact trained on
        /// every row has no figures of its own.
        #[arg(long, required_if_eq("held_out", "nothing"))]
        cross_validate: bool,
        /// With --cross-validate: runs trained at once, one core each.
        #[arg(long, default_value_t = 1, requires = "cross_validate")]
        jobs: usize,
        /// The rows trained without, on which the manifest's `validation` is measured. The
        /// shipped artifact holds out nothing (models/README.md).
        #[arg(long, value_enum, default_value_t = HeldOutArg::UntouchedBlocks)]
        held_out: HeldOutArg,
    },
    /// Per-target accuracy and confusion matrices on a directory in the UCI layout, beside the
    /// MLP baseline.
    Eval {
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value = crate::model::DEFAULT_MODEL_DIR)]
        model: PathBuf,
        /// Only the rows the model was trained without, as its manifest records them (the
        /// untouched blocks; for models before it, the last fifth of each block).
        #[arg(long)]
        held_out: bool,
        /// Instead of the saved model, judge its recipe: retrain on whole blocks of identical
        /// conditions and score the blocks left out (mean ± sd over --runs seeds and folds), with
        /// each sensor missing in turn.
        #[arg(long, conflicts_with = "held_out")]
        cross_validate: bool,
        /// With --cross-validate: also score each seed, trained on every fold, on the untouched
        /// test split (about one row in seven, in whole blocks). For a final recipe, not for choosing one.
        #[arg(long, requires = "cross_validate")]
        untouched: bool,
        /// With --cross-validate: also train each seed on the first four fifths of every block
        /// and score the last fifth (new cycles of conditions it has seen). It trains on the
        /// untouched blocks' first cycles: for a final recipe, not for choosing one.
        #[arg(long, requires = "cross_validate")]
        later_cycles: bool,
        /// With --cross-validate: the same within the fold blocks only (first four fifths of
        /// each train, the last fifth is scored), so no row of the test split is trained on or
        /// scored: a judge a recipe may be chosen on.
        #[arg(long, requires = "cross_validate")]
        later_cycles_of_folds: bool,
        #[arg(long, default_value_t = 5, requires = "cross_validate")]
        runs: usize,
        #[arg(long, default_value_t = 5, requires = "cross_validate")]
        folds: usize,
        /// The first run's seed; run i uses seed + i.
        #[arg(long, default_value_t = 42, requires = "cross_validate")]
        seed: u64,
        #[arg(long, default_value_t = 120, requires = "cross_validate")]
        epochs: usize,
        /// Probability that a training example loses a sensor (the shipped recipe: 0.05).
        #[arg(long, requires = "cross_validate")]
        sensor_dropout: Option<f64>,
        /// Width of the GNN's node states and heads (the shipped recipe: 32).
        #[arg(long, requires = "cross_validate")]
        hidden: Option<usize>,
        /// AdamW's weight decay for both networks (the shipped recipe: 0.01).
        #[arg(long, requires = "cross_validate")]
        weight_decay: Option<f64>,
        /// The features the networks read.
        #[arg(long, value_enum, default_value_t = crate::model::FeatureLayout::NEWEST, requires = "cross_validate")]
        features: crate::model::FeatureLayout,
        /// Runs trained at once, one core each.
        #[arg(long, default_value_t = 1, requires = "cross_validate")]
        jobs: usize,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum SchemasAction {
    /// Register every bundled schema under `<topic>-value` (idempotent).
    Register,
}

#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// A directory in the UCI layout (profile.txt + one file per sensor); default: the sample.
    #[arg(long, default_value = crate::rig::SAMPLE_DATA)]
    pub data: PathBuf,
    /// Number of systems (devices), one rig each.
    #[arg(long, default_value_t = 1)]
    pub systems: usize,
    /// System ids are PREFIX-0, PREFIX-1, …
    #[arg(long, default_value = "rig")]
    pub prefix: String,
    /// Load cycles (60 s each) per system.
    #[arg(long, default_value_t = 10)]
    pub cycles: usize,
    /// "max": as fast as possible, a backfill whose event times end now. A number N: one 60 s
    /// cycle every 60/N seconds, each sent once it has ended: 1 is live data from the current
    /// cycle on; N > 1 is a time-lapse of history that ends at the clock when the replay does.
    #[arg(long, default_value = "max")]
    pub speed: String,
    /// Make every N-th message a bad one (garbage, NaN, out of range, unknown sensor).
    #[arg(long)]
    pub bad_every: Option<usize>,
    #[arg(long, value_enum, default_value_t = crate::sim::WireFormat::Avro)]
    pub format: crate::sim::WireFormat,
    /// First data row to replay.
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// Send pressures and motor power at 100 Hz and flows at 10 Hz, as the real rig samples
    /// them (each 1 s value of the data set repeated), instead of everything at 1 Hz.
    #[arg(long)]
    pub native_rates: bool,
    /// Also print, per series, the good readings sent and their checksum (as `series` in the
    /// JSON summary), for checking what was stored; see `src/sim/checksum.rs`.
    #[arg(long)]
    pub checksums: bool,
}

#[derive(Debug, Subcommand)]
pub enum DlqAction {
    /// Counts by reason and the newest examples.
    List {
        #[arg(long)]
        reason: Option<String>,
        #[arg(long, default_value_t = 10)]
        limit: i64,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Send dead letters (not replayed yet) to the input topic again, e.g. after a fix.
    Replay {
        #[arg(long)]
        reason: Option<String>,
        /// Only the dead letters of this system.
        #[arg(long)]
        system: Option<String>,
        /// Only the dead letters received at or after this time (RFC 3339).
        #[arg(long, value_name = "T")]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Print what would be replayed; send and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `model train --held-out`: which rows the artifact is trained without.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HeldOutArg {
    /// The untouched test split of whole blocks, about one row in seven.
    UntouchedBlocks,
    /// None: every row trains, for an artifact whose recipe has been judged already.
    Nothing,
}

impl From<HeldOutArg> for crate::model::HeldOut {
    fn from(arg: HeldOutArg) -> Self {
        match arg {
            HeldOutArg::UntouchedBlocks => crate::model::HeldOut::UntouchedBlocks,
            HeldOutArg::Nothing => crate::model::HeldOut::Nothing,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Entry point used by `main`: returns the process exit code.
pub async fn run(cli: Cli, env: BTreeMap<String, String>) -> i32 {
    let config = match Config::load(&Sources { file: cli.config.clone() }, &env) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("error: {err}");
            return 2;
        }
    };
    // A bad endpoint was refused with the configuration; what is left to fail here (the HTTP
    // client) is not worth stopping the data path for: it runs without traces, saying so.
    let exporter = crate::telemetry::Exporter::from_config(&config.telemetry, env.get("OTEL_SERVICE_NAME").map(String::as_str));
    let exporter = match exporter {
        Ok(exporter) => {
            crate::telemetry::init(&config.telemetry, exporter.as_ref());
            exporter
        }
        Err(err) => {
            crate::telemetry::init_logging(&config.telemetry);
            tracing::error!(error = %err, "trace export is off");
            None
        }
    };
    let kafka = config.kafka.clone();
    let code = match commands::dispatch(cli.command, config).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            if let Some(known) = crate::check::misconfig::diagnose(&err) {
                let (known, reason) = crate::check::misconfig::refine_kafka(known, &kafka).await;
                let reason = reason.map(|r| format!(" ({r})")).unwrap_or_default();
                eprintln!("problem: {}{reason}\nfix: {}", known.name, known.fix);
            }
            1
        }
    };
    if let Some(exporter) = exporter {
        // Sends the spans still buffered; blocking, so off the runtime's workers.
        let _ = tokio::task::spawn_blocking(move || exporter.shutdown()).await;
    }
    code
}
