//! `GET /readings/systems/{system_id}`: raw readings or time buckets (from the 1-minute
//! aggregate when the bucket is whole minutes), paginated by cursor, as JSON or CSV.

use std::fmt::Write;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::AuthUser;
use super::error::{ApiError, ErrorBody};
use super::json::{param, time_param};
use crate::store::{BucketReading, RawReading, ReadingsQuery};

const MAX_LIMIT: i64 = 10_000;
/// A bucketed query groups the whole range before paging; this bounds its work.
const MAX_BUCKETS: i64 = 1_000_000;
/// Buckets are aligned to this origin (as `date_bin` in the SQL is).
const BUCKET_ORIGIN_SECONDS: i64 = 946_684_800;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadingsParams {
    /// Start (inclusive, RFC 3339); default one hour before `to`.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub from: Option<String>,
    /// End (exclusive, RFC 3339); default now.
    #[param(value_type = Option<DateTime<Utc>>)]
    pub to: Option<String>,
    /// Sensor ids, comma-separated; default all.
    pub sensor: Option<String>,
    /// Bucket length: `30s`, `1m`, `15m`, `1h`, `1d` or seconds; absent for raw readings.
    pub bucket: Option<String>,
    /// Rows per page, 1 to 10000 (default 1000).
    #[param(value_type = Option<i64>)]
    pub limit: Option<String>,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReadingsPage {
    pub system_id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Bucket length in seconds; absent for raw readings.
    pub bucket_seconds: Option<i64>,
    /// Raw readings (when no bucket was asked for).
    pub readings: Vec<RawReading>,
    /// Aggregates per bucket and sensor (when a bucket was asked for).
    pub buckets: Vec<BucketReading>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next: Option<String>,
}

fn bucket_seconds(text: &str) -> Result<i64, ApiError> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => 0,
    };
    match number.parse::<i64>().ok().and_then(|n| n.checked_mul(scale)) {
        Some(seconds) if seconds > 0 && seconds <= 31 * 86_400 => Ok(seconds),
        _ => Err(ApiError::invalid("bucket", "must be a length such as 30s, 1m, 15m, 1h or 1d (at most 31 days)")),
    }
}

/// The start of the bucket holding `time` (2000-01-01 UTC origin, as in the SQL).
fn bucket_start(time: DateTime<Utc>, seconds: i64) -> DateTime<Utc> {
    let offset = (time.timestamp() - BUCKET_ORIGIN_SECONDS).div_euclid(seconds) * seconds;
    DateTime::from_timestamp(BUCKET_ORIGIN_SECONDS + offset, 0).unwrap_or(time)
}

/// Cursors are `<microseconds>:<sensor id>` of the last row served.
fn parse_cursor(text: &str) -> Result<(DateTime<Utc>, String), ApiError> {
    let bad = || ApiError::invalid("after", "must be the `next` value of a previous page");
    let (micros, sensor) = text.split_once(':').ok_or_else(bad)?;
    use chrono::Datelike;
    let time = micros.parse::<i64>().ok().and_then(DateTime::from_timestamp_micros).filter(|t| (1900..=9999).contains(&t.year())).ok_or_else(bad)?;
    Ok((time, sensor.to_owned()))
}

fn cursor(time: DateTime<Utc>, sensor: &str) -> String {
    format!("{}:{sensor}", time.timestamp_micros())
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/csv"))
}

fn csv(page: &ReadingsPage) -> Response {
    let mut out = String::new();
    if page.bucket_seconds.is_some() {
        out.push_str("sensor_id,time,count,mean,min,max\n");
        for b in &page.buckets {
            let _ = writeln!(out, "{},{},{},{},{},{}", b.sensor_id, b.time.to_rfc3339(), b.count, b.mean, b.min, b.max);
        }
    } else {
        out.push_str("sensor_id,time,value\n");
        for r in &page.readings {
            let _ = writeln!(out, "{},{},{}", r.sensor_id, r.time.to_rfc3339(), r.value);
        }
    }
    let mut response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response();
    if let Some(next) = page.next.as_deref().and_then(|n| HeaderValue::from_str(n).ok()) {
        response.headers_mut().insert("x-next-cursor", next);
    }
    response
}

