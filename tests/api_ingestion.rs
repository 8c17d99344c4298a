//! HTTP ingestion end to end: the API produces to Kafka, the real ingest stores, and the batch
//! status, latest values and readings routes report it. Real PostgreSQL, Kafka and registry.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::app::{App, error_of, spawn_app_with};
use common::batch::BatchBuilder;
use common::pipeline::TestPipeline;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A body for `POST /ingestion/ingest`: PS1 at 100 Hz from `start_us`, without a batch id.
fn batch(system_id: &str, start_us: i64, values: Vec<f64>) -> Value {
    BatchBuilder::new(system_id).regular("PS1", start_us, 10_000, values).body()
}

async fn wait_status(app: &App, key: &str, batch_id: &str, want: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    loop {
        let r = app.req(Method::GET, &format!("/ingestion/batches/{batch_id}"), key).send().await.unwrap();
        let body: Value = r.json().await.unwrap();
        if body["status"] == want {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "batch {batch_id} still {body}, wanted {want}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn an_http_batch_is_acknowledged_then_stored_once_and_its_status_says_so() {
    let p = TestPipeline::new(&[]).await;
    let (stop_ingest, ingest) = p.spawn_ingest();
    let app = spawn_app_with(p.config.clone(), p.db_url.clone()).await;
    let (key, _) = app.register("device@example.com").await;
    app.create_rig(&key, "http-rig").await;
    let start = Utc::now().timestamp_micros() - 5_000_000;

    let accepted = app.req(Method::POST, "/ingestion/ingest", &key).json(&batch("http-rig", start, vec![120.0; 100])).send().await.unwrap();
    assert_eq!(accepted.status(), StatusCode::ACCEPTED);
    let accepted: Value = accepted.json().await.unwrap();
    let generated = accepted["batch_id"].as_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a generated id is a UUID");
    assert_eq!(accepted["readings"], 100);
    let stored = wait_status(&app, &key, &generated, "stored").await;
    assert_eq!(stored["readings"], 100);

    let mut named = batch("http-rig", start + 2_000_000, vec![130.0; 10]);
    named["batch_id"] = json!("gw-7-000001");
    for _ in 0..2 {
        let r = app.req(Method::POST, "/ingestion/ingest", &key).json(&named).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
    }
    let duplicate = wait_status(&app, &key, "gw-7-000001", "duplicate").await;
    assert_eq!(duplicate["duplicates"], 1);
    assert_eq!(p.query_i64("SELECT count(*) FROM readings").await, 110, "a repeated batch id is not stored twice");

    let latest = app.get_json("/ingestion/systems/http-rig/latest", &key).await;
    assert_eq!(latest["readings"][0]["sensor_id"], "PS1");
    assert_eq!(latest["readings"][0]["value"], 130.0);

    // A batch that reaches Kafka directly with a bad value is dead-lettered; its status says why.
    let mut bad = batch("http-rig", start, vec![999.0]);
    bad["batch_id"] = json!("gw-7-bad");
    p.produce("http-rig", serde_json::to_vec(&bad).unwrap().as_slice()).await;
    let dead = wait_status(&app, &key, "gw-7-bad", "dead_lettered").await;
    assert_eq!(dead["dead_letters"][0]["kind"], "out_of_range");
    stop_ingest.cancel();
    ingest.await.unwrap();
}

#[tokio::test]
async fn invalid_or_foreign_batches_are_refused_with_the_field_and_nothing_is_sent() {
    let p = TestPipeline::new(&[]).await;
    let app = spawn_app_with(p.config.clone(), p.db_url.clone()).await;
    let (alice, _) = app.register("alice@example.com").await;
    let (bob, _) = app.register("bob@example.com").await;
    app.create_rig(&alice, "alice-rig").await;
    let now = Utc::now().timestamp_micros();

    let (status, error) = error_of(app.req(Method::POST, "/ingestion/ingest", &alice).json(&batch("alice-rig", now, vec![1.0, 2.0, 900.0])).send().await.unwrap()).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("series[0].values[2]")));
    let mut unknown = batch("alice-rig", now, vec![1.0]);
    unknown["series"][0]["sensor_id"] = json!("XX9");
    let (status, error) = error_of(app.req(Method::POST, "/ingestion/ingest", &alice).json(&unknown).send().await.unwrap()).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("series[0].sensor_id")));
    let (status, error) = error_of(app.req(Method::POST, "/ingestion/ingest", &alice).json(&json!({"system_id": "alice-rig", "series": [{"sensor_id": "PS1", "start": "soon", "values": []}]})).send().await.unwrap()).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("series[0].start")));

    let (status, _) = error_of(app.req(Method::POST, "/ingestion/ingest", &bob).json(&batch("alice-rig", now, vec![1.0])).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another tenant's system is not there");
    for path in ["/ingestion/systems/alice-rig/latest", "/readings/systems/alice-rig", "/anomalies/systems/alice-rig"] {
        assert_eq!(app.req(Method::GET, path, &bob).send().await.unwrap().status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(app.req(Method::GET, "/ingestion/batches/nothing-like-it", &alice).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(p.query_i64("SELECT count(*) FROM submitted_batches").await, 0, "nothing refused was sent");
}

#[tokio::test]
async fn the_daily_readings_quota_answers_429_until_midnight() {
    let p = TestPipeline::new(&[("MANIFOLD__API__TIERS__FREE__READINGS_PER_DAY", "15")]).await;
    let app = spawn_app_with(p.config.clone(), p.db_url.clone()).await;
    let (key, _) = app.register("quota@example.com").await;
    app.create_rig(&key, "quota-rig").await;
    let now = Utc::now().timestamp_micros();
    let ok = app.req(Method::POST, "/ingestion/ingest", &key).json(&batch("quota-rig", now, vec![1.0; 10])).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::ACCEPTED);
    let over = app.req(Method::POST, "/ingestion/ingest", &key).json(&batch("quota-rig", now, vec![1.0; 10])).send().await.unwrap();
    assert!(over.headers().contains_key("retry-after"));
    let (status, error) = error_of(over).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("quota_exceeded")));
}

