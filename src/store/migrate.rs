//! Schema migrations, up and down, embedded in the binary.
//!
//! Each migration runs in its own transaction while the runner holds an advisory lock, so two
//! processes starting at once cannot both apply it. A migration may have TimescaleDB variants;
//! the variant applied is recorded, so `down` undoes exactly what `up` did. The engine is chosen
//! once (src/store/timescale.rs), when the readings migration is pending; after that the ledger
//! says which it is.

use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::{StoreError, timescale};

/// Serialises migration runners across processes (any constant unique to manifold).
const MIGRATION_LOCK: i64 = 0x6d61_6e69_666f_6c64;

const CREATE_LEDGER: &str = include_str!("sql/migrations_ledger.sql");

/// The migration that creates `readings`, whose variant decides the storage engine.
const READINGS_VERSION: i32 = 3;

struct Migration {
    version: i32,
    name: &'static str,
    /// `(up, down)`.
    sql: (&'static str, &'static str),
    /// Replaces `sql` on TimescaleDB with the TSL license.
    timescale: Option<(&'static str, &'static str)>,
    /// Replaces `sql` on an Apache-licensed TimescaleDB.
    apache: Option<(&'static str, &'static str)>,
}

/// The `(up, down)` pair `migrations/<stem>.up.sql`, `migrations/<stem>.down.sql`.
macro_rules! up_down {
    ($stem:literal) => {
        (
            include_str!(concat!("../../migrations/", $stem, ".up.sql")),
            include_str!(concat!("../../migrations/", $stem, ".down.sql")),
        )
    };
}

const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "core", sql: up_down!("0001_core"), timescale: None, apache: None },
    Migration { version: 2, name: "delivery", sql: up_down!("0002_delivery"), timescale: None, apache: None },
    Migration {
        version: READINGS_VERSION,
        name: "readings",
        sql: up_down!("0003_readings.native"),
        timescale: Some(up_down!("0003_readings.timescale")),
        apache: Some(up_down!("0003_readings.hypertable")),
    },
    Migration { version: 4, name: "equipment_notify", sql: up_down!("0004_equipment_notify"), timescale: None, apache: None },
    Migration { version: 5, name: "api", sql: up_down!("0005_api"), timescale: None, apache: None },
    Migration { version: 6, name: "failures", sql: up_down!("0006_failures"), timescale: None, apache: None },
    Migration { version: 7, name: "grafana", sql: up_down!("0007_grafana"), timescale: None, apache: None },
    Migration { version: 8, name: "traces", sql: up_down!("0008_traces"), timescale: None, apache: None },
    Migration { version: 9, name: "alerts", sql: up_down!("0009_alerts"), timescale: None, apache: None },
    Migration { version: 10, name: "drivers", sql: up_down!("0010_drivers"), timescale: None, apache: None },
    Migration { version: 11, name: "complete", sql: up_down!("0011_complete"), timescale: None, apache: None },
    Migration { version: 12, name: "alert_cursors", sql: up_down!("0012_alert_cursors"), timescale: None, apache: None },
];

/// How readings are stored: decided once, when the readings migration is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageEngine {
    /// Native daily range partitions kept by manifold.
    Native,
    /// A TimescaleDB hypertable with its own policies and a continuous aggregate.
    Timescale,
    /// A TimescaleDB hypertable on an Apache-licensed build: manifold keeps the 1-minute
    /// aggregate and drops expired chunks itself.
    TimescaleApache,
}

impl StorageEngine {
    /// The name recorded in the ledger.
    pub fn variant(self) -> &'static str {
        match self {
            StorageEngine::Native => "native",
            StorageEngine::Timescale => "timescale",
            StorageEngine::TimescaleApache => "timescale-apache",
        }
    }

    fn from_variant(variant: &str) -> Self {
        match variant {
            "timescale" => StorageEngine::Timescale,
            "timescale-apache" => StorageEngine::TimescaleApache,
            _ => StorageEngine::Native,
        }
    }

    /// Whether manifold keeps `readings_1m` in the ingest transaction (no continuous aggregate).
    pub fn keeps_aggregate(self) -> bool {
        self != StorageEngine::Timescale
    }
}

