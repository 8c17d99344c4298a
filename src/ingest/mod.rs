//! `manifold ingest`: sensor batches from Kafka into PostgreSQL, exactly once, with dead
//! letters, the outbox relay and storage maintenance in the same process.

mod consumer;
mod idle;
mod metrics;
mod outage;
mod pending;
mod service;
mod settle;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub use metrics::IngestMetrics;
pub use service::{IngestHealth, IngestService};

use crate::codec::BatchDecoder;
use crate::config::Config;
use crate::domain::{BatchLimits, Validator};
use crate::relay::Relay;
use crate::store::maintenance::Maintenance;
use crate::store::{EquipmentCatalogue, Store, migrate};
use crate::telemetry::{Metrics, ops};
use crate::window::WindowSpec;

/// How long running work may take to finish after a shutdown signal.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(20);

/// Runs ingest, relay, maintenance and the operations listener until `shutdown`.
/// Consumers drain first; the listener stops last.
pub async fn run(config: Config, metrics: Metrics, shutdown: CancellationToken) -> anyhow::Result<()> {
    let store = Store::new(&config.database)?;
    let engine = {
        let client = store.client().await?;
        migrate::storage_engine(&client).await?.ok_or_else(|| anyhow::anyhow!("the schema is not migrated: run `manifold migrate`"))?
    };
    let cache = EquipmentCatalogue::default();
    cache.reload_all(&store).await?;
    let health = Arc::new(IngestHealth::default());
    let ingest_metrics = IngestMetrics::new(&metrics);
    let service = IngestService {
        store: store.clone(),
        engine,
        decoder: BatchDecoder::new(&config.schema_registry, BatchLimits { max_readings: config.ingest.max_batch_readings })?,
        cache: cache.clone(),
        validator: Validator {
            max_future_us: config.storage.future_skew_hours.as_micros() as i64,
            retention_us: i64::from(config.storage.retention_days) * 86_400_000_000,
            policy: config.ingest.bad_readings,
        },
        metrics: ingest_metrics,
        health: health.clone(),
        config: config.ingest.clone(),
        kafka: config.kafka.clone(),
        topic: config.topics.batches.name.clone(),
        windows: WindowSpec::from_config(&config.windows),
    };

    let workers = shutdown.child_token();
    let mut tasks = JoinSet::new();
    tasks.spawn(cache.listen(store.clone(), config.database.clone(), workers.clone()));
    let relay = Relay::new(&config, store.clone(), &metrics);
    let relay_systemic = relay.systemic_flag();
    tasks.spawn(relay.run(workers.clone()));
    tasks.spawn(idle::close_idle_windows(store.clone(), WindowSpec::from_config(&config.windows), workers.clone()));
    tasks.spawn(Maintenance::new(config.database.clone(), config.storage.clone(), metrics.clone()).run(workers.clone()));
    let ingest_token = workers.clone();
    tasks.spawn(async move {
        if let Err(err) = service.run(ingest_token.clone()).await {
            tracing::error!(error = %err, "ingest failed");
            ingest_token.cancel();
        }
    });

    let listener_token = CancellationToken::new();
    let readiness: ops::Readiness = Arc::new(move || {
        health.readiness()?;
        if relay_systemic.get() == 1 {
            return Err("relay stopped: the deployment needs attention (see the relay's error log)".into());
        }
        Ok(())
    });
    let (bound, listener) = ops::serve(config.ingest.listen, metrics, readiness, listener_token.clone()).await?;
    tracing::info!(listen = %bound, "ingest operations listener up");

    workers.cancelled().await;
    let drained = tokio::time::timeout(SHUTDOWN_DEADLINE, async { while tasks.join_next().await.is_some() {} }).await;
    if drained.is_err() {
        tracing::warn!("shutdown deadline passed; abandoning unfinished work (stored offsets keep it safe)");
        tasks.abort_all();
    }
    listener_token.cancel();
    let _ = listener.await;
    Ok(())
}

