//! Schema migrations, up and down, embedded in the binary.
//!
//! Each migration runs in its own transaction while the runner holds an advisory lock, so two
//! processes starting at once cannot both apply it. A migration may have a TimescaleDB variant;
//! the variant applied is recorded, so `down` undoes exactly what `up` did.

use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::StoreError;

/// Serialises migration runners across processes (any constant unique to manifold).
const MIGRATION_LOCK: i64 = 0x6d61_6e69_666f_6c64;

const CREATE_LEDGER: &str = include_str!("sql/migrations_ledger.sql");
const TIMESCALE_AVAILABLE: &str = include_str!("sql/timescale_available.sql");

struct Migration {
    version: i32,
    name: &'static str,
    /// `(up, down)`.
    sql: (&'static str, &'static str),
    /// Replaces `sql` when the timescaledb extension can be created.
    timescale: Option<(&'static str, &'static str)>,
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
    Migration { version: 1, name: "core", sql: up_down!("0001_core"), timescale: None },
    Migration { version: 2, name: "delivery", sql: up_down!("0002_delivery"), timescale: None },
    Migration {
        version: 3,
        name: "readings",
        sql: up_down!("0003_readings.native"),
        timescale: Some(up_down!("0003_readings.timescale")),
    },
    Migration { version: 4, name: "equipment_notify", sql: up_down!("0004_equipment_notify"), timescale: None },
    Migration { version: 5, name: "api", sql: up_down!("0005_api"), timescale: None },
    Migration { version: 6, name: "failures", sql: up_down!("0006_failures"), timescale: None },
    Migration { version: 8, name: "traces", sql: up_down!("0008_traces"), timescale: None },
];

/// How readings are stored: decided once, when the readings migration is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageEngine {
    /// Native daily range partitions kept by manifold.
    Native,
    /// A TimescaleDB hypertable with its own policies.
    Timescale,
}

impl StorageEngine {
    fn variant(self) -> &'static str {
        match self {
            StorageEngine::Native => "native",
            StorageEngine::Timescale => "timescale",
        }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied (up) or reverted (down) by this run, in order.
    pub changed: Vec<i32>,
    /// The schema version after the run (0 = empty).
    pub version: i32,
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
    if current_version(client).await? < 3 {
        return Ok(None);
    }
    let row = client
        .query_one("SELECT variant FROM manifold_migrations WHERE version = 3", &[])
        .await
        .map_err(|e| StoreError::query("read the storage engine", e))?;
    let variant: String = row.get(0);
    Ok(Some(if variant == "timescale" { StorageEngine::Timescale } else { StorageEngine::Native }))
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
    let mut version = applied;
    let engine = if timescale_available(client).await? { StorageEngine::Timescale } else { StorageEngine::Native };
    let mut report = MigrationReport::default();
    for migration in MIGRATIONS.iter().filter(|m| m.version > applied) {
        let (sql, variant) = match (engine, migration.timescale) {
            (StorageEngine::Timescale, Some((up, _))) => (up, engine.variant()),
            _ => (migration.sql.0, StorageEngine::Native.variant()),
        };
        let record = "INSERT INTO manifold_migrations (version, name, variant) VALUES ($1, $2, $3)";
        step(client, migration, sql, record, &[&migration.version, &migration.name, &variant]).await?;
        tracing::info!(version = migration.version, name = migration.name, variant, "migration applied");
        report.changed.push(migration.version);
        version = migration.version;
    }
    report.version = version;
    Ok(report)
}

async fn revert(client: &mut Client, steps: usize) -> Result<MigrationReport, StoreError> {
    let mut report = MigrationReport { changed: vec![], version: current_version(client).await? };
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
        let sql = match (variant.as_str(), migration.timescale) {
            ("timescale", Some((_, down))) => down,
            _ => migration.sql.1,
        };
        step(client, migration, sql, "DELETE FROM manifold_migrations WHERE version = $1", &[&version]).await?;
        tracing::info!(version, name = migration.name, "migration reverted");
        report.changed.push(version);
    }
    report.version = current_version(client).await?;
    Ok(report)
}

/// Runs a migration's SQL and records it in the ledger, in one transaction.
async fn step(client: &mut Client, migration: &Migration, sql: &str, ledger: &str, params: &[&(dyn ToSql + Sync)]) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(|e| StoreError::query("begin migration", e))?;
    tx.batch_execute(sql).await.map_err(|e| failed(migration, e))?;
    tx.execute(ledger, params).await.map_err(|e| failed(migration, e))?;
    tx.commit().await.map_err(|e| failed(migration, e))
}

async fn timescale_available(client: &Client) -> Result<bool, StoreError> {
    let row = client
        .query_one(TIMESCALE_AVAILABLE, &[])
        .await
        .map_err(|e| StoreError::query("look for the timescaledb extension", e))?;
    Ok(row.get(0))
}

fn failed(migration: &Migration, err: tokio_postgres::Error) -> StoreError {
    let message = match err.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => err.to_string(),
    };
    StoreError::Migration { version: migration.version, name: migration.name, message }
}
