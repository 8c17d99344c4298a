//! Prometheus: the shipped configuration and alert rules check with `promtool`, every alert
//! has unit tests that fire and stay quiet (`config/prometheus/tests/`), every expression reads
//! only metrics manifold registers, and a real Prometheus (the stack's own instance) scrapes a
//! running `manifold ingest` and answers a query for its metrics.
//!
//! promtool and prometheus come from Debian's `prometheus` package, which `scripts/stack up`
//! installs (`make test` runs it first).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::pipeline::TestPipeline;
use common::promql::{metric_names, registered_metrics, unregistered};
use common::whole_path::Ingest;

fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/prometheus")
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(config_dir().join(dir))
        .unwrap_or_else(|e| panic!("config/prometheus/{dir}: {e}"))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "config/prometheus/{dir} holds no .yml file");
    files
}

/// Runs promtool and insists it succeeded, showing what it said otherwise.
fn promtool(args: &[&str], files: &[PathBuf]) {
    let out = Command::new("promtool").args(args).args(files).current_dir(config_dir()).output().unwrap_or_else(|e| {
        panic!("promtool: {e}; it comes with Debian's prometheus package, which `scripts/stack up` installs (or: apt-get install --no-install-recommends prometheus)")
    });
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {args:?} {files:?} failed:\n{said}");
}

#[test]
fn promtool_accepts_the_configuration_and_every_alert_passes_its_unit_tests() {
    promtool(&["check", "config"], &[config_dir().join("prometheus.yml")]);
    promtool(&["check", "rules"], &yaml_files("rules"));
    promtool(&["test", "rules"], &yaml_files("tests"));
}

/// The values of `key` in a YAML file as manifold's rule and test files write them: inline, or a
/// block scalar (`|`, `>-`) on the lines indented below the key. promtool has already checked
/// the files are valid; this only reads them.
fn yaml_values(text: &str, key: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut values = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let body = line.trim_start().trim_start_matches("- ");
        let Some(rest) = body.strip_prefix(key).and_then(|r| r.strip_prefix(':')) else { continue };
        let rest = rest.trim();
        if ["|", "|-", ">", ">-"].contains(&rest) {
            let indent = line.len() - line.trim_start().len();
            let block: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
                .map(|l| l.trim())
                .collect();
            values.push(block.join("\n").trim().to_owned());
        } else {
            values.push(rest.trim_matches('"').to_owned());
        }
    }
    values
}

#[test]
fn every_alert_says_what_to_look_at_has_a_severity_and_is_tested_firing_and_quiet() {
    let mut alerts = Vec::new();
    for file in yaml_files("rules") {
        let text = std::fs::read_to_string(&file).unwrap();
        let names = yaml_values(&text, "alert");
        for (what, count) in [("expr", yaml_values(&text, "expr").len()), ("severity", yaml_values(&text, "severity").len())] {
            assert_eq!(count, names.len(), "{}: every alert has one {what}", file.display());
        }
        for key in ["summary", "description"] {
            let values = yaml_values(&text, key);
            assert_eq!(values.len(), names.len(), "{}: every alert has a {key}", file.display());
            assert!(values.iter().all(|v| v.len() > 20), "{}: a {key} says something: {values:?}", file.display());
        }
        for severity in yaml_values(&text, "severity") {
            assert!(["page", "ticket"].contains(&severity.as_str()), "severity is page or ticket, not {severity}");
        }
        alerts.extend(names);
    }
    assert!(alerts.len() >= 12, "the issue's alerts are all there: {alerts:?}");

    // Each `alertname:` of a test is followed by its `exp_alerts:`; `[]` is a quiet case.
    let (mut fired, mut quiet) = (BTreeSet::new(), BTreeSet::new());
    for file in yaml_files("tests") {
        let text = std::fs::read_to_string(&file).unwrap();
        let cases = yaml_values(&text, "alertname");
        let expected = yaml_values(&text, "exp_alerts");
        assert_eq!(cases.len(), expected.len(), "{}: every alert test has exp_alerts", file.display());
        for (alert, exp) in cases.into_iter().zip(expected) {
            if exp == "[]" { quiet.insert(alert) } else { fired.insert(alert) };
        }
    }
    for alert in &alerts {
        assert!(fired.contains(alert), "{alert}: no promtool test where it fires");
        assert!(quiet.contains(alert), "{alert}: no promtool test where it stays quiet");
    }
}

