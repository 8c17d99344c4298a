//! `manifold check`, run as the real binary: a healthy stack is OK, a stopped dependency is
//! reported with a fix instead of a panic.

mod common;

use std::process::{Command, Output};

fn manifold_check(format: &str, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_manifold"));
    command.args(["check", "--format", format]).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    command.env("ENV", "test");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("run manifold")
}

#[test]
fn check_reports_stopped_dependencies_with_a_fix_and_exit_code_1() {
    let out = manifold_check(
        "text",
        &[
            ("DATABASE_URL", &format!("postgres://manifold:secret-pw@{}/manifold", common::UNREACHABLE)),
            ("KAFKA_BROKERS", common::UNREACHABLE),
            ("SCHEMA_REGISTRY_URL", &format!("http://{}/apis/ccompat/v7", common::UNREACHABLE)),
            ("MANIFOLD__DATABASE__CONNECT_TIMEOUT_MS", "2000"),
            ("MANIFOLD__KAFKA__REQUEST_TIMEOUT_MS", "2000"),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for dependency in ["postgres", "kafka", "schema-registry"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(dependency))
            .unwrap_or_else(|| panic!("no {dependency} line: {stdout}"));
        assert!(line.contains("FAIL"), "{line}");
    }
    assert!(stdout.matches("fix:").count() >= 3, "each failure says how to fix it: {stdout}");
    assert!(stdout.contains("scripts/stack up"), "{stdout}");
    assert!(!stdout.contains("secret-pw") && !stderr.contains("secret-pw"), "the password stays hidden");
}

#[test]
fn check_reports_a_missing_database_and_missing_topics_as_json() {
    let env = common::stack_env();
    let (base, _) = env["DATABASE_URL"].rsplit_once('/').unwrap();
    let missing_db = format!("{base}/{}", common::unique("absent"));
    let missing_topic = common::unique("absent_topic");
    let out = manifold_check(
        "json",
        &[
            ("DATABASE_URL", &missing_db),
            ("KAFKA_BROKERS", &env["KAFKA_BROKERS"]),
            ("SCHEMA_REGISTRY_URL", &env["SCHEMA_REGISTRY_URL"]),
            ("MANIFOLD__TOPICS__SCORES__NAME", &missing_topic),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
    let by_name = |name: &str| {
        reports.as_array().unwrap().iter().find(|r| r["dependency"] == name).cloned().unwrap_or_else(|| panic!("no {name}: {reports}"))
    };
    let pg = by_name("postgres");
    assert_eq!(pg["status"], "fail");
    assert!(pg["problem"].as_str().unwrap().contains("does not exist"), "{pg}");
    let kafka = by_name("kafka");
    assert_eq!(kafka["status"], "fail");
    assert!(kafka["problem"].as_str().unwrap().contains(&missing_topic), "{kafka}");
    assert!(kafka["fix"].as_str().unwrap().contains("topics create"), "{kafka}");
    assert_eq!(by_name("schema-registry")["status"], "ok", "{reports}");
    assert_eq!(by_name("gnn-service")["status"], "skipped");
}
