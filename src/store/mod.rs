//! PostgreSQL: the pool, migrations, partition maintenance and (in later layers) the writers.

mod dead_letters;
mod equipment;
pub mod grants;
mod users;
mod alerts;
mod batches;
mod connect;
mod keys;
mod readings;
mod usage;
pub mod ingest;
mod outbox;
pub mod maintenance;
pub mod migrate;
pub mod timescale;
pub mod notify;
mod offsets;
mod pgtime;
mod scores;
mod scoring_failures;
pub mod windows;

pub use dead_letters::{DeadLetter, DeadLetterExample, ReasonCount, ReplayFilter, StoredLetter};
pub use equipment::{Equipment, EquipmentCatalogue, EquipmentChange, Updated};
pub use users::{User, UserChange};
pub use alerts::{AlertDerivation, AlertLevelOf, AlertRow, ComponentSummary, StoredAlertEvent};
pub use batches::{BatchState, BatchStatus, DeadLetterReason};
pub use keys::KeyInfo;
pub use readings::{BucketReading, LatestReading, RawReading, ReadingsQuery, copy_rows};
pub use usage::{UsageDay, UsageDelta};
pub use outbox::OutboxEvent;
pub use scores::{ScoresQuery, SystemInfo};
pub use scoring_failures::{FailedRescore, ScoringFailure};
pub use offsets::OffsetAdvance;
pub use pgtime::PgTimestamp;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;

use crate::config::DatabaseConfig;
use crate::failure::FailureKind;

pub use migrate::{MigrationReport, StorageEngine};

/// Errors of the storage layer. SQLSTATE codes that mean something to callers become variants.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid database URL: {0}")]
    Url(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// TLS settings and the server disagree (a certificate, a mode): configuration, not an outage.
    #[error("database TLS: {0}")]
    Tls(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("timed out waiting for a lock: {0}")]
    LockTimeout(String),
    /// A compare-and-set found the row moved by someone else (another worker took over): the
    /// work is redone from what is there now.
    #[error("superseded: {0}")]
    Superseded(String),
    /// The database refused a value (SQLSTATE class 22: out of range, NUL in text, …).
    #[error("{context}: value refused ({code}): {message}")]
    BadValue { context: &'static str, code: String, message: String },
    #[error("{context}: {source}")]
    Query {
        context: &'static str,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error("migration {version} ({name}): {message}")]
    Migration { version: i32, name: &'static str, message: String },
}

impl StoreError {
    /// Wraps a driver error, mapping the SQLSTATE codes callers act on.
    pub fn query(context: &'static str, source: tokio_postgres::Error) -> Self {
        match source.code() {
            Some(code) if *code == SqlState::UNIQUE_VIOLATION => StoreError::Conflict(context.to_owned()),
            Some(code) if *code == SqlState::LOCK_NOT_AVAILABLE => StoreError::LockTimeout(context.to_owned()),
            Some(code) if *code == SqlState::QUERY_CANCELED => StoreError::Unavailable(format!("{context}: statement timed out")),
            Some(code) if code.code().starts_with("22") => {
                let message = source.as_db_error().map_or_else(|| source.to_string(), |db| db.message().to_owned());
                StoreError::BadValue { context, code: code.code().to_owned(), message }
            }
            None if source.is_closed() || is_io(&source) => StoreError::Unavailable(format!("{context}: {source}")),
            _ => StoreError::Query { context, source },
        }
    }

    /// True when retrying later may succeed (outage, lock contention), as opposed to bad SQL or data.
    pub fn is_transient(&self) -> bool {
        self.failure() == FailureKind::Transient
    }

    /// What kind of failure this is (see [`crate::failure`], where the decision is made).
    pub fn failure(&self) -> FailureKind {
        match self {
            StoreError::Unavailable(_) | StoreError::LockTimeout(_) | StoreError::Superseded(_) => FailureKind::Transient,
            StoreError::Conflict(_) => crate::failure::classify_sqlstate("23505", ""),
            StoreError::BadValue { code, message, .. } => crate::failure::classify_sqlstate(code, message),
            StoreError::Url(_) | StoreError::Tls(_) | StoreError::Migration { .. } => FailureKind::Systemic,
            StoreError::Query { source, .. } => match source.as_db_error() {
                Some(db) => crate::failure::classify_sqlstate(db.code().code(), db.message()),
                None if source.is_closed() || is_io(source) => FailureKind::Transient,
                // A client-side failure (a parameter that cannot be encoded, an unexpected
                // answer): manifold's own bug or a schema it does not expect.
                None => FailureKind::Systemic,
            },
        }
    }

    /// The SQLSTATE the server answered with, if it answered.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            StoreError::BadValue { code, .. } => Some(code),
            StoreError::Conflict(_) => Some("23505"),
            StoreError::Query { source, .. } => source.as_db_error().map(|db| db.code().code()),
            _ => None,
        }
    }

    /// `SQLSTATE: message`, sanitized and bounded, for a record of a data-permanent failure.
    pub fn reason_text(&self) -> String {
        let text = match self {
            StoreError::BadValue { code, message, .. } => format!("{code}: {message}"),
            StoreError::Query { source, .. } => match source.as_db_error() {
                Some(db) => format!("{}: {}", db.code().code(), db.message()),
                None => source.to_string(),
            },
            other => other.to_string(),
        };
        crate::domain::text::message(&text)
    }
}

/// Maps a driver error with the step it failed in: `.map_err(q("claim batch ids"))`.
fn q(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StoreError {
    move |e| StoreError::query(context, e)
}

/// A connection-level failure (refused, reset, timed out) rather than a statement's.
fn is_io(error: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        if inner.is::<std::io::Error>() {
            return true;
        }
        source = inner.source();
    }
    false
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(err: deadpool_postgres::PoolError) -> Self {
        match err {
            // The server answered and refused (credentials, a missing database): the deployment,
            // with its SQLSTATE kept so the failure is classified and named by it.
            deadpool_postgres::PoolError::Backend(source) if source.code().is_some() => StoreError::query("connect", source),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}

/// The shared connection pool. Statements are prepared once per connection (`prepare_cached`).
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    connector: connect::Connector,
}

impl Store {
    /// Builds the pool; connections are opened lazily, so this succeeds while the database is down.
    /// The server ends any of its statements that runs longer than `database.statement_timeout_ms`,
    /// and any of its transactions left idle that long.
    pub fn new(config: &DatabaseConfig) -> Result<Self, StoreError> {
        Self::build(config, None)
    }

    /// For request handlers: the server ends any statement that runs longer than `limit`, so a
    /// request given up by its timeout does not keep the database busy.
    pub fn with_statement_timeout(config: &DatabaseConfig, limit: Duration) -> Result<Self, StoreError> {
        Self::build(config, Some(limit))
    }

    fn build(config: &DatabaseConfig, statement_timeout: Option<Duration>) -> Result<Self, StoreError> {
        let mut pg = pg_config(config)?;
        // A transaction whose client went silent (hung, or behind a path that still
        // acknowledges) is ended too: it may hold the outbox lock every writer needs.
        let limit = statement_timeout.unwrap_or(config.statement_timeout_ms).as_millis().to_string();
        session_settings(&mut pg, &[("statement_timeout", limit.clone()), ("idle_in_transaction_session_timeout", limit)]);
        let connector = connect::Connector::new(&config.tls)?;
        let manager = Manager::from_connect(
            pg,
            connect::PoolConnect(connector.clone()),
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = Pool::builder(manager)
            .max_size(config.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(config.connect_timeout_ms))
            .create_timeout(Some(config.connect_timeout_ms))
            .build()
            .map_err(|err| StoreError::Url(err.to_string()))?;
        Ok(Self { pool, connector })
    }

    pub async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|err| match err {
            deadpool_postgres::PoolError::Backend(err) => self.connector.explain("connect", err),
            other => other.into(),
        })
    }

    /// A connection outside the pool, for sessions that hold state (advisory locks, LISTEN,
    /// DETACH … CONCURRENTLY, which cannot run inside a transaction block).
    pub async fn dedicated(config: &DatabaseConfig) -> Result<tokio_postgres::Client, StoreError> {
        let (client, connection) = open(config, "connect").await?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "dedicated database connection closed");
            }
        });
        Ok(client)
    }
}