#[test]
fn promql_names_read_metric_names_only() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(r#"sum without (partition) (rate(manifold_a_total{reason=~"x|y", le="+Inf"}[5m] offset 1h)) / on(job) group_left(instance) manifold_b > 1e-3"#),
        ["manifold_a_total", "manifold_b"]
    );
    assert_eq!(names(r#"histogram_quantile(0.95, sum by (le) (rate(m_bucket{system="$system"}[$__rate_interval])))"#), ["m_bucket"]);
    assert_eq!(names("a unless b or vector(0) and bool c"), ["a", "b", "c"]);
    let registered = vec!["h".to_owned(), "c_total{reason}".to_owned()];
    let read = ["h_bucket", "h_sum", "h_count", "c_total", "c_totally", "up"].map(String::from);
    assert_eq!(unregistered(&read, &registered), ["c_totally", "up"]);
}

#[test]
fn every_expression_of_the_rules_names_only_metrics_manifold_registers() {
    let registered = registered_metrics();
    let mut read = BTreeSet::new();
    for file in yaml_files("rules") {
        for expr in yaml_values(&std::fs::read_to_string(&file).unwrap(), "expr") {
            let names = metric_names(&expr);
            assert!(!names.is_empty(), "{}: an expression that reads no metric: {expr}", file.display());
            let unknown = unregistered(&names, &registered);
            assert!(unknown.is_empty(), "{}: {unknown:?} are not registered by manifold (expression: {expr})", file.display());
            read.extend(names);
        }
    }
    // The lag of both consumers is watched (infer's gauge exists for these alerts).
    for gauge in ["manifold_ingest_consumer_lag_messages", "manifold_infer_consumer_lag_messages"] {
        assert!(read.contains(gauge), "no rule reads {gauge}");
    }
}

/// A targets file in the stack Prometheus's file discovery directory, removed when dropped.
struct ScrapeTarget(PathBuf);

impl ScrapeTarget {
    fn write(address: &str, run: &str) -> Self {
        let dir = PathBuf::from(common::stack::stack_setting("PROMETHEUS_FILE_SD_DIR"));
        let path = dir.join(format!("{run}.json"));
        let targets = serde_json::json!([{"targets": [address], "labels": {"test_run": run}}]);
        // Written aside and renamed, so discovery never reads half a file.
        let partial = dir.join(format!(".{run}.json.tmp"));
        std::fs::write(&partial, targets.to_string()).unwrap_or_else(|e| panic!("{}: {e} (is the stack's Prometheus up?)", partial.display()));
        std::fs::rename(&partial, &path).unwrap();
        ScrapeTarget(path)
    }
}

impl Drop for ScrapeTarget {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn query(http: &reqwest::Client, base: &str, promql: &str) -> serde_json::Value {
    let url = reqwest::Url::parse_with_params(&format!("{base}/api/v1/query"), &[("query", promql)]).unwrap();
    let answer = http.get(url).send().await;
    let body: serde_json::Value = answer.unwrap_or_else(|e| panic!("Prometheus at {base}: {e}")).json().await.unwrap();
    assert_eq!(body["status"], "success", "{promql}: {body}");
    body["data"]["result"].clone()
}

#[tokio::test]
async fn the_stack_prometheus_scrapes_a_running_manifold_and_loads_the_rules() {
    let base = common::stack::stack_setting("PROMETHEUS_URL");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();

    // The rules as shipped, loaded by a real Prometheus.
    let rules: serde_json::Value = http.get(format!("{base}/api/v1/rules")).send().await.unwrap().json().await.unwrap();
    let loaded: BTreeSet<&str> =
        rules["data"]["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap()).filter_map(|r| r["name"].as_str()).collect();
    for file in yaml_files("rules") {
        for alert in yaml_values(&std::fs::read_to_string(&file).unwrap(), "alert") {
            assert!(loaded.contains(alert.as_str()), "the stack's Prometheus has not loaded {alert}: {loaded:?}");
        }
    }

    let pipeline = TestPipeline::new(&[]).await;
    let ingest = Ingest::start(&pipeline);
    let started = Instant::now();
    let address = loop {
        if let Some(address) = ingest.listen() {
            break address;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "manifold ingest did not log its listener:\n{}", ingest.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let run = common::unique("scrape");
    let _target = ScrapeTarget::write(&address, &run);

    // Unlabelled metrics are exported from the start, so the first scrape carries them.
    let promql = format!(r#"manifold_ingest_paused{{test_run="{run}"}}"#);
    let deadline = Instant::now() + Duration::from_secs(30);
    let result = loop {
        let result = query(&http, &base, &promql).await;
        if result.as_array().is_some_and(|r| !r.is_empty()) {
            break result;
        }
        assert!(Instant::now() < deadline, "Prometheus at {base} did not scrape manifold ingest at {address} within 30 s: {promql} is empty");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(result[0]["metric"]["instance"], address.as_str(), "{result}");
    assert_eq!(result[0]["value"][1], "0", "a running ingest is not paused: {result}");
    let up = query(&http, &base, &format!(r#"up{{test_run="{run}"}}"#)).await;
    assert_eq!(up[0]["value"][1], "1", "{up}");
}
