//! Scores history and latest scores of a system: one entry per scored window, with the
//! per-component scores, classes and the features the model saw.

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::AuthUser;
use super::error::{ApiError, ErrorBody};
use super::json::{param, time_param};
use super::scores::{ScoredWindowBody, bodies};
use crate::store::ScoresQuery;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScoresParams {
    /// Windows starting at or after this time (RFC 3339); default 24 h before `to`.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub from: Option<String>,
    /// Windows starting before this time (RFC 3339); default now.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub to: Option<String>,
    /// Only this component's scores.
    pub component: Option<String>,
    /// Windows per page, 1 to 1000 (default 100), newest first.
    #[param(value_type = Option<i64>)]
    pub limit: Option<String>,
    /// The `next` value of the previous page.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub before: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScoresPage {
    pub system_id: String,
    pub items: Vec<ScoredWindowBody>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    pub next: Option<DateTime<Utc>>,
}

/// Scores history, newest window first.
#[utoipa::path(get, path = "/anomalies/systems/{system_id}", tag = "anomalies",
    params(("system_id" = String, Path, example = "press-line-3"), ScoresParams),
    responses((status = 200, body = ScoresPage), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn history(
    State(state): State<AppState>,
    AuthUser(user, _): AuthUser,
    Path(system_id): Path<String>,
    Query(params): Query<ScoresParams>,
) -> Result<Json<ScoresPage>, ApiError> {
    state.owned_system(&user, &system_id).await?;
    let to = time_param("to", &params.to)?.unwrap_or_else(Utc::now);
    let from = time_param("from", &params.from)?.unwrap_or_else(|| to - TimeDelta::hours(24));
    if from >= to {
        return Err(ApiError::invalid("from", "must be before `to`"));
    }
    let limit = param::<i64>("limit", &params.limit)?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be 1 to 1000"));
    }
    let before = time_param("before", &params.before)?.unwrap_or(to);
    let component = params.component.filter(|c| !c.trim().is_empty());
    let query = ScoresQuery { system_id: system_id.clone(), from, to, before, component, limit };
    let items = bodies(state.store.scored_windows(&query).await?, &state.conditions);
    let next = (items.len() as i64 == limit).then(|| items.last().map(|w| w.window_start)).flatten();
    Ok(Json(ScoresPage { system_id, items, next }))
}

/// The newest scored window.
#[utoipa::path(get, path = "/anomalies/systems/{system_id}/latest", tag = "anomalies",
    params(("system_id" = String, Path, example = "press-line-3")),
    responses((status = 200, body = ScoredWindowBody), (status = 401, body = ErrorBody), (status = 404, description = "No such system of yours, or no scores yet", body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn latest(State(state): State<AppState>, AuthUser(user, _): AuthUser, Path(system_id): Path<String>) -> Result<Json<ScoredWindowBody>, ApiError> {
    state.owned_system(&user, &system_id).await?;
    let now = Utc::now();
    let query = ScoresQuery {
        system_id,
        from: DateTime::from_timestamp(0, 0).unwrap_or(now),
        to: now + TimeDelta::days(1),
        before: now + TimeDelta::days(1),
        component: None,
        limit: 1,
    };
    bodies(state.store.scored_windows(&query).await?, &state.conditions).into_iter().next().map(Json).ok_or(ApiError::NotFound("scores"))
}
