//! `spawn_app`: the real API on port 0 against a database of its own.

use manifold::api::AppState;
use manifold::config::Config;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub struct App {
    pub base: String,
    pub db_url: String,
    pub http: reqwest::Client,
    pub state: AppState,
    pub stop: CancellationToken,
}

/// A fresh, migrated database; `overrides` are environment overrides (variable → value).
pub async fn spawn_app(overrides: &[(&str, &str)]) -> App {
    let (db_url, _) = super::migrated_database().await;
    let mut env = vec![("DATABASE_URL", db_url.as_str()), ("MANIFOLD__API__USAGE_FLUSH_MS", "200")];
    env.extend_from_slice(overrides);
    spawn_app_with(super::config_with(&env), db_url).await
}

/// The API with a given configuration (a test pipeline's, for ingestion).
pub async fn spawn_app_with(config: Config, db_url: String) -> App {
    let store = manifold::api::store_for(&config).expect("store");
    let state = AppState::new(&config, store, manifold::telemetry::Metrics::new()).expect("api state");
    let stop = CancellationToken::new();
    let (bound, _) = manifold::api::serve("127.0.0.1:0".parse().unwrap(), state.clone(), stop.clone()).await.expect("serve");
    App { base: format!("http://{bound}"), db_url, http: reqwest::Client::new(), state, stop }
}

impl App {
    /// Registers a user and returns (API key, user id).
    pub async fn register(&self, email: &str) -> (String, String) {
        let r = self.http.post(format!("{}/users/register", self.base)).json(&json!({"email": email, "name": "Ops"})).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        (body["api_key"].as_str().unwrap().to_owned(), body["user"]["user_id"].as_str().unwrap().to_owned())
    }

    pub async fn admin(&self, email: &str) -> String {
        self.state.create_admin(email, "Admin").await.expect("admin").api_key
    }

    pub fn req(&self, method: Method, path: &str, key: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base)).header("X-API-Key", key)
    }

    pub async fn get_json(&self, path: &str, key: &str) -> Value {
        let r = self.req(Method::GET, path, key).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.unwrap()
    }

    /// Creates a system with the UCI rig topology.
    pub async fn create_rig(&self, key: &str, system_id: &str) {
        let body = json!({"system_id": system_id, "name": "Press line 3", "topology": manifold::rig::rig_topology()});
        let r = self.req(Method::POST, "/metadata/", key).json(&body).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "create {system_id}");
    }
}

/// Status and the `error` object of an error answer (which must be JSON).
pub async fn error_of(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    let body: Value = r.json().await.expect("every error has a JSON body");
    (status, body["error"].clone())
}
