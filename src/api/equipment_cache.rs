//! Equipment as served by `GET /metadata/{system_id}`, kept serialized in memory: the hot read
//! costs no query. Entries are dropped by this instance's own writes at once and by anyone's
//! (other instances, psql) through the database's equipment notifications.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::body::Bytes;
use uuid::Uuid;

use crate::store::Equipment;

/// Beyond this many systems the cache starts over rather than grow without bound.
const MAX_ENTRIES: usize = 50_000;

pub struct CachedEquipment {
    pub owner_id: Uuid,
    pub version: i64,
    pub json: Bytes,
}

#[derive(Default)]
pub struct EquipmentCache {
    entries: RwLock<HashMap<String, Arc<CachedEquipment>>>,
    /// Bumped by every invalidation: a read that started before one must not be cached, or a
    /// version older than the change could stay.
    generation: AtomicU64,
}

impl EquipmentCache {
    pub fn get(&self, system_id: &str) -> Option<Arc<CachedEquipment>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner()).get(system_id).cloned()
    }

    /// Take before reading the database; pass to `put`.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Serializes and, unless something was invalidated since `generation`, keeps it.
    pub fn put(&self, owner_id: Uuid, equipment: &Equipment, generation: u64) -> Option<Arc<CachedEquipment>> {
        let json = Bytes::from(serde_json::to_vec(equipment).ok()?);
        let cached = Arc::new(CachedEquipment { owner_id, version: equipment.version, json });
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        if self.generation.load(Ordering::Acquire) != generation {
            return Some(cached);
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(equipment.system_id.clone(), cached.clone());
        Some(cached)
    }

    pub fn forget(&self, system_id: &str) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.remove(system_id);
    }

    pub fn clear(&self) {
        let mut entries = self.entries.write().unwrap_or_else(|p| p.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn equipment(version: i64) -> Equipment {
        Equipment {
            system_id: "rig-1".into(),
            name: "Rig".into(),
            topology: serde_json::json!({}),
            topology_hash: "h".into(),
            version,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_served_but_not_kept() {
        let cache = EquipmentCache::default();
        let owner = Uuid::new_v4();
        let before = cache.generation();
        cache.forget("rig-1");
        assert_eq!(cache.put(owner, &equipment(1), before).unwrap().version, 1);
        assert!(cache.get("rig-1").is_none(), "the stale version is not cached");
        cache.put(owner, &equipment(2), cache.generation());
        assert_eq!(cache.get("rig-1").unwrap().version, 2);
    }
}
