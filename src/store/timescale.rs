//! Which storage engine the readings migration uses: what the server offers (probed without
//! reading `shared_preload_libraries`, which a normal role on a managed host may not read), and
//! the decision taken from it, a pure function.
//!
//! The probe looks in `pg_extension` first; when the extension is not installed it tries
//! `CREATE EXTENSION` in a savepoint of the readings migration's transaction, so a refusal (not
//! available, not preloaded, not allowed) is just an answer. It is not rolled back when it
//! worked: a TimescaleDB library loaded without preloading refuses a second CREATE EXTENSION in
//! the same session.

use tokio_postgres::Transaction;

use super::{StorageEngine, StoreError};

const INSTALLED: &str = include_str!("sql/timescale_installed.sql");
const LOADED: &str = include_str!("sql/timescale_loaded.sql");

/// The oldest TimescaleDB the migration is written for (`by_range`, `materialized_only`).
pub const MIN_VERSION: (u32, u32) = (2, 13);

/// What the server said about TimescaleDB.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimescaleProbe {
    /// Listed in `pg_extension` before the probe.
    pub installed: bool,
    /// Listed in `pg_available_extensions`.
    pub available: bool,
    /// The outcome of the trial `CREATE EXTENSION`; `None` when it was not tried.
    pub create: Option<Result<(), String>>,
    /// `extversion`, e.g. "2.23.0".
    pub version: Option<String>,
    /// `timescaledb.license`: "timescale" or "apache"; `None` when the library is not loaded.
    pub license: Option<String>,
}

/// The engine chosen and why, for the migration's log line and `manifold migrate`'s output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineChoice {
    pub engine: StorageEngine,
    pub reason: String,
}

/// The decision. Anything short of a loadable TimescaleDB ≥ 2.13 keeps the native tables; a
/// license other than the TSL ("timescale") gets the hypertable without the features the Apache
/// build refuses, an unknown license included (the library did not say it has them).
pub fn choose_engine(probe: &TimescaleProbe) -> EngineChoice {
    let choice = |engine, reason: String| EngineChoice { engine, reason };
    if !probe.installed {
        match &probe.create {
            None => return choice(StorageEngine::Native, "the timescaledb extension was not tried".into()),
            Some(Err(_)) if !probe.available => {
                return choice(StorageEngine::Native, "the timescaledb extension is not available on this server".into());
            }
            Some(Err(error)) => {
                return choice(StorageEngine::Native, format!("CREATE EXTENSION timescaledb failed: {error}"));
            }
            Some(Ok(())) => {}
        }
    }
    let version = probe.version.as_deref().unwrap_or("unknown");
    match parse_version(version) {
        Some(v) if v >= MIN_VERSION => {}
        _ => {
            return choice(
                StorageEngine::Native,
                format!("TimescaleDB {version} is older than {}.{} (or unreadable)", MIN_VERSION.0, MIN_VERSION.1),
            );
        }
    }
    match probe.license.as_deref() {
        Some("timescale") => choice(StorageEngine::Timescale, format!("TimescaleDB {version} with the TSL license")),
        other => choice(
            StorageEngine::TimescaleApache,
            format!(
                "TimescaleDB {version} with license {}: no compression, continuous aggregates or policies",
                other.unwrap_or("unknown")
            ),
        ),
    }
}

