//! Migrations against a real PostgreSQL: up, idempotent re-run, down and up again, and partition
//! maintenance with a short retention.

mod common;

use chrono::{DateTime, Duration, Utc};
use manifold::store::maintenance::{Maintenance, MaintenanceReport};
use manifold::store::migrate;
use manifold::telemetry::Metrics;

const TABLES: [&str; 17] = [
    "users", "api_keys", "equipment", "series", "latest_readings", "usage_daily", "ingest_offsets",
    "ingested_batches", "dead_letters", "outbox", "windows", "system_watermarks", "anomaly_scores",
    "readings", "readings_1m", "submitted_batches", "manifold_migrations",
];

async fn existing_tables(client: &tokio_postgres::Client) -> Vec<String> {
    let mut found = Vec::new();
    for table in TABLES {
        let row = client.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table]).await.unwrap();
        if row.get::<_, bool>(0) {
            found.push(table.to_owned());
        }
    }
    found
}

#[tokio::test]
async fn up_creates_every_table_and_a_rerun_changes_nothing() {
    let url = common::fresh_database().await;
    let mut client = common::connect(&url).await;

    let first = migrate::up(&mut client).await.unwrap();
    assert_eq!(first.version, migrate::latest_version());
    assert_eq!(first.changed, migrate::versions());
    assert_eq!(existing_tables(&client).await.len(), TABLES.len());
    assert_eq!(migrate::storage_engine(&client).await.unwrap(), Some(migrate::StorageEngine::Native));
    // The trial CREATE EXTENSION failed and was rolled back to its savepoint, with the reason.
    let choice = first.engine.expect("the first run chooses the engine");
    assert_eq!(choice.engine, migrate::StorageEngine::Native);
    assert!(choice.reason.contains("not available"), "{}", choice.reason);

    let second = migrate::up(&mut client).await.unwrap();
    assert!(second.changed.is_empty(), "re-run applied {:?}", second.changed);
    assert_eq!(second.version, first.version);
}

#[tokio::test]
async fn down_reverts_step_by_step_and_up_restores_the_schema() {
    let url = common::fresh_database().await;
    let mut client = common::connect(&url).await;
    migrate::up(&mut client).await.unwrap();

    let one = migrate::down(&mut client, 1).await.unwrap();
    assert_eq!(one.changed, vec![migrate::latest_version()]);
    let versions = migrate::versions();
    assert_eq!(one.version, versions[versions.len() - 2]);

    let all = migrate::down(&mut client, usize::MAX).await.unwrap();
    assert_eq!(all.version, 0);
    assert_eq!(existing_tables(&client).await, vec!["manifold_migrations".to_owned()]);

    let again = migrate::up(&mut client).await.unwrap();
    assert_eq!(again.version, migrate::latest_version());
    assert_eq!(existing_tables(&client).await.len(), TABLES.len());
}

#[tokio::test]
async fn concurrent_migration_runs_apply_each_migration_once() {
    let url = common::fresh_database().await;
    let mut a = common::connect(&url).await;
    let mut b = common::connect(&url).await;
    let (ra, rb) = tokio::join!(migrate::up(&mut a), migrate::up(&mut b));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    let mut applied = [ra.changed, rb.changed].concat();
    applied.sort();
    assert_eq!(applied, migrate::versions());
}

async fn partitions(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'readings'::regclass ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// A migrated database, its maintenance (two days' retention), and that maintenance's first
/// pass run "ten days ago", which leaves partitions that have expired by now.
struct Expired {
    url: String,
    client: tokio_postgres::Client,
    maintenance: Maintenance,
    now: DateTime<Utc>,
    past: MaintenanceReport,
}

async fn expired_partitions() -> Expired {
    let (url, client) = common::migrated_database().await;
    let config = common::config_with(&[
        ("DATABASE_URL", &url),
        ("MANIFOLD__STORAGE__RETENTION_DAYS", "2"),
        ("MANIFOLD__STORAGE__FUTURE_SKEW_HOURS", "24"),
        ("MANIFOLD__STORAGE__LOCK_TIMEOUT_MS", "200"),
    ]);
    let maintenance = Maintenance::new(config.database, config.storage, Metrics::new());
    let now = Utc::now();
    let past = maintenance.run_once(now - Duration::days(10)).await.unwrap();
    Expired { url, client, maintenance, now, past }
}

#[tokio::test]
async fn maintenance_creates_future_partitions_and_drops_expired_ones() {
    let Expired { client, maintenance, now, past, .. } = expired_partitions().await;
    assert!(past.partitions.created.len() >= 4, "{past:?}");
    // An expired partition holds a reading.
    client
        .execute("INSERT INTO readings (time, series_id, value) VALUES ($1, 1, 1.0)", &[&(now - Duration::days(10))])
        .await
        .unwrap();

    let report = maintenance.run_once(now).await.unwrap();
    let (first, last) = maintenance.policy().window(now);
    let expected: Vec<String> = first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|d| format!("readings_p{}", d.format("%Y%m%d")))
        .collect();
    assert_eq!(partitions(&client).await, expected, "exactly [now - retention, now + skew] is covered");
    assert_eq!(report.partitions.dropped.len(), past.partitions.created.len());
    let old: i64 = client.query_one("SELECT count(*) FROM readings", &[]).await.unwrap().get(0);
    assert_eq!(old, 0, "the expired reading left with its partition");

    // Today's and tomorrow's readings have a home.
    for at in [now, now + Duration::hours(20)] {
        client.execute("INSERT INTO readings (time, series_id, value) VALUES ($1, 1, 2.0)", &[&at]).await.unwrap();
    }
    let again = maintenance.run_once(now).await.unwrap();
    assert!(again.partitions.created.is_empty() && again.partitions.dropped.is_empty(), "{again:?}");
}

#[tokio::test]
async fn maintenance_defers_a_drop_it_cannot_lock_instead_of_waiting() {
    let Expired { url, client, maintenance, now, past } = expired_partitions().await;
    let victim = past.partitions.created[0].clone();

    // Another session holds the expired partition, as a long query would.
    let mut holder = common::connect(&url).await;
    let tx = holder.transaction().await.unwrap();
    tx.batch_execute(&format!("LOCK TABLE {victim} IN ACCESS EXCLUSIVE MODE")).await.unwrap();

    let started = std::time::Instant::now();
    let report = maintenance.run_once(now).await.unwrap();
    assert!(report.partitions.deferred.contains(&victim), "{report:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "maintenance waited for the lock");
    tx.rollback().await.unwrap();

    let retry = maintenance.run_once(now).await.unwrap();
    assert!(retry.partitions.dropped.contains(&victim), "{retry:?}");
    assert!(!partitions(&client).await.contains(&victim));
}
