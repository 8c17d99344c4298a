//! The operations listener of a worker process: liveness, readiness and Prometheus metrics.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use super::Metrics;

/// Answers whether the process can do its work now, and if not, why.
pub type Readiness = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
struct Ops {
    metrics: Metrics,
    ready: Readiness,
}

/// Binds now (so a bad address fails at start-up) and serves until `shutdown`.
pub async fn serve(
    listen: SocketAddr,
    metrics: Metrics,
    ready: Readiness,
    shutdown: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/health/live", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route("/health/ready", get(ready_handler))
        .route("/metrics", get(metrics_handler))
        .with_state(Ops { metrics, ready });
    let handle = tokio::spawn(async move {
        let served = axum::serve(listener, app).with_graceful_shutdown(async move { shutdown.cancelled().await }).await;
        if let Err(err) = served {
            tracing::warn!(error = %err, "operations listener stopped");
        }
    });
    Ok((bound, handle))
}

async fn ready_handler(State(ops): State<Ops>) -> impl IntoResponse {
    match (ops.ready)() {
        Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({"status": "ready"}))),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"status": "not_ready", "reason": reason}))),
    }
}

async fn metrics_handler(State(ops): State<Ops>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], ops.metrics.render())
}
