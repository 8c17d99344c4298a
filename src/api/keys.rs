//! `/users/me/keys`: another key (shown once), the list (prefixes only) and revocation.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::auth::{AuthUser, generate_key};
use super::error::{ApiError, ErrorBody};
use super::json::ValidJson;
use crate::store::KeyInfo;

const MAX_ACTIVE_KEYS: usize = 20;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    /// A label to tell keys apart (`gateway-3`).
    pub name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: KeyInfo,
    /// Shown once; only its hash is stored.
    pub api_key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub items: Vec<KeyInfo>,
}

#[utoipa::path(post, path = "/users/me/keys", tag = "users", request_body = NewKeyRequest,
    responses((status = 201, body = CreatedKey), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn create(State(state): State<AppState>, AuthUser(user, _): AuthUser, ValidJson(body): ValidJson<NewKeyRequest>) -> Result<(StatusCode, Json<CreatedKey>), ApiError> {
    let name = body.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if name.is_some_and(|n| n.len() > 100 || n.contains(char::is_control)) {
        return Err(ApiError::invalid("name", "must be at most 100 characters, without control characters"));
    }
    let active = state.store.list_keys(user.user_id).await?.iter().filter(|k| k.revoked_at.is_none()).count();
    if active >= MAX_ACTIVE_KEYS {
        return Err(ApiError::QuotaExceeded { message: format!("at most {MAX_ACTIVE_KEYS} active keys; revoke one first"), retry_after: None });
    }
    let new = generate_key();
    let key = state.store.create_key(user.user_id, name, &new.prefix, &new.hash).await?;
    state.keys.created(&new.hash);
    Ok((StatusCode::CREATED, Json(CreatedKey { key, api_key: new.key })))
}

#[utoipa::path(get, path = "/users/me/keys", tag = "users",
    responses((status = 200, body = KeyList), (status = 401, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list(State(state): State<AppState>, AuthUser(user, _): AuthUser) -> Result<Json<KeyList>, ApiError> {
    Ok(Json(KeyList { items: state.store.list_keys(user.user_id).await? }))
}

/// Revokes one of your keys (not the one making the request); it stops working at once on this
/// instance, within 30 s on others.
#[utoipa::path(delete, path = "/users/me/keys/{key_id}", tag = "users",
    params(("key_id" = Uuid, Path)),
    responses((status = 204, description = "Revoked"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn revoke(State(state): State<AppState>, AuthUser(user, current): AuthUser, Path(key_id): Path<String>) -> Result<StatusCode, ApiError> {
    let key_id: Uuid = key_id.parse().map_err(|_| ApiError::NotFound("key"))?;
    if key_id == current {
        return Err(ApiError::Conflict("this request's own key; revoke it with another key".into()));
    }
    if !state.store.revoke_key(user.user_id, key_id).await? {
        return Err(ApiError::NotFound("key"));
    }
    state.keys.forget_key(key_id);
    Ok(StatusCode::NO_CONTENT)
}
