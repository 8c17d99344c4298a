//! Condition alerts of a system (open and recent, each with the window that opened it) and
//! acknowledging one. Other users' systems and alerts are "not found".

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::auth::AuthUser;
use super::error::{ApiError, ErrorBody};
use super::json::param;
use crate::store::AlertRow;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertsParams {
    /// At most this many alerts, 1 to 1000 (default 100): the open ones first, then the newest.
    #[param(value_type = Option<i64>)]
    pub limit: Option<String>,
}

/// The window whose streak opened an alert (its first).
#[derive(Debug, Serialize, ToSchema)]
pub struct OpeningWindow {
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertBody {
    /// Deterministic: the system, the component and the window that opened it.
    pub alert_id: String,
    pub system_id: String,
    pub component_id: String,
    /// The worst level reached: `warning` or `critical`.
    pub level: String,
    /// `open` or `cleared`.
    pub status: String,
    pub opened_by: OpeningWindow,
    /// The first window of the streak that cleared it; null while open.
    pub cleared_window_start: Option<DateTime<Utc>>,
    /// The last thing that happened to it: opened, escalated, cleared or revised.
    pub last_event: String,
    pub updated_at: DateTime<Utc>,
    pub acked_by: Option<Uuid>,
    pub acked_at: Option<DateTime<Utc>>,
}

impl From<AlertRow> for AlertBody {
    fn from(r: AlertRow) -> Self {
        AlertBody {
            alert_id: r.alert_id,
            system_id: r.system_id,
            component_id: r.component_id,
            level: r.level,
            status: r.status,
            opened_by: OpeningWindow { window_start: r.opened_window_start, window_end: r.opened_window_end },
            cleared_window_start: r.cleared_window_start,
            last_event: r.last_event,
            updated_at: r.updated_at,
            acked_by: r.acked_by,
            acked_at: r.acked_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AlertsPage {
    pub system_id: String,
    pub items: Vec<AlertBody>,
}

/// A system's alerts: the open ones first, then the most recent.
#[utoipa::path(get, path = "/alerts/systems/{system_id}", tag = "alerts",
    params(("system_id" = String, Path, example = "press-line-3"), AlertsParams),
    responses((status = 200, body = AlertsPage), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn of_system(
    State(state): State<AppState>,
    AuthUser(user, _): AuthUser,
    Path(system_id): Path<String>,
    Query(params): Query<AlertsParams>,
) -> Result<Json<AlertsPage>, ApiError> {
    state.owned_system(&user, &system_id).await?;
    let limit = param::<i64>("limit", &params.limit)?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("limit", "must be 1 to 1000"));
    }
    let items = state.store.alerts_of_system(&system_id, limit).await?.into_iter().map(AlertBody::from).collect();
    Ok(Json(AlertsPage { system_id, items }))
}

/// Acknowledges an alert (the first ack stands; it survives revisions of the same alert).
#[utoipa::path(post, path = "/alerts/{alert_id}/ack", tag = "alerts",
    params(("alert_id" = String, Path, example = "3f9c2a51b0e4d7a8c6b5e4d3c2b1a090")),
    responses((status = 200, body = AlertBody), (status = 401, body = ErrorBody), (status = 404, description = "No such alert of yours", body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn ack(State(state): State<AppState>, AuthUser(user, _): AuthUser, Path(alert_id): Path<String>) -> Result<Json<AlertBody>, ApiError> {
    // Ids are 32 hex digits; anything else cannot exist and is not looked up.
    if alert_id.len() != 32 || !alert_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::NotFound("alert"));
    }
    let row = state.store.ack_alert(&alert_id, user.user_id).await?.ok_or(ApiError::NotFound("alert"))?;
    Ok(Json(row.into()))
}
