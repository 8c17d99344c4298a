//! The tower stack around every route: request ids, a timeout, the body limit, compression,
//! CORS, per-route metrics, and JSON bodies on the error answers layers make themselves.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;

use super::AppState;
use super::error::{ErrorCode, UNAVAILABLE_RETRY_SECONDS, body_for_status};
use crate::telemetry::{Metrics, register};

#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    errors: IntCounterVec,
    seconds: HistogramVec,
}

impl HttpMetrics {
    pub fn new(metrics: &Metrics) -> Self {
        let r = metrics.registry();
        Self {
            requests: register(r, IntCounterVec::new(Opts::new("manifold_http_requests_total", "HTTP requests by route template, method and status class"), &["route", "method", "status"])),
            errors: register(r, IntCounterVec::new(Opts::new("manifold_http_errors_total", "Error answers by route template and error code (rate_limited, quota_exceeded, invalid, …)"), &["route", "code"])),
            seconds: register(
                r,
                HistogramVec::new(
                    HistogramOpts::new("manifold_http_request_duration_seconds", "HTTP request latency by route template")
                        .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0]),
                    &["route"],
                ),
            ),
        }
    }
}

/// Labels are the route template (`/metadata/{system_id}`), never the path, so they stay bounded.
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |m| m.as_str()).to_owned();
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let status = match response.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    state.http.requests.with_label_values(&[route.as_str(), method, status]).inc();
    if let Some(ErrorCode(code)) = response.extensions().get::<ErrorCode>() {
        state.http.errors.with_label_values(&[route.as_str(), code]).inc();
    }
    state.http.seconds.with_label_values(&[route.as_str()]).observe(started.elapsed().as_secs_f64());
    response
}

/// Errors made by layers or axum's own rejections (413, 405, a timeout's 503, …) get the API's JSON body.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let (mut parts, _) = response.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        let mut fixed = (status, body_for_status(status)).into_response();
        for (name, value) in parts.headers.iter().filter(|(n, _)| *n != header::CONTENT_TYPE) {
            fixed.headers_mut().insert(name.clone(), value.clone());
        }
        // A 503 from a layer (the request timeout) is as retryable as the handlers' own: say when.
        if status == StatusCode::SERVICE_UNAVAILABLE && !fixed.headers().contains_key(header::RETRY_AFTER) {
            fixed.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(UNAVAILABLE_RETRY_SECONDS));
        }
        return fixed;
    }
    response
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::IF_MATCH, "x-api-key".parse().unwrap_or(header::AUTHORIZATION)])
            .expose_headers([header::ETAG, header::RETRY_AFTER, "x-request-id".parse().unwrap_or(header::ETAG)]),
    )
}

pub fn apply(app: Router<AppState>, state: &AppState) -> Router<AppState> {
    let config = &state.config;
    let app = app
        .layer(from_fn_with_state(state.clone(), track))
        .layer(axum::extract::DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(RequestBodyLimitLayer::new(config.body_limit_bytes))
        // The server ran out of time, not the client: 503 (retry), not 408.
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::SERVICE_UNAVAILABLE, config.request_timeout_ms))
        .layer(from_fn(json_errors))
        .layer(CompressionLayer::new());
    let app = match cors(&config.cors_origins) {
        Some(layer) => app.layer(layer),
        None => app,
    };
    app.layer(PropagateRequestIdLayer::x_request_id()).layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn a_request_that_runs_out_of_time_gets_a_json_503_with_retry_after() {
        let app: Router = Router::new()
            .route("/slow", get(|| async { tokio::time::sleep(Duration::from_secs(5)).await }))
            .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, Duration::from_millis(20)))
            .layer(from_fn(json_errors));
        let response = app.oneshot(Request::builder().uri("/slow").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], UNAVAILABLE_RETRY_SECONDS.to_string());
        assert!(response.headers()[header::CONTENT_TYPE].as_bytes().starts_with(b"application/json"));
    }
}
