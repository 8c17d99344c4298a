//! Bounded resources for hostile callers, through the real API: unknown keys cannot drive a
//! query per request, WebSocket sessions per user are capped, a key in the query string works
//! on the WebSocket route only, readings requests read a bounded number of rows, and a batch
//! the broker cannot take is a 413, not a retryable 503.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::app::{App, error_of, spawn_app, spawn_app_with};
use common::batch::BatchBuilder;
use common::pipeline::TestPipeline;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// The value of `manifold_api_key_checks_total{source}` (0 before the first).
fn key_checks(app: &App, source: &str) -> u64 {
    let wanted = format!("manifold_api_key_checks_total{{source=\"{source}\"}} ");
    app.state.metrics.render().lines().find_map(|l| l.strip_prefix(&wanted)).map_or(0, |v| v.trim().parse().unwrap())
}

/// A key of the right shape that no one was ever given.
fn random_key() -> String {
    format!("mfk_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn random_unknown_keys_cost_at_most_the_address_budget_in_queries() {
    let app = spawn_app(&[("MANIFOLD__API__KEY_LOOKUPS_PER_MINUTE", "5")]).await;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        statuses.push(app.req(Method::GET, "/users/me", &random_key()).send().await.unwrap().status());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count(), 5, "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == StatusCode::TOO_MANY_REQUESTS), "beyond the budget: 429 without a query");
    assert_eq!(key_checks(&app, "database_unknown"), 5, "one query per lookup the budget allowed");
    assert_eq!(key_checks(&app, "address_limited"), 35);
    let refused = app.req(Method::GET, "/users/me", &random_key()).send().await.unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(error_of(refused).await.1["code"], "rate_limited");
}

#[tokio::test]
async fn a_repeated_unknown_key_is_refused_from_the_cache_and_a_known_key_still_works() {
    let app = spawn_app(&[("MANIFOLD__API__KEY_LOOKUPS_PER_MINUTE", "5")]).await;
    let (good, _) = app.register("cache@example.com").await;
    let wrong = random_key();
    for _ in 0..30 {
        assert_eq!(app.req(Method::GET, "/users/me", &wrong).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(key_checks(&app, "database_unknown"), 1, "a wrong key is looked up once");
    assert_eq!(key_checks(&app, "unknown_cache"), 29);
    for _ in 0..10 {
        assert_eq!(app.req(Method::GET, "/users/me", &good).send().await.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(key_checks(&app, "database_found"), 1, "a good key is looked up once, then cached");
    // A key created now works at once, even right after a flood of unknown keys.
    let created: Value = app.req(Method::POST, "/users/me/keys", &good).json(&json!({"name": "second"})).send().await.unwrap().json().await.unwrap();
    let second = created["api_key"].as_str().unwrap();
    assert_eq!(app.req(Method::GET, "/users/me", second).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn an_api_key_in_the_query_string_is_refused_outside_the_websocket_route() {
    let app = spawn_app(&[]).await;
    let (key, _) = app.register("query@example.com").await;
    app.create_rig(&key, "query-rig").await;
    for path in ["/users/me", "/metadata/", "/readings/systems/query-rig"] {
        let r = app.http.get(format!("{}{path}?api_key={key}", app.base)).send().await.unwrap();
        let (status, error) = error_of(r).await;
        assert_eq!((status, error["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")), "{path}");
    }
    let url = format!("{}/ws/systems/query-rig/scores?api_key={key}", app.base.replace("http://", "ws://"));
    let (socket, response) = tokio_tungstenite::connect_async(url).await.expect("the WebSocket route takes the key from the query");
    assert_eq!(response.status(), 101);
    drop(socket);
}

#[tokio::test]
async fn a_user_beyond_the_websocket_session_cap_gets_429_until_one_closes() {
    let app = spawn_app(&[("MANIFOLD__API__WS_SESSIONS_PER_USER", "2")]).await;
    let (key, _) = app.register("ws@example.com").await;
    let (other, _) = app.register("ws2@example.com").await;
    app.create_rig(&key, "ws-rig").await;
    app.create_rig(&other, "ws-rig-2").await;
    let request = |system: &str, key: &str| {
        let mut r = format!("{}/ws/systems/{system}/scores", app.base.replace("http://", "ws://")).into_client_request().unwrap();
        r.headers_mut().insert("x-api-key", key.parse().unwrap());
        r
    };
    let (first, _) = tokio_tungstenite::connect_async(request("ws-rig", &key)).await.expect("first");
    let (_second, _) = tokio_tungstenite::connect_async(request("ws-rig", &key)).await.expect("second");
    match tokio_tungstenite::connect_async(request("ws-rig", &key)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 429),
        other => panic!("a third session must be refused: {:?}", other.map(|r| r.1.status())),
    }
    let (_theirs, _) = tokio_tungstenite::connect_async(request("ws-rig-2", &other)).await.expect("another user has sessions of their own");
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio_tungstenite::connect_async(request("ws-rig", &key)).await {
            Ok(_) => break,
            Err(_) if tokio::time::Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(err) => panic!("a closed session frees its slot: {err}"),
        }
    }
}

#[tokio::test]
async fn readings_requests_that_would_read_more_rows_than_the_cap_are_refused_naming_the_parameter() {
    let p = TestPipeline::new(&[("MANIFOLD__API__MAX_ROWS_SCANNED", "150")]).await;
    let (stop_ingest, ingest) = p.spawn_ingest();
    let app = spawn_app_with(p.config.clone(), p.db_url.clone()).await;
    let (key, _) = app.register("rows@example.com").await;
    app.create_rig(&key, "rows-rig").await;
    let minute = Utc::now().timestamp_micros() / 60_000_000 * 60_000_000 - 120_000_000;
    let body = BatchBuilder::new("rows-rig").id("rows-1").regular("PS1", minute, 100_000, vec![100.0; 200]).body();
    assert_eq!(app.req(Method::POST, "/ingestion/ingest", &key).json(&body).send().await.unwrap().status(), StatusCode::ACCEPTED);
    p.wait_for("SELECT count(*) FROM readings", 200, Duration::from_secs(45)).await;
    let from = chrono::DateTime::from_timestamp_micros(minute).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let get = |query: String| app.req(Method::GET, &format!("/readings/systems/rows-rig?from={from}&{query}"), &key).send();

    // The rig has 17 sensors: 17 × 10 rows per page is more than 150.
    let (status, error) = error_of(get("limit=10".into()).await.unwrap()).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("limit")), "{error}");
    let (status, error) = error_of(get("sensor=PS1&limit=151".into()).await.unwrap()).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("limit")));
    let page: Value = get("sensor=PS1&limit=150".into()).await.unwrap().json().await.unwrap();
    assert_eq!(page["readings"].as_array().unwrap().len(), 150, "at the cap a page is served, with a cursor");
    assert!(page["next"].is_string());

    // Sub-minute buckets read raw readings: 200 in the range is more than 150.
    let (status, error) = error_of(get("bucket=10s".into()).await.unwrap()).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("from")), "{error}");
    let to = chrono::DateTime::from_timestamp_micros(minute + 10_000_000).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let narrow: Value = get(format!("to={to}&bucket=10s")).await.unwrap().json().await.unwrap();
    assert_eq!(narrow["buckets"][0]["count"], 100, "a narrower range is served");
    let whole: Value = get("bucket=1m".into()).await.unwrap().json().await.unwrap();
    assert_eq!(whole["buckets"][0]["count"], 200, "whole minutes come from the aggregate, not the raw rows");
    stop_ingest.cancel();
    ingest.await.unwrap();
}

