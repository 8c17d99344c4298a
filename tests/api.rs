//! The HTTP API against the real app on port 0 and a database of its own per test.

mod common;

use common::app::{error_of, spawn_app};
use common::batch::BatchBuilder;
use manifold::rig::rig_topology;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn rig(system_id: &str) -> Value {
    json!({"system_id": system_id, "name": "Press line 3", "topology": rig_topology()})
}

#[tokio::test]
async fn register_returns_a_key_once_that_authenticates_as_bearer_or_header() {
    let app = spawn_app(&[]).await;
    let (key, _) = app.register("ops@example.com").await;
    let me: Value = app.req(reqwest::Method::GET, "/users/me", &key).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["email"], "ops@example.com");
    assert_eq!(me["tier"], "free");
    let bearer = app.http.get(format!("{}/users/me", app.base)).bearer_auth(&key).send().await.unwrap();
    assert_eq!(bearer.status(), StatusCode::OK);
    let client = common::connect(&app.db_url).await;
    let stored: Vec<u8> = client.query_one("SELECT hash FROM api_keys", &[]).await.unwrap().get(0);
    assert_ne!(stored, key.as_bytes(), "only a hash is stored");
}

#[tokio::test]
async fn bad_registrations_and_bad_keys_get_json_errors_naming_the_field() {
    let app = spawn_app(&[]).await;
    let r = app.http.post(format!("{}/users/register", app.base)).json(&json!({"email": "nope", "name": "x"})).send().await.unwrap();
    let (status, error) = error_of(r).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("email")));
    let r = app.http.post(format!("{}/users/register", app.base)).body("{\"email\": 5}").header("content-type", "application/json").send().await.unwrap();
    let (status, error) = error_of(r).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("email")));
    app.register("dup@example.com").await;
    let r = app.http.post(format!("{}/users/register", app.base)).json(&json!({"email": "DUP@example.com", "name": "x"})).send().await.unwrap();
    assert_eq!(error_of(r).await.0, StatusCode::CONFLICT);
    for key in ["", "mfk_0000000000000000", "not-a-key"] {
        let r = app.req(reqwest::Method::GET, "/users/me", key).send().await.unwrap();
        let (status, error) = error_of(r).await;
        assert_eq!((status, error["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")));
    }
}

#[tokio::test]
async fn equipment_crud_with_etags_and_tenancy() {
    let app = spawn_app(&[]).await;
    let (alice, _) = app.register("alice@example.com").await;
    let (bob, _) = app.register("bob@example.com").await;

    let created = app.req(reqwest::Method::POST, "/metadata/", &alice).json(&rig("rig-a")).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let etag = created.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, "\"1\"");
    let client = common::connect(&app.db_url).await;
    let series: i64 = client.query_one("SELECT count(*) FROM series WHERE system_id = 'rig-a'", &[]).await.unwrap().get(0);
    assert_eq!(series, 17, "a series per sensor of the topology");

    let again = app.req(reqwest::Method::POST, "/metadata/", &alice).json(&rig("rig-a")).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    for (path, method) in [("/metadata/rig-a", reqwest::Method::GET), ("/metadata/rig-a", reqwest::Method::DELETE)] {
        let r = app.req(method, path, &bob).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "another tenant's system is not there");
    }
    let list: Value = app.req(reqwest::Method::GET, "/metadata/", &bob).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["items"], json!([]));

    let patch = json!({"name": "Press line 3 (rebuilt)"});
    let missing = app.req(reqwest::Method::PATCH, "/metadata/rig-a", &alice).json(&patch).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::PRECONDITION_REQUIRED);
    let ok = app.req(reqwest::Method::PATCH, "/metadata/rig-a", &alice).header("If-Match", &etag).json(&patch).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.headers()["etag"], "\"2\"");
    let stale = app.req(reqwest::Method::PATCH, "/metadata/rig-a", &alice).header("If-Match", &etag).json(&patch).send().await.unwrap();
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);

    let page: Value = app.req(reqwest::Method::GET, "/metadata/?limit=1", &alice).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["items"][0]["name"], "Press line 3 (rebuilt)");
    assert_eq!(page["next"], "rig-a");

    let gone = app.req(reqwest::Method::DELETE, "/metadata/rig-a", &alice).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.req(reqwest::Method::GET, "/metadata/rig-a", &alice).send().await.unwrap().status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn invalid_topologies_are_rejected_with_the_offending_field() {
    let app = spawn_app(&[]).await;
    let (key, _) = app.register("t@example.com").await;
    let mut body = rig("rig-b");
    body["topology"]["sensors"][3]["component"] = json!("ghost");
    let (status, error) = error_of(app.req(reqwest::Method::POST, "/metadata/", &key).json(&body).send().await.unwrap()).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("topology.sensors[3].component")));
    let mut body = rig("bad id!");
    body["name"] = json!("x");
    let (status, error) = error_of(app.req(reqwest::Method::POST, "/metadata/", &key).json(&body).send().await.unwrap()).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("system_id")));
}

#[tokio::test]
async fn health_and_metrics_answer_without_a_key() {
    let app = spawn_app(&[]).await;
    for path in ["/health/", "/health/live", "/health/ready"] {
        assert_eq!(app.http.get(format!("{}{path}", app.base)).send().await.unwrap().status(), StatusCode::OK, "{path}");
    }
    let metrics = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(metrics.status(), StatusCode::OK);
    let (status, error) = error_of(app.http.get(format!("{}/nowhere", app.base)).send().await.unwrap()).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
}

