//! `manifold ingest`: sensor batches from Kafka into PostgreSQL, exactly once, with dead
//! letters; the process (see `startup`) runs the outbox relay and storage maintenance beside it.

mod consumer;
mod idle;
mod metrics;
mod outage;
mod pending;
mod service;
mod settle;
mod writer;

use std::future::Future;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub use metrics::IngestMetrics;
pub use service::{IngestHealth, IngestService};

use crate::codec::BatchDecoder;
use crate::config::{Config, DatabaseConfig};
use crate::domain::{BatchLimits, Validator};
use crate::kafka::KafkaError;
use crate::store::{EquipmentCatalogue, Store, migrate};
use crate::telemetry::Metrics;
use crate::window::WindowSpec;

/// Ingest built and ready to run: the catalogue loaded, the decoder configured. Its tasks are
/// the consumer, the catalogue's listener and the idle-window closer.
pub struct Ingest {
    service: IngestService,
    database: DatabaseConfig,
}

impl Ingest {
    pub async fn build(config: &Config, metrics: &Metrics) -> anyhow::Result<Self> {
        let store = Store::new(&config.database)?;
        let engine = {
            let client = store.client().await?;
            migrate::storage_engine(&client).await?.ok_or_else(|| anyhow::anyhow!("the schema is not migrated: run `manifold migrate`"))?
        };
        let cache = EquipmentCatalogue::default();
        cache.reload_all(&store).await?;
        let service = IngestService {
            store,
            engine,
            decoder: BatchDecoder::new(&config.schema_registry, BatchLimits { max_readings: config.ingest.max_batch_readings })?,
            cache,
            validator: Validator {
                max_future_us: config.storage.future_skew_hours.as_micros() as i64,
                retention_us: i64::from(config.storage.retention_days) * 86_400_000_000,
                policy: config.ingest.bad_readings,
            },
            metrics: IngestMetrics::new(metrics),
            health: Arc::new(IngestHealth::default()),
            config: config.ingest.clone(),
            kafka: config.kafka.clone(),
            topic: config.topics.batches.name.clone(),
            windows: WindowSpec::from_config(&config.windows),
        };
        Ok(Self { service, database: config.database.clone() })
    }

    /// Whether ingest can make progress, for the process's readiness.
    pub fn health(&self) -> Arc<IngestHealth> {
        self.service.health.clone()
    }

    /// The pool ingest writes with, for the work that runs beside it.
    pub fn store(&self) -> Store {
        self.service.store.clone()
    }

    /// Keeps the equipment catalogue current from the database's notifications until `shutdown`.
    pub fn catalogue(&self, shutdown: CancellationToken) -> impl Future<Output = ()> + Send + 'static {
        self.service.cache.clone().listen(self.service.store.clone(), self.database.clone(), shutdown)
    }

    /// Closes the windows that stopped receiving data, until `shutdown`.
    pub fn idle_windows(&self, shutdown: CancellationToken) -> impl Future<Output = ()> + Send + 'static {
        idle::close_idle_windows(self.service.store.clone(), self.service.windows, shutdown)
    }

    /// Consumes until `shutdown`, then finishes the chunk in hand and leaves the group.
    pub async fn consume(self, shutdown: CancellationToken) -> Result<(), KafkaError> {
        self.service.run(shutdown).await
    }
}
