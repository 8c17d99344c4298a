//! PostgreSQL over TLS against the stack's TLS-enabled server: `scripts/stack` gives it a
//! throw-away CA (MANIFOLD_PG_CA) and a role, manifold_tls, that pg_hba.conf admits over TLS only.

mod common;

use std::process::Command;

use manifold::config::{Config, DatabaseConfig, Sources};
use manifold::store::{Store, StoreError};

use common::certs::unrelated_ca;

fn ca() -> String {
    common::stack::stack_variable("MANIFOLD_PG_CA")
}

/// The stack's server as `user`, with `query` appended to the URL.
fn url(user: &str, query: &str) -> String {
    let admin = &common::stack_env()["DATABASE_URL"];
    let address = admin.split('@').nth(1).and_then(|rest| rest.split('/').next()).expect("host:port in DATABASE_URL");
    format!("postgres://{user}:{user}@{address}/manifold?{query}")
}

fn load(database_url: &str) -> Result<Config, manifold::config::ConfigError> {
    let mut env = common::stack_env();
    env.insert("DATABASE_URL".into(), database_url.to_owned());
    env.insert("MANIFOLD__DATABASE__CONNECT_TIMEOUT_MS".into(), "5000".into());
    Config::load(&Sources::default(), &env)
}

fn database(database_url: &str) -> DatabaseConfig {
    load(database_url).expect("config loads").database
}

async fn encrypted(client: &tokio_postgres::Client) -> bool {
    client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).await.expect("pg_stat_ssl").get(0)
}


#[tokio::test]
async fn verify_full_connects_encrypted_on_dedicated_and_pooled_connections() {
    let config = database(&url("manifold_tls", &format!("sslmode=verify-full&sslrootcert={}", ca())));
    let dedicated = Store::dedicated(&config).await.expect("verify-full connects");
    assert!(encrypted(&dedicated).await);
    let pool = Store::new(&config).unwrap();
    assert!(encrypted(&pool.client().await.expect("pooled verify-full connects")).await);
}

#[tokio::test]
async fn key_value_form_is_understood_too() {
    let admin = &common::stack_env()["DATABASE_URL"];
    let port = admin.rsplit(':').next().and_then(|rest| rest.split('/').next()).unwrap();
    let text = format!(
        "host=localhost port={port} user=manifold_tls password = 'manifold_tls' dbname=manifold sslmode=verify-full sslrootcert='{}'",
        ca()
    );
    let client = Store::dedicated(&database(&text)).await.expect("key=value verify-full connects by host name");
    assert!(encrypted(&client).await);
}

#[tokio::test]
async fn verify_full_checks_the_host_name_and_verify_ca_does_not() {
    let admin = &common::stack_env()["DATABASE_URL"];
    let port = admin.rsplit(':').next().and_then(|rest| rest.split('/').next()).unwrap();
    // The certificate names 127.0.0.1 and localhost; reach the same server under another name.
    let as_other_name = |mode: &str| {
        format!(
            "host=not-in-the-certificate.invalid hostaddr=127.0.0.1 port={port} user=manifold_tls \
             password=manifold_tls dbname=manifold sslmode={mode} sslrootcert={}",
            ca()
        )
    };
    let err = Store::dedicated(&database(&as_other_name("verify-full"))).await.expect_err("a name mismatch is refused");
    assert!(err.to_string().contains("hostname mismatch"), "{err}");
    let client = Store::dedicated(&database(&as_other_name("verify-ca"))).await.expect("verify-ca checks the chain only");
    assert!(encrypted(&client).await);
}

#[tokio::test]
async fn a_wrong_ca_is_a_tls_error_naming_the_certificate_file() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = unrelated_ca(dir.path());
    let config = database(&url("manifold_tls", &format!("sslmode=verify-ca&sslrootcert={wrong}")));
    let err = Store::dedicated(&config).await.expect_err("an unrelated CA is refused");
    assert!(matches!(err, StoreError::Tls(_)), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&wrong) && text.contains("TLS handshake failed"), "{text}");
    // The pool reports it the same way.
    let pooled = Store::new(&config).unwrap().client().await.expect_err("the pool is refused too");
    assert!(pooled.to_string().contains(&wrong), "{pooled}");
}

#[tokio::test]
async fn disable_against_a_tls_only_role_says_tls_is_required() {
    let err = Store::dedicated(&database(&url("manifold_tls", "sslmode=disable"))).await.expect_err("refused");
    let text = err.to_string();
    assert!(matches!(err, StoreError::Tls(_)) && text.contains("requires TLS") && text.contains("sslmode=disable"), "{text}");
}

