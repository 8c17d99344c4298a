//! The TimescaleDB path against a real TimescaleDB: the stack's pglite (PostgreSQL 17 in WASM with
//! TimescaleDB 2.23 and its TSL features, `TIMESCALE_URL`). It holds one backend and serves one
//! connection at a time, so the tests take turns (one lock), start from a clean schema, and never
//! hold two connections at once: every client is dropped before the next one is opened.
//!
//! The timescaledb extension, once loaded into that backend, cannot be dropped and created again,
//! so the reset keeps it: the first migrate on a fresh server creates it (through the savepoint
//! probe), later ones find it installed.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::Instant;

use chrono::{DateTime, Duration, DurationRound, Utc};
use manifold::config::Config;
use manifold::domain::{AcceptedBatch, Row};
use manifold::store::ingest::{Chunk, write_chunk};
use manifold::store::maintenance::{Maintenance, MaintenanceReport};
use manifold::store::{StorageEngine, Store, migrate};
use manifold::telemetry::Metrics;
use manifold::window::WindowSpec;
use tokio::sync::Mutex;

/// pglite serves one connection at a time: the tests take turns.
static TURN: Mutex<()> = Mutex::const_new(());

fn timescale_url() -> String {
    common::stack::stack_variable("TIMESCALE_URL")
}

fn config(retention_days: u32) -> Config {
    common::config_with(&[
        ("DATABASE_URL", &timescale_url()),
        ("MANIFOLD__DATABASE__POOL_SIZE", "1"),
        ("MANIFOLD__STORAGE__RETENTION_DAYS", &retention_days.to_string()),
    ])
}

async fn connect() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&timescale_url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("pglite must be up (`scripts/stack up`, or `scripts/stack up pglite`): {e}"));
    tokio::spawn(connection);
    client
}

/// Drops what earlier tests (or an interrupted run) left in `public`, keeping the extension.
const RESET: &str = r#"
DO $reset$
DECLARE r record;
BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
    FOR r IN SELECT view_name FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'public' LOOP
      EXECUTE format('DROP MATERIALIZED VIEW %I CASCADE', r.view_name);
    END LOOP;
  END IF;
  FOR r IN SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v')
             AND NOT EXISTS (SELECT 1 FROM pg_depend d
                             WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') LOOP
    EXECUTE format('DROP %s IF EXISTS %I CASCADE', CASE r.relkind WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END, r.relname);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS f FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'public' AND p.proname LIKE 'manifold\_%' LOOP
    EXECUTE format('DROP FUNCTION %s CASCADE', r.f);
  END LOOP;
END
$reset$;
"#;

async fn reset() {
    connect().await.batch_execute(RESET).await.expect("reset the pglite schema");
}

/// Applies every migration through the library, on a connection of its own.
async fn migrate_up() -> migrate::MigrationReport {
    let mut client = connect().await;
    migrate::up(&mut client).await.expect("migrate on pglite")
}

/// Readings of one series, `(offset from `at` in seconds, value)`.
fn rows(series_id: i32, at: DateTime<Utc>, points: &[(i64, f64)]) -> Vec<Row> {
    points.iter().map(|(s, v)| Row { series_id, time_us: (at + Duration::seconds(*s)).timestamp_micros(), value: *v }).collect()
}

/// Writes rows through the real ingest transaction (COPY, latest values, aggregate or refresh
/// record), on a pool of one connection that is closed again before returning.
async fn ingest(config: &Config, engine: StorageEngine, rows: Vec<Row>) {
    let sensors: HashMap<i32, String> = rows.iter().map(|r| (r.series_id, format!("s{}", r.series_id))).collect();
    let batch = AcceptedBatch { system_id: "rig".into(), batch_id: common::unique("b"), rows, sensors };
    let store = Store::new(&config.database).expect("pool");
    let mut client = store.client().await.expect("pooled connection");
    let tx = client.transaction().await.expect("begin");
    let chunk = Chunk { batches: vec![&batch], dead_letters: vec![], offsets: vec![] };
    write_chunk(&tx, "timescale-test", engine, &WindowSpec::from_config(&config.windows), &chunk, &mut manifold::telemetry::traces::ChunkTrace::off()).await.expect("write chunk");
    tx.commit().await.expect("commit");
}

async fn maintain(config: &Config, now: DateTime<Utc>) -> MaintenanceReport {
    Maintenance::new(config.database.clone(), config.storage.clone(), Metrics::new()).run_once(now).await.expect("maintenance pass")
}

type Bucket = (i32, DateTime<Utc>, i64, f64, f64, f64, f64);

/// `readings_1m` as served (mean = sum / n, as the API computes it).
async fn aggregate(client: &tokio_postgres::Client) -> Vec<Bucket> {
    let sql = "SELECT series_id, bucket, n, sum, min, max, sum / n FROM readings_1m ORDER BY 1, 2";
    client.query(sql, &[]).await.unwrap().iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6))).collect()
}

