//! Users: registration (a key shown once), the caller's profile and usage, and the admin's
//! changes to tiers, roles and access.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::auth::{AuthUser, generate_key};
use super::error::{ApiError, ErrorBody};
use super::json::{ValidJson, param};
use crate::store::{StoreError, UsageDay, User, UserChange};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Register {
    pub email: String,
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Registered {
    pub user: User,
    /// Shown once; only its hash is stored.
    pub api_key: String,
}

fn check(register: &Register) -> Result<(), ApiError> {
    let email = register.email.trim();
    let at = email.find('@');
    if email.len() > 254 || at.is_none_or(|i| i == 0 || i == email.len() - 1) || email.contains(char::is_whitespace) {
        return Err(ApiError::invalid("email", "must be an email address"));
    }
    if register.name.trim().is_empty() || register.name.len() > 100 || register.name.contains(char::is_control) {
        return Err(ApiError::invalid("name", "must be 1 to 100 characters, without control characters"));
    }
    Ok(())
}

/// Creates a user on the free tier with a first key, or an admin (from the command line).
pub async fn create(state: &AppState, register: &Register, role: &str) -> Result<Registered, ApiError> {
    check(register)?;
    let key = generate_key();
    let user = state
        .store
        .create_user(register.email.trim(), register.name.trim(), role, &key.prefix, &key.hash)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => ApiError::Conflict("a user with this email exists".into()),
            other => other.into(),
        })?;
    state.keys.created(&key.hash);
    Ok(Registered { user, api_key: key.key })
}

/// Registers a user on the free tier; the answer holds their API key, shown this once.
#[utoipa::path(post, path = "/users/register", tag = "users", request_body = Register,
    responses((status = 201, body = Registered), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, description = "Too many registrations from this address (`api.register_per_hour`)", body = ErrorBody)))]
pub async fn register(State(state): State<AppState>, ValidJson(body): ValidJson<Register>) -> Result<(StatusCode, Json<Registered>), ApiError> {
    Ok((StatusCode::CREATED, Json(create(&state, &body, "user").await?)))
}

#[utoipa::path(get, path = "/users/me", tag = "users",
    responses((status = 200, body = User), (status = 401, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn me(AuthUser(user, _): AuthUser) -> Json<User> {
    Json(user)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUser {
    /// free, pro or enterprise.
    pub tier: Option<String>,
    /// user or admin.
    pub role: Option<String>,
    /// A disabled user's keys stop working.
    pub disabled: Option<bool>,
}

/// An admin changes a user's tier, role or access.
#[utoipa::path(patch, path = "/users/{user_id}", tag = "users", request_body = PatchUser,
    params(("user_id" = Uuid, Path)),
    responses((status = 200, body = User), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    AuthUser(caller, _): AuthUser,
    Path(user_id): Path<String>,
    ValidJson(body): ValidJson<PatchUser>,
) -> Result<Json<User>, ApiError> {
    if caller.role != "admin" {
        return Err(ApiError::Forbidden("only an admin changes users"));
    }
    let user_id: Uuid = user_id.parse().map_err(|_| ApiError::NotFound("user"))?;
    if body.tier.as_deref().is_some_and(|t| !["free", "pro", "enterprise"].contains(&t)) {
        return Err(ApiError::invalid("tier", "must be free, pro or enterprise"));
    }
    if body.role.as_deref().is_some_and(|r| !["user", "admin"].contains(&r)) {
        return Err(ApiError::invalid("role", "must be user or admin"));
    }
    if user_id == caller.user_id && (body.disabled == Some(true) || body.role.as_deref() == Some("user")) {
        // The last admin could lock everyone out; another admin has to do it.
        return Err(ApiError::Conflict("an admin cannot disable or demote themselves".into()));
    }
    let change = UserChange { tier: body.tier.as_deref(), role: body.role.as_deref(), disabled: body.disabled };
    let updated = state.store.update_user(user_id, &change).await?.ok_or(ApiError::NotFound("user"))?;
    state.keys.forget_user(user_id);
    Ok(Json(updated))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// First day (YYYY-MM-DD); default 30 days before `to`.
    #[param(value_type = Option<NaiveDate>)]
    pub from: Option<String>,
    /// Last day (YYYY-MM-DD); default today (UTC).
    #[param(value_type = Option<NaiveDate>)]
    pub to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Usage {
    pub user_id: Uuid,
    pub tier: String,
    /// Systems the user owns now.
    pub systems: i64,
    pub max_systems: i64,
    pub readings_per_day: i64,
    /// Requests and readings ingested per day (UTC); recent counts arrive within a flush interval.
    pub days: Vec<UsageDay>,
}

/// Your usage per day. Another user's usage answers 404.
#[utoipa::path(get, path = "/users/{user_id}/usage", tag = "users",
    params(("user_id" = Uuid, Path), UsageParams),
    responses((status = 200, body = Usage), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn usage(
    State(state): State<AppState>,
    AuthUser(caller, _): AuthUser,
    Path(user_id): Path<String>,
    Query(params): Query<UsageParams>,
) -> Result<Json<Usage>, ApiError> {
    let user_id: Uuid = user_id.parse().map_err(|_| ApiError::NotFound("user"))?;
    if user_id != caller.user_id {
        return Err(ApiError::NotFound("user"));
    }
    let to = param::<NaiveDate>("to", &params.to)?.unwrap_or_else(|| Utc::now().date_naive());
    let from = match param::<NaiveDate>("from", &params.from)? {
        Some(from) => from,
        None => to.checked_sub_signed(TimeDelta::days(30)).ok_or_else(|| ApiError::invalid("to", "is not a usable date"))?,
    };
    if from > to || (to - from).num_days() > 366 {
        return Err(ApiError::invalid("from", "must be on or before `to`, at most a year apart"));
    }
    // Counts still in memory would be missing from the answer: write them first, in a task of
    // its own, so a client that goes away mid-flush cannot drop them.
    let flushing = state.clone();
    let flushed = tokio::spawn(async move { flushing.usage.flush(&flushing.store).await }).await;
    if let Ok(Err(err)) = flushed {
        tracing::warn!(error = %err, "usage flush before a read failed");
    }
    let days = state.store.usage(user_id, from, to).await?;
    let systems = state.store.count_systems(user_id).await?;
    let limits = state.config.tiers.get(&caller.tier);
    Ok(Json(Usage { user_id, tier: caller.tier.clone(), systems, max_systems: limits.max_systems, readings_per_day: limits.readings_per_day, days }))
}
