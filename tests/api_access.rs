//! Keys, admin changes, usage, rate limits, quotas and the limits every route shares (413,
//! JSON errors, OpenAPI), against the real app on port 0.

mod common;

use std::time::Duration;

use common::app::{error_of, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn a_second_key_works_until_revoked_and_lists_show_only_prefixes() {
    let app = spawn_app(&[]).await;
    let (first, _) = app.register("keys@example.com").await;
    let created = app.req(Method::POST, "/users/me/keys", &first).json(&json!({"name": "gateway-3"})).send().await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let created: Value = created.json().await.unwrap();
    let second = created["api_key"].as_str().unwrap().to_owned();
    assert_eq!(app.get_json("/users/me", &second).await["email"], "keys@example.com");

    let list = app.get_json("/users/me/keys", &first).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|k| k.get("api_key").is_none() && k["prefix"].as_str().unwrap().len() == 12));

    let revoke = app.req(Method::DELETE, &format!("/users/me/keys/{}", created["key_id"].as_str().unwrap()), &first).send().await.unwrap();
    assert_eq!(revoke.status(), StatusCode::NO_CONTENT);
    let (status, _) = error_of(app.req(Method::GET, "/users/me", &second).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked key stops working at once");
    let again = app.req(Method::DELETE, &format!("/users/me/keys/{}", created["key_id"].as_str().unwrap()), &first).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn only_an_admin_changes_tiers_and_the_change_applies_at_once() {
    let app = spawn_app(&[]).await;
    let (user, user_id) = app.register("u@example.com").await;
    let admin = app.admin("root@example.com").await;
    let path = format!("/users/{user_id}");
    let (status, error) = error_of(app.req(Method::PATCH, &path, &user).json(&json!({"tier": "pro"})).send().await.unwrap()).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    let (status, error) = error_of(app.req(Method::PATCH, &path, &admin).json(&json!({"tier": "gold"})).send().await.unwrap()).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("tier")));
    assert_eq!(app.get_json("/users/me", &user).await["tier"], "free");
    let ok = app.req(Method::PATCH, &path, &admin).json(&json!({"tier": "pro"})).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(app.get_json("/users/me", &user).await["tier"], "pro", "the cached key sees the new tier");
    let disabled = app.req(Method::PATCH, &path, &admin).json(&json!({"disabled": true})).send().await.unwrap();
    assert_eq!(disabled.status(), StatusCode::OK);
    assert_eq!(app.req(Method::GET, "/users/me", &user).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let missing = app.req(Method::PATCH, "/users/0190f3e2-0000-7000-8000-000000000000", &admin).json(&json!({"tier": "pro"})).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn usage_counts_requests_per_day_and_is_private() {
    let app = spawn_app(&[]).await;
    let (key, user_id) = app.register("usage@example.com").await;
    let (other, _) = app.register("other@example.com").await;
    for _ in 0..5 {
        app.get_json("/users/me", &key).await;
    }
    let usage = app.get_json(&format!("/users/{user_id}/usage"), &key).await;
    let today = &usage["days"][0];
    assert_eq!(today["day"], chrono::Utc::now().date_naive().to_string());
    // Five reads of /users/me, and this usage request itself.
    assert_eq!(today["requests"], 6);
    assert_eq!(usage["systems"], 0);
    let (status, _) = error_of(app.req(Method::GET, &format!("/users/{user_id}/usage"), &other).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "another user's usage is not there");
    let client = common::connect(&app.db_url).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let used: Option<chrono::DateTime<chrono::Utc>> = client.query_one("SELECT max(last_used_at) FROM api_keys", &[]).await.unwrap().get(0);
    assert!(used.is_some(), "key use is flushed in the background");
}

#[tokio::test]
async fn over_the_tier_rate_a_request_gets_429_with_retry_after_and_ratelimit_headers() {
    let app = spawn_app(&[("MANIFOLD__API__TIERS__FREE__REQUESTS_PER_MINUTE", "60"), ("MANIFOLD__API__TIERS__FREE__BURST", "3")]).await;
    let (key, _) = app.register("fast@example.com").await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = app.req(Method::GET, "/users/me", &key).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        remaining.push(r.headers()["ratelimit-remaining"].to_str().unwrap().to_owned());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let limited = app.req(Method::GET, "/users/me", &key).send().await.unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(limited.headers()["retry-after"], "1");
    assert_eq!(limited.headers()["ratelimit-limit"], "3");
    let (_, error) = error_of(limited).await;
    assert_eq!(error["code"], "rate_limited");
    let metrics = app.http.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("manifold_http_errors_total{code=\"rate_limited\",route=\"/users/me\"} 1"), "{metrics}");
    let (other, _) = app.register("slow@example.com").await;
    assert_eq!(app.req(Method::GET, "/users/me", &other).send().await.unwrap().status(), StatusCode::OK, "limits are per user");
}

