//! Grafana: the shipped dashboards type-check against Grafana's published schema; every macro
//! and variable their queries use is in the expansion table written from Grafana's
//! documentation; after a short simulated stream, every SQL query, expanded as Grafana expands
//! it, answers the read-only role `manifold grants grafana` made with the frame Grafana needs,
//! without a sequential scan of readings; every PromQL expression parses (promtool) and reads
//! only metrics manifold registers.

mod common;
#[path = "common/grafana.rs"]
mod dashboards;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::batch::BatchBuilder;
use common::pipeline::TestPipeline;
use common::promql::{metric_names, registered_metrics, unregistered};
use dashboards::{Context, Query, Variable, queries};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

const MIN: i64 = 60_000_000;

fn context(from: DateTime<Utc>, to: DateTime<Utc>, variables: &[(&str, Variable)]) -> Context {
    Context { from, to, max_data_points: 1000, min_interval_s: 1, variables: variables.iter().map(|(n, v)| (n.to_string(), v.clone())).collect() }
}

#[test]
fn the_dashboards_type_check_against_grafana_published_schema() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/grafana-check");
    let out = Command::new(&script).output().unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "scripts/grafana-check failed:\n{said}");
    assert!(said.contains("all 2 dashboard(s) type-check"), "{said}");
}

/// The provisioning files as Grafana reads them are not loaded here (no Grafana runs); what
/// can break silently is checked: every data source a dashboard names is provisioned with the
/// same uid and type, and the dashboards provider reads the directory the compose file mounts.
#[test]
fn the_provisioning_defines_every_data_source_the_dashboards_use() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/grafana/provisioning");
    let sources = std::fs::read_to_string(dir.join("datasources/manifold.yml")).unwrap();
    // (uid, type) pairs in the order the file lists them.
    let uids: Vec<&str> = sources.lines().filter_map(|l| l.trim().strip_prefix("uid: ")).collect();
    let types: Vec<&str> = sources.lines().filter_map(|l| l.trim().strip_prefix("type: ")).collect();
    let provisioned: BTreeSet<(String, String)> = uids.iter().zip(&types).map(|(u, t)| (u.to_string(), t.to_string())).collect();
    assert_eq!(uids.len(), 2, "{sources}");
    let mut used = BTreeSet::new();
    for (file, dashboard) in dashboards::dashboards() {
        for r in collect_datasources(&dashboard) {
            let pair = (r["uid"].as_str().unwrap_or_default().to_owned(), r["type"].as_str().unwrap_or_default().to_owned());
            assert!(provisioned.contains(&pair), "{file} uses data source {pair:?}, provisioned are {provisioned:?}");
            used.insert(pair);
        }
    }
    assert_eq!(used, provisioned, "every provisioned data source is used");
    for var in ["${GRAFANA_PG_HOST}", "${GRAFANA_PG_USER}", "${GRAFANA_PG_PASSWORD}", "${GRAFANA_PROMETHEUS_URL}"] {
        assert!(sources.contains(var), "the data sources take {var} from the environment");
    }
    let provider = std::fs::read_to_string(dir.join("dashboards/manifold.yml")).unwrap();
    assert!(provider.contains("path: /var/lib/grafana/dashboards"), "{provider}");
}

/// Every `datasource` object in a dashboard (panels, targets, variables).
fn collect_datasources(v: &serde_json::Value) -> Vec<serde_json::Value> {
    match v {
        serde_json::Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| if k == "datasource" && v.is_object() { vec![v.clone()] } else { collect_datasources(v) })
            .collect(),
        serde_json::Value::Array(items) => items.iter().flat_map(collect_datasources).collect(),
        _ => vec![],
    }
}

