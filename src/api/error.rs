//! The one place errors become HTTP: `{ "error": { "code", "message", "field"? } }`.
//! Internal error text never reaches a client; it is logged here, once.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::codec::CodecError;
use crate::domain::DomainError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    Invalid { field: String, message: String },
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    #[error("the resource changed since it was read (ETag mismatch)")]
    PreconditionFailed,
    #[error("If-Match with the resource's ETag is required")]
    PreconditionRequired,
    #[error("too many requests for this tier; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// A tier quota; `retry_after` when it resets by itself (daily quotas).
    #[error("{message}")]
    QuotaExceeded { message: String, retry_after: Option<u64> },
    #[error("at most {limit} live sessions per user are open at a time; close one first")]
    TooManySessions { limit: usize },
    #[error("this route needs a WebSocket upgrade request")]
    UpgradeRequired,
    #[error("the request body is larger than this API accepts")]
    PayloadTooLarge,
    /// Valid, but more than the broker takes in one record: smaller batches go through.
    #[error("the batch is larger than the broker accepts in one message; send it in smaller batches")]
    BatchTooLarge,
    #[error("temporarily unavailable, retry later")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

/// The code of an error answer, for the metrics layer (a bounded label).
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

/// The error body of every 4xx and 5xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: invalid, unauthorized, not_found, conflict, rate_limited, …
    pub code: String,
    pub message: String,
    /// The offending field or header, when one is to blame (`series[0].values[3]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::Invalid { field: field.into(), message: message.into() }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PreconditionFailed => (StatusCode::PRECONDITION_FAILED, "precondition_failed"),
            ApiError::PreconditionRequired => (StatusCode::PRECONDITION_REQUIRED, "precondition_required"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::QuotaExceeded { retry_after: Some(_), .. } => (StatusCode::TOO_MANY_REQUESTS, "quota_exceeded"),
            ApiError::QuotaExceeded { retry_after: None, .. } => (StatusCode::FORBIDDEN, "quota_exceeded"),
            ApiError::TooManySessions { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_sessions"),
            ApiError::UpgradeRequired => (StatusCode::UPGRADE_REQUIRED, "upgrade_required"),
            ApiError::PayloadTooLarge | ApiError::BatchTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after } => Some(*retry_after),
            ApiError::QuotaExceeded { retry_after, .. } => *retry_after,
            ApiError::Unavailable => Some(UNAVAILABLE_RETRY_SECONDS),
            _ => None,
        }
    }
}

/// When a client may try again after a 503: the outages behind one (a broker or database away,
/// a request that ran out of time) are seconds long, and a retry is safe with the same batch id.
pub const UNAVAILABLE_RETRY_SECONDS: u64 = 1;

/// The JSON body for a status whose response carries none (a rejection from a layer).
pub fn body_for_status(status: StatusCode) -> Json<ErrorBody> {
    let code = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::NOT_FOUND => "not_found",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = status.canonical_reason().unwrap_or("error").to_lowercase();
    Json(ErrorBody { error: ErrorDetail { code: code.into(), message, field: None } })
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        ApiError::Invalid { field: err.field, message: err.message }
    }
}

impl From<CodecError> for ApiError {
    fn from(err: CodecError) -> Self {
        match err {
            CodecError::Rejected(domain) => domain.into(),
            CodecError::Unavailable(_) => {
                tracing::warn!(error = %err, "schema registry unavailable for a request");
                ApiError::Unavailable
            }
            CodecError::Unauthorized(_) => {
                tracing::error!(error = %err, "schema registry refused manifold's credentials");
                ApiError::Unavailable
            }
            CodecError::Encode(_) => {
                tracing::error!(error = %err, "request failed to encode");
                ApiError::Internal
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict(_) => ApiError::Conflict("already exists".into()),
            // Values our own checks let through but the database refuses (a NUL in text, a
            // year it cannot store): the client's input, so a 4xx, never a 500.
            StoreError::BadValue { .. } => ApiError::invalid("request", "a value in the request is outside what can be stored or searched"),
            StoreError::Unavailable(_) | StoreError::LockTimeout(_) => {
                tracing::warn!(error = %err, "database unavailable for a request");
                ApiError::Unavailable
            }
            other => {
                tracing::error!(error = %other, "request failed in the store");
                ApiError::Internal
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let field = match &self {
            ApiError::Invalid { field, .. } => Some(field.clone()),
            _ => None,
        };
        let body = ErrorBody { error: ErrorDetail { code: code.into(), message: self.to_string(), field } };
        let mut response = (status, Json(body)).into_response();
        response.extensions_mut().insert(ErrorCode(code));
        if let Some(seconds) = self.retry_after() {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