/// Readings of one of your systems. `Accept: text/csv` gives CSV (the next cursor in `X-Next-Cursor`).
/// One request reads at most `api.max_rows_scanned` raw readings: a raw page reads up to
/// `limit` rows per sensor asked for (a larger product is a 422 naming `limit`); buckets that are
/// not whole minutes are computed from raw readings (a range holding more is a 422 naming `from`).
#[utoipa::path(get, path = "/readings/systems/{system_id}", tag = "readings",
    params(("system_id" = String, Path, example = "press-line-3"), ReadingsParams),
    responses(
        (status = 200, description = "JSON, or CSV when asked with `Accept: text/csv` (next cursor in `X-Next-Cursor`)",
            content((ReadingsPage = "application/json"), (String = "text/csv"))),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn readings(
    State(state): State<AppState>,
    AuthUser(user, _): AuthUser,
    Path(system_id): Path<String>,
    Query(params): Query<ReadingsParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let system = state.owned_system(&user, &system_id).await?;
    let to = time_param("to", &params.to)?.unwrap_or_else(Utc::now);
    let from = time_param("from", &params.from)?.unwrap_or_else(|| to - TimeDelta::hours(1));
    if from >= to {
        return Err(ApiError::invalid("from", "must be before `to`"));
    }
    let limit = param::<i64>("limit", &params.limit)?.unwrap_or(1000);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid("limit", format!("must be 1 to {MAX_LIMIT}")));
    }
    let bucket = params.bucket.as_deref().map(bucket_seconds).transpose()?;
    if let Some(seconds) = bucket
        && (to - from).num_seconds() / seconds > MAX_BUCKETS
    {
        return Err(ApiError::invalid("bucket", format!("too small for the range: at most {MAX_BUCKETS} buckets per request")));
    }
    let after = match params.after.as_deref() {
        Some(text) => parse_cursor(text)?,
        // Just before the first row: the bucket holding `from` starts at or before it.
        None => (bucket.map_or(from, |seconds| bucket_start(from, seconds)) - TimeDelta::microseconds(1), String::new()),
    };
    let sensors = params.sensor.as_deref().map(|s| s.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect::<Vec<_>>());
    let max_scanned = state.config.max_rows_scanned;
    if bucket.is_none() {
        // A raw page reads at most `limit` rows of each sensor asked for (readings_raw.sql).
        let asked = match &sensors {
            Some(list) => list.iter().filter(|s| system.sensors.contains_key(s.as_str())).collect::<std::collections::HashSet<_>>().len(),
            None => system.sensors.len(),
        };
        let asked = asked.max(1) as i64;
        if asked.saturating_mul(limit) > max_scanned {
            return Err(ApiError::invalid(
                "limit",
                format!("{asked} sensors × {limit} rows would read more than {max_scanned} readings; use limit ≤ {} or fewer sensors", (max_scanned / asked).max(1)),
            ));
        }
    }
    let query = ReadingsQuery { system_id: system_id.clone(), from, to, sensors, after, limit };
    let mut page = ReadingsPage { system_id, from, to, bucket_seconds: bucket, readings: Vec::new(), buckets: Vec::new(), next: None };
    match bucket {
        Some(seconds) => {
            page.buckets = state.store.bucketed_readings(&query, seconds, max_scanned).await?.ok_or_else(|| {
                ApiError::invalid(
                    "from",
                    format!("the range holds more than {max_scanned} readings for buckets shorter than whole minutes; narrow from/to, ask for fewer sensors, or use whole-minute buckets"),
                )
            })?;
            page.next = (page.buckets.len() as i64 == limit).then(|| page.buckets.last().map(|b| cursor(b.time, &b.sensor_id))).flatten();
        }
        None => {
            page.readings = state.store.raw_readings(&query).await?;
            page.next = (page.readings.len() as i64 == limit).then(|| page.readings.last().map(|r| cursor(r.time, &r.sensor_id))).flatten();
        }
    }
    Ok(if wants_csv(&headers) { csv(&page) } else { Json(page).into_response() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_lengths_parse_with_units_and_bad_ones_name_the_field() {
        assert_eq!(bucket_seconds("30s").unwrap(), 30);
        assert_eq!(bucket_seconds("15m").unwrap(), 900);
        assert_eq!(bucket_seconds("1h").unwrap(), 3600);
        assert_eq!(bucket_seconds("120").unwrap(), 120);
        for bad in ["0m", "m", "5w", "-1h", "40d", "", "106751991167301d"] {
            assert!(matches!(bucket_seconds(bad), Err(ApiError::Invalid { ref field, .. }) if field == "bucket"), "{bad}");
        }
    }

    #[test]
    fn buckets_start_on_the_same_grid_as_the_sql() {
        let t = DateTime::parse_from_rfc3339("2026-11-26T15:07:42Z").unwrap().to_utc();
        assert_eq!(bucket_start(t, 60).to_rfc3339(), "2026-11-26T15:07:00+00:00");
        assert_eq!(bucket_start(t, 3600).to_rfc3339(), "2026-11-26T15:00:00+00:00");
        assert_eq!(bucket_start(t, 10).to_rfc3339(), "2026-11-26T15:07:40+00:00");
    }

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let time = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        assert_eq!(parse_cursor(&cursor(time, "PS1")).unwrap(), (time, "PS1".to_owned()));
        assert!(parse_cursor("yesterday").is_err());
        assert!(parse_cursor("-9000000000000000000:PS1").is_err(), "a time the database cannot hold");
    }
}