#[test]
fn macros_expand_as_grafana_documents_them() {
    let from = "2017-04-21T05:01:17Z".parse().unwrap();
    let to = "2017-04-21T05:06:17Z".parse().unwrap();
    let ctx = context(from, to, &[("system", Variable::single("rig-0")), ("component", Variable::multi(&["pump".into(), "o'ring".into()]))]);
    let cases = [
        ("$__time(dateColumn)", "dateColumn AS \"time\""),
        ("$__timeEpoch(dateColumn)", "extract(epoch from dateColumn) AS \"time\""),
        ("$__timeFilter(dateColumn)", "dateColumn BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17Z'"),
        ("$__timeFrom()", "'2017-04-21T05:01:17Z'"),
        ("$__timeTo()", "'2017-04-21T05:06:17Z'"),
        ("$__timeGroup(dateColumn,'5m')", "floor(extract(epoch from dateColumn)/300)*300"),
        ("$__timeGroupAlias(dateColumn,'5m')", "floor(extract(epoch from dateColumn)/300)*300 AS \"time\""),
        ("$__unixEpochFilter(dateColumn)", "dateColumn >= 1492750877 AND dateColumn <= 1492751177"),
        ("$__unixEpochFrom()", "1492750877"),
        ("$__unixEpochTo()", "1492751177"),
        // 300 s over 1000 points: the 1 s minimum; the variable is replaced before the macro runs.
        ("$__timeGroupAlias(t, $__interval)", "floor(extract(epoch from t)/1)*1 AS \"time\""),
        ("x = $__interval_ms", "x = 1000"),
        ("system_id = '$system'", "system_id = 'rig-0'"),
        ("c IN ($component)", "c IN ('pump','o''ring')"),
        ("c IN (${component})", "c IN ('pump','o''ring')"),
    ];
    for (grafana, postgres) in cases {
        assert_eq!(ctx.expand_sql(grafana).unwrap(), postgres, "{grafana}");
    }
    let day = context(to - chrono::Duration::hours(24), to, &[]);
    assert_eq!(day.interpolate("$__interval $__rate_interval $__range").unwrap(), "2m 135s 1d");
    for unknown in ["$__timeGroup(t, '5m', 0)", "$__unixEpochNanoFilter(t)", "$__timeFilter", "x = $nope"] {
        assert!(ctx.expand_sql(unknown).is_err(), "{unknown} is not in the table, so it must not pass");
    }
}

#[test]
fn every_macro_and_variable_the_dashboards_use_is_in_the_expansion_table() {
    let now = Utc::now();
    let ctx = context(now - chrono::Duration::hours(6), now, &[("system", Variable::single("s")), ("component", Variable::multi(&["c".into()]))]);
    let all = queries();
    assert!(all.iter().filter(|q| q.source == "grafana-postgresql-datasource").count() >= 6, "{all:?}");
    for q in &all {
        let expanded = if q.source == "prometheus" { ctx.interpolate(&q.text) } else { ctx.expand_sql(&q.text) };
        let expanded = expanded.unwrap_or_else(|e| panic!("{} / {} / {}: {e}", q.dashboard, q.panel, q.ref_id));
        assert!(!expanded.contains('$'), "{} / {}: left unexpanded: {expanded}", q.dashboard, q.panel);
    }
    // The variables' own queries too.
    for (file, dashboard) in dashboards::dashboards() {
        for var in dashboard["templating"]["list"].as_array().cloned().unwrap_or_default() {
            let query = var["query"].as_str().unwrap_or_default();
            ctx.expand_sql(query).unwrap_or_else(|e| panic!("{file}: variable {}: {e}", var["name"]));
        }
    }
}

