//! `GET /anomalies/systems/{system_id}/summary`: a period of a system for dashboards and
//! reports, per component: time per alert state and per condition class, alerts opened, and the
//! mean time to acknowledge them.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::AuthUser;
use super::error::{ApiError, ErrorBody};
use super::json::time_param;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    /// Start of the period (RFC 3339); default 24 h before `to`.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub from: Option<String>,
    /// End of the period (RFC 3339); default now. At most 366 days after `from`.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComponentSummaryBody {
    pub component_id: String,
    /// Seconds of scored windows starting in the period.
    pub scored_seconds: f64,
    /// Seconds per alert state: `warning` and `critical` while an alert of that level was open,
    /// `ok` the rest of the scored time.
    pub states: BTreeMap<String, f64>,
    /// Seconds of scored windows per condition class (for scorers with classes).
    pub conditions: BTreeMap<String, f64>,
    /// Alerts opened in the period (withdrawn ones are not counted).
    pub alerts: i64,
    /// Mean seconds from an alert's opening to its ack, over the acknowledged ones; null if none.
    pub mean_time_to_ack_seconds: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryBody {
    pub system_id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub components: Vec<ComponentSummaryBody>,
}

/// A period's summary per component.
#[utoipa::path(get, path = "/anomalies/systems/{system_id}/summary", tag = "anomalies",
    params(("system_id" = String, Path, example = "press-line-3"), SummaryParams),
    responses((status = 200, body = SummaryBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn summary(
    State(state): State<AppState>,
    AuthUser(user, _): AuthUser,
    Path(system_id): Path<String>,
    Query(params): Query<SummaryParams>,
) -> Result<Json<SummaryBody>, ApiError> {
    state.owned_system(&user, &system_id).await?;
    let to = time_param("to", &params.to)?.unwrap_or_else(Utc::now);
    let from = time_param("from", &params.from)?.unwrap_or_else(|| to - TimeDelta::hours(24));
    if from >= to {
        return Err(ApiError::invalid("from", "must be before `to`"));
    }
    if to - from > TimeDelta::days(366) {
        // Name the bound the client chose: `to` defaults to now, so a lone `from` is the culprit.
        let field = if params.to.is_none() { "from" } else { "to" };
        return Err(ApiError::invalid(field, "the period is at most 366 days"));
    }
    let components = state
        .store
        .summary(&system_id, from, to)
        .await?
        .into_iter()
        .map(|(component_id, s)| {
            let alerted: f64 = s.alert_seconds.values().sum();
            let mut states = s.alert_seconds;
            states.insert("ok".into(), (s.scored_seconds - alerted).max(0.0));
            ComponentSummaryBody {
                component_id,
                scored_seconds: s.scored_seconds,
                states,
                conditions: s.conditions,
                alerts: s.alerts_opened,
                mean_time_to_ack_seconds: s.mean_time_to_ack_seconds,
            }
        })
        .collect();
    Ok(Json(SummaryBody { system_id, from, to, components }))
}
