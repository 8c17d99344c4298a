//! One startup for every long-running process set: `manifold ingest`, `infer`, `api` and `run`
//! (all three). It builds the set's named tasks, runs them under one cancellation token, and
//! stops them in order within one deadline: consumers drain first, listeners (the HTTP API,
//! the operations endpoints) stop last, so health and metrics answer until the work is done.
//! A task that fails, or stops before shutdown was asked for, stops the others, and the
//! process ends with that task's name in its error.

mod tasks;
mod wiring;

use tokio_util::sync::CancellationToken;

pub use tasks::StartupError;

use crate::config::Config;
use crate::telemetry::Metrics;
use tasks::Tasks;

/// Which processes run together in one process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessSet {
    /// Ingest, with the outbox relay, idle-window closing and storage maintenance beside it.
    Ingest,
    Infer,
    Api,
    /// Ingest, infer and the API sharing one registry and one shutdown: the single-machine default.
    All,
}

impl ProcessSet {
    fn runs_api(self) -> bool {
        matches!(self, ProcessSet::Api | ProcessSet::All)
    }

    fn runs_ingest(self) -> bool {
        matches!(self, ProcessSet::Ingest | ProcessSet::All)
    }

    fn runs_infer(self) -> bool {
        matches!(self, ProcessSet::Infer | ProcessSet::All)
    }
}

/// Builds `set` (a bad address or an unmigrated schema fails here, before anything runs), then
/// runs it until `shutdown` or the first task to fail, and stops it within `shutdown_deadline_seconds`.
pub async fn run(set: ProcessSet, config: Config, metrics: Metrics, shutdown: CancellationToken) -> anyhow::Result<()> {
    if set.runs_infer() {
        config.check_for_infer()?;
    }
    let mut tasks = Tasks::new(&shutdown);
    if set.runs_api() {
        wiring::api(&mut tasks, &config, &metrics).await?;
    }
    if set.runs_ingest() {
        wiring::ingest(&mut tasks, &config, &metrics).await?;
    }
    if set.runs_infer() {
        wiring::infer(&mut tasks, &config, &metrics).await?;
    }
    tasks.run(config.shutdown_deadline_seconds).await?;
    Ok(())
}