/// Writes every Prometheus expression as a recording rule and has promtool check the file:
/// promtool parses each expression with Prometheus's own parser.
#[test]
fn every_promql_expression_parses_and_reads_only_registered_metrics() {
    let now = Utc::now();
    let ctx = context(now - chrono::Duration::hours(6), now, &[]);
    let registered = registered_metrics();
    let prom: Vec<Query> = queries().into_iter().filter(|q| q.source == "prometheus").collect();
    let mut rules = String::from("groups:\n  - name: grafana_dashboards\n    rules:\n");
    let mut read = BTreeSet::new();
    for (i, q) in prom.iter().enumerate() {
        let expr = ctx.interpolate(&q.text).unwrap();
        let names = metric_names(&expr);
        assert!(!names.is_empty(), "{} / {}: an expression that reads no metric: {expr}", q.dashboard, q.panel);
        let unknown = unregistered(&names, &registered);
        assert!(unknown.is_empty(), "{} / {}: {unknown:?} are not registered by manifold ({expr})", q.dashboard, q.panel);
        read.extend(names);
        rules.push_str(&format!("      - record: grafana:panel_{i}\n        expr: {}\n", serde_json::to_string(&expr).unwrap()));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboards.yml");
    std::fs::write(&file, rules).unwrap();
    let out = Command::new("promtool").args(["check", "rules"]).arg(&file).output().unwrap_or_else(|e| {
        panic!("promtool: {e}; it comes with Debian's prometheus package, which `scripts/stack up` installs")
    });
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool rejects a dashboard expression:\n{said}");
    assert!(said.contains(&format!("{} rules found", prom.len())), "{said}");
    // The Pipeline panels, each backed by its metric.
    for metric in [
        "manifold_ingest_readings_consumed_total",
        "manifold_ingest_readings_written_total",
        "manifold_ingest_consumer_lag_messages",
        "manifold_infer_consumer_lag_messages",
        "manifold_ingest_chunk_write_seconds_bucket",
        "manifold_ingest_dead_letters_total",
        "manifold_ingest_end_to_end_delay_seconds_bucket",
        "manifold_infer_end_to_end_delay_seconds_bucket",
        "manifold_infer_windows_scored_total",
        "manifold_infer_scoring_seconds_bucket",
        "manifold_relay_backlog_events",
        "manifold_relay_events_published_total",
        "manifold_http_requests_total",
        "manifold_http_request_duration_seconds_bucket",
        "manifold_http_errors_total",
        "manifold_maintenance_actions_total",
        "manifold_maintenance_runs_total",
        "manifold_ingest_consumer_replaced_total",
        "manifold_infer_fenced_total",
    ] {
        assert!(read.contains(metric), "no Pipeline panel reads {metric}");
    }
}

#[test]
fn the_readme_lists_every_dashboard_and_panel() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme.split("### Grafana").nth(1).expect("README has a ### Grafana subsection");
    let section = section.split("\n## ").next().unwrap();
    for (file, dashboard) in dashboards::dashboards() {
        assert!(section.contains(&file), "README's Grafana section does not name {file}");
        for panel in dashboard["panels"].as_array().unwrap() {
            let title = panel["title"].as_str().unwrap();
            assert!(section.contains(title), "README's Grafana section does not list the panel {title:?} of {file}");
        }
    }
    assert!(section.contains("manifold grants grafana"), "the role command is in the README");
}

/// The column types a Grafana frame can plot as numbers.
fn numeric(t: &Type) -> bool {
    [Type::FLOAT4, Type::FLOAT8, Type::INT2, Type::INT4, Type::INT8, Type::NUMERIC].contains(t)
}

/// What Grafana needs from the rows of a query: a `time` column (a timestamp, or epoch seconds
/// as $__timeGroupAlias gives), at least one numeric value column; for a time series, every
/// other column is the `metric` name or a number (a text column would become a label, or break
/// the wide frame).
fn check_frame(q: &Query, columns: &[(String, Type)]) {
    let what = format!("{} / {} / {}", q.dashboard, q.panel, q.ref_id);
    let time = columns.iter().find(|(name, _)| name == "time").unwrap_or_else(|| panic!("{what}: no time column in {columns:?}"));
    assert!(time.1 == Type::TIMESTAMPTZ || numeric(&time.1), "{what}: the time column is {}", time.1);
    let values: Vec<_> = columns.iter().filter(|(name, t)| name != "time" && numeric(t)).collect();
    assert!(!values.is_empty(), "{what}: no numeric value column in {columns:?}");
    if q.format == "time_series" {
        for (name, t) in columns {
            assert!(name == "time" || name == "metric" || numeric(t), "{what}: column {name} is {t}, neither metric nor a number");
        }
    } else {
        assert_eq!(q.format, "table", "{what}: unknown format");
    }
}

/// The relations an EXPLAIN scans sequentially.
fn seq_scans(plan: &str) -> Vec<String> {
    plan.lines().filter_map(|l| l.split("Seq Scan on ").nth(1)).map(|rest| rest.split_whitespace().next().unwrap_or_default().to_owned()).collect()
}

