//! The external GNN service scorer against a small in-test double of that service (it cannot
//! run here): success, timeout, 5xx with retries, and an invalid answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use manifold::infer::{HttpScorer, HttpScorerError, ScoreRequest};
use serde_json::{Value, json};

async fn serve() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/ok", post(|Json(body): Json<Value>| async move {
            assert_eq!(body["system_id"], "rig-1", "the request carries the window");
            assert!(body["window_start"].is_string() && body["revision"] == 2 && body["user_id"].is_string());
            Json(json!({"anomaly_scores": {"pump": 0.05, "valve": 0.87}}))
        }))
        .route("/slow", post(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Json(json!({"anomaly_scores": {}}))
        }))
        .route("/flaky", post(|State(calls): State<Arc<AtomicUsize>>| async move {
            if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                (StatusCode::SERVICE_UNAVAILABLE, Json(json!({})))
            } else {
                (StatusCode::OK, Json(json!({"anomaly_scores": {"cooler": 0.5}})))
            }
        }))
        .route("/down", post(|State(calls): State<Arc<AtomicUsize>>| async move {
            calls.fetch_add(1, Ordering::SeqCst);
            StatusCode::INTERNAL_SERVER_ERROR
        }))
        .route("/explained", post(|| async {
            let valve = json!([{"sensor_id": "TS1", "effect": 0.01}, {"sensor_id": "PS2", "effect": 0.4}, {"sensor_id": "PS3", "effect": -0.2}, {"sensor_id": "FS1", "effect": 0.1}]);
            Json(json!({"anomaly_scores": {"pump": 0.05, "valve": 0.87}, "drivers": {"valve": valve, "pump": []}}))
        }))
        .route("/invalid", post(|| async { Json(json!({"anomaly_scores": {"pump": 7.0}})) }))
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, calls)
}

fn request() -> ScoreRequest<'static> {
    ScoreRequest {
        user_id: uuid::Uuid::nil().to_string(),
        system_id: "rig-1",
        window_start: "2026-11-26T10:00:00+00:00".into(),
        window_end: "2026-11-26T10:01:00+00:00".into(),
        revision: 2,
    }
}

#[tokio::test]
async fn the_service_scores_a_window() {
    let (base, _) = serve().await;
    let scorer = HttpScorer::new(&format!("{base}/ok"), Duration::from_secs(2), 3).unwrap();
    let scores = scorer.score(&request()).await.unwrap();
    assert_eq!(scores.get("valve"), Some(&0.87));
    assert_eq!(scores.get("pump"), Some(&0.05));
}

#[tokio::test]
async fn the_drivers_a_service_names_are_kept_strongest_three_up_first_and_a_service_without_them_names_none() {
    let (base, _) = serve().await;
    let explained = HttpScorer::new(&format!("{base}/explained"), Duration::from_secs(2), 1).unwrap().answer(&request()).await.unwrap();
    let valve: Vec<(&str, f64)> = explained.drivers["valve"].iter().map(|d| (d.sensor_id.as_str(), d.effect)).collect();
    assert_eq!(valve, [("PS2", 0.4), ("FS1", 0.1), ("TS1", 0.01)], "largest first; PS3 held the score down");
    assert!(!explained.drivers.contains_key("pump"), "an empty list names nothing");
    let plain = HttpScorer::new(&format!("{base}/ok"), Duration::from_secs(2), 1).unwrap().answer(&request()).await.unwrap();
    assert!(plain.drivers.is_empty());
}

#[tokio::test]
async fn a_slow_service_times_out() {
    let (base, _) = serve().await;
    let scorer = HttpScorer::new(&format!("{base}/slow"), Duration::from_millis(200), 2).unwrap();
    let started = std::time::Instant::now();
    assert!(matches!(scorer.score(&request()).await, Err(HttpScorerError::Timeout)));
    assert!(started.elapsed() < Duration::from_secs(3), "two attempts of 200 ms, not the service's 5 s");
}

#[tokio::test]
async fn server_errors_are_retried_a_bounded_number_of_times() {
    let (base, calls) = serve().await;
    let scorer = HttpScorer::new(&format!("{base}/flaky"), Duration::from_secs(2), 3).unwrap();
    assert_eq!(scorer.score(&request()).await.unwrap().get("cooler"), Some(&0.5), "third attempt succeeds");

    calls.store(0, Ordering::SeqCst);
    let scorer = HttpScorer::new(&format!("{base}/down"), Duration::from_secs(2), 3).unwrap();
    assert!(matches!(scorer.score(&request()).await, Err(HttpScorerError::Status(500))));
    assert_eq!(calls.load(Ordering::SeqCst), 3, "exactly the configured attempts");
}

#[tokio::test]
async fn scores_outside_zero_to_one_are_rejected() {
    let (base, _) = serve().await;
    let scorer = HttpScorer::new(&format!("{base}/invalid"), Duration::from_secs(2), 3).unwrap();
    assert!(matches!(scorer.score(&request()).await, Err(HttpScorerError::Invalid(_))));
}
