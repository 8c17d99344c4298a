//! The election lock's session: a dedicated connection holding a session-level advisory lock.
//!
//! A holder that hangs or loses its network must not keep the lock (TCP alone would notice
//! after the kernel's ~2 h). Both ends bound it:
//! - the holder asks the session for a sign of life every `relay.lock_check_ms` and gives up
//!   the lead when the answer takes longer (dropping the connection, which releases the lock
//!   whenever the server hears of it);
//! - the server ends the session after `relay.lock_release_ms` without a statement
//!   (`idle_session_timeout`), releasing the lock even when it never hears from the client
//!   again; the TCP keepalive and `tcp_user_timeout` settings every session gets end it too
//!   when the network is gone.
//!
//! A standby asks for the lock every `lock_check_ms`, so it takes over at most
//! `lock_release_ms + lock_check_ms` after the holder went silent.

use std::time::Duration;

use tokio_postgres::Client;

use crate::config::{DatabaseConfig, RelayConfig};
use crate::store::{Store, StoreError};

/// Any constant unique to manifold's relay.
const RELAY_LOCK: i64 = 0x6d66_7265_6c61_7931;

pub(super) struct LockSession {
    client: Client,
    check: Duration,
}

impl LockSession {
    /// Connects and asks the server to end the session after `lock_release_ms` of silence.
    pub(super) async fn open(database: &DatabaseConfig, relay: &RelayConfig) -> Result<Self, StoreError> {
        let client = Store::dedicated(database).await?;
        let session = Self { client, check: relay.lock_check_ms };
        let set = format!("SET idle_session_timeout = {}", relay.lock_release_ms.as_millis());
        match session.bounded(session.client.batch_execute(&set), "set the lock session's idle timeout").await {
            Ok(()) => {}
            // Before PostgreSQL 14 there is no idle_session_timeout: the TCP settings remain.
            Err(StoreError::Query { source, .. }) if source.code().is_some_and(|c| c.code() == "42704") => {
                tracing::warn!("the database has no idle_session_timeout (PostgreSQL < 14): a hung relay keeps its lock until TCP keepalive ends its session");
            }
            Err(err) => return Err(err),
        }
        Ok(session)
    }

    /// Tries once to take the lock.
    pub(super) async fn try_take(&self) -> Result<bool, StoreError> {
        let row = self.bounded(self.client.query_one("SELECT pg_try_advisory_lock($1)", &[&RELAY_LOCK]), "take the relay lock").await?;
        Ok(row.get(0))
    }

    /// How often to check the session, or try for the lock.
    pub(super) fn check_every(&self) -> Duration {
        self.check
    }

    /// Returns only when the session stopped answering (or closed): the lock may be gone, and
    /// the lead with it.
    pub(super) async fn watch(&self) -> StoreError {
        loop {
            tokio::time::sleep(self.check).await;
            if self.client.is_closed() {
                return StoreError::Unavailable("lost the relay lock's connection".into());
            }
            if let Err(err) = self.bounded(self.client.simple_query("SELECT 1"), "check the relay lock's session").await {
                return err;
            }
        }
    }

    /// A statement on the lock session that must answer within one check interval.
    async fn bounded<T>(&self, query: impl Future<Output = Result<T, tokio_postgres::Error>>, context: &'static str) -> Result<T, StoreError> {
        match tokio::time::timeout(self.check, query).await {
            Ok(answer) => answer.map_err(|e| StoreError::query(context, e)),
            Err(_) => Err(StoreError::Unavailable(format!("{context}: no answer within {} ms; giving up the lead", self.check.as_millis()))),
        }
    }
}