/// "2.23.0-dev" → (2, 23).
fn parse_version(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.split(['.', '-']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Probes the server inside `tx` and decides. A trial `CREATE EXTENSION` runs in a savepoint:
/// when it fails, or the decision is the native tables anyway, it is rolled back; when the
/// decision is TimescaleDB, the extension stays and commits with the caller's migration.
pub async fn choose(tx: &Transaction<'_>) -> Result<EngineChoice, StoreError> {
    let probe = probe(tx).await?;
    let choice = choose_engine(&probe);
    if choice.engine == StorageEngine::Native && probe.create == Some(Ok(())) {
        rollback_to_savepoint(tx).await?;
    }
    tx.batch_execute("RELEASE SAVEPOINT timescale_probe").await.map_err(|e| StoreError::query("release the probe's savepoint", e))?;
    Ok(choice)
}

/// Asks the server, leaving the savepoint `timescale_probe` for `choose` to settle.
async fn probe(tx: &Transaction<'_>) -> Result<TimescaleProbe, StoreError> {
    let row = tx.query_one(INSTALLED, &[]).await.map_err(|e| StoreError::query("look for the timescaledb extension", e))?;
    let installed: Option<String> = row.get("installed");
    let mut probe = TimescaleProbe { installed: installed.is_some(), available: row.get("available"), ..Default::default() };
    tx.batch_execute("SAVEPOINT timescale_probe").await.map_err(|e| StoreError::query("set the probe's savepoint", e))?;
    if !probe.installed {
        // Tried even when not listed as available: the error says why better than a guess.
        match tx.batch_execute("CREATE EXTENSION IF NOT EXISTS timescaledb").await {
            Ok(()) => probe.create = Some(Ok(())),
            Err(err) => {
                probe.create = Some(Err(err.as_db_error().map_or_else(|| err.to_string(), |db| db.message().to_owned())));
                rollback_to_savepoint(tx).await?;
                return Ok(probe);
            }
        }
    }
    let row = tx.query_one(LOADED, &[]).await.map_err(|e| StoreError::query("read the timescaledb version and license", e))?;
    probe.version = row.get("version");
    probe.license = row.get("license");
    Ok(probe)
}

async fn rollback_to_savepoint(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.batch_execute("ROLLBACK TO SAVEPOINT timescale_probe")
        .await
        .map_err(|e| StoreError::query("roll back the trial CREATE EXTENSION", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(version: &str, license: Option<&str>) -> TimescaleProbe {
        TimescaleProbe {
            installed: false,
            available: true,
            create: Some(Ok(())),
            version: Some(version.into()),
            license: license.map(Into::into),
        }
    }

    #[test]
    fn an_absent_extension_keeps_the_native_tables() {
        let probe = TimescaleProbe {
            create: Some(Err("could not open extension control file \"timescaledb.control\"".into())),
            ..Default::default()
        };
        let choice = choose_engine(&probe);
        assert_eq!(choice.engine, StorageEngine::Native);
        assert!(choice.reason.contains("not available"), "{}", choice.reason);
    }

    #[test]
    fn a_refused_create_extension_keeps_the_native_tables_and_says_why() {
        let probe = TimescaleProbe {
            available: true,
            create: Some(Err("extension \"timescaledb\" must be preloaded".into())),
            ..Default::default()
        };
        let choice = choose_engine(&probe);
        assert_eq!(choice.engine, StorageEngine::Native);
        assert!(choice.reason.contains("must be preloaded"), "{}", choice.reason);
    }

    #[test]
    fn the_tsl_license_gets_continuous_aggregates() {
        assert_eq!(choose_engine(&loaded("2.23.0-dev", Some("timescale"))).engine, StorageEngine::Timescale);
        assert_eq!(choose_engine(&loaded("2.13.0", Some("timescale"))).engine, StorageEngine::Timescale);
    }

    #[test]
    fn an_installed_extension_needs_no_create_privilege() {
        let probe = TimescaleProbe {
            installed: true,
            available: true,
            create: None,
            version: Some("2.17.2".into()),
            license: Some("timescale".into()),
        };
        assert_eq!(choose_engine(&probe).engine, StorageEngine::Timescale);
    }

    #[test]
    fn the_apache_license_or_an_unknown_one_gets_the_plain_hypertable() {
        assert_eq!(choose_engine(&loaded("2.23.0", Some("apache"))).engine, StorageEngine::TimescaleApache);
        let unknown = choose_engine(&loaded("2.23.0", None));
        assert_eq!(unknown.engine, StorageEngine::TimescaleApache);
        assert!(unknown.reason.contains("unknown"), "{}", unknown.reason);
    }

    #[test]
    fn a_timescaledb_older_than_2_13_keeps_the_native_tables() {
        for version in ["2.12.2", "1.7.5", "garbage"] {
            let choice = choose_engine(&loaded(version, Some("timescale")));
            assert_eq!(choice.engine, StorageEngine::Native, "{version}");
            assert!(choice.reason.contains("older than 2.13"), "{}", choice.reason);
        }
    }

    #[test]
    fn versions_parse_to_major_and_minor() {
        assert_eq!(parse_version("2.23.0-dev"), Some((2, 23)));
        assert_eq!(parse_version("2.13"), Some((2, 13)));
        assert_eq!(parse_version("x.1"), None);
    }
}
