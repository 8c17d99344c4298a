//! Scores history, latest and the live WebSocket feed, per tenant. Scores are written the way
//! the inference worker writes them (rows in anomaly_scores), so the database trigger and the
//! API's listener are exercised for real.

mod common;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use common::app::{App, error_of, spawn_app};
use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

async fn write_scores(app: &App, system_id: &str, start: DateTime<Utc>, revision: i32, pump: f32) {
    let client = common::connect(&app.db_url).await;
    let end = start + TimeDelta::seconds(60);
    // One statement, as the worker's upsert: the window's components commit together.
    client
        .execute(
            "INSERT INTO anomaly_scores (system_id, component_id, window_start, window_end, revision, model_version, score, class, features)
             SELECT $1, c, $2, $3, $4, $6, s, k, '{\"mean_PS1\": 120.5}'
             FROM unnest(ARRAY['pump', 'cooler'], ARRAY[$5::real, 0.05::real], ARRAY['1', '100']) AS t (c, s, k)",
            &[&system_id, &start, &end, &revision, &pump, &common::shipped_model_version()],
        )
        .await
        .unwrap();
}

fn ws_request(app: &App, system_id: &str, key: &str) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut request = format!("{}/ws/systems/{system_id}/scores", app.base.replace("http://", "ws://")).into_client_request().unwrap();
    request.headers_mut().insert("x-api-key", key.parse().unwrap());
    request
}

#[tokio::test]
async fn history_pages_newest_first_with_the_latest_revision_and_features() {
    let app = spawn_app(&[]).await;
    let (key, _) = app.register("ds@example.com").await;
    app.create_rig(&key, "scored-rig").await;
    let base = Utc::now() - TimeDelta::hours(1);
    for i in 0..3 {
        write_scores(&app, "scored-rig", base + TimeDelta::minutes(i), 0, 0.1).await;
    }
    write_scores(&app, "scored-rig", base, 1, 0.9).await;

    let page = app.get_json("/anomalies/systems/scored-rig?limit=2", &key).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items[0]["window_start"].as_str() > items[1]["window_start"].as_str(), "newest first");
    assert_eq!(items[0]["components"].as_array().unwrap().len(), 2);
    let next = page["next"].as_str().unwrap();
    let older = app.get_json(&format!("/anomalies/systems/scored-rig?limit=2&before={}", next.replace('+', "%2B")), &key).await;
    let oldest = &older["items"][0];
    assert_eq!(oldest["revision"], 1, "a rescored window shows its latest revision");
    let pump = oldest["components"].as_array().unwrap().iter().find(|c| c["component_id"] == "pump").unwrap();
    assert!((pump["score"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    assert_eq!(pump["features"]["mean_PS1"], 120.5);
    // The stored class, named by the manifest of the score's model version.
    assert_eq!((&pump["class"], &pump["class_name"], &pump["severity"]), (&Value::from("1"), &Value::from("weak leakage"), &Value::from("degraded")));
    let cooler = oldest["components"].as_array().unwrap().iter().find(|c| c["component_id"] == "cooler").unwrap();
    assert_eq!((&cooler["class_name"], &cooler["severity"]), (&Value::from("full efficiency"), &Value::from("ok")));

    let only_pump = app.get_json("/anomalies/systems/scored-rig?component=pump", &key).await;
    assert!(only_pump["items"].as_array().unwrap().iter().all(|w| w["components"].as_array().unwrap().len() == 1));
    let latest = app.get_json("/anomalies/systems/scored-rig/latest", &key).await;
    assert_eq!(latest["window_start"], items[0]["window_start"]);

    // A model version the API has no manifest for: its class is shown, unnamed.
    let newest = base + TimeDelta::minutes(5);
    common::connect(&app.db_url)
        .await
        .execute(
            "INSERT INTO anomaly_scores (system_id, component_id, window_start, window_end, revision, model_version, score, class)
             VALUES ('scored-rig', 'pump', $1, $2, 0, 'uci-rig-v0', 0.5, '1')",
            &[&newest, &(newest + TimeDelta::seconds(60))],
        )
        .await
        .unwrap();
    let unknown = &app.get_json("/anomalies/systems/scored-rig/latest", &key).await["components"][0];
    assert_eq!((&unknown["class"], &unknown["class_name"], &unknown["severity"]), (&Value::from("1"), &Value::Null, &Value::Null), "{unknown}");

    app.create_rig(&key, "quiet-rig").await;
    let (status, _) = error_of(app.req(Method::GET, "/anomalies/systems/quiet-rig/latest", &key).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "no scores yet");
}

#[tokio::test]
async fn a_websocket_client_receives_scores_published_after_it_subscribed_and_other_tenants_are_refused() {
    let app = spawn_app(&[]).await;
    let (alice, _) = app.register("alice@example.com").await;
    let (bob, _) = app.register("bob@example.com").await;
    app.create_rig(&alice, "live-rig").await;
    app.create_rig(&alice, "other-rig").await;

    match tokio_tungstenite::connect_async(ws_request(&app, "live-rig", &bob)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 404),
        other => panic!("another tenant's subscription must be refused with 404, got {other:?}"),
    }

    let (mut socket, _) = tokio_tungstenite::connect_async(ws_request(&app, "live-rig", &alice)).await.expect("subscribe");
    // Give the subscription a moment to be registered before the scores are written.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Utc::now() - TimeDelta::minutes(2);
    write_scores(&app, "other-rig", start, 0, 0.5).await;
    write_scores(&app, "live-rig", start, 0, 0.7).await;
    let message = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match socket.next().await.expect("socket open").expect("frame") {
                tokio_tungstenite::tungstenite::Message::Text(text) => return serde_json::from_str::<Value>(&text).unwrap(),
                _ => continue,
            }
        }
    })
    .await
    .expect("a score arrives within 10 s");
    assert_eq!(message["system_id"], "live-rig", "only the subscribed system's scores");
    assert_eq!(message["components"].as_array().unwrap().len(), 2);
    let pump = message["components"].as_array().unwrap().iter().find(|c| c["component_id"] == "pump").unwrap();
    assert_eq!((&pump["class_name"], &pump["severity"]), (&Value::from("weak leakage"), &Value::from("degraded")), "the feed names the class too");

    let plain = app.req(Method::GET, "/ws/systems/live-rig/scores", &alice).send().await.unwrap();
    assert_eq!(error_of(plain).await.0, StatusCode::UPGRADE_REQUIRED);
}

