//! Equipment and its series: the catalogue ingest validates against.

use std::collections::HashMap;

use uuid::Uuid;

use super::{Store, StoreError};
use crate::domain::{SystemId, Topology};

const CATALOG_ALL: &str = include_str!("sql/catalog_all.sql");
const CATALOG_SYSTEM: &str = include_str!("sql/catalog_system.sql");
const EQUIPMENT_UPSERT: &str = include_str!("sql/equipment_upsert.sql");
const USER_ENSURE: &str = include_str!("sql/user_ensure.sql");

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesMeta {
    pub series_id: i32,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SystemMeta {
    pub owner_id: Uuid,
    pub sensors: HashMap<String, SeriesMeta>,
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
    /// Every system with its series, for the ingest cache.
    pub async fn load_catalog(&self) -> Result<HashMap<String, SystemMeta>, StoreError> {
        let client = self.client().await?;
        let rows = client.query(CATALOG_ALL, &[]).await.map_err(|e| StoreError::query("load the equipment catalogue", e))?;
        Ok(fold(rows))
    }

    pub async fn load_system(&self, system_id: &str) -> Result<Option<SystemMeta>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(CATALOG_SYSTEM).await.map_err(|e| StoreError::query("prepare system lookup", e))?;
        let rows = client.query(&statement, &[&system_id]).await.map_err(|e| StoreError::query("load a system", e))?;
        Ok(fold(rows).remove(system_id))
    }

    /// The id of the user with this email, creating them when absent.
    pub async fn ensure_user(&self, email: &str, name: &str) -> Result<Uuid, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(USER_ENSURE, &[&Uuid::now_v7(), &email, &name])
            .await
            .map_err(|e| StoreError::query("ensure a user", e))?;
        Ok(row.get(0))
    }

    /// Creates or replaces a system and makes its series match the topology, in one transaction.
    /// Returns the equipment version; `Conflict` when another owner has the system id.
    pub async fn put_equipment(&self, owner: Uuid, system_id: &SystemId, name: &str, topology: &Topology) -> Result<i64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| StoreError::query("begin", e))?;
        let json = serde_json::to_value(topology).map_err(|e| StoreError::Conflict(e.to_string()))?;
        let row = tx
            .query_opt(EQUIPMENT_UPSERT, &[&system_id.as_str(), &owner, &name, &json, &topology.hash()])
            .await
            .map_err(|e| StoreError::query("upsert equipment", e))?
            .ok_or_else(|| StoreError::Conflict(format!("system {system_id} belongs to another user")))?;
        super::equipment_rw::sync_series(&tx, system_id.as_str(), topology).await?;
        tx.commit().await.map_err(|e| StoreError::query("commit equipment", e))?;
        Ok(row.get(0))
    }
}
