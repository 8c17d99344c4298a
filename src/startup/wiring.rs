//! What each process contributes to a set: its tasks, its listener and its readiness.

use std::sync::Arc;

use super::tasks::Tasks;
use crate::api::{self, AppState};
use crate::config::Config;
use crate::infer::{self, InferHealth, InferMetrics};
use crate::ingest::Ingest;
use crate::relay::Relay;
use crate::store::maintenance::Maintenance;
use crate::telemetry::{Metrics, ops};

/// Ingest with the outbox relay, idle-window closing and storage maintenance beside it, and
/// the operations listener on `ingest.listen`.
pub(super) async fn ingest(tasks: &mut Tasks, config: &Config, metrics: &Metrics) -> anyhow::Result<()> {
    let ingest = Ingest::build(config, metrics).await?;
    let relay = Relay::new(config, ingest.store(), metrics);
    // A relay stopped by the deployment stops the events ingest commits from leaving: the
    // process is not ready then, even though ingest itself is.
    let (health, relay_systemic) = (ingest.health(), relay.systemic_flag());
    let readiness: ops::Readiness = Arc::new(move || {
        health.readiness()?;
        if relay_systemic.get() == 1 {
            return Err("relay stopped: the deployment needs attention (see the relay's error log)".into());
        }
        Ok(())
    });
    let (bound, listener) = ops::serve(config.ingest.listen, metrics.clone(), readiness, tasks.listener_token()).await?;
    tracing::info!(listen = %bound, "ingest operations listener up");
    let token = tasks.worker_token();
    tasks.spawn("ingest-catalogue", ingest.catalogue(token.clone()));
    tasks.spawn("relay", relay.run(token.clone()));
    tasks.spawn("idle-windows", ingest.idle_windows(token.clone()));
    tasks.spawn("maintenance", Maintenance::new(config.database.clone(), config.storage.clone(), metrics.clone()).run(token.clone()));
    tasks.spawn("ingest", ingest.consume(token));
    tasks.listener("ingest-listener", listener);
    Ok(())
}

/// The scoring worker (restarted in place after failures) and the operations listener on
/// `infer.listen`.
pub(super) async fn infer(tasks: &mut Tasks, config: &Config, metrics: &Metrics) -> anyhow::Result<()> {
    let health = Arc::new(InferHealth::new(config.infer.unready_after_ms));
    let probe = health.clone();
    let readiness: ops::Readiness = Arc::new(move || probe.ready());
    let (bound, listener) = ops::serve(config.infer.listen, metrics.clone(), readiness, tasks.listener_token()).await?;
    tracing::info!(listen = %bound, "infer operations listener up");
    tasks.spawn("infer", infer::supervise(config.clone(), InferMetrics::new(metrics), health, tasks.worker_token()));
    tasks.listener("infer-listener", listener);
    Ok(())
}

/// The HTTP API on `api.listen`, with the background work it needs (it stops after the last
/// request is answered).
pub(super) async fn api(tasks: &mut Tasks, config: &Config, metrics: &Metrics) -> anyhow::Result<()> {
    let state = AppState::new(config, api::store_for(config)?, metrics.clone())?;
    let (bound, server) = api::serve(config.api.listen, state, tasks.listener_token()).await?;
    tracing::info!(listen = %bound, "API listening");
    tasks.listener("api", server);
    Ok(())
}
