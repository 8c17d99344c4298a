//! Validation closes the holes the database would find later: free text with control
//! characters, ranges whose sums overflow, series with repeated times, and error messages that
//! echo huge input. Through the real API and, where it matters, the real ingest.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::app::{App, error_of, spawn_app, spawn_app_with};
use common::batch::BatchBuilder;
use common::pipeline::TestPipeline;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const BOUND: f64 = manifold::domain::Sensor::MAX_MAGNITUDE;

fn rig() -> Value {
    serde_json::to_value(manifold::rig::rig_topology()).unwrap()
}

fn sensor_index(topology: &Value, id: &str) -> usize {
    topology["sensors"].as_array().unwrap().iter().position(|s| s["id"] == id).unwrap()
}

async fn create(app: &App, key: &str, system_id: &str, topology: &Value) -> reqwest::Response {
    let body = json!({"system_id": system_id, "name": "Poison test", "topology": topology});
    app.req(Method::POST, "/metadata/", key).json(&body).send().await.unwrap()
}

async fn wait_status(app: &App, key: &str, batch_id: &str, want: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(45);
    loop {
        let body: Value = app.req(Method::GET, &format!("/ingestion/batches/{batch_id}"), key).send().await.unwrap().json().await.unwrap();
        if body["status"] == want {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "batch {batch_id} still {body}, wanted {want}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_topology_with_a_huge_range_is_refused_naming_the_field() {
    let app = spawn_app(&[]).await;
    let (key, _) = app.register("range@example.com").await;
    let mut topology = rig();
    let i = sensor_index(&topology, "PS1");
    for (bound, value) in [("max", 1e308), ("min", -1e308), ("max", BOUND * 1.5)] {
        let mut t = topology.clone();
        t["sensors"][i][bound] = json!(value);
        let (status, error) = error_of(create(&app, &key, "huge-rig", &t).await).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bound} = {value}");
        assert_eq!(error["field"], format!("topology.sensors[{i}].{bound}"));
    }
    (topology["sensors"][i]["min"], topology["sensors"][i]["max"]) = (json!(-BOUND), json!(BOUND));
    assert_eq!(create(&app, &key, "bounded-rig", &topology).await.status(), StatusCode::CREATED, "the documented bound itself is fine");
}

#[tokio::test]
async fn a_topology_with_nul_or_control_characters_in_its_text_is_a_422() {
    let app = spawn_app(&[]).await;
    let (key, _) = app.register("nul@example.com").await;
    let topology = rig();
    let i = sensor_index(&topology, "TS1");
    let mut nul_unit = topology.clone();
    nul_unit["sensors"][i]["unit"] = json!("°C\u{0}");
    let mut escape_kind = topology.clone();
    escape_kind["sensors"][i]["kind"] = json!("temp\u{1b}[2J");
    let mut nul_name = topology.clone();
    nul_name["components"][0]["name"] = json!("pump\u{0}");
    for (t, field) in [
        (nul_unit, format!("topology.sensors[{i}].unit")),
        (escape_kind, format!("topology.sensors[{i}].kind")),
        (nul_name, "topology.components[0].name".to_owned()),
    ] {
        let (status, error) = error_of(create(&app, &key, "nul-rig", &t).await).await;
        assert_eq!((status, error["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field.as_str())), "{error}");
        assert_eq!(error["code"], "invalid");
    }
    let list = app.get_json("/metadata/", &key).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "nothing refused was stored");
}

#[tokio::test]
async fn repeated_timestamps_or_a_mixed_series_are_a_422_naming_the_field() {
    let app = spawn_app(&[]).await;
    let (key, _) = app.register("times@example.com").await;
    app.create_rig(&key, "times-rig").await;
    let t = Utc::now().timestamp_micros() - 10_000_000;
    let send = |series: Value| {
        let body = json!({"system_id": "times-rig", "series": [{"sensor_id": "TS1", "start": t, "interval_us": 1_000_000, "values": [40.0]}, series]});
        app.req(Method::POST, "/ingestion/ingest", &key).json(&body).send()
    };
    let cases = [
        (json!({"sensor_id": "PS1", "start": t, "times_us": [t, t + 1, t + 2, t + 1], "values": [1.0, 2.0, 3.0, 4.0]}), "series[1].times_us[3]"),
        (json!({"sensor_id": "PS1", "start": t, "interval_us": 10, "times_us": [t, t + 1], "values": [1.0, 2.0]}), "series[1].interval_us"),
        (json!({"sensor_id": "PS1", "start": t, "values": [1.0, 2.0]}), "series[1].interval_us"),
        (json!({"sensor_id": "PS1", "start": t, "interval_us": -10, "values": [1.0]}), "series[1].interval_us"),
    ];
    for (series, field) in cases {
        let (status, error) = error_of(send(series).await.unwrap()).await;
        assert_eq!((status, error["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{error}");
    }
}

#[tokio::test]
async fn a_huge_unknown_field_name_is_echoed_in_a_bounded_message() {
    let app = spawn_app(&[]).await;
    let (key, _) = app.register("echo@example.com").await;
    let name = "n".repeat(600_000);
    let mut body = json!({"system_id": "echo-rig", "name": "Echo", "topology": rig()});
    body[&name] = json!(1);
    let (status, error) = error_of(app.req(Method::POST, "/metadata/", &key).json(&body).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = error["message"].as_str().unwrap();
    assert!(message.len() <= 1024 && message.contains("600000 bytes"), "{} bytes: {}", message.len(), &message[..message.len().min(200)]);
    assert!(error["field"].as_str().unwrap().len() <= 256);

    // The Kafka path's JSON decoder says the same, so its dead letter header stays small.
    let kafka = format!(r#"{{"{name}": 1}}"#);
    match manifold::codec::decode_json(kafka.as_bytes()) {
        Err(manifold::codec::CodecError::Rejected(err)) => {
            assert!(err.message.len() <= 1024 && err.message.contains("600000 bytes"), "{} bytes", err.message.len());
        }
        other => panic!("{other:?}"),
    }
    match manifold::codec::decode_json(b"{\"\\u0000\": 1}") {
        Err(manifold::codec::CodecError::Rejected(err)) => assert!(!err.message.contains('\u{0}'), "{:?}", err.message),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn values_at_the_bound_sent_in_two_batches_are_stored_and_aggregated_without_stalling_ingest() {
    let p = TestPipeline::new(&[]).await;
    let (stop_ingest, ingest) = p.spawn_ingest();
    let app = spawn_app_with(p.config.clone(), p.db_url.clone()).await;
    let (key, _) = app.register("bound@example.com").await;
    let mut topology = rig();
    let i = sensor_index(&topology, "PS1");
    (topology["sensors"][i]["min"], topology["sensors"][i]["max"]) = (json!(-BOUND), json!(BOUND));
    assert_eq!(create(&app, &key, "bound-rig", &topology).await.status(), StatusCode::CREATED);
    let minute = Utc::now().timestamp_micros() / 60_000_000 * 60_000_000 - 120_000_000;
    let batch = |id: &str, start: i64, value: f64| {
        BatchBuilder::new("bound-rig").id(id).regular("PS1", start, 10_000, vec![value; 100]).body()
    };
    let post = |body: Value| app.req(Method::POST, "/ingestion/ingest", &key).json(&body).send();
    // Two batches, so two chunks' sums meet in the aggregate's upsert.
    assert_eq!(post(batch("bound-1", minute, BOUND)).await.unwrap().status(), StatusCode::ACCEPTED);
    wait_status(&app, &key, "bound-1", "stored").await;
    assert_eq!(post(batch("bound-2", minute + 1_000_000, BOUND)).await.unwrap().status(), StatusCode::ACCEPTED);
    wait_status(&app, &key, "bound-2", "stored").await;
    let (status, error) = error_of(post(batch("bound-3", minute, BOUND * 2.0)).await.unwrap()).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("series[0].values[0]")));

    assert_eq!(p.query_i64("SELECT n FROM readings_1m").await, 200);
    assert_eq!(p.query_i64("SELECT (sum / 1e9)::int8 FROM readings_1m").await, 200, "the sum is exact, not saturated");
    let buckets = app.get_json(&format!("/readings/systems/bound-rig?from={}&bucket=1m&sensor=PS1", chrono::DateTime::from_timestamp_micros(minute).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)), &key).await;
    assert_eq!(buckets["buckets"][0]["mean"], BOUND);
    // Ingest goes on: a later batch is stored too.
    assert_eq!(post(batch("bound-4", minute + 60_000_000, -BOUND)).await.unwrap().status(), StatusCode::ACCEPTED);
    wait_status(&app, &key, "bound-4", "stored").await;
    stop_ingest.cancel();
    ingest.await.unwrap();
}

/// The backstop for values stored before ranges were bounded: sums beyond float8 saturate in
/// the aggregate's upsert instead of failing (22003) and stalling ingest on that chunk forever.
#[tokio::test]
async fn the_minute_aggregate_saturates_instead_of_failing_beyond_float8() {
    let (_, client) = common::migrated_database().await;
    let upsert = include_str!("../src/store/sql/upsert_minute.sql");
    let bucket = Utc::now();
    for (sum, min, max) in [(1.5e308, 1e308, 1e308), (1.5e308, 1e308, 1e308), (-1.5e308, -1e308, -1e308)] {
        client.execute(upsert, &[&vec![1i32], &vec![bucket], &vec![1i64], &vec![sum], &vec![min], &vec![max]]).await.expect("the upsert never overflows");
    }
    let row = client.query_one("SELECT n, sum FROM readings_1m", &[]).await.unwrap();
    let (n, sum): (i64, f64) = (row.get(0), row.get(1));
    assert_eq!(n, 3);
    assert!(sum.is_finite(), "{sum}");
    assert!((sum - (f64::MAX - 1.5e308)).abs() < 1e300, "saturated at the maximum, then the negative sum applied: {sum}");
}
