//! Condition alerts through the real infer worker, PostgreSQL, Kafka and the API: a streak of
//! agreeing windows opens one alert, recovery clears it, late revisions revise or withdraw it
//! deterministically, an ack survives a revision, and every event is published exactly once
//! with its scores, also when `manifold infer` is killed with SIGKILL mid-stream.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apache_avro::types::Value as Avro;
use axum::Json;
use axum::extract::State;
use axum::routing::post;
use common::app::spawn_app_with;
use common::pipeline::TestPipeline;
use futures_util::StreamExt;
use manifold::codec::{RecordEncoder, WindowReady, schemas};
use manifold::telemetry::Metrics;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_util::sync::CancellationToken;

const MIN: i64 = 60_000_000;

type Valve = Arc<Mutex<HashMap<String, f64>>>;

/// The external GNN service: the valve's score per window start (RFC 3339, as the request
/// carries it; 0.1 when not set), the other components healthy.
async fn gnn_double() -> (String, Valve) {
    let valve: Valve = Arc::default();
    let app = axum::Router::new()
        .route(
            "/score",
            post(|State(valve): State<Valve>, Json(body): Json<Value>| async move {
                let start = body["window_start"].as_str().unwrap_or_default().to_owned();
                let score = valve.lock().unwrap().get(&start).copied().unwrap_or(0.1);
                Json(json!({"anomaly_scores": {"pump": 0.1, "valve": score, "cooler": 0.05}}))
            }),
        )
        .with_state(valve.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/score", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, valve)
}

fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us).unwrap().to_rfc3339()
}

fn event(system: &str, start: i64, revision: i32) -> WindowReady {
    WindowReady {
        system_id: system.into(),
        window_start: start,
        window_end: start + MIN,
        revision,
        reading_count: 17,
        sensors: vec!["PS1".into()],
        closed_by: manifold::domain::CloseReason::Watermark,
    }
}

struct Windows {
    encoder: RecordEncoder,
    producer: rdkafka::producer::FutureProducer,
    topic: String,
}

impl Windows {
    fn new(p: &TestPipeline) -> Self {
        let topic = p.config.topics.windows_ready.name.clone();
        let encoder = RecordEncoder::new(&p.config.schema_registry, &topic, schemas::WINDOW_READY).unwrap();
        Windows { encoder, producer: manifold::kafka::producer(&p.config.kafka).unwrap(), topic }
    }

    async fn send(&self, system: &str, start: i64, revision: i32) {
        let payload = self.encoder.encode(event(system, start, revision).to_avro().unwrap()).await.unwrap();
        let record = rdkafka::producer::FutureRecord::to(&self.topic).key(system).payload(&payload);
        self.producer.send(record, Duration::from_secs(10)).await.map_err(|(e, _)| e).expect("produce");
    }
}

/// (kind, alert_id, status) of every committed alert event on the topic.
async fn published(p: &TestPipeline, want: usize) -> Vec<(String, String, String, String)> {
    let values = common::topic::read_committed_avro(&p.config, &p.config.topics.alerts.name, want, Duration::from_secs(30)).await;
    values
        .into_iter()
        .map(|v| {
            let Avro::Record(fields) = v else { panic!("a record: {v:?}") };
            let field = |name: &str| match fields.iter().find(|(n, _)| n == name).map(|(_, v)| v) {
                Some(Avro::String(s)) | Some(Avro::Enum(_, s)) => s.clone(),
                other => panic!("{name}: {other:?}"),
            };
            (field("event_id"), field("kind"), field("alert_id"), field("status"))
        })
        .collect()
}

