//! The README's table of named misconfigurations, row by row: `manifold check` names the problem
//! and says what to do, and so does the exit error of a command that fails because of it.

mod common;

use std::process::Output;

use manifold::check::misconfig::{self, Misconfiguration};
use serde_json::Value;

/// The real binary with the stack's settings, `overrides` over them, and nothing else.
fn manifold(args: &[&str], overrides: &[(&str, &str)]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_manifold"));
    command.args(args).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    command.envs(common::stack_env()).env("MANIFOLD__INGEST__LISTEN", "127.0.0.1:0");
    command.env("MANIFOLD__DATABASE__CONNECT_TIMEOUT_MS", "2000").env("MANIFOLD__KAFKA__REQUEST_TIMEOUT_MS", "2000");
    command.envs(overrides.iter().copied());
    command.output().expect("run manifold")
}

/// `manifold check`'s report of `dependency`: it failed, its problem says `problem` and its fix `fix`.
fn assert_check(overrides: &[(&str, &str)], dependency: &str, problem: &str, fix: &str) {
    let out = manifold(&["check", "--format", "json"], overrides);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let reports: Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let report = reports.as_array().unwrap().iter().find(|r| r["dependency"] == dependency).expect("a report per dependency");
    assert_eq!(report["status"], "fail", "{report}");
    assert!(report["problem"].as_str().unwrap().contains(problem), "{report}");
    assert!(report["fix"].as_str().unwrap().contains(fix), "{report}");
}

/// `args` fails with exit code 1 and an error naming `known` with its fix.
fn assert_exit_error(args: &[&str], overrides: &[(&str, &str)], known: Misconfiguration) {
    let out = manifold(args, overrides);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "manifold {args:?}: {stderr}");
    assert!(stderr.contains(&format!("problem: {}", known.name)), "manifold {args:?}: {stderr}");
    assert!(stderr.contains(&format!("fix: {}", known.fix)), "manifold {args:?}: {stderr}");
}

fn database(name: &str) -> String {
    let url = common::stack_env()["DATABASE_URL"].clone();
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

#[test]
fn wrong_database_password() {
    let url = common::stack_env()["DATABASE_URL"].replacen(":manifold@", ":not-the-password@", 1);
    assert_ne!(url, common::stack_env()["DATABASE_URL"], "the stack's URL carries a password");
    let env = [("DATABASE_URL", url.as_str())];
    assert_check(&env, "postgres", "authentication failed", "user and password");
    assert_exit_error(&["ingest"], &env, misconfig::WRONG_DATABASE_PASSWORD);
}

#[test]
fn database_does_not_exist() {
    let url = database(&common::unique("absent"));
    let env = [("DATABASE_URL", url.as_str())];
    assert_check(&env, "postgres", "does not exist", "createdb");
    assert_exit_error(&["ingest"], &env, misconfig::DATABASE_MISSING);
}

#[test]
fn database_unreachable() {
    let url = format!("postgres://manifold:manifold@{}/manifold", common::UNREACHABLE);
    let env = [("DATABASE_URL", url.as_str())];
    assert_check(&env, "postgres", "cannot connect", "DATABASE_URL");
    assert_exit_error(&["ingest"], &env, misconfig::DATABASE_UNREACHABLE);
}

#[tokio::test]
async fn missing_migration() {
    let url = common::fresh_database().await;
    let env = [("DATABASE_URL", url.as_str())];
    assert_check(&env, "postgres", "schema is at version 0", "manifold migrate");
    assert_exit_error(&["dlq", "list"], &env, misconfig::SCHEMA_NOT_MIGRATED);
    let ingest = manifold(&["ingest"], &env);
    let stderr = String::from_utf8_lossy(&ingest.stderr);
    assert_eq!(ingest.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not migrated: run `manifold migrate`"), "{stderr}");
}

#[test]
fn unknown_topic() {
    let topic = common::unique("absent_topic");
    let env = [("MANIFOLD__TOPICS__BATCHES__NAME", topic.as_str())];
    assert_check(&env, "kafka", &topic, "topics create");
    assert_exit_error(&["offsets", "show"], &env, misconfig::UNKNOWN_TOPIC);
}

#[test]
fn kafka_unreachable() {
    let env = [("KAFKA_BROKERS", common::UNREACHABLE)];
    assert_check(&env, "kafka", "no broker answered", "KAFKA_BROKERS");
    assert_exit_error(&["offsets", "show"], &env, misconfig::KAFKA_UNREACHABLE);
}

#[test]
fn schema_registry_unreachable() {
    let url = format!("http://{}/apis/ccompat/v7", common::UNREACHABLE);
    let env = [("SCHEMA_REGISTRY_URL", url.as_str())];
    assert_check(&env, "schema-registry", "cannot reach it", "SCHEMA_REGISTRY_URL");
    assert_exit_error(&["schemas", "register"], &env, misconfig::REGISTRY_UNREACHABLE);
}
