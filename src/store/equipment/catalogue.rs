//! The in-memory equipment catalogue validation reads: no query per message or request.
//!
//! A dedicated connection (not a pooled one: LISTEN is session state) listens for the
//! `manifold_equipment` notifications the database triggers send on any change, and reloads
//! that system. After a reconnect the whole catalogue is reloaded, since notifications sent
//! while disconnected are lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::DatabaseConfig;
use crate::domain::{SeriesMeta, SystemMeta};
use crate::store::notify::{self, Notice};
use crate::store::{Store, StoreError, q};

const CATALOG_ALL: &str = include_str!("../sql/catalog_all.sql");
const CATALOG_SYSTEM: &str = include_str!("../sql/catalog_system.sql");

/// The channel the equipment and series triggers notify on (migration 0004).
pub const EQUIPMENT_CHANNEL: &str = "manifold_equipment";

/// A loaded system (or its absence), with the ticket of the load that produced it and when.
type Entry = (u64, Option<Arc<SystemMeta>>, Instant);

/// Unknown system ids remembered as absent, at most (a flood of random ids cannot grow memory
/// beyond this; past it the remembered absences are forgotten at once).
const MAX_ABSENT: usize = 10_000;
/// How long an absence is trusted without a notification (a lost notification heals by then).
const ABSENT_TTL: Duration = Duration::from_secs(60);
/// Database look-ups for unknown ids per second; beyond it an unknown id counts as absent
/// without asking (its message is dead-lettered as unknown_system and can be replayed).
const MISS_LOOKUPS_PER_SECOND: u32 = 50;

#[derive(Clone, Default)]
pub struct EquipmentCatalogue {
    systems: Arc<RwLock<HashMap<String, Entry>>>,
    /// Look-ups of unknown ids in the current second: (second started, count).
    misses: Arc<Mutex<Option<(Instant, u32)>>>,
    lookups: Arc<AtomicU64>,
    /// Taken before each database read. A load that started later saw a snapshot at least as
    /// new, so an older load finishing last never overwrites it (a deleted system cannot come
    /// back from a read that raced its deletion).
    tickets: Arc<AtomicU64>,
}

impl EquipmentCatalogue {
    pub fn get(&self, system_id: &str) -> Option<Arc<SystemMeta>> {
        self.read().get(system_id).and_then(|(_, meta, _)| meta.clone())
    }

    /// The system from the cache, or from the database once when the cache does not have it
    /// (its notification may not have arrived yet). A recent absence is answered from memory,
    /// and look-ups of unknown ids are limited per second, so a flood of random ids neither
    /// queries the database per message nor grows memory without limit.
    pub async fn get_or_load(&self, store: &Store, system_id: &str) -> Result<Option<Arc<SystemMeta>>, StoreError> {
        match self.read().get(system_id) {
            Some((_, Some(found), _)) => return Ok(Some(found.clone())),
            Some((_, None, at)) if at.elapsed() < ABSENT_TTL => return Ok(None),
            _ => {}
        }
        if !self.may_look_up() {
            return Ok(None);
        }
        self.lookups.fetch_add(1, Ordering::Relaxed);
        self.reload_system(store, system_id).await
    }

    /// Database look-ups made for systems the cache did not have.
    pub fn lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    fn may_look_up(&self) -> bool {
        let mut misses = self.misses.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match misses.as_mut() {
            Some((start, count)) if now.duration_since(*start) < Duration::from_secs(1) => {
                *count += 1;
                *count <= MISS_LOOKUPS_PER_SECOND
            }
            _ => {
                *misses = Some((now, 1));
                true
            }
        }
    }

    /// Systems remembered as absent (for tests and the bound).
    pub fn absent_count(&self) -> usize {
        self.read().values().filter(|(_, meta, _)| meta.is_none()).count()
    }

    fn ticket(&self) -> u64 {
        self.tickets.fetch_add(1, Ordering::AcqRel) + 1
    }

