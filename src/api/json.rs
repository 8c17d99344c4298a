//! A JSON body extractor whose rejections name the offending field, in the API's error shape.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::ApiError;

pub struct ValidJson<T>(pub T);

const MAX_FIELD_BYTES: usize = 256;

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ValidJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::invalid("body", "the request body could not be read")
            }
        })?;
        let mut deserializer = serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(&mut deserializer).map(ValidJson).map_err(|err| {
            // Paths hold map keys and messages quote input: both bounded, whatever was sent.
            let path = crate::domain::text::sanitize(&err.path().to_string(), MAX_FIELD_BYTES);
            let field = if path == "." { "body".to_owned() } else { path };
            ApiError::invalid(field, crate::codec::json_error_message(err.inner()))
        })
    }
}

/// A query parameter taken as text and parsed here, so a bad value names its parameter.
pub fn param<T: std::str::FromStr>(name: &str, value: &Option<String>) -> Result<Option<T>, ApiError> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| ApiError::invalid(name, format!("{} is not a valid {name}", crate::domain::text::echo(text)))),
    }
}

/// The earliest and latest times a query may name: what PostgreSQL stores, with room for the
/// arithmetic done on them (a default range, a bucket's start).
pub fn time_param(name: &str, value: &Option<String>) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    use chrono::Datelike;
    let parsed = param::<chrono::DateTime<chrono::Utc>>(name, value)?;
    match parsed {
        Some(t) if !(1900..=9999).contains(&t.year()) => Err(ApiError::invalid(name, "must be between the years 1900 and 9999")),
        other => Ok(other),
    }
}
