//! Shared test helpers: every test gets its own database and topic names, so tests run in parallel
//! against the one local stack (`scripts/stack up`; `make test` starts it).
#![allow(dead_code)]

use std::collections::BTreeMap;

use manifold::config::{Config, Sources};

/// A test's base environment: the stack's connection settings (see `stack`) in a test deployment.
pub fn stack_env() -> BTreeMap<String, String> {
    let mut env = stack::stack_addresses();
    env.insert("ENV".into(), "test".into());
    env
}

/// A short id unique to this test run, for database, topic and group names.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple().to_string().get(..12).unwrap_or_default())
}

/// Creates an empty database of its own and returns its URL.
pub async fn fresh_database() -> String {
    let admin_url = stack_env()["DATABASE_URL"].clone();
    let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("the test stack's PostgreSQL must be up (make test starts it): {e}"));
    tokio::spawn(connection);
    let name = unique("mt");
    client.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create test database");
    let (base, _) = admin_url.rsplit_once('/').expect("DATABASE_URL ends in /dbname");
    format!("{base}/{name}")
}

/// Config for a test: the stack's settings plus the given overrides (variable name → value).
pub fn config_with(overrides: &[(&str, &str)]) -> Config {
    let mut env = stack_env();
    for (k, v) in overrides {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    Config::load(&Sources::default(), &env).expect("test config loads")
}

/// The Python with confluent-kafka installed (`scripts/python-env`; `make test` sets it).
pub fn python() -> String {
    std::env::var("MANIFOLD_PYTHON").unwrap_or_else(|_| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/python-env");
        let out = std::process::Command::new(script).output().expect("run scripts/python-env");
        assert!(out.status.success(), "scripts/python-env failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    })
}

pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

/// A database of its own with every migration applied: its URL and a connection to it.
pub async fn migrated_database() -> (String, tokio_postgres::Client) {
    let url = fresh_database().await;
    let mut client = connect(&url).await;
    manifold::store::migrate::up(&mut client).await.expect("migrate");
    (url, client)
}

/// The shipped model's directory, absolute, as `MANIFOLD__INFER__MODEL_DIR` takes it: one
/// place names the shipped version, `manifold::model::DEFAULT_MODEL_DIR`.
pub fn shipped_model_dir() -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(manifold::model::DEFAULT_MODEL_DIR).to_string_lossy().into_owned()
}

/// The version the shipped model reports with every score, as its manifest names it.
pub fn shipped_model_version() -> String {
    manifold::model::read_manifest(std::path::Path::new(&shipped_model_dir())).expect("the shipped manifest reads").version
}

/// An address nothing listens on (port 1 is never in use here), for a dependency that is down.
pub const UNREACHABLE: &str = "127.0.0.1:1";

pub mod adversarial;
pub mod app;
pub mod batch;
pub mod chaos;
pub mod certs;
pub mod pipeline;
pub mod promql;
pub mod proxy;
pub mod scores;
pub mod stack;
pub mod topic;
pub mod whole_path;