#[test]
fn seq_scans_name_the_relations_a_plan_reads_sequentially() {
    let plan = "Nested Loop  (cost=0.29..42.81 rows=1 width=20)\n  ->  Seq Scan on series s  (cost=0.00..1.23 rows=5 width=8)\n\
                ->  Parallel Seq Scan on readings_p20261202 r  (cost=0.00..9.00 rows=1)\n\
                ->  Index Scan using readings_p20261201_series_id_time_idx on readings_p20261201 r  (cost=0.29..8.31 rows=1 width=20)";
    assert_eq!(seq_scans(plan), ["series", "readings_p20261202"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sql_panel_answers_the_read_only_role_with_a_frame_and_no_sequential_scan_of_readings() {
    let model = common::shipped_model_dir();
    let p = TestPipeline::new(&[("MANIFOLD__WINDOWS__IDLE_TIMEOUT_SECONDS", "2"), ("MANIFOLD__INFER__MODEL_DIR", model.as_str())]).await;
    let prefix = p.rigs(1).await;
    let system = format!("{prefix}-0");

    // A short stream: three rig cycles 30 minutes ago (three windows, scored by the rig model)
    // and one message naming a sensor the rig does not have (a dead letter of this system).
    let (stop_ingest, ingest) = p.spawn_ingest();
    let infer_token = tokio_util::sync::CancellationToken::new();
    let infer = tokio::spawn(manifold::startup::run(manifold::startup::ProcessSet::Infer, p.config.clone(), manifold::telemetry::Metrics::new(), infer_token.clone()));
    let cycles = manifold::rig::load(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/uci-sample"))).unwrap();
    let encoder = manifold::codec::RecordEncoder::for_batches(&p.config.schema_registry, &p.config.topics.batches.name).unwrap();
    let t0 = (Utc::now().timestamp_micros() / MIN - 30) * MIN;
    for (i, cycle) in cycles.iter().take(3).enumerate() {
        let batch = manifold::sim::cycle_batch(&system, cycle, t0 + i as i64 * MIN);
        p.produce(&system, &encoder.encode_batch(&batch).await.unwrap()).await;
    }
    let bad = BatchBuilder::new(&system).id("grafana-bad").per_second("PS99", t0, vec![1.0, 2.0]);
    p.produce(&system, &bad.json()).await;
    p.wait_for("SELECT count(DISTINCT window_start) FROM anomaly_scores", 3, Duration::from_secs(40)).await;
    p.wait_for("SELECT count(*) FROM dead_letters WHERE system_id IS NOT NULL", 1, Duration::from_secs(10)).await;
    infer_token.cancel();
    stop_ingest.cancel();
    let _ = tokio::join!(infer, ingest);

    // The role, made by the command an operator runs (part 1 as the stack's CREATEROLE role).
    let role = common::unique("grafana_ro").to_lowercase();
    let password = common::unique("pw");
    let admin_url = common::stack::stack_variable("MANIFOLD_PG_ADMIN_URL");
    let _cleanup = DropRole { role: role.clone(), owner_url: p.db_url.clone(), admin_url: admin_url.clone() };
    let out = p
        .manifold(&["grants", "grafana", &role, "--login", "--execute"])
        .env("MANIFOLD_PG_ADMIN_URL", &admin_url)
        .env("GRAFANA_PG_PASSWORD", &password)
        .output()
        .unwrap();
    assert!(out.status.success(), "manifold grants grafana: {}", String::from_utf8_lossy(&out.stderr));
    let mut url = reqwest::Url::parse(&p.db_url).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(Some(&password)).unwrap();
    let ro = common::connect(url.as_str()).await;
    let owner = common::connect(&p.db_url).await;

    // Read-only, and only the views.
    for refused in ["SELECT count(*) FROM api_keys", "SELECT count(*) FROM readings", "CREATE TABLE grafana_was_here (x int)"] {
        let err = ro.simple_query(refused).await.expect_err(refused);
        let code = err.code().cloned();
        assert!(
            code == Some(SqlState::INSUFFICIENT_PRIVILEGE) || code == Some(SqlState::READ_ONLY_SQL_TRANSACTION),
            "{refused}: {:?}",
            err.as_db_error()
        );
    }

    let readings: BTreeSet<String> = owner
        .query("SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'readings'::regclass", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .chain(["readings".to_owned()])
        .collect();
    assert!(readings.len() > 1, "readings has partitions: {readings:?}");

    // The variables, as Grafana resolves them (as the role). Grafana's time macros have whole
    // seconds (its documentation: `BETWEEN '2017-04-21T05:01:17Z' AND …`), so a range ending at
    // this instant would miss what the stream wrote in the current second: the dashboard is
    // looked at one second later.
    let now = Utc::now() + chrono::Duration::seconds(1);
    let vars_ctx = context(now - chrono::Duration::hours(24), now, &[("system", Variable::single(&system))]);
    let equipment = &dashboards::dashboards()["equipment.json"];
    let mut resolved: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for var in equipment["templating"]["list"].as_array().unwrap() {
        let sql = vars_ctx.expand_sql(var["query"].as_str().unwrap()).unwrap();
        let rows = ro.query(&sql, &[]).await.unwrap_or_else(|e| panic!("variable {}: {e}\n{sql}", var["name"]));
        resolved.insert(var["name"].as_str().unwrap().to_owned(), rows.iter().map(|r| r.get::<_, String>(0)).collect());
    }
    assert!(resolved["system"].contains(&system), "{resolved:?}");
    assert!(resolved["component"].len() >= 4, "{resolved:?}");

    // Every SQL query over the last 24 h and the last hour, with "All" components.
    let ranges = [("24 h", now - chrono::Duration::hours(24)), ("1 h", now - chrono::Duration::hours(1))];
    let sql_queries: Vec<Query> = queries().into_iter().filter(|q| q.source == "grafana-postgresql-datasource").collect();
    let mut rows_by_panel: BTreeMap<(String, &str), usize> = BTreeMap::new();
    for q in &sql_queries {
        let mut rows_in_some_range = 0;
        for (label, from) in &ranges {
            let ctx = context(*from, now, &[("system", Variable::single(&system)), ("component", Variable::multi(&resolved["component"]))]);
            let sql = ctx.expand_sql(&q.text).unwrap();
            let statement = ro.prepare(&sql).await.unwrap_or_else(|e| panic!("{} / {}: {e}\n{sql}", q.panel, q.ref_id));
            let columns: Vec<(String, Type)> = statement.columns().iter().map(|c| (c.name().to_owned(), c.type_().clone())).collect();
            check_frame(q, &columns);
            let rows = ro.query(&statement, &[]).await.unwrap_or_else(|e| panic!("{} / {} over {label}: {e}\n{sql}", q.panel, q.ref_id));
            rows_in_some_range += rows.len();
            *rows_by_panel.entry((q.panel.clone(), label)).or_default() += rows.len();
            let plan: Vec<String> = ro.query(&format!("EXPLAIN {sql}"), &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
            let plan = plan.join("\n");
            let on_readings: Vec<String> = seq_scans(&plan).into_iter().filter(|rel| readings.contains(rel)).collect();
            assert!(on_readings.is_empty(), "{} / {} over {label} scans {on_readings:?} sequentially:\n{plan}", q.panel, q.ref_id);
        }
        if rows_in_some_range == 0 {
            // What the owner sees, to tell a panel's fault from the stream's.
            let letters: Vec<String> = owner
                .query("SELECT format('%s %s %s', system_id, received_at, error_kind) FROM dead_letters", &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            panic!("{} / {}: no rows over 24 h or 1 h before {now} for system {system}; dead letters: {letters:?}", q.panel, q.ref_id);
        }
    }
    for ((panel, label), rows) in &rows_by_panel {
        assert!(*rows > 0, "the panel {panel:?} shows nothing over the last {label}");
    }

}

/// Roles are cluster-wide: the test's role goes when the test ends, passed or failed. Its
/// grants go with the owner's REVOKE, then the admin drops it (on a thread of its own, as Drop
/// cannot await).
struct DropRole {
    role: String,
    owner_url: String,
    admin_url: String,
}

impl Drop for DropRole {
    fn drop(&mut self) {
        let (role, owner_url, admin_url) = (self.role.clone(), self.owner_url.clone(), self.admin_url.clone());
        let dropped = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async move {
                let views = manifold::store::grants::GRAFANA_VIEWS.join(", ");
                let database = owner_url.rsplit('/').next().unwrap_or_default().to_owned();
                let revoke = format!(
                    "REVOKE ALL ON {views} FROM \"{role}\"; REVOKE ALL ON SCHEMA public FROM \"{role}\"; REVOKE ALL ON DATABASE \"{database}\" FROM \"{role}\""
                );
                common::connect(&owner_url).await.batch_execute(&revoke).await?;
                common::connect(&admin_url).await.batch_execute(&format!("DROP ROLE IF EXISTS \"{role}\"")).await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test role {}: {dropped:?}", self.role);
        }
    }
}
