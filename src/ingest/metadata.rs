//! The in-memory equipment catalogue ingest validates against: no query per message.
//!
//! A dedicated connection (not a pooled one: LISTEN is session state) listens for the
//! `manifold_equipment` notifications the database triggers send on any change, and reloads
//! that system. After a reconnect the whole catalogue is reloaded, since notifications sent
//! while disconnected are lost.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use crate::config::DatabaseConfig;
use crate::store::{Store, StoreError, SystemMeta};

const CHANNEL: &str = "manifold_equipment";

#[derive(Clone, Default)]
pub struct MetadataCache {
    systems: Arc<RwLock<HashMap<String, Arc<SystemMeta>>>>,
}

impl MetadataCache {
    pub fn get(&self, system_id: &str) -> Option<Arc<SystemMeta>> {
        self.read().get(system_id).cloned()
    }

    /// The system from the cache, or from the database once when the cache does not have it
    /// (its notification may not have arrived yet).
    pub async fn get_or_load(&self, store: &Store, system_id: &str) -> Result<Option<Arc<SystemMeta>>, StoreError> {
        if let Some(found) = self.get(system_id) {
            return Ok(Some(found));
        }
        self.reload_system(store, system_id).await
    }

    pub async fn reload_all(&self, store: &Store) -> Result<usize, StoreError> {
        let catalog = store.load_catalog().await?;
        let count = catalog.len();
        *self.write() = catalog.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        Ok(count)
    }

    pub async fn reload_system(&self, store: &Store, system_id: &str) -> Result<Option<Arc<SystemMeta>>, StoreError> {
        let loaded = store.load_system(system_id).await?.map(Arc::new);
        let mut systems = self.write();
        match &loaded {
            Some(meta) => systems.insert(system_id.to_owned(), meta.clone()),
            None => systems.remove(system_id),
        };
        Ok(loaded)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<SystemMeta>>> {
        // A writer panicking mid-insert leaves a usable map; keep serving it.
        self.systems.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<SystemMeta>>> {
        self.systems.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps the cache current until `shutdown`; reconnects with back-off.
    pub async fn listen(self, store: Store, database: DatabaseConfig, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        while !shutdown.is_cancelled() {
            match self.listen_once(&store, &database, &shutdown).await {
                Ok(()) => return,
                Err(err) => {
                    tracing::warn!(error = %err, retry_in_ms = backoff.as_millis() as u64, "equipment listener lost its connection");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    async fn listen_once(&self, store: &Store, database: &DatabaseConfig, shutdown: &CancellationToken) -> Result<(), StoreError> {
        let pg: tokio_postgres::Config = database.url.expose().parse().map_err(|e: tokio_postgres::Error| StoreError::Url(e.to_string()))?;
        let (client, mut connection) = pg.connect(tokio_postgres::NoTls).await.map_err(|e| StoreError::query("connect the equipment listener", e))?;
        let (notify_tx, mut notify_rx) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        if notify_tx.send(n.payload().to_owned()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(err) => return Err(err),
                }
            }
            Ok(())
        });
        client.batch_execute(&format!("LISTEN {CHANNEL}")).await.map_err(|e| StoreError::query("LISTEN", e))?;
        // Listening first, then loading: a change between the two is seen twice, never missed.
        let systems = self.reload_all(store).await?;
        tracing::info!(systems, "equipment catalogue loaded");
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => { driver.abort(); return Ok(()); }
                payload = notify_rx.recv() => match payload {
                    Some(system_id) => { self.reload_system(store, &system_id).await?; }
                    None => {
                        let reason = match driver.await {
                            Ok(Err(err)) => err.to_string(),
                            _ => "connection closed".to_owned(),
                        };
                        return Err(StoreError::Unavailable(reason));
                    }
                }
            }
        }
    }
}
