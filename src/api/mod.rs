//! `manifold api`: the HTTP sidecar (axum). Users and keys, equipment metadata, HTTP
//! ingestion, readings, scores (history and live), health, metrics and the OpenAPI document.

mod alerts;
mod anomalies;
mod auth;
mod equipment_cache;
mod error;
mod health;
mod ingestion;
mod json;
mod keys;
mod layers;
mod limits;
mod live;
mod metadata;
mod openapi;
mod readings;
mod scores;
mod summary;
mod submitted;
mod usage;
mod users;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::Html;
use axum::routing::{get, patch, post};
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;

pub use error::{ApiError, ErrorBody};
pub use openapi::ApiDoc;
pub use users::{Register, Registered};

use crate::config::{ApiConfig, Config, DatabaseConfig};
use crate::domain::SystemMeta;
use crate::model::ConditionCatalogue;
use crate::store::{EquipmentCatalogue, EquipmentChange, Store, User};
use crate::telemetry::Metrics;

/// What building the API can fail on: clients that are configured, not connected.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Kafka(#[from] crate::kafka::KafkaError),
    #[error(transparent)]
    Codec(#[from] crate::codec::CodecError),
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub store: Store,
    pub metrics: Metrics,
    config: ApiConfig,
    database: DatabaseConfig,
    keys: auth::KeyCache,
    limits: limits::RateLimits,
    address_limits: limits::AddressLimits,
    /// Lookups of keys no cache answers, per client address.
    key_lookups: limits::AddressLimits,
    ws_sessions: live::SessionCounts,
    usage: usage::UsageTracker,
    systems: EquipmentCatalogue,
    equipment: equipment_cache::EquipmentCache,
    ingest: ingestion::HttpIngest,
    submitted: submitted::SubmittedLog,
    scores: live::ScoreFeed,
    /// Names and severities of the classes of the model versions the API knows (the scorer's
    /// model), looked up per stored score.
    conditions: Arc<ConditionCatalogue>,
    kafka_check: health::KafkaCheck,
    http: layers::HttpMetrics,
    /// Cancelled when the server stops, so WebSocket sessions end with it.
    shutdown: CancellationToken,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn new(config: &Config, store: Store, metrics: Metrics) -> Result<Self, SetupError> {
        Ok(Self(Arc::new(Inner {
            http: layers::HttpMetrics::new(&metrics),
            keys: auth::KeyCache::new(&config.api, &metrics),
            key_lookups: limits::AddressLimits::within(config.api.key_lookups_per_minute, Duration::from_secs(60), config.api.trusted_proxy_hops),
            ws_sessions: live::SessionCounts::new(config.api.ws_sessions_per_user),
            store,
            metrics,
            config: config.api.clone(),
            database: config.database.clone(),
            limits: limits::RateLimits::new(&config.api.tiers),
            address_limits: limits::AddressLimits::new(config.api.register_per_hour, config.api.trusted_proxy_hops),
            usage: usage::UsageTracker::default(),
            systems: EquipmentCatalogue::default(),
            equipment: equipment_cache::EquipmentCache::default(),
            ingest: ingestion::HttpIngest::new(config)?,
            submitted: submitted::SubmittedLog::default(),
            scores: live::ScoreFeed::default(),
            conditions: Arc::new(conditions(config)),
            kafka_check: health::KafkaCheck::default(),
            shutdown: CancellationToken::new(),
        })))
    }

    /// Creates an admin user and returns its key (shown once), for `manifold users create-admin`.
    pub async fn create_admin(&self, email: &str, name: &str) -> Result<Registered, ApiError> {
        users::create(self, &Register { email: email.into(), name: name.into() }, "admin").await
    }

    /// After this instance's own equipment write: ownership checks see it now, not when the
    /// notification arrives. A failure only delays that until the notification.
    async fn refresh_system(&self, system_id: &str) {
        if let Err(err) = self.systems.reload_system(&self.store, system_id).await {
            tracing::warn!(error = %err, "catalogue refresh after a write failed; the notification will do it");
        }
    }

    /// The caller's system, from the catalogue cache; anyone else's is "not found", never "forbidden".
    async fn owned_system(&self, user: &User, system_id: &str) -> Result<Arc<SystemMeta>, ApiError> {
        // An id that cannot exist is not looked up (nor is text the database would refuse).
        let system_id = crate::domain::SystemId::parse(system_id).map_err(|_| ApiError::NotFound("system"))?;
        match self.systems.get_or_load(&self.store, system_id.as_str()).await? {
            Some(system) if system.owner_id == user.user_id => Ok(system),
            _ => Err(ApiError::NotFound("system")),
        }
    }
}