#[tokio::test]
async fn a_batch_too_large_for_the_broker_is_413_not_a_retryable_503() {
    let p = TestPipeline::new(&[]).await;
    let mut env: Vec<(&str, &str)> = p.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    env.push(("MANIFOLD__KAFKA__CLIENT__MESSAGE_MAX_BYTES", "1000"));
    let app = spawn_app_with(common::config_with(&env), p.db_url.clone()).await;
    let (key, _) = app.register("size@example.com").await;
    app.create_rig(&key, "size-rig").await;
    let start = Utc::now().timestamp_micros() - 60_000_000;
    // Distinct values, so compression cannot make the record fit.
    let values: Vec<f64> = (0..400).map(|i| 100.0 + f64::from(i) * 0.013_7).collect();
    let big = BatchBuilder::new("size-rig").regular("PS1", start, 10_000, values).body();
    let r = app.req(Method::POST, "/ingestion/ingest", &key).json(&big).send().await.unwrap();
    assert!(!r.headers().contains_key("retry-after"), "not something to retry as it is");
    let (status, error) = error_of(r).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")), "{error}");
    let small = BatchBuilder::new("size-rig").regular("PS1", start, 10_000, vec![100.0, 101.0]).body();
    assert_eq!(app.req(Method::POST, "/ingestion/ingest", &key).json(&small).send().await.unwrap().status(), StatusCode::ACCEPTED);
}
