//! `manifold api`: the HTTP sidecar (axum). This first part serves health, metrics, users and
//! API keys, and equipment metadata with its topology.

mod auth;
mod error;
mod json;
mod metadata;
mod users;

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

pub use error::ApiError;
pub use users::{Register, Registered};

use crate::store::Store;
use crate::telemetry::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub metrics: Metrics,
    keys: auth::KeyCache,
}

impl AppState {
    pub fn new(store: Store, metrics: Metrics) -> Self {
        Self { store, metrics, keys: auth::KeyCache::default() }
    }

    /// Creates an admin user and returns its key (shown once), for `manifold users create-admin`.
    pub async fn create_admin(&self, email: &str, name: &str) -> Result<Registered, ApiError> {
        users::create(self, &Register { email: email.into(), name: name.into() }, "admin").await
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health/", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route("/health/live", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route("/health/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/users/register", axum::routing::post(users::register))
        .route("/users/me", get(users::me))
        .route("/metadata/", get(metadata::list).post(metadata::create))
        .route("/metadata/{system_id}", get(metadata::get).patch(metadata::patch).delete(metadata::delete))
        .fallback(|| async { ApiError::NotFound("route") })
        .with_state(state)
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let database = match state.store.client().await {
        Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    };
    let status = if database { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, axum::Json(serde_json::json!({ "status": if database { "ready" } else { "not_ready" }, "database": database })))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}

/// Binds (a bad address fails now) and serves until `shutdown`; returns the bound address.
pub async fn serve(listen: SocketAddr, state: AppState, shutdown: CancellationToken) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    let app = router(state);
    let handle = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await {
            tracing::warn!(error = %err, "API server stopped");
        }
    });
    Ok((bound, handle))
}