/// Opens one connection with the configured TLS settings; the caller drives it. The driver's
/// `connect_timeout` covers only the TCP handshake, so the whole of it (TLS, authentication)
/// is bounded here: a server that accepts and then says nothing must not hold the caller.
pub(crate) async fn open(config: &DatabaseConfig, context: &'static str) -> Result<(tokio_postgres::Client, connect::PgConnection), StoreError> {
    let pg = pg_config(config)?;
    let connector = connect::Connector::new(&config.tls)?;
    match tokio::time::timeout(config.connect_timeout_ms, connector.connect(&pg)).await {
        Ok(connected) => connected.map_err(|err| connector.explain(context, err)),
        Err(_) => Err(StoreError::Unavailable(format!("{context}: no answer within {} ms", config.connect_timeout_ms.as_millis()))),
    }
}

fn pg_config(config: &DatabaseConfig) -> Result<tokio_postgres::Config, StoreError> {
    let url = config.driver_url();
    let mut pg: tokio_postgres::Config = url.parse().map_err(|err: tokio_postgres::Error| StoreError::Url(err.to_string()))?;
    pg.connect_timeout(config.connect_timeout_ms);
    if pg.get_application_name().is_none() {
        pg.application_name("manifold");
    }
    // Both ends watch for a dead peer: the client's socket here, the server's through the
    // session's settings (a backend whose client vanished would otherwise keep its locks and
    // transaction for the kernel's ~2 h).
    pg.keepalives(true)
        .keepalives_idle(config.keepalives_idle_ms)
        .keepalives_interval(config.keepalives_interval_ms)
        .keepalives_retries(config.keepalives_retries)
        .tcp_user_timeout(config.tcp_user_timeout_ms);
    session_settings(
        &mut pg,
        &[
            ("tcp_keepalives_idle", config.keepalives_idle_ms.as_secs().to_string()),
            ("tcp_keepalives_interval", config.keepalives_interval_ms.as_secs().to_string()),
            ("tcp_keepalives_count", config.keepalives_retries.to_string()),
            ("tcp_user_timeout", config.tcp_user_timeout_ms.as_millis().to_string()),
        ],
    );
    Ok(pg)
}

/// Adds server settings to the session's startup options, after any the URL's `options` has.
fn session_settings(pg: &mut tokio_postgres::Config, settings: &[(&str, String)]) {
    let mut options = pg.get_options().unwrap_or_default().to_owned();
    for (name, value) in settings {
        if !options.is_empty() {
            options.push(' ');
        }
        options.push_str(&format!("-c {name}={value}"));
    }
    pg.options(options);
}
