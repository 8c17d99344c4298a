//! Health for load balancers and orchestrators, and the Prometheus scrape.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

/// Ingest is called stalled when a batch the API submitted this long ago is still not stored.
const STALL_AFTER: Duration = Duration::from_secs(120);
const STALL_WINDOW: Duration = Duration::from_secs(3600);
/// Readiness probes come often; the broker is asked at most this often.
const KAFKA_CHECK_EVERY: Duration = Duration::from_secs(5);
/// Probes have short deadlines of their own; an unanswered broker is "not reachable" by then.
const KAFKA_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// ready or not_ready.
    pub status: String,
    pub database: bool,
    pub kafka: bool,
    /// False when batches submitted over HTTP minutes ago are still not stored.
    pub ingest: bool,
}

/// The last broker check, shared by concurrent probes.
#[derive(Default)]
pub struct KafkaCheck {
    last: Mutex<Option<(Instant, bool)>>,
}

fn ok() -> Json<Status> {
    Json(Status { status: "ok".into() })
}

#[utoipa::path(get, path = "/health/", tag = "health", responses((status = 200, body = Status)))]
pub async fn basic() -> Json<Status> {
    ok()
}

/// The process is alive.
#[utoipa::path(get, path = "/health/live", tag = "health", responses((status = 200, body = Status)))]
pub async fn live() -> Json<Status> {
    ok()
}

/// Database and Kafka reachable and ingest not stalled; 503 says which is not.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let database = match state.store.client().await {
        Ok(client) => client.simple_query("SELECT 1").await.is_ok(),
        Err(_) => false,
    };
    let ingest = database && state.store.stalled_batches(STALL_AFTER, STALL_WINDOW).await.is_ok_and(|n| n == 0);
    let kafka = kafka_reachable(&state).await;
    let ready = database && kafka && ingest;
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(Readiness { status: if ready { "ready" } else { "not_ready" }.into(), database, kafka, ingest }))
}

async fn kafka_reachable(state: &AppState) -> bool {
    let cached = *state.kafka_check.last.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((at, reachable)) = cached
        && at.elapsed() < KAFKA_CHECK_EVERY
    {
        return reachable;
    }
    let producer = state.ingest.producer().clone();
    let reachable = tokio::task::spawn_blocking(move || {
        use rdkafka::producer::Producer;
        producer.client().fetch_metadata(None, KAFKA_CHECK_TIMEOUT).is_ok()
    })
    .await
    .unwrap_or(false);
    *state.kafka_check.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), reachable));
    reachable
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