#[tokio::test]
async fn a_deleted_system_id_registered_again_starts_empty_for_its_new_owner() {
    let app = spawn_app(&[]).await;
    let (alice, _) = app.register("alice@example.com").await;
    let (bob, _) = app.register("bob@example.com").await;
    app.create_rig(&alice, "reused-rig").await;
    write_scores(&app, "reused-rig", Utc::now() - TimeDelta::hours(1), 0, 0.8).await;
    let client = common::connect(&app.db_url).await;
    client.execute("INSERT INTO ingested_batches (system_id, batch_id, readings) VALUES ('reused-rig', 'batch-1', 10)", &[]).await.unwrap();
    assert_eq!(app.get_json("/ingestion/batches/batch-1", &alice).await["status"], "stored");

    assert_eq!(app.req(Method::DELETE, "/metadata/reused-rig", &alice).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    app.create_rig(&bob, "reused-rig").await;
    for path in ["/anomalies/systems/reused-rig/latest", "/ingestion/batches/batch-1"] {
        let (status, _) = error_of(app.req(Method::GET, path, &bob).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: nothing of the previous owner is inherited");
    }
    assert!(app.get_json("/anomalies/systems/reused-rig", &bob).await["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_websocket_session_ends_when_its_key_is_revoked() {
    let app = spawn_app(&[("MANIFOLD__API__WS_RECHECK_MS", "200")]).await;
    let (first, _) = app.register("ws@example.com").await;
    app.create_rig(&first, "ws-rig").await;
    let second: Value = app.req(Method::POST, "/users/me/keys", &first).json(&serde_json::json!({})).send().await.unwrap().json().await.unwrap();
    let (mut socket, _) = tokio_tungstenite::connect_async(ws_request(&app, "ws-rig", second["api_key"].as_str().unwrap())).await.expect("subscribe");
    let revoked = app.req(Method::DELETE, &format!("/users/me/keys/{}", second["key_id"].as_str().unwrap()), &first).send().await.unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the session outlived its key");
}

#[tokio::test]
async fn the_sensors_that_drove_a_score_are_stored_with_it_and_shown_by_the_history_and_latest() {
    let app = spawn_app(&[]).await;
    let (key, _) = app.register("drivers@example.com").await;
    app.create_rig(&key, "driven-rig").await;
    // A cycle of the sample with the valve close to total failure, scored as the worker scores
    // it and written through the worker's own upsert.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = manifold::model::RigModel::load(&root.join(manifold::model::DEFAULT_MODEL_DIR)).unwrap();
    let cycles = manifold::rig::load(&root.join(manifold::rig::SAMPLE_DATA)).unwrap();
    let cycle = cycles.iter().find(|c| c.conditions.valve == 73).unwrap();
    let (components, contributions) = model.score_explained(&cycle.window());
    let start = Utc::now() - TimeDelta::hours(1);
    let window = manifold::domain::ScoredWindow {
        system_id: "driven-rig".into(),
        window_start: start,
        window_end: start + TimeDelta::seconds(60),
        revision: 0,
        model_version: model.manifest().version.clone(),
        computed_at: Utc::now(),
        components,
        contributions,
    };
    // An older window scored without drivers (as before they were kept, or by a service).
    let plain = manifold::domain::ScoredWindow { window_start: start - TimeDelta::minutes(1), contributions: Default::default(), ..window.clone() };
    app.state.store.upsert_scores(&[&window, &plain]).await.unwrap();

    let latest = app.get_json("/anomalies/systems/driven-rig/latest", &key).await;
    let valve = latest["components"].as_array().unwrap().iter().find(|c| c["component_id"] == "valve").unwrap();
    let named: Vec<&str> = valve["drivers"].as_array().unwrap().iter().map(|d| d["sensor_id"].as_str().unwrap()).collect();
    assert!(named.iter().any(|s| *s == "PS2" || *s == "PS3") && named.len() <= 3, "{valve}");
    let expected: Vec<&str> = window.contributions["valve"].iter().map(|d| d.sensor_id.as_str()).collect();
    assert_eq!(named, expected, "as stored, strongest first");
    assert!(valve["drivers"][0]["effect"].as_f64().unwrap() > 0.0);

    let history = app.get_json("/anomalies/systems/driven-rig", &key).await;
    let items = history["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["components"], latest["components"], "the history shows the same drivers");
    assert!(items[1]["components"].as_array().unwrap().iter().all(|c| c["drivers"].is_null()), "no drivers stored: null");
}