#[tokio::test]
async fn the_system_quota_of_a_tier_is_enforced_with_a_clear_error() {
    let app = spawn_app(&[("MANIFOLD__API__TIERS__FREE__MAX_SYSTEMS", "1")]).await;
    let (key, _) = app.register("quota@example.com").await;
    app.create_rig(&key, "rig-q1").await;
    let body = json!({"system_id": "rig-q2", "name": "Second", "topology": manifold::rig::rig_topology()});
    let (status, error) = error_of(app.req(Method::POST, "/metadata/", &key).json(&body).send().await.unwrap()).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::FORBIDDEN, Some("quota_exceeded")));
    assert!(error["message"].as_str().unwrap().contains("1 systems"), "{error}");
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413_and_errors_from_layers_are_json() {
    let app = spawn_app(&[("MANIFOLD__API__BODY_LIMIT_BYTES", "4096")]).await;
    let (key, _) = app.register("big@example.com").await;
    let huge = json!({"system_id": "rig-x", "name": "x".repeat(10_000), "topology": {"components": [], "sensors": []}});
    let (status, error) = error_of(app.req(Method::POST, "/metadata/", &key).json(&huge).send().await.unwrap()).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")));
    let (status, error) = error_of(app.req(Method::PUT, "/metadata/", &key).send().await.unwrap()).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")));
    let r = app.req(Method::GET, "/users/me", &key).send().await.unwrap();
    assert!(r.headers().contains_key("x-request-id"), "every answer carries a request id");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_the_docs_page_renders_it() {
    let app = spawn_app(&[]).await;
    let doc: Value = app.http.get(format!("{}/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in ["/users/register", "/metadata/{system_id}", "/ingestion/ingest", "/ingestion/batches/{batch_id}", "/readings/systems/{system_id}", "/anomalies/systems/{system_id}/latest", "/ws/systems/{system_id}/scores"] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    let docs = app.http.get(format!("{}/docs", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(docs.contains("/openapi.json"));
}

#[tokio::test]
async fn odd_times_and_text_are_client_errors_never_server_errors() {
    let app = spawn_app(&[]).await;
    let (key, _) = app.register("odd@example.com").await;
    app.create_rig(&key, "rig-odd").await;
    for (path, field) in [
        ("/readings/systems/rig-odd?to=-262143-01-01T00:30:00Z", "to"),
        ("/readings/systems/rig-odd?from=0001-01-01T00:00:00Z", "from"),
        ("/readings/systems/rig-odd?bucket=106751991167301d", "bucket"),
        ("/readings/systems/rig-odd?from=2020-01-01T00:00:00Z&bucket=1s", "bucket"),
        ("/readings/systems/rig-odd?after=-9000000000000000:PS1", "after"),
        ("/anomalies/systems/rig-odd?before=-5000-01-01T00:00:00Z", "before"),
    ] {
        let (status, error) = error_of(app.req(Method::GET, path, &key).send().await.unwrap()).await;
        assert_eq!((status, error["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some(field)), "{path}");
    }
    let (status, _) = error_of(app.req(Method::GET, "/readings/systems/%00", &key).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let r = app.http.post(format!("{}/users/register", app.base)).json(&json!({"email": "nul@example.com", "name": "a\u{0}b"})).send().await.unwrap();
    let (status, error) = error_of(r).await;
    assert_eq!((status, error["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("name")));
    let (status, _) = error_of(app.req(Method::GET, "/metadata/?name=%00", &key).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "text the database refuses is the client's error");
}

#[tokio::test]
async fn registrations_are_limited_per_client_address() {
    let app = spawn_app(&[("MANIFOLD__API__REGISTER_PER_HOUR", "2")]).await;
    app.register("first@example.com").await;
    app.register("second@example.com").await;
    let r = app.http.post(format!("{}/users/register", app.base)).json(&json!({"email": "third@example.com", "name": "x"})).send().await.unwrap();
    assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() > 60);
    let (status, error) = error_of(r).await;
    assert_eq!((status, error["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")));
}