/// Scores without a class severity are judged by the thresholds of their component's kind, which
/// infer takes from the topology it loaded with the windows: a valve at 0.95 (critical by the
/// default thresholds) is ok under the valve's own, and only 0.995 opens an alert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_is_judged_by_the_thresholds_of_its_kind_in_its_systems_topology() {
    let (url, valve) = gnn_double().await;
    let p = TestPipeline::new(&[
        ("GNN_SERVICE_URL", &url),
        ("MANIFOLD__ALERTS__CONSECUTIVE_WINDOWS", "2"),
        ("MANIFOLD__ALERTS__THRESHOLDS__VALVE__WARNING", "0.96"),
        ("MANIFOLD__ALERTS__THRESHOLDS__VALVE__CRITICAL", "0.99"),
    ])
    .await;
    let app = spawn_app_with(p.config.clone(), p.db_url.clone()).await;
    let (owner, _) = app.register(&format!("{}-k@example.com", p.prefix)).await;
    let system = format!("{}-press", p.prefix);
    app.create_rig(&owner, &system).await;
    let stop = CancellationToken::new();
    let infer = tokio::spawn(manifold::startup::run(manifold::startup::ProcessSet::Infer, p.config.clone(), Metrics::new(), stop.clone()));
    let windows = Windows::new(&p);
    let t0 = (chrono::Utc::now().timestamp_micros() / MIN - 60) * MIN;
    let at = |k: i64| t0 + k * MIN;
    let timeout = Duration::from_secs(60);
    for (k, score) in [(0, 0.95), (1, 0.95), (2, 0.95)] {
        valve.lock().unwrap().insert(rfc3339(at(k)), score);
        windows.send(&system, at(k), 0).await;
    }
    // Derived through window 2 (scores are stored before their alerts are derived, so waiting
    // for the scores alone would not do).
    let derived = format!("SELECT count(*) FROM alert_cursors WHERE component_id = 'valve' AND (cursor->>'last_start')::timestamptz = '{}'", rfc3339(at(2)));
    p.wait_for(&derived, 1, timeout).await;
    assert_eq!(p.query_i64("SELECT count(*) FROM alerts").await, 0, "0.95 is below the valve's own warning threshold");
    assert_eq!(p.query_i64("SELECT count(*) FROM alert_cursors WHERE component_id = 'valve' AND cursor->>'state' = 'ok'").await, 1, "the valve is ok");
    for k in [3, 4] {
        valve.lock().unwrap().insert(rfc3339(at(k)), 0.995);
        windows.send(&system, at(k), 0).await;
    }
    p.wait_for("SELECT count(*) FROM alerts WHERE status = 'open' AND level = 'critical' AND component_id = 'valve'", 1, timeout).await;
    assert_eq!(p.query_i64("SELECT count(*) FROM alerts").await, 1);
    stop.cancel();
    infer.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agreeing_windows_open_one_alert_recovery_clears_it_revisions_revise_or_withdraw_it_and_an_ack_survives() {
    let (url, valve) = gnn_double().await;
    let p = TestPipeline::new(&[("GNN_SERVICE_URL", &url), ("MANIFOLD__ALERTS__CONSECUTIVE_WINDOWS", "2")]).await;
    let app = spawn_app_with(p.config.clone(), p.db_url.clone()).await;
    let (owner, owner_id) = app.register(&format!("{}-a@example.com", p.prefix)).await;
    let (stranger, _) = app.register(&format!("{}-b@example.com", p.prefix)).await;
    let system = format!("{}-press", p.prefix);
    app.create_rig(&owner, &system).await;
    let mut request = format!("{}/ws/systems/{system}/scores", app.base.replace("http://", "ws://")).into_client_request().unwrap();
    request.headers_mut().insert("x-api-key", owner.parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("websocket");
    let metrics = Metrics::new();
    let stop = CancellationToken::new();
    let infer = tokio::spawn(manifold::startup::run(manifold::startup::ProcessSet::Infer, p.config.clone(), metrics.clone(), stop.clone()));
    let windows = Windows::new(&p);
    let t0 = (chrono::Utc::now().timestamp_micros() / MIN - 60) * MIN;
    let at = |k: i64| t0 + k * MIN;
    let set = |k: i64, score: f64| valve.lock().unwrap().insert(rfc3339(at(k)), score);
    let timeout = Duration::from_secs(60);

    // Flapping opens nothing: critical, ok, critical, ok.
    for (k, score) in [(0, 0.95), (1, 0.1), (2, 0.95), (3, 0.1)] {
        set(k, score);
        windows.send(&system, at(k), 0).await;
    }
    p.wait_for("SELECT count(DISTINCT window_start) FROM anomaly_scores", 4, timeout).await;
    assert_eq!(p.query_i64("SELECT count(*) FROM alerts").await, 0, "flapping opened an alert");

    // Two agreeing windows (4, 5) open one alert at window 4; two ok ones (7, 8) clear it.
    for (k, score) in [(4, 0.95), (5, 0.95), (6, 0.8), (7, 0.1), (8, 0.1)] {
        set(k, score);
        windows.send(&system, at(k), 0).await;
    }
    p.wait_for("SELECT count(DISTINCT window_start) FROM anomaly_scores", 9, timeout).await;
    p.wait_for("SELECT count(*) FROM alerts WHERE status = 'cleared'", 1, timeout).await;
    let first: String = common::connect(&p.db_url).await.query_one("SELECT alert_id FROM alerts", &[]).await.unwrap().get(0);
    assert_eq!(first, manifold::domain::alerts::alert_id(&system, "valve", chrono::DateTime::from_timestamp_micros(at(4)).unwrap()));

    // The API: the owner sees it with the window that opened it; a stranger sees nothing.
    let page = app.get_json(&format!("/alerts/systems/{system}"), &owner).await;
    let alert = &page["items"][0];
    assert_eq!((alert["alert_id"].as_str(), alert["component_id"].as_str(), alert["level"].as_str()), (Some(first.as_str()), Some("valve"), Some("critical")));
    assert_eq!(alert["opened_by"]["window_start"].as_str().map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp_micros()), Some(at(4)));
    assert_eq!(alert["status"], "cleared");
    let status = |r: reqwest::Response| r.status();
    assert_eq!(status(app.req(Method::GET, &format!("/alerts/systems/{system}"), &stranger).send().await.unwrap()), StatusCode::NOT_FOUND);
    assert_eq!(status(app.req(Method::POST, &format!("/alerts/{first}/ack"), &stranger).send().await.unwrap()), StatusCode::NOT_FOUND);
    let acked = app.req(Method::POST, &format!("/alerts/{first}/ack"), &owner).send().await.unwrap();
    assert_eq!(acked.status(), StatusCode::OK);
    let acked: Value = acked.json().await.unwrap();
    assert_eq!(acked["acked_by"].as_str(), Some(owner_id.as_str()));
    // A repeated ack answers the same ack, without writing the alert again.
    // xmin is the transaction that last wrote the row: any UPDATE, even to the same values, moves it.
    let written = p.query_i64(&format!("SELECT xmin::text::int8 FROM alerts WHERE alert_id = '{first}'")).await;
    let again: Value = app.req(Method::POST, &format!("/alerts/{first}/ack"), &owner).send().await.unwrap().json().await.unwrap();
    assert_eq!((&again["acked_at"], &again["acked_by"]), (&acked["acked_at"], &acked["acked_by"]), "the first ack stands");
    assert_eq!(p.query_i64(&format!("SELECT xmin::text::int8 FROM alerts WHERE alert_id = '{first}'")).await, written, "a repeated ack wrote the alert again");

    // The period's summary: 9 scored minutes of the valve, 3 of them (4 to 7) in a critical
    // alert, one alert, acknowledged.
    let z = |us: i64| chrono::DateTime::from_timestamp_micros(us).unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let summary = app.get_json(&format!("/anomalies/systems/{system}/summary?from={}&to={}", z(at(0)), z(at(9))), &owner).await;
    let valve_summary = summary["components"].as_array().unwrap().iter().find(|c| c["component_id"] == "valve").unwrap().clone();
    assert_eq!(valve_summary["scored_seconds"], 540.0, "{summary}");
    assert_eq!((&valve_summary["states"]["critical"], &valve_summary["states"]["ok"]), (&json!(180.0), &json!(360.0)), "{summary}");
    assert_eq!(valve_summary["alerts"], 1);
    assert!(valve_summary["mean_time_to_ack_seconds"].as_f64().is_some_and(|s| s >= 0.0), "{summary}");
    let bad = app.req(Method::GET, &format!("/anomalies/systems/{system}/summary?from={}&to={}", z(at(9)), z(at(0))), &owner).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(status(app.req(Method::GET, &format!("/anomalies/systems/{system}/summary"), &stranger).send().await.unwrap()), StatusCode::NOT_FOUND);

    // A late revision of window 8 (critical) means it never cleared: the same alert, revised,
    // still acknowledged.
    set(8, 0.95);
    windows.send(&system, at(8), 1).await;
    p.wait_for("SELECT count(*) FROM alerts WHERE status = 'open' AND last_event = 'revised'", 1, timeout).await;
    let page = app.get_json(&format!("/alerts/systems/{system}"), &owner).await;
    assert_eq!(page["items"][0]["alert_id"].as_str(), Some(first.as_str()));
    assert_eq!(page["items"][0]["acked_at"], acked["acked_at"], "the ack survives the revision");

    // A late revision of window 5 (ok) breaks the opening streak: that alert is withdrawn and
    // none opens in its place (6 is a warning, 7 ok, 8 critical: no two agree).
    set(5, 0.1);
    windows.send(&system, at(5), 1).await;
    p.wait_for("SELECT count(*) FROM alerts WHERE status = 'withdrawn'", 1, timeout).await;
    assert_eq!(p.query_i64("SELECT count(*) FROM alerts WHERE status <> 'withdrawn'").await, 0);
    assert!(app.get_json(&format!("/alerts/systems/{system}"), &owner).await["items"].as_array().unwrap().is_empty());

    // Each event once on the topic, in the order it happened, as the table keeps them.
    let events = published(&p, 4).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.1.as_str()).collect();
    assert_eq!(kinds, ["opened", "cleared", "revised", "withdrawn"], "{events:?}");
    assert!(events.iter().all(|e| e.2 == first));
    assert_eq!(p.query_i64("SELECT count(*) FROM alert_events").await, 4);
    let render = metrics.render();
    let opened = render.lines().find(|l| l.starts_with("manifold_infer_alert_events_total") && l.contains("opened")).unwrap_or_default();
    assert!(opened.ends_with(" 1"), "{opened}");

    // The live feed carried both, each saying its type.
    let mut types = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while types.len() < 2 {
        let frame = tokio::time::timeout_at(deadline, socket.next()).await.expect("a score and an alert on the live feed").expect("open").expect("frame");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            let message: Value = serde_json::from_str(&text).unwrap();
            types.insert(message["type"].as_str().unwrap_or_default().to_owned());
        }
    }
    assert_eq!(types, BTreeSet::from(["alert".to_owned(), "score".to_owned()]));

    // Deleting the system deletes its alerts: whoever registers the id next starts without
    // them (and cannot see or acknowledge the last owner's).
    let gone = app.req(Method::DELETE, &format!("/metadata/{system}"), &owner).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    for table in ["alerts", "alert_events", "alert_versions"] {
        assert_eq!(p.query_i64(&format!("SELECT count(*) FROM {table} WHERE system_id = '{system}'")).await, 0, "{table} kept the deleted system's rows");
    }
    app.create_rig(&stranger, &system).await;
    assert!(app.get_json(&format!("/alerts/systems/{system}"), &stranger).await["items"].as_array().unwrap().is_empty());
    assert_eq!(status(app.req(Method::POST, &format!("/alerts/{first}/ack"), &stranger).send().await.unwrap()), StatusCode::NOT_FOUND);

    stop.cancel();
    infer.await.unwrap().unwrap();
    app.stop.cancel();
}