/// The same buckets computed directly from the raw readings with plain SQL.
async fn expected(client: &tokio_postgres::Client) -> Vec<Bucket> {
    let sql = "SELECT series_id, date_bin('1 minute', time, 'epoch'), count(*), sum(value), min(value), max(value), avg(value) \
               FROM readings GROUP BY 1, 2 ORDER BY 1, 2";
    client.query(sql, &[]).await.unwrap().iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6))).collect()
}

async fn recorded_hours(client: &tokio_postgres::Client) -> Vec<DateTime<Utc>> {
    client.query("SELECT DISTINCT hour FROM readings_refresh ORDER BY 1", &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
}

fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(Duration::hours(1)).unwrap()
}

#[tokio::test]
async fn manifold_migrate_picks_the_timescale_variant_with_real_time_aggregation_and_one_index() {
    let _turn = TURN.lock().await;
    let started = Instant::now();
    reset().await;
    let had_extension = connect()
        .await
        .query_one("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')", &[])
        .await
        .unwrap()
        .get::<_, bool>(0);

    let mut env = common::stack_env();
    env.insert("DATABASE_URL".into(), timescale_url());
    // Off the runtime's thread: the connections dropped above still have to say goodbye, or
    // the command would queue behind them forever.
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_manifold"))
            .arg("migrate")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(&env)
            .output()
            .expect("run manifold migrate")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("readings storage: timescale (TimescaleDB 2.23"), "{stdout}");

    let client = connect().await;
    let variant: String = client.query_one("SELECT variant FROM manifold_migrations WHERE version = 3", &[]).await.unwrap().get(0);
    assert_eq!(variant, "timescale");
    let extension: Option<String> =
        client.query_one("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'", &[]).await.unwrap().get(0);
    assert!(extension.is_some_and(|v| v.starts_with("2.23")), "{had_extension}: the migration created or found the extension");
    let materialized_only: bool = client
        .query_one("SELECT materialized_only FROM timescaledb_information.continuous_aggregates WHERE view_name = 'readings_1m'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(!materialized_only, "real-time aggregation is on");
    let indexes: Vec<String> = client
        .query("SELECT indexname::text FROM pg_indexes WHERE tablename = 'readings' ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(indexes, vec!["readings_series_time"], "no default time index: COPY maintains one index");
    // The migration's policies, and the retention the command's first maintenance pass added.
    let jobs: Vec<(String, String)> = client
        .query("SELECT proc_name::text, hypertable_name::text FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL ORDER BY 1, 2", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let job = |p: &str, h: &str| (p.to_owned(), h.to_owned());
    assert_eq!(
        jobs,
        vec![
            job("policy_compression", "readings"),
            job("policy_refresh_continuous_aggregate", "readings_1m"),
            job("policy_retention", "readings"),
            job("policy_retention", "readings_1m"),
        ]
    );
    eprintln!("migrate on pglite: {:?}", started.elapsed());
}

#[tokio::test]
async fn maintenance_adds_retention_once_and_then_alters_the_same_jobs() {
    let _turn = TURN.lock().await;
    reset().await;
    migrate_up().await;
    let now = Utc::now();
    let jobs = || async {
        let sql = "SELECT hypertable_name::text, job_id, config->>'drop_after' FROM timescaledb_information.jobs \
                   WHERE proc_name = 'policy_retention' ORDER BY 1";
        connect().await.query(sql, &[]).await.unwrap().iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect::<Vec<(String, i32, String)>>()
    };

    let first = maintain(&config(30), now).await;
    assert_eq!(first.timescale.retention_set, vec!["readings", "readings_1m"]);
    let added = jobs().await;
    assert_eq!(added.iter().map(|j| j.2.as_str()).collect::<Vec<_>>(), ["30 days", "30 days"]);

    let again = maintain(&config(30), now).await;
    assert!(again.timescale.retention_set.is_empty(), "an unchanged retention is left alone: {again:?}");

    let changed = maintain(&config(7), now).await;
    assert_eq!(changed.timescale.retention_set, vec!["readings", "readings_1m"]);
    let altered = jobs().await;
    assert_eq!(altered.iter().map(|j| j.1).collect::<Vec<_>>(), added.iter().map(|j| j.1).collect::<Vec<_>>(), "same job ids");
    assert_eq!(altered.iter().map(|j| j.2.as_str()).collect::<Vec<_>>(), ["7 days", "7 days"]);
}

#[tokio::test]
async fn late_readings_reach_readings_1m_through_the_hours_ingest_recorded() {
    let _turn = TURN.lock().await;
    reset().await;
    migrate_up().await;
    let config = config(30);
    let now = Utc::now();
    let recent = now.duration_trunc(Duration::minutes(1)).unwrap() - Duration::minutes(3);

    // Recent readings, refreshed: the aggregate's watermark moves up to the current minute.
    ingest(&config, StorageEngine::Timescale, rows(1, recent, &[(0, 1.0), (10, 2.0), (20, 6.0), (65, 4.0)])).await;
    let first = maintain(&config, now).await;
    // The window ends at the current minute, or at the end of the newest hour touched when the
    // clock has since crossed into an hour no reading reached (a run at 17:01 refreshes 16:00–17:00).
    let newest_hour_end = hour_of(recent + Duration::seconds(65)) + Duration::hours(1);
    let refresh_end = newest_hour_end.min(now.duration_trunc(Duration::minutes(1)).unwrap());
    assert_eq!(first.timescale.refreshed, vec![(hour_of(recent), refresh_end)]);

    // Readings three days late (two hours of two series), and one older than the retention.
    let late = now.duration_trunc(Duration::hours(1)).unwrap() - Duration::days(3) + Duration::minutes(50);
    let mut batch = rows(1, late, &[(0, 10.0), (5, 20.0), (30, 30.0), (600, 5.5)]);
    batch.extend(rows(2, late, &[(1, -1.0), (2, -3.0)]));
    batch.extend(rows(2, now - Duration::days(40), &[(0, 99.0)]));
    ingest(&config, StorageEngine::Timescale, batch).await;

    let client = connect().await;
    assert_eq!(
        recorded_hours(&client).await,
        vec![hour_of(now - Duration::days(40)), hour_of(late), hour_of(late) + Duration::hours(1)],
        "one row per hour touched"
    );
    let before = aggregate(&client).await;
    assert!(
        !before.iter().any(|b| b.1 < recent - Duration::days(1)),
        "late readings below the watermark stay invisible until refreshed: {before:?}"
    );
    drop(client);

    let report = maintain(&config, now).await;
    assert_eq!(report.timescale.refreshed, vec![(hour_of(late), hour_of(late) + Duration::hours(2))]);
    assert_eq!(report.timescale.skipped_hours, 1, "the hour beyond retention is not refreshed (its chunk is about to go)");

    let client = connect().await;
    let got = aggregate(&client).await;
    let want: Vec<Bucket> = expected(&client).await.into_iter().filter(|b| b.1 > now - Duration::days(30)).collect();
    assert_eq!(got, want, "readings_1m equals the raw aggregate over the retained range");
    assert!(got.iter().any(|b| b.0 == 1 && b.1 == late && b.2 == 3 && b.3 == 60.0 && b.4 == 10.0 && b.5 == 30.0), "{got:?}");
    assert!(recorded_hours(&client).await.is_empty(), "the drained hours are forgotten");
}

#[tokio::test]
async fn real_time_aggregation_shows_readings_newer_than_the_last_refresh() {
    let _turn = TURN.lock().await;
    reset().await;
    migrate_up().await;
    let config = config(30);
    let now = Utc::now();
    let minute = now.duration_trunc(Duration::minutes(1)).unwrap();
    ingest(&config, StorageEngine::Timescale, rows(1, minute - Duration::minutes(5), &[(0, 1.0), (1, 3.0)])).await;
    maintain(&config, now).await;

    // Later readings (the future skew allows minutes ahead), with no refresh since.
    ingest(&config, StorageEngine::Timescale, rows(1, minute + Duration::minutes(2), &[(0, 7.0), (30, 8.0), (59, 9.0)])).await;
    let client = connect().await;
    let got = aggregate(&client).await;
    assert_eq!(got, expected(&client).await);
    assert!(got.iter().any(|b| b.1 == minute + Duration::minutes(2) && b.2 == 3 && b.6 == 8.0), "{got:?}");
    let (schema, table): (String, String) = client
        .query_one(
            "SELECT materialization_hypertable_schema::text, materialization_hypertable_name::text \
             FROM timescaledb_information.continuous_aggregates WHERE view_name = 'readings_1m'",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    let materialized: i64 =
        client.query_one(&format!("SELECT count(*) FROM {schema}.{table} WHERE bucket > $1"), &[&minute]).await.unwrap().get(0);
    assert_eq!(materialized, 0, "nothing newer than the refresh is materialized");
}

#[tokio::test]
async fn compression_retention_and_refresh_policies_run() {
    let _turn = TURN.lock().await;
    reset().await;
    migrate_up().await;
    let config = config(30);
    let now = Utc::now();
    maintain(&config, now).await;
    connect()
        .await
        .execute(
            "INSERT INTO readings SELECT t, 1, 1.0 FROM unnest(ARRAY[now() - interval '40 days', now() - interval '3 days', now()]) t",
            &[],
        )
        .await
        .unwrap();
    // A connection per job: in pglite a job run leaves the session's search_path at pg_catalog.
    let jobs = [
        ("policy_compression", "readings"),
        ("policy_retention", "readings"),
        ("policy_refresh_continuous_aggregate", "readings_1m"),
    ];
    for (proc_name, relation) in jobs {
        let client = connect().await;
        let job: i32 = client
            .query_one("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = $1 AND hypertable_name = $2", &[&proc_name, &relation])
            .await
            .unwrap()
            .get(0);
        client.batch_execute(&format!("CALL run_job({job})")).await.unwrap_or_else(|e| panic!("{proc_name}: {e}"));
    }
    let client = connect().await;
    let chunks: Vec<bool> = client
        .query("SELECT is_compressed FROM timescaledb_information.chunks WHERE hypertable_name = 'readings' ORDER BY range_start", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(chunks, vec![true, false], "the 40-day chunk dropped, the 3-day one compressed, today's left");
    let left: i64 = client.query_one("SELECT count(*) FROM readings", &[]).await.unwrap().get(0);
    assert_eq!(left, 2);
    let today: i64 = client.query_one("SELECT coalesce(sum(n), 0)::int8 FROM readings_1m", &[]).await.unwrap().get(0);
    assert_eq!(today, 2, "the refresh policy ran; the aggregate covers what is left");
}

#[tokio::test]
async fn apache_variant_keeps_its_own_aggregate_and_drops_expired_chunks() {
    let _turn = TURN.lock().await;
    reset().await;
    // pglite's license is fixed at "timescale" (it cannot be set in a running server), so the
    // decision is unit-tested and here the Apache variant is applied as migrate would apply it.
    migrate_up().await;
    {
        let mut client = connect().await;
        // Counted, not subtracted: version numbers are handed out per change and may leave gaps.
        let above_2 = migrate::versions().into_iter().filter(|v| *v > 2).count();
        migrate::down(&mut client, above_2).await.expect("down to version 2");
        let tx = client.transaction().await.unwrap();
        tx.batch_execute(include_str!("../migrations/0003_readings.hypertable.up.sql")).await.expect("apache variant applies");
        tx.execute("INSERT INTO manifold_migrations (version, name, variant) VALUES (3, 'readings', 'timescale-apache')", &[])
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let rest = migrate::up(&mut client).await.expect("later migrations");
        assert_eq!(rest.changed, migrate::versions().into_iter().filter(|v| *v >= 4).collect::<Vec<_>>());
        assert_eq!(rest.engine, None, "the engine comes from the ledger, not a new probe");
        assert_eq!(migrate::storage_engine(&client).await.unwrap(), Some(StorageEngine::TimescaleApache));
    }
    let config = config(30);
    let now = Utc::now();
    let minute = now.duration_trunc(Duration::minutes(1)).unwrap();
    let mut batch = rows(1, minute - Duration::days(40), &[(0, 5.0)]);
    batch.extend(rows(1, minute, &[(0, 1.0), (1, 2.0)]));
    ingest(&config, StorageEngine::TimescaleApache, batch).await;
    {
        let client = connect().await;
        assert_eq!(aggregate(&client).await, expected(&client).await, "manifold keeps readings_1m in the ingest transaction");
    }

    let report = maintain(&config, now).await;
    assert_eq!(report.timescale.chunks_dropped, 1);
    let client = connect().await;
    let raw: i64 = client.query_one("SELECT count(*) FROM readings", &[]).await.unwrap().get(0);
    assert_eq!(raw, 2, "the expired chunk is gone");
    assert_eq!(aggregate(&client).await, expected(&client).await, "the expired buckets are pruned with it");
}
