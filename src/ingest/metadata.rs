//! The in-memory equipment catalogue ingest validates against: no query per message.
//!
//! A dedicated connection (not a pooled one: LISTEN is session state) listens for the
//! `manifold_equipment` notifications the database triggers send on any change, and reloads
//! that system. After a reconnect the whole catalogue is reloaded, since notifications sent
//! while disconnected are lost.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio_util::sync::CancellationToken;

use crate::config::DatabaseConfig;
use crate::store::notify::{self, Notice};
use crate::store::{Store, StoreError, SystemMeta};

/// The channel the equipment and series triggers notify on (migration 0004).
pub const EQUIPMENT_CHANNEL: &str = "manifold_equipment";

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
        notify::listen(&database, EQUIPMENT_CHANNEL, &shutdown, |notice| {
            let (cache, store) = (self.clone(), store.clone());
            async move {
                match notice {
                    Notice::Connected => {
                        let systems = cache.reload_all(&store).await?;
                        tracing::info!(systems, "equipment catalogue loaded");
                    }
                    Notice::Payload(system_id) => {
                        cache.reload_system(&store, &system_id).await?;
                    }
                }
                Ok(())
            }
        })
        .await;
    }
}