fn spawn_infer_binary(p: &TestPipeline) -> Child {
    let mut command = p.manifold(&["infer"]);
    command.stdout(Stdio::null()).stderr(Stdio::null());
    command.env("MANIFOLD__INFER__BATCH_SIZE", "3");
    command.spawn().expect("start manifold infer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_events_are_published_exactly_once_when_infer_is_killed_mid_stream() {
    let (url, valve) = gnn_double().await;
    let p = TestPipeline::new(&[("GNN_SERVICE_URL", &url), ("MANIFOLD__ALERTS__CONSECUTIVE_WINDOWS", "2")]).await;
    let prefix = p.rigs(3).await;
    let windows = Windows::new(&p);
    let t0 = (chrono::Utc::now().timestamp_micros() / MIN - 600) * MIN;
    // Per system: 4 critical windows, 4 ok ones, and again: two alerts each, opened and cleared.
    let pattern = [0.95, 0.95, 0.95, 0.95, 0.1, 0.1, 0.1, 0.1];
    let total = 16i64;
    for k in 0..total {
        valve.lock().unwrap().insert(rfc3339(t0 + k * MIN), pattern[k as usize % pattern.len()]);
    }
    let mut child = spawn_infer_binary(&p);
    let mut sent = 0i64;
    for k in 0..total {
        for s in 0..3 {
            windows.send(&format!("{prefix}-{s}"), t0 + k * MIN, 0).await;
            sent += 1;
        }
        if k % 4 == 3 && k < total - 1 {
            // Kill once some of what was sent is scored, so a batch is likely in flight.
            let scored = p.query_i64("SELECT count(DISTINCT (system_id, window_start)) FROM anomaly_scores").await;
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while p.query_i64("SELECT count(DISTINCT (system_id, window_start)) FROM anomaly_scores").await <= scored
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            child.kill().expect("SIGKILL");
            child.wait().unwrap();
            child = spawn_infer_binary(&p);
        }
    }
    p.wait_for("SELECT count(DISTINCT (system_id, window_start)) FROM anomaly_scores", sent, Duration::from_secs(90)).await;
    p.wait_for("SELECT count(*) FROM alerts WHERE status = 'cleared'", 6, Duration::from_secs(30)).await;
    let stored = p.query_i64("SELECT count(*) FROM alert_events").await;
    assert_eq!(stored, 12, "opened and cleared, twice per system");
    let events = published(&p, 12).await;
    let ids: BTreeSet<&str> = events.iter().map(|e| e.0.as_str()).collect();
    assert_eq!((events.len(), ids.len()), (12, 12), "each event exactly once: {events:?}");
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    events.iter().for_each(|e| *kinds.entry(e.1.as_str()).or_default() += 1);
    assert_eq!(kinds, BTreeMap::from([("cleared", 6), ("opened", 6)]));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_replay_scored_by_the_rig_model_opens_no_alert() {
    let dir = common::shipped_model_dir();
    let p = TestPipeline::new(&[("MANIFOLD__WINDOWS__IDLE_TIMEOUT_SECONDS", "3"), ("MANIFOLD__INFER__MODEL_DIR", dir.as_str()), ("MANIFOLD__ALERTS__CONSECUTIVE_WINDOWS", "2")]).await;
    let prefix = p.rigs(1).await;
    let system = format!("{prefix}-0");
    let cycles = manifold::rig::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/uci-sample"))).unwrap();
    let healthy: Vec<_> = cycles.iter().filter(|c| (c.conditions.cooler, c.conditions.valve, c.conditions.pump, c.conditions.accumulator) == (100, 100, 0, 130)).collect();
    assert!(!healthy.is_empty(), "the sample holds healthy cycles");
    let (stop_ingest, ingest) = p.spawn_ingest();
    let stop = CancellationToken::new();
    let infer = tokio::spawn(manifold::startup::run(manifold::startup::ProcessSet::Infer, p.config.clone(), Metrics::new(), stop.clone()));
    let encoder = RecordEncoder::for_batches(&p.config.schema_registry, &p.config.topics.batches.name).unwrap();
    let t0 = (chrono::Utc::now().timestamp_micros() / MIN - 30) * MIN;
    let windows = 6;
    for i in 0..windows {
        let batch = manifold::sim::cycle_batch(&system, healthy[i as usize % healthy.len()], t0 + i * MIN);
        p.produce(&system, &encoder.encode_batch(&batch).await.unwrap()).await;
    }
    p.wait_for("SELECT count(DISTINCT window_start) FROM anomaly_scores", windows, Duration::from_secs(60)).await;
    let other = format!("SELECT count(*) FROM anomaly_scores WHERE model_version <> '{}'", common::shipped_model_version());
    assert_eq!(p.query_i64(&other).await, 0, "the rig model scored");
    // Derived in the transaction that stored the last scores' events: by now, or never.
    p.wait_for("SELECT count(*) FROM alert_versions", 1, Duration::from_secs(10)).await;
    assert_eq!(p.query_i64("SELECT count(*) FROM alerts").await, 0, "a healthy replay opened an alert");
    assert_eq!(p.query_i64("SELECT count(*) FROM alert_events").await, 0);
    stop.cancel();
    infer.await.unwrap().unwrap();
    stop_ingest.cancel();
    ingest.await.unwrap();
}

/// A zombie's derivation (one that read the systems' alert versions before another derivation
/// of one of them committed) stores nothing for any system of its batch and is refused as
/// superseded; derived again, the batch goes through.
#[tokio::test]
async fn a_batch_derivation_overtaken_on_one_system_is_superseded_for_all_of_them() {
    let p = TestPipeline::new(&[]).await;
    let store = p.store();
    let level_of = |_: &str, _: &str, _: &str, _: Option<&str>, _: f64| manifold::domain::AlertLevel::Ok;
    let now = chrono::Utc::now();
    let batch = [
        manifold::store::AlertDerivation { system_id: "press-a", cause: (now, 0), oldest: now },
        manifold::store::AlertDerivation { system_id: "press-b", cause: (now, 0), oldest: now },
    ];
    // Another derivation of press-b, uncommitted while the batch reads its versions.
    let mut other = common::connect(&p.db_url).await;
    let other = other.transaction().await.unwrap();
    other.execute("INSERT INTO alert_versions (system_id, version) VALUES ('press-b', 1)", &[]).await.unwrap();
    let zombie = tokio::spawn({
        let store = store.clone();
        async move { store.derive_alerts(&batch, chrono::Duration::hours(24), 3, &level_of).await }
    });
    // The batch blocks on press-b's row in its compare-and-set until the other one commits.
    tokio::time::sleep(Duration::from_millis(500)).await;
    other.commit().await.unwrap();
    let refused = zombie.await.unwrap();
    assert!(matches!(refused, Err(manifold::store::StoreError::Superseded(_))), "{refused:?}");
    assert_eq!(p.query_i64("SELECT count(*) FROM alert_versions WHERE system_id = 'press-a'").await, 0, "press-a moved without press-b");
    store.derive_alerts(&batch, chrono::Duration::hours(24), 3, &level_of).await.expect("derived again from what is there");
    assert_eq!(p.query_i64("SELECT sum(version)::int8 FROM alert_versions").await, 1 + 2);
}
