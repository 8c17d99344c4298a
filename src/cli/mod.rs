//! The command line: parse, load config, run one subcommand. Exit codes: 0 ok, 1 a dependency
//! or operation failed, 2 bad usage or configuration.

mod commands;

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
    crate::telemetry::init_logging(&config.telemetry);
    match commands::dispatch(cli.command, config).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            1
        }
    }
}