    pub async fn reload_all(&self, store: &Store) -> Result<usize, StoreError> {
        let ticket = self.ticket();
        let catalog = store.load_catalog().await?;
        let count = catalog.len();
        let mut systems = self.write();
        // Loads newer than this one keep their result; everything else is replaced, and
        // the absence of systems not in the catalogue is forgotten.
        let newer: Vec<(String, Entry)> = systems.drain().filter(|(_, (t, _, _))| *t > ticket).collect();
        let now = Instant::now();
        systems.extend(catalog.into_iter().map(|(k, v)| (k, (ticket, Some(Arc::new(v)), now))));
        systems.extend(newer);
        Ok(count)
    }

    pub async fn reload_system(&self, store: &Store, system_id: &str) -> Result<Option<Arc<SystemMeta>>, StoreError> {
        let ticket = self.ticket();
        let loaded = store.load_system(system_id).await?.map(Arc::new);
        let mut systems = self.write();
        match systems.get(system_id) {
            Some((applied, current, _)) if *applied > ticket => Ok(current.clone()),
            _ => {
                if loaded.is_none() && systems.values().filter(|(_, meta, _)| meta.is_none()).count() >= MAX_ABSENT {
                    systems.retain(|_, (_, meta, _)| meta.is_some());
                }
                systems.insert(system_id.to_owned(), (ticket, loaded.clone(), Instant::now()));
                Ok(loaded)
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Entry>> {
        // A writer panicking mid-insert leaves a usable map; keep serving it.
        self.systems.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Entry>> {
        self.systems.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps the catalogue current until `shutdown`; reconnects with back-off.
    pub async fn listen(self, store: Store, database: DatabaseConfig, shutdown: CancellationToken) {
        self.listen_with(store, database, shutdown, |_| {}).await;
    }

    /// `listen`, telling `on_change` what changed before the catalogue reloads it, so a cache
    /// built on the same notifications drops what it holds first.
    pub async fn listen_with<F>(self, store: Store, database: DatabaseConfig, shutdown: CancellationToken, mut on_change: F)
    where
        F: FnMut(EquipmentChange<'_>) + Send,
    {
        notify::listen(&database, EQUIPMENT_CHANNEL, &shutdown, |notice| {
            on_change(match &notice {
                Notice::Connected => EquipmentChange::All,
                Notice::Payload(system_id) => EquipmentChange::System(system_id),
            });
            let (catalogue, store) = (self.clone(), store.clone());
            async move {
                match notice {
                    Notice::Connected => {
                        let systems = catalogue.reload_all(&store).await?;
                        tracing::info!(systems, "equipment catalogue loaded");
                    }
                    Notice::Payload(system_id) => {
                        catalogue.reload_system(&store, &system_id).await?;
                    }
                }
                Ok(())
            }
        })
        .await;
    }
}

/// What an equipment notification says changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EquipmentChange<'a> {
    /// (Re)connected: notifications may have been missed, so any system may have changed.
    All,
    System(&'a str),
}

fn fold(rows: Vec<tokio_postgres::Row>) -> HashMap<String, SystemMeta> {
    let mut systems: HashMap<String, SystemMeta> = HashMap::new();
    for row in rows {
        let system = systems
            .entry(row.get("system_id"))
            .or_insert_with(|| SystemMeta { owner_id: row.get("owner_id"), sensors: HashMap::new() });
        system.sensors.insert(
            row.get("sensor_id"),
            SeriesMeta { series_id: row.get("series_id"), min: row.get("min_value"), max: row.get("max_value") },
        );
    }
    systems
}

impl Store {
    /// Every system with its series, for the catalogue.
    pub async fn load_catalog(&self) -> Result<HashMap<String, SystemMeta>, StoreError> {
        let client = self.client().await?;
        let rows = client.query(CATALOG_ALL, &[]).await.map_err(q("load the equipment catalogue"))?;
        Ok(fold(rows))
    }

    pub async fn load_system(&self, system_id: &str) -> Result<Option<SystemMeta>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(CATALOG_SYSTEM).await.map_err(q("prepare system lookup"))?;
        let rows = client.query(&statement, &[&system_id]).await.map_err(q("load a system"))?;
        Ok(fold(rows).remove(system_id))
    }
}