#[tokio::test]
async fn a_cached_system_read_follows_changes_made_here_and_elsewhere() {
    let app = spawn_app(&[]).await;
    let (key, _) = app.register("cache@example.com").await;
    app.create_rig(&key, "rig-c").await;
    assert_eq!(app.get_json("/metadata/rig-c", &key).await["version"], 1);
    let patched = app.req(reqwest::Method::PATCH, "/metadata/rig-c", &key).header("If-Match", "\"1\"").json(&json!({"name": "Renamed"})).send().await.unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    let read = app.req(reqwest::Method::GET, "/metadata/rig-c", &key).send().await.unwrap();
    assert_eq!(read.headers()["etag"], "\"2\"");
    assert_eq!(read.json::<Value>().await.unwrap()["name"], "Renamed", "this instance's write is read back at once");

    // Another instance (or psql) changes the row: the database notification reaches the cache.
    let client = common::connect(&app.db_url).await;
    client.execute("UPDATE equipment SET name = 'From elsewhere', version = version + 1 WHERE system_id = 'rig-c'", &[]).await.unwrap();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let body = app.get_json("/metadata/rig-c", &key).await;
        if body["name"] == "From elsewhere" {
            assert_eq!(body["version"], 3);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the cache never saw the change: {body}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn every_authenticated_route_refuses_a_missing_key_with_a_json_401() {
    let app = spawn_app(&[]).await;
    let routes = [
        (reqwest::Method::GET, "/users/me"),
        (reqwest::Method::GET, "/users/me/keys"),
        (reqwest::Method::POST, "/users/me/keys"),
        (reqwest::Method::DELETE, "/users/me/keys/0190f3e2-0000-7000-8000-000000000000"),
        (reqwest::Method::PATCH, "/users/0190f3e2-0000-7000-8000-000000000000"),
        (reqwest::Method::GET, "/users/0190f3e2-0000-7000-8000-000000000000/usage"),
        (reqwest::Method::GET, "/metadata/"),
        (reqwest::Method::POST, "/metadata/"),
        (reqwest::Method::GET, "/metadata/rig-a"),
        (reqwest::Method::PATCH, "/metadata/rig-a"),
        (reqwest::Method::DELETE, "/metadata/rig-a"),
        (reqwest::Method::POST, "/ingestion/ingest"),
        (reqwest::Method::GET, "/ingestion/batches/b-1"),
        (reqwest::Method::GET, "/ingestion/systems/rig-a/latest"),
        (reqwest::Method::GET, "/readings/systems/rig-a"),
        (reqwest::Method::GET, "/anomalies/systems/rig-a"),
        (reqwest::Method::GET, "/anomalies/systems/rig-a/latest"),
        (reqwest::Method::GET, "/ws/systems/rig-a/scores"),
    ];
    for (method, path) in routes {
        let r = app.http.request(method.clone(), format!("{}{path}", app.base)).send().await.unwrap();
        let (status, error) = error_of(r).await;
        assert_eq!((status, error["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unauthorized")), "{method} {path}");
        assert_eq!(error["message"], "authentication required", "no detail on why");
    }
}

#[tokio::test]
async fn cors_answers_only_the_configured_origins() {
    let app = spawn_app(&[("MANIFOLD__API__CORS_ORIGINS", "https://grafana.example.com, https://ops.example.com")]).await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}/metadata/", app.base))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "GET")
            .header("Access-Control-Request-Headers", "x-api-key")
            .send()
    };
    let allowed = preflight("https://grafana.example.com").await.unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://grafana.example.com");
    let refused = preflight("https://evil.example.com").await.unwrap();
    assert!(!refused.headers().contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn with_the_broker_unreachable_readiness_says_kafka_and_ingestion_answers_503() {
    let app = spawn_app(&[("KAFKA_BROKERS", common::UNREACHABLE), ("MANIFOLD__API__REQUEST_TIMEOUT_MS", "2000")]).await;
    let r = app.http.get(format!("{}/health/ready", app.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = r.json().await.unwrap();
    assert_eq!((body["database"].as_bool(), body["kafka"].as_bool(), body["status"].as_str()), (Some(true), Some(false), Some("not_ready")));

    let (key, _) = app.register("down@example.com").await;
    app.create_rig(&key, "rig-down").await;
    let batch = BatchBuilder::new("rig-down").id("down-1").regular("PS1", chrono::Utc::now().timestamp_micros(), 10_000, vec![1.0]).body();
    let r = app.req(reqwest::Method::POST, "/ingestion/ingest", &key).json(&batch).send().await.unwrap();
    assert!(r.headers().contains_key("retry-after"));
    let (status, error) = error_of(r).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")), "a broker outage is a 503, never a 500");
}

#[tokio::test]
async fn a_statement_outliving_the_request_timeout_is_ended_by_the_database() {
    let app = spawn_app(&[("MANIFOLD__API__REQUEST_TIMEOUT_MS", "300")]).await;
    let client = app.state.store.client().await.unwrap();
    let started = std::time::Instant::now();
    let err = client.simple_query("SELECT pg_sleep(5)").await.expect_err("cancelled by statement_timeout");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "ended after {:?}", started.elapsed());
    assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::QUERY_CANCELED));
}