#[tokio::test]
async fn readings_come_raw_in_pages_or_in_buckets_as_json_or_csv() {
    let p = TestPipeline::new(&[]).await;
    let (stop_ingest, ingest) = p.spawn_ingest();
    let app = spawn_app_with(p.config.clone(), p.db_url.clone()).await;
    let (key, _) = app.register("ds@example.com").await;
    app.create_rig(&key, "ds-rig").await;
    let minute = Utc::now().timestamp_micros() / 60_000_000 * 60_000_000 - 120_000_000;
    let values: Vec<f64> = (0..100).map(f64::from).collect();
    let mut body = batch("ds-rig", minute, values.clone());
    body["series"].as_array_mut().unwrap().push(json!({"sensor_id": "PS2", "start": minute, "interval_us": 10_000, "values": values}));
    body["batch_id"] = json!("ds-1");
    assert_eq!(app.req(Method::POST, "/ingestion/ingest", &key).json(&body).send().await.unwrap().status(), StatusCode::ACCEPTED);
    wait_status(&app, &key, "ds-1", "stored").await;

    let from = chrono::DateTime::from_timestamp_micros(minute).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut seen: Vec<(chrono::DateTime<Utc>, String)> = Vec::new();
    let mut path = format!("/readings/systems/ds-rig?from={from}&sensor=PS1,PS2&limit=40");
    loop {
        let page = app.get_json(&path, &key).await;
        seen.extend(page["readings"].as_array().unwrap().iter().map(|r| (r["time"].as_str().unwrap().parse().unwrap(), r["sensor_id"].as_str().unwrap().to_owned())));
        match page["next"].as_str() {
            Some(next) => path = format!("/readings/systems/ds-rig?from={from}&sensor=PS1,PS2&limit=40&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 200, "pages cover every reading of both sensors");
    let mut ordered = seen.clone();
    ordered.sort();
    ordered.dedup();
    assert_eq!(seen, ordered, "in (time, sensor) order, each once");
    let only_ps1 = app.get_json(&format!("/readings/systems/ds-rig?from={from}&sensor=PS1&limit=10000"), &key).await;
    assert_eq!(only_ps1["readings"].as_array().unwrap().len(), 100);

    let hourly = app.get_json(&format!("/readings/systems/ds-rig?from={from}&bucket=1h"), &key).await;
    assert_eq!(hourly["buckets"][0]["count"], 100, "the bucket holding an unaligned `from` is served");
    assert_eq!(hourly["buckets"][1]["sensor_id"], "PS2");
    let buckets = app.get_json(&format!("/readings/systems/ds-rig?from={from}&bucket=1m"), &key).await;
    assert_eq!(buckets["buckets"][0]["count"], 100);
    assert_eq!(buckets["buckets"][0]["mean"], 49.5);
    assert_eq!(buckets["buckets"][0]["max"], 99.0);

    let csv = app.req(Method::GET, &format!("/readings/systems/ds-rig?from={from}&bucket=10s"), &key).header("Accept", "text/csv").send().await.unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("sensor_id,time,count,mean,min,max\n"));
    assert_eq!(text.lines().count(), 3, "one header and one 10 s bucket per sensor (100 readings at 10 ms)");
    let (status, error) = error_of(app.req(Method::GET, "/readings/systems/ds-rig?bucket=7w", &key).send().await.unwrap()).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("bucket")));
    stop_ingest.cancel();
    ingest.await.unwrap();
}