impl Migration {
    fn variant_sql(&self, engine: StorageEngine) -> ((&'static str, &'static str), StorageEngine) {
        match (engine, self.timescale, self.apache) {
            (StorageEngine::Timescale, Some(sql), _) => (sql, engine),
            (StorageEngine::TimescaleApache, _, Some(sql)) => (sql, engine),
            _ => (self.sql, StorageEngine::Native),
        }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied (up) or reverted (down) by this run, in order.
    pub changed: Vec<i32>,
    /// The schema version after the run (0 = empty).
    pub version: i32,
    /// The engine chosen by this run, with the reason, when it applied the readings migration.
    pub engine: Option<timescale::EngineChoice>,
}

/// Every version this binary knows, in order (numbers are handed out per change, so a list
/// may have gaps while changes land in another order).
pub fn versions() -> Vec<i32> {
    MIGRATIONS.iter().map(|m| m.version).collect()
}

/// The newest version this binary knows.
pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Applies every pending migration.
pub async fn up(client: &mut Client) -> Result<MigrationReport, StoreError> {
    with_lock(client, |client| Box::pin(apply_pending(client))).await
}

/// Reverts the newest `steps` migrations (all of them with `steps = usize::MAX`).
pub async fn down(client: &mut Client, steps: usize) -> Result<MigrationReport, StoreError> {
    with_lock(client, move |client| Box::pin(revert(client, steps))).await
}

/// The applied version (0 when the schema is empty), without taking the lock.
pub async fn current_version(client: &Client) -> Result<i32, StoreError> {
    let exists: bool = client
        .query_one("SELECT to_regclass('manifold_migrations') IS NOT NULL", &[])
        .await
        .map_err(|e| StoreError::query("look up the migrations ledger", e))?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_one("SELECT coalesce(max(version), 0) FROM manifold_migrations", &[])
        .await
        .map_err(|e| StoreError::query("read the schema version", e))?;
    Ok(row.get(0))
}

/// The engine recorded for the readings table, if it exists yet.
pub async fn storage_engine(client: &Client) -> Result<Option<StorageEngine>, StoreError> {
    if current_version(client).await? < READINGS_VERSION {
        return Ok(None);
    }
    let row = client
        .query_one("SELECT variant FROM manifold_migrations WHERE version = $1", &[&READINGS_VERSION])
        .await
        .map_err(|e| StoreError::query("read the storage engine", e))?;
    let variant: String = row.get(0);
    Ok(Some(StorageEngine::from_variant(&variant)))
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

async fn with_lock<F>(client: &mut Client, work: F) -> Result<MigrationReport, StoreError>
where
    F: for<'c> FnOnce(&'c mut Client) -> BoxFuture<'c, Result<MigrationReport, StoreError>>,
{
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| StoreError::query("take the migration lock", e))?;
    let result = work(client).await;
    // Closing the session would release it too; unlock so a pooled caller can go on.
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]).await;
    let report = result?;
    unlocked.map_err(|e| StoreError::query("release the migration lock", e))?;
    Ok(report)
}

async fn apply_pending(client: &mut Client) -> Result<MigrationReport, StoreError> {
    client.batch_execute(CREATE_LEDGER).await.map_err(|e| StoreError::query("create the migrations ledger", e))?;
    let applied = current_version(client).await?;
    // Later migrations follow the engine the readings migration was applied with, even if the
    // server gained or lost TimescaleDB since.
    let mut engine = storage_engine(client).await?;
    let mut report = MigrationReport { version: applied, ..Default::default() };
    for migration in MIGRATIONS.iter().filter(|m| m.version > applied) {
        let tx = client.transaction().await.map_err(|e| StoreError::query("begin migration", e))?;
        // Chosen inside the readings migration's transaction: a trial CREATE EXTENSION that
        // works is kept with the migration, one that fails is rolled back to its savepoint.
        let wanted = match engine {
            Some(engine) => engine,
            None if migration.version == READINGS_VERSION => {
                let choice = timescale::choose(&tx).await?;
                tracing::info!(engine = choice.engine.variant(), reason = %choice.reason, "storage engine chosen");
                let chosen = choice.engine;
                report.engine = Some(choice);
                chosen
            }
            None => StorageEngine::Native,
        };
        let ((sql, _), applied_as) = migration.variant_sql(wanted);
        let variant = applied_as.variant();
        let record = "INSERT INTO manifold_migrations (version, name, variant) VALUES ($1, $2, $3)";
        tx.batch_execute(sql).await.map_err(|e| failed(migration, e))?;
        tx.execute(record, &[&migration.version, &migration.name, &variant]).await.map_err(|e| failed(migration, e))?;
        tx.commit().await.map_err(|e| failed(migration, e))?;
        if migration.version == READINGS_VERSION {
            engine = Some(applied_as);
        }
        tracing::info!(version = migration.version, name = migration.name, variant, "migration applied");
        report.changed.push(migration.version);
        report.version = migration.version;
    }
    Ok(report)
}

async fn revert(client: &mut Client, steps: usize) -> Result<MigrationReport, StoreError> {
    let mut report = MigrationReport { changed: vec![], version: current_version(client).await?, engine: None };
    if report.version == 0 {
        return Ok(report);
    }
    let applied = client
        .query("SELECT version, variant FROM manifold_migrations ORDER BY version DESC", &[])
        .await
        .map_err(|e| StoreError::query("read applied migrations", e))?;
    for row in applied.into_iter().take(steps) {
        let version: i32 = row.get(0);
        let variant: String = row.get(1);
        let Some(migration) = MIGRATIONS.iter().find(|m| m.version == version) else {
            return Err(StoreError::Migration {
                version,
                name: "unknown",
                message: "applied by a newer manifold; revert it with that version".into(),
            });
        };
        let ((_, sql), _) = migration.variant_sql(StorageEngine::from_variant(&variant));
        step(client, migration, sql, "DELETE FROM manifold_migrations WHERE version = $1", &[&version]).await?;
        tracing::info!(version, name = migration.name, "migration reverted");
        report.changed.push(version);
    }
    report.version = current_version(client).await?;
    Ok(report)
}

/// Runs a migration's down SQL and updates the ledger, in one transaction.
async fn step(client: &mut Client, migration: &Migration, sql: &str, ledger: &str, params: &[&(dyn ToSql + Sync)]) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(|e| StoreError::query("begin migration", e))?;
    tx.batch_execute(sql).await.map_err(|e| failed(migration, e))?;
    tx.execute(ledger, params).await.map_err(|e| failed(migration, e))?;
    tx.commit().await.map_err(|e| failed(migration, e))
}

fn failed(migration: &Migration, err: tokio_postgres::Error) -> StoreError {
    let message = match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => err.to_string(),
    };
    StoreError::Migration { version: migration.version, name: migration.name, message }
}