#[tokio::test]
async fn prefer_and_allow_end_up_encrypted_where_the_server_offers_tls() {
    // No sslmode at all is libpq's default, prefer: TLS first.
    let default = Store::dedicated(&database(&common::stack_env()["DATABASE_URL"])).await.unwrap();
    assert!(encrypted(&default).await, "prefer must not stay in plaintext when the server offers TLS");
    // allow tries plaintext first; the TLS-only rule refuses it, so the second attempt uses TLS.
    let allowed = Store::dedicated(&database(&url("manifold_tls", "sslmode=allow"))).await.expect("allow falls back to TLS");
    assert!(encrypted(&allowed).await);
    let required = Store::dedicated(&database(&url("manifold_tls", "sslmode=require"))).await.expect("require without a root");
    assert!(encrypted(&required).await);
}

#[test]
fn bad_tls_settings_are_configuration_errors() {
    let missing = load(&url("manifold_tls", "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")).unwrap_err().to_string();
    assert!(missing.contains("database.url") && missing.contains("/nonexistent/ca.pem"), "{missing}");
    let typo = load(&url("manifold_tls", "sslmode=verify_full")).unwrap_err().to_string();
    assert!(typo.contains("verify_full"), "{typo}");
}

fn run_manifold(args: &[&str], database_url: &str) -> std::process::Output {
    let env = common::stack_env();
    Command::new(env!("CARGO_BIN_EXE_manifold"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("ENV", "test")
        .env("DATABASE_URL", database_url)
        .env("KAFKA_BROKERS", &env["KAFKA_BROKERS"])
        .env("SCHEMA_REGISTRY_URL", &env["SCHEMA_REGISTRY_URL"])
        .output()
        .expect("run manifold")
}

fn check_postgres(database_url: &str) -> serde_json::Value {
    let out = run_manifold(&["check", "--format", "json"], database_url);
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    reports.as_array().and_then(|all| all.iter().find(|r| r["dependency"] == "postgres").cloned()).expect("a postgres report")
}

#[test]
fn check_reports_tls_problems_as_tls_problems() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = unrelated_ca(dir.path());
    let report = check_postgres(&url("manifold_tls", &format!("sslmode=verify-full&sslrootcert={wrong}")));
    assert_eq!(report["status"], "fail", "{report}");
    let (problem, fix) = (report["problem"].as_str().unwrap(), report["fix"].as_str().unwrap());
    assert!(problem.starts_with("TLS:") && problem.contains(&wrong), "{problem}");
    assert!(fix.contains("sslrootcert") && !fix.contains("scripts/stack"), "{fix}");

    let report = check_postgres(&url("manifold_tls", "sslmode=disable"));
    let (problem, fix) = (report["problem"].as_str().unwrap(), report["fix"].as_str().unwrap());
    assert!(problem.contains("requires TLS"), "{problem}");
    assert!(fix.contains("sslmode=require"), "{fix}");
    assert!(!report.to_string().contains(":manifold_tls@"), "the password stays hidden: {report}");

    // A command that fails on it names the same problem and fix as the README's table.
    let known = manifold::check::misconfig::DATABASE_TLS;
    let out = run_manifold(&["migrate"], &url("manifold_tls", &format!("sslmode=verify-full&sslrootcert={wrong}")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("problem: {}", known.name)) && stderr.contains(&format!("fix: {}", known.fix)), "{stderr}");
}

#[tokio::test]
async fn the_notification_listener_connects_over_tls_too() {
    use manifold::store::notify::{Notice, listen};
    let config = database(&url("manifold_tls", &format!("sslmode=verify-full&sslrootcert={}", ca())));
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (heard, mut hear) = tokio::sync::mpsc::unbounded_channel();
    let listener = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            listen(&config, "pg_tls_test", &shutdown, |notice| {
                let heard = heard.clone();
                async move {
                    let _ = heard.send(matches!(notice, Notice::Connected));
                    Ok(())
                }
            })
            .await
        })
    };
    let connected = tokio::time::timeout(std::time::Duration::from_secs(10), hear.recv()).await;
    shutdown.cancel();
    listener.await.unwrap();
    // manifold_tls is admitted over TLS only, so connecting at all means the session is encrypted.
    assert_eq!(connected.ok().flatten(), Some(true), "the LISTEN connection is made with verify-full");
}