/// The class names of the model scoring uses (`infer.model_dir`'s manifest). Without it the API
/// still serves scores, without names: it does not score, so it does not need the model to run.
fn conditions(config: &Config) -> ConditionCatalogue {
    match crate::model::read_manifest(&config.infer.model_dir) {
        Ok(manifest) => ConditionCatalogue::new([&manifest]),
        Err(err) => {
            tracing::warn!(error = %err, dir = %config.infer.model_dir.display(), "no model manifest; scores are served without class names");
            ConditionCatalogue::default()
        }
    }
}

/// The API's pool: statements end with the request timeout, not after it.
pub fn store_for(config: &Config) -> Result<Store, crate::store::StoreError> {
    Store::with_statement_timeout(&config.database, config.api.request_timeout_ms)
}

pub fn router(state: AppState) -> Router {
    let authenticated = Router::new()
        .route("/users/me", get(users::me))
        .route("/users/me/keys", get(keys::list).post(keys::create))
        .route("/users/me/keys/{key_id}", axum::routing::delete(keys::revoke))
        .route("/users/{user_id}", patch(users::patch))
        .route("/users/{user_id}/usage", get(users::usage))
        .route("/metadata/", get(metadata::list).post(metadata::create))
        .route("/metadata/{system_id}", get(metadata::get).patch(metadata::patch).delete(metadata::delete))
        .route("/ingestion/ingest", post(ingestion::ingest))
        .route("/ingestion/batches/{batch_id}", get(ingestion::batch))
        .route("/ingestion/systems/{system_id}/latest", get(ingestion::latest))
        .route("/readings/systems/{system_id}", get(readings::readings))
        .route("/anomalies/systems/{system_id}", get(anomalies::history))
        .route("/alerts/systems/{system_id}", get(alerts::of_system))
        .route("/alerts/{alert_id}/ack", post(alerts::ack))
        .route("/anomalies/systems/{system_id}/latest", get(anomalies::latest))
        .route("/anomalies/systems/{system_id}/summary", get(summary::summary))
        .route("/ws/systems/{system_id}/scores", get(live::scores))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_key));
    let document = ApiDoc::openapi().to_json().unwrap_or_default();
    let public = Router::new()
        .route("/health/", get(health::basic))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(health::metrics))
        .route("/users/register", post(users::register).route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::limit_by_address)))
        .route("/openapi.json", get(move || async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], document) }))
        .route("/docs", get(|| async { Html(openapi::DOCS_PAGE) }));
    let app = public.merge(authenticated).fallback(|| async { ApiError::NotFound("route") });
    layers::apply(app, &state).with_state(state)
}

/// Binds (a bad address fails now) and serves until `shutdown`, with the background tasks the
/// API needs (catalogue cache, live scores, usage flush). The handle ends when all have stopped.
pub async fn serve(listen: SocketAddr, state: AppState, shutdown: CancellationToken) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    let app = router(state.clone());
    let mut tasks = tokio::task::JoinSet::new();
    // Background work stops after the last request is answered, so nothing it records is lost;
    // WebSocket sessions (state.shutdown) end as soon as shutdown begins.
    let background = CancellationToken::new();
    tasks.spawn(watch_equipment(state.clone(), background.clone()));
    tasks.spawn(state.scores.clone().run(state.store.clone(), state.database.clone(), state.conditions.clone(), background.clone()));
    tasks.spawn(housekeeping(state.clone(), background.clone()));
    let recorder = state.clone();
    let recorder_stop = background.clone();
    tasks.spawn(async move { recorder.submitted.run(recorder.store.clone(), recorder_stop).await });
    let handle = tokio::spawn(async move {
        let (stop, sessions) = (shutdown.clone(), state.shutdown.clone());
        let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(async move {
            stop.cancelled().await;
            // WebSocket sessions hold connections open; ending them lets the server drain.
            sessions.cancel();
        });
        if let Err(err) = served.await {
            tracing::warn!(error = %err, "api server stopped");
        }
        background.cancel();
        tasks.join_all().await;
    });
    Ok((bound, handle))
}

/// Writes usage counters every flush interval (and once more at shutdown) and lets the rate
/// limiter forget users whose budget is full again.
async fn housekeeping(state: AppState, stop: CancellationToken) {
    let every = state.config.usage_flush_ms;
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            _ = tokio::time::sleep(every) => false,
        };
        if let Err(err) = state.usage.flush(&state.store).await {
            tracing::warn!(error = %err, "usage flush failed; counts kept for the next one");
        }
        state.limits.shrink();
        state.address_limits.shrink();
        state.key_lookups.shrink();
        if stopping {
            return;
        }
    }
}

/// Keeps the catalogue and the equipment cache current from the database's equipment
/// notifications; after a reconnect (notifications may have been missed) both start over.
async fn watch_equipment(state: AppState, stop: CancellationToken) {
    let cached = state.clone();
    let forget = move |change: EquipmentChange<'_>| match change {
        EquipmentChange::All => cached.equipment.clear(),
        EquipmentChange::System(system_id) => cached.equipment.forget(system_id),
    };
    state.systems.clone().listen_with(state.store.clone(), state.database.clone(), stop, forget).await;
}
