//! `/metadata/`: equipment with its topology, per owner. Another user's system answers 404.
//! PATCH needs `If-Match` with the ETag (the equipment version) the client read.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::AuthUser;
use super::error::{ApiError, ErrorBody};
use super::json::{ValidJson, param};
use crate::domain::{SystemId, Topology};
use crate::store::{Equipment, StoreError, Updated};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEquipment {
    pub system_id: String,
    pub name: String,
    pub topology: Topology,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchEquipment {
    pub name: Option<String>,
    pub topology: Option<Topology>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only systems whose name contains this text (case-insensitive).
    pub name: Option<String>,
    /// The `next` value of the previous page.
    pub after: Option<String>,
    /// Systems per page, 1 to 500 (default 50).
    #[param(value_type = Option<i64>)]
    pub limit: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Page {
    pub items: Vec<Equipment>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

fn check_name(name: &str) -> Result<&str, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 || name.contains(char::is_control) {
        return Err(ApiError::invalid("name", "must be 1 to 200 characters, without control characters"));
    }
    Ok(name)
}

fn with_etag(status: StatusCode, equipment: Equipment) -> Response {
    let etag = HeaderValue::from_str(&format!("\"{}\"", equipment.version)).unwrap_or(HeaderValue::from_static("\"0\""));
    (status, [(header::ETAG, etag)], Json(equipment)).into_response()
}

/// Creates a system with its topology; the answer's `ETag` is needed to change it.
#[utoipa::path(post, path = "/metadata/", tag = "metadata", request_body = CreateEquipment,
    responses((status = 201, body = Equipment, headers(("etag" = String))), (status = 401, body = ErrorBody),
        (status = 403, description = "The tier's system quota is used up", body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn create(State(state): State<AppState>, AuthUser(user, _): AuthUser, ValidJson(body): ValidJson<CreateEquipment>) -> Result<Response, ApiError> {
    let system_id = SystemId::parse(&body.system_id)?;
    let name = check_name(&body.name)?;
    let topology = body.topology.validate()?;
    let max_systems = state.config.tiers.get(&user.tier).max_systems;
    if state.store.count_systems(user.user_id).await? >= max_systems {
        return Err(ApiError::QuotaExceeded { message: format!("the {} tier allows {max_systems} systems", user.tier), retry_after: None });
    }
    state.store.create_equipment(user.user_id, &system_id, name, &topology).await.map_err(|e| match e {
        StoreError::Conflict(_) => ApiError::Conflict(format!("system {system_id} exists")),
        other => other.into(),
    })?;
    state.refresh_system(system_id.as_str()).await;
    let created = state.store.get_equipment(user.user_id, system_id.as_str()).await?.ok_or(ApiError::Internal)?;
    Ok(with_etag(StatusCode::CREATED, created))
}

#[utoipa::path(get, path = "/metadata/{system_id}", tag = "metadata", params(("system_id" = String, Path, example = "press-line-3")),
    responses((status = 200, body = Equipment, headers(("etag" = String))), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn get(State(state): State<AppState>, AuthUser(user, _): AuthUser, Path(system_id): Path<String>) -> Result<Response, ApiError> {
    let cached = match state.equipment.get(&system_id) {
        Some(hit) => hit,
        None => {
            let generation = state.equipment.generation();
            let found = state.store.get_equipment(user.user_id, &system_id).await?.ok_or(ApiError::NotFound("system"))?;
            match state.equipment.put(user.user_id, &found, generation) {
                Some(cached) => cached,
                None => return Ok(with_etag(StatusCode::OK, found)),
            }
        }
    };
    if cached.owner_id != user.user_id {
        return Err(ApiError::NotFound("system"));
    }
    let etag = HeaderValue::from_str(&format!("\"{}\"", cached.version)).unwrap_or(HeaderValue::from_static("\"0\""));
    Ok(([(header::ETAG, etag), (header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], cached.json.clone()).into_response())
}

/// Your systems, ordered by id.
#[utoipa::path(get, path = "/metadata/", tag = "metadata", params(ListQuery),
    responses((status = 200, body = Page), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn list(State(state): State<AppState>, AuthUser(user, _): AuthUser, Query(query): Query<ListQuery>) -> Result<Json<Page>, ApiError> {
    let limit = param::<i64>("limit", &query.limit)?.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be 1 to 500"));
    }
    let items = state.store.list_equipment(user.user_id, query.name.as_deref(), query.after.as_deref().unwrap_or(""), limit).await?;
    let next = (items.len() as i64 == limit).then(|| items.last().map(|e| e.system_id.clone())).flatten();
    Ok(Json(Page { items, next }))
}

fn expected_version(headers: &HeaderMap) -> Result<i64, ApiError> {
    let value = headers.get(header::IF_MATCH).ok_or(ApiError::PreconditionRequired)?;
    let text = value.to_str().map_err(|_| ApiError::invalid("If-Match", "must be an ETag"))?;
    text.trim().trim_start_matches("W/").trim_matches('"').parse().map_err(|_| ApiError::invalid("If-Match", "must be an ETag from this API"))
}

/// Changes the name or topology; needs `If-Match` with the ETag you read.
#[utoipa::path(patch, path = "/metadata/{system_id}", tag = "metadata", request_body = PatchEquipment,
    params(("system_id" = String, Path, example = "press-line-3"), ("If-Match" = String, Header, description = "The ETag of the version you read")),
    responses((status = 200, body = Equipment, headers(("etag" = String))), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 412, body = ErrorBody), (status = 422, body = ErrorBody), (status = 428, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    AuthUser(user, _): AuthUser,
    Path(system_id): Path<String>,
    headers: HeaderMap,
    ValidJson(body): ValidJson<PatchEquipment>,
) -> Result<Response, ApiError> {
    let current = state.store.get_equipment(user.user_id, &system_id).await?.ok_or(ApiError::NotFound("system"))?;
    let expected = expected_version(&headers)?;
    let name = match &body.name {
        Some(name) => check_name(name)?.to_owned(),
        None => current.name.clone(),
    };
    let topology = match body.topology {
        Some(t) => t.validate()?,
        None => serde_json::from_value::<Topology>(current.topology.clone()).map_err(|_| ApiError::Internal)?,
    };
    match state.store.update_equipment(user.user_id, &system_id, &name, &topology, Some(expected)).await? {
        Updated::Done(_) => {}
        Updated::NotFound => return Err(ApiError::NotFound("system")),
        Updated::VersionMismatch => return Err(ApiError::PreconditionFailed),
    }
    state.equipment.forget(&system_id);
    state.refresh_system(&system_id).await;
    let updated = state.store.get_equipment(user.user_id, &system_id).await?.ok_or(ApiError::NotFound("system"))?;
    Ok(with_etag(StatusCode::OK, updated))
}

#[utoipa::path(delete, path = "/metadata/{system_id}", tag = "metadata", params(("system_id" = String, Path, example = "press-line-3")),
    responses((status = 204, description = "Deleted with its series, latest values, scores, windows, batch records and dead letters"), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn delete(State(state): State<AppState>, AuthUser(user, _): AuthUser, Path(system_id): Path<String>) -> Result<StatusCode, ApiError> {
    let deleted = state.store.delete_equipment(user.user_id, &system_id).await?;
    state.equipment.forget(&system_id);
    state.refresh_system(&system_id).await;
    if deleted { Ok(StatusCode::NO_CONTENT) } else { Err(ApiError::NotFound("system")) }
}
