//! HTTP ingestion for devices that cannot speak Kafka: validated like the Kafka path, then
//! produced to the input topic as Avro, so there is one path into the database. 202 only after
//! the broker acknowledged the write. Also batch status and last values per sensor.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::Utc;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::auth::AuthUser;
use super::error::{ApiError, ErrorBody};
use super::json::ValidJson;
use crate::codec::RecordEncoder;
use crate::config::Config;
use crate::domain::{BadReadingsPolicy, BatchLimits, RawBatch, SensorBatch, Validator, Verdict};
use crate::store::{BatchState, BatchStatus, LatestReading};

/// What the API needs to hand a batch to Kafka.
pub struct HttpIngest {
    producer: FutureProducer,
    encoder: RecordEncoder,
    topic: String,
    validator: Validator,
    limits: BatchLimits,
    send_timeout: Duration,
}

impl HttpIngest {
    pub fn new(config: &Config) -> Result<Self, super::SetupError> {
        let send_timeout = config.api.request_timeout_ms / 2;
        Ok(Self {
            producer: crate::kafka::request_producer(&config.kafka, send_timeout.as_millis() as u64)?,
            encoder: RecordEncoder::for_batches(&config.schema_registry, &config.topics.batches.name)?,
            topic: config.topics.batches.name.clone(),
            validator: Validator {
                max_future_us: config.storage.future_skew_hours.as_micros() as i64,
                retention_us: i64::from(config.storage.retention_days) * 86_400_000_000,
                // A client is told now; nothing of a refused batch is sent.
                policy: BadReadingsPolicy::RejectBatch,
            },
            limits: BatchLimits { max_readings: config.ingest.max_batch_readings },
            send_timeout,
        })
    }

