//! `manifold infer`: window-ready events in, per-component anomaly scores out, exactly once.

mod alerts;
mod batch;
mod consumer;
mod error;
mod health;
mod metrics;
mod poison;
mod scorer;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use schema_registry_converter::async_impl::avro::AvroDecoder;
use tokio_util::sync::CancellationToken;

pub use health::InferHealth;
pub use metrics::InferMetrics;
pub use poison::FailReason;
pub use scorer::{
    BASELINE_VERSION, BaselineScorer, HttpScorer, HttpScorerError, RigScorer, SERVICE_VERSION, ScoreRequest, Scored, ScorerChain, ServiceAnswer, ServiceScorer, WindowScorer,
    WindowToScore, robust_z,
};
pub use error::InferError;
pub use worker::InferWorker;

use alerts::AlertDeriver;
use crate::codec::{RecordEncoder, schemas};
use crate::config::Config;
use crate::failure::FailureKind;
use crate::kafka::fences::Fences;
use crate::model;
use crate::store::Store;

/// Builds the worker from config: the model when its artifact loads, the external service when
/// `GNN_SERVICE_URL` is set.
pub fn worker(config: &Config, infer_metrics: InferMetrics, health: Arc<InferHealth>) -> anyhow::Result<InferWorker> {
    let store = Store::new(&config.database)?;
    let model = match model::RigModel::load(&config.infer.model_dir) {
        Ok(model) => {
            infer_metrics.model_info.with_label_values(&[&model.manifest().version]).set(1);
            tracing::info!(version = %model.manifest().version, topology = %model.manifest().topology_hash, "rig model loaded");
            Some(model)
        }
        Err(err) => {
            tracing::warn!(error = %err, dir = %config.infer.model_dir.display(), "no rig model; every system gets the baseline scorer");
            None
        }
    };
    let service = match &config.gnn.service_url {
        Some(url) => Some(HttpScorer::new(url, config.gnn.timeout_ms, config.gnn.attempts)?),
        None => None,
    };
    let registry = crate::codec::registry_settings(&config.schema_registry)?;
    let conditions = model.as_ref().map(|m| model::ConditionCatalogue::new([m.manifest()])).unwrap_or_default();
    let alerts = AlertDeriver {
        config: config.alerts.clone(),
        conditions,
        encoder: RecordEncoder::new(&config.schema_registry, &config.topics.alerts.name, schemas::ALERT_EVENTS)?,
        topic: config.topics.alerts.name.clone(),
    };
    Ok(InferWorker {
        store: store.clone(),
        scorer: ScorerChain::new(service, model.map(|m| RigScorer::new(m).with_refusals(infer_metrics.model_refusals.clone())), BaselineScorer::new(store, config.infer.baseline_history_minutes)),
        decoder: AvroDecoder::new(registry.clone()),
        registry,
        encoder: RecordEncoder::new(&config.schema_registry, &config.topics.scores.name, schemas::ANOMALY_SCORES)?,
        metrics: infer_metrics,
        health,
        config: config.infer.clone(),
        kafka: config.kafka.clone(),
        input_topic: config.topics.windows_ready.name.clone(),
        output_topic: config.topics.scores.name.clone(),
        alerts,
    })
}

/// Runs the worker, restarting it after a failure it cannot recover in place, until
/// `shutdown`. A fenced worker starts again with new clients, unless it was fenced repeatedly
/// (`kafka::fences`): then another replica holds its ordinal, and the process stays up, not
/// ready, until an operator gives each replica its own.
pub async fn supervise(config: Config, infer_metrics: InferMetrics, health: Arc<InferHealth>, shutdown: CancellationToken) {
    let mut fences = Fences::for_session(config.infer.session_timeout_ms);
    while !shutdown.is_cancelled() {
        let result = match worker(&config, infer_metrics.clone(), health.clone()) {
            Ok(worker) => worker.run(shutdown.clone()).await,
            Err(err) => Err(InferError::Internal(format!("{err:#}"))),
        };
        match result {
            Ok(()) => {}
            Err(InferError::Fenced(why)) if fences.repeated(std::time::Instant::now()) => {
                tracing::error!(error = %why, fences = fences.count(), "infer stopped: fenced again and again, so two instances share an ordinal; give each replica its own infer.instance");
                shutdown.cancelled().await;
                break;
            }
            Err(InferError::Fenced(why)) => {
                // Not ready until the new worker commits a batch.
                health.restarting_after_fence();
                tracing::warn!(error = %why, fences = fences.count(), "infer fenced; starting again with new clients");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(config.infer.retry_ms) => {}
                }
            }
            Err(err) => {
                let kind = err.failure();
                health.failed(kind, &err.detail());
                if kind == FailureKind::Systemic {
                    tracing::error!(error = %err.detail(), "infer worker cannot start or run; fix the deployment; restarting slowly");
                } else {
                    tracing::warn!(error = %err.detail(), failure = kind.as_str(), "infer worker stopped; restarting");
                }
                let pause = if kind == FailureKind::Systemic { config.infer.systemic_retry_ms } else { Duration::from_millis(2000) };
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
    }
}
