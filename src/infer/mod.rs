//! `manifold infer`: window-ready events in, per-component anomaly scores out, exactly once.

mod baseline;
mod http;
mod metrics;
pub mod model;
mod scorer;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use schema_registry_converter::async_impl::avro::AvroDecoder;
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use tokio_util::sync::CancellationToken;

pub use baseline::robust_z;
pub use http::{HttpScorer, HttpScorerError, ScoreRequest};
pub use metrics::InferMetrics;
pub use scorer::{BASELINE_VERSION, SERVICE_VERSION, ScoredWindow, Scorer};
pub use worker::{InferError, InferWorker};

use crate::codec::{RecordEncoder, schemas};
use crate::config::Config;
use crate::store::Store;
use crate::telemetry::{Metrics, ops};

/// Builds the worker from config: the model when its artifact loads, the external service when
/// `GNN_SERVICE_URL` is set.
pub fn worker(config: &Config, infer_metrics: InferMetrics) -> anyhow::Result<InferWorker> {
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
        Some(url) => Some(HttpScorer::new(url, Duration::from_millis(config.gnn.timeout_ms), config.gnn.attempts)?),
        None => None,
    };
    let settings = SrSettings::new_builder(config.schema_registry.url.trim_end_matches('/').to_owned())
        .set_timeout(Duration::from_millis(config.schema_registry.timeout_ms))
        .build()
        .map_err(|e| anyhow::anyhow!("schema registry settings: {}", e.error))?;
    Ok(InferWorker {
        store: store.clone(),
        scorer: Scorer { store, model, service, history_minutes: config.infer.baseline_history_minutes },
        decoder: AvroDecoder::new(settings),
        encoder: RecordEncoder::new(&config.schema_registry, &config.topics.scores.name, schemas::ANOMALY_SCORES)?,
        metrics: infer_metrics,
        config: config.infer.clone(),
        kafka: config.kafka.clone(),
        input_topic: config.topics.windows_ready.name.clone(),
        output_topic: config.topics.scores.name.clone(),
    })
}

/// Runs the worker (restarting it after a failure it cannot recover in place) and its
/// operations listener until `shutdown`.
pub async fn run(config: Config, metrics: Metrics, shutdown: CancellationToken) -> anyhow::Result<()> {
    let listener_token = CancellationToken::new();
    let ready: ops::Readiness = Arc::new(|| Ok(()));
    let (bound, listener) = ops::serve(config.infer.listen, metrics.clone(), ready, listener_token.clone()).await?;
    tracing::info!(listen = %bound, "infer operations listener up");
    let infer_metrics = InferMetrics::new(&metrics);
    while !shutdown.is_cancelled() {
        let result = match worker(&config, infer_metrics.clone()) {
            Ok(worker) => worker.run(shutdown.clone()).await.map_err(anyhow::Error::from),
            Err(err) => Err(err),
        };
        if let Err(err) = result {
            tracing::warn!(error = %err, "infer worker stopped; restarting");
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    }
    listener_token.cancel();
    let _ = listener.await;
    Ok(())
}