    pub fn producer(&self) -> &FutureProducer {
        &self.producer
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Accepted {
    /// The client's batch id, or the one generated for it.
    pub batch_id: String,
    pub system_id: String,
    pub readings: usize,
    /// Always `pending`: follow `status_url` to see it stored.
    pub status: String,
    pub status_url: String,
}

/// A JSON sensor batch (the Kafka wire format's fields).
#[utoipa::path(post, path = "/ingestion/ingest", tag = "ingestion", request_body = RawBatch,
    responses(
        (status = 202, description = "Acknowledged by the broker; stored shortly", body = Accepted),
        (status = 401, body = ErrorBody), (status = 404, description = "No such system of yours", body = ErrorBody),
        (status = 413, description = "The body exceeds `api.body_limit_bytes`, or the batch exceeds what the broker takes in one message", body = ErrorBody), (status = 422, description = "Invalid; `field` names the culprit", body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn ingest(State(state): State<AppState>, AuthUser(user, _): AuthUser, ValidJson(mut raw): ValidJson<RawBatch>) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let http = &state.ingest;
    let batch_id = raw.batch_id.get_or_insert_with(|| uuid::Uuid::now_v7().to_string()).clone();
    let batch = SensorBatch::parse(raw.clone(), &http.limits)?;
    let system = state.owned_system(&user, batch.system_id.as_str()).await?;
    let now_us = Utc::now().timestamp_micros();
    let readings = match http.validator.check(&batch, &system, now_us) {
        Verdict::Accept(accepted) => accepted.rows.len(),
        Verdict::Reject(error) | Verdict::Partial { error, .. } => return Err(error.into()),
    };
    let quota = state.config.tiers.get(&user.tier).readings_per_day;
    if state.usage.readings_today(&state.store, user.user_id).await? + readings as i64 > quota {
        let midnight = (Utc::now().date_naive() + chrono::Days::new(1)).and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
        return Err(ApiError::QuotaExceeded {
            message: format!("the {} tier accepts {quota} readings per day", user.tier),
            retry_after: Some((midnight - Utc::now()).num_seconds().max(1) as u64),
        });
    }
    let payload = http.encoder.encode_batch(&raw).await?;
    let record = FutureRecord::to(&http.topic).key(batch.system_id.as_str()).payload(&payload);
    // A 503 may still mean "written" (the ack was lost): a client retries with the same batch
    // id, which ingest stores once.
    match tokio::time::timeout(http.send_timeout, http.producer.send(record, http.send_timeout)).await {
        Ok(Ok(_)) => {}
        Ok(Err((err, _))) => return Err(produce_failed(&err)),
        Err(_) => {
            tracing::warn!(timeout_ms = http.send_timeout.as_millis() as u64, "broker acknowledgement timed out for an HTTP batch");
            return Err(ApiError::Unavailable);
        }
    }
    state.usage.record_readings(user.user_id, readings as i64);
    state.submitted.record(batch.system_id.as_str(), &batch_id, readings as i32);
    let status_url = format!("/ingestion/batches/{}", path_segment(&batch_id));
    Ok((StatusCode::ACCEPTED, Json(Accepted { batch_id, system_id: batch.system_id.to_string(), readings, status: "pending".into(), status_url })))
}

/// A record the broker refuses for its content (too large) fails again on every retry: the
/// client is told so (413). Anything else may pass later (503, retry with the same batch id).
fn produce_failed(err: &rdkafka::error::KafkaError) -> ApiError {
    match crate::kafka::classify(err) {
        crate::failure::FailureKind::DataPermanent => {
            tracing::info!(error = %err, "broker refused an http batch for its content");
            ApiError::BatchTooLarge
        }
        crate::failure::FailureKind::Systemic => {
            tracing::error!(error = %err, "broker refuses http batches; check the producer's topic, acls and configuration");
            ApiError::Unavailable
        }
        crate::failure::FailureKind::Transient => {
            tracing::warn!(error = %err, "broker did not acknowledge an http batch");
            ApiError::Unavailable
        }
    }
}

/// What became of a batch: pending, stored, skipped as a duplicate, or dead-lettered (why).
#[utoipa::path(get, path = "/ingestion/batches/{batch_id}", tag = "ingestion",
    params(("batch_id" = String, Path)),
    responses((status = 200, body = BatchStatus), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn batch(State(state): State<AppState>, AuthUser(user, _): AuthUser, Path(batch_id): Path<String>) -> Result<Json<BatchStatus>, ApiError> {
    // Memory first: a batch leaves it only once written, so checking the database second
    // cannot miss one in between.
    for (system_id, readings) in state.submitted.unwritten(&batch_id) {
        if state.owned_system(&user, &system_id).await.is_ok() {
            return Ok(Json(BatchStatus {
                batch_id,
                system_id,
                status: BatchState::Pending,
                readings: Some(readings),
                submitted_at: None,
                stored_at: None,
                duplicates: 0,
                dead_letters: Vec::new(),
            }));
        }
    }
    state.store.batch_status(user.user_id, &batch_id).await?.map(Json).ok_or(ApiError::NotFound("batch"))
}

/// Batch ids may hold characters with a meaning in URLs (`/`, `?`, `#`, `%`).
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Latest {
    pub system_id: String,
    pub readings: Vec<LatestReading>,
}

/// The last value of each sensor (from the last-value table ingest keeps).
#[utoipa::path(get, path = "/ingestion/systems/{system_id}/latest", tag = "ingestion",
    params(("system_id" = String, Path, example = "press-line-3")),
    responses((status = 200, body = Latest), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn latest(State(state): State<AppState>, AuthUser(user, _): AuthUser, Path(system_id): Path<String>) -> Result<Json<Latest>, ApiError> {
    state.owned_system(&user, &system_id).await?;
    let readings = state.store.latest_readings(&system_id).await?;
    Ok(Json(Latest { system_id, readings }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_status_url_escapes_what_a_path_cannot_hold() {
        assert_eq!(super::path_segment("gw-7_001.a~b"), "gw-7_001.a~b");
        assert_eq!(super::path_segment("line/3?x#y%"), "line%2F3%3Fx%23y%25");
    }
}
