//! Equipment (systems and their series): per owner, with a version for optimistic locking;
//! and the in-memory catalogue validation reads it through.

mod catalogue;

pub use catalogue::{EquipmentCatalogue, EquipmentChange};

use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde::Serialize;
use uuid::Uuid;

use super::{Store, StoreError, q};
use crate::domain::{SystemId, Topology};

const EQUIPMENT_GET: &str = include_str!("../sql/equipment_get.sql");
const EQUIPMENT_LIST: &str = include_str!("../sql/equipment_list.sql");
const EQUIPMENT_INSERT: &str = include_str!("../sql/equipment_insert.sql");
const EQUIPMENT_UPDATE: &str = include_str!("../sql/equipment_update.sql");
const EQUIPMENT_DELETE: &str = include_str!("../sql/equipment_delete.sql");
const SERIES_SYNC: &str = include_str!("../sql/series_sync.sql");
const EQUIPMENT_UPSERT: &str = include_str!("../sql/equipment_upsert.sql");
const SYSTEMS_COUNT: &str = include_str!("../sql/systems_count.sql");

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Equipment {
    pub system_id: String,
    pub name: String,
    #[schema(value_type = crate::domain::Topology)]
    pub topology: serde_json::Value,
    pub topology_hash: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn equipment(r: &tokio_postgres::Row) -> Equipment {
    Equipment {
        system_id: r.get(0),
        name: r.get(1),
        topology: r.get(2),
        topology_hash: r.get(3),
        version: r.get(4),
        created_at: r.get(5),
        updated_at: r.get(6),
    }
}

/// What an update found.
#[derive(Debug, PartialEq, Eq)]
pub enum Updated {
    Done(i64),
    NotFound,
    /// The row exists but its version is not the one the client read.
    VersionMismatch,
}

/// Makes the system's series match its topology (new series ids for new sensors), and recounts
/// the slot coverage of its open windows at the new sampling rates: a topology change mid-window
/// recomputes completeness (a window complete now is announced in this transaction).
async fn sync_series(tx: &Transaction<'_>, system_id: &str, topology: &Topology) -> Result<(), StoreError> {
    let s = &topology.sensors;
    let ids: Vec<&str> = s.iter().map(|x| x.id.as_str()).collect();
    let kinds: Vec<&str> = s.iter().map(|x| x.kind.as_str()).collect();
    let units: Vec<&str> = s.iter().map(|x| x.unit.as_str()).collect();
    let components: Vec<&str> = s.iter().map(|x| x.component.as_str()).collect();
    let rates: Vec<f64> = s.iter().map(|x| x.sample_rate_hz).collect();
    let mins: Vec<f64> = s.iter().map(|x| x.min).collect();
    let maxs: Vec<f64> = s.iter().map(|x| x.max).collect();
    tx.execute(SERIES_SYNC, &[&system_id, &ids, &kinds, &units, &components, &rates, &mins, &maxs])
        .await
        .map_err(q("sync series"))?;
    let complete = super::windows::recount(tx, system_id).await?;
    if !complete.is_empty() {
        tracing::info!(system_id, windows = complete.len(), "windows complete after a topology change");
    }
    Ok(())
}

impl Store {
    pub async fn get_equipment(&self, owner: Uuid, system_id: &str) -> Result<Option<Equipment>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(EQUIPMENT_GET).await.map_err(q("prepare equipment read"))?;
        Ok(client.query_opt(&statement, &[&owner, &system_id]).await.map_err(q("read equipment"))?.as_ref().map(equipment))
    }

    /// One page, ordered by system id, after the cursor `after` ("" for the first page).
    pub async fn list_equipment(&self, owner: Uuid, name: Option<&str>, after: &str, limit: i64) -> Result<Vec<Equipment>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(EQUIPMENT_LIST).await.map_err(q("prepare equipment list"))?;
        let rows = client.query(&statement, &[&owner, &name, &after, &limit]).await.map_err(q("list equipment"))?;
        Ok(rows.iter().map(equipment).collect())
    }

    /// Creates a system; `Conflict` when the id exists (whoever owns it).
    pub async fn create_equipment(&self, owner: Uuid, system_id: &SystemId, name: &str, topology: &Topology) -> Result<i64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(q("begin"))?;
        let json = serde_json::to_value(topology).map_err(|e| StoreError::Conflict(e.to_string()))?;
        let version: i64 = tx
            .query_opt(EQUIPMENT_INSERT, &[&system_id.as_str(), &owner, &name, &json, &topology.hash()])
            .await
            .map_err(q("create equipment"))?
            .ok_or_else(|| StoreError::Conflict(format!("system {system_id} exists")))?
            .get(0);
        sync_series(&tx, system_id.as_str(), topology).await?;
        tx.commit().await.map_err(q("commit equipment"))?;
        Ok(version)
    }

    pub async fn update_equipment(
        &self,
        owner: Uuid,
        system_id: &str,
        name: &str,
        topology: &Topology,
        expected_version: Option<i64>,
    ) -> Result<Updated, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(q("begin"))?;
        let json = serde_json::to_value(topology).map_err(|e| StoreError::Conflict(e.to_string()))?;
        let row = tx
            .query_opt(EQUIPMENT_UPDATE, &[&owner, &system_id, &name, &json, &topology.hash(), &expected_version])
            .await
            .map_err(q("update equipment"))?;
        let Some(row) = row else {
            let exists = tx.query_opt(EQUIPMENT_GET, &[&owner, &system_id]).await.map_err(q("read equipment"))?.is_some();
            return Ok(if exists { Updated::VersionMismatch } else { Updated::NotFound });
        };
        sync_series(&tx, system_id, topology).await?;
        tx.commit().await.map_err(q("commit equipment"))?;
        Ok(Updated::Done(row.get(0)))
    }

    pub async fn delete_equipment(&self, owner: Uuid, system_id: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let deleted: i64 = client.query_one(EQUIPMENT_DELETE, &[&owner, &system_id]).await.map_err(q("delete equipment"))?.get(0);
        Ok(deleted == 1)
    }

    /// Creates or replaces a system and makes its series match the topology, in one transaction.
    /// Returns the equipment version; `Conflict` when another owner has the system id.
    pub async fn put_equipment(&self, owner: Uuid, system_id: &SystemId, name: &str, topology: &Topology) -> Result<i64, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(q("begin"))?;
        let json = serde_json::to_value(topology).map_err(|e| StoreError::Conflict(e.to_string()))?;
        let row = tx
            .query_opt(EQUIPMENT_UPSERT, &[&system_id.as_str(), &owner, &name, &json, &topology.hash()])
            .await
            .map_err(q("upsert equipment"))?
            .ok_or_else(|| StoreError::Conflict(format!("system {system_id} belongs to another user")))?;
        sync_series(&tx, system_id.as_str(), topology).await?;
        tx.commit().await.map_err(q("commit equipment"))?;
        Ok(row.get(0))
    }

    pub async fn count_systems(&self, owner: Uuid) -> Result<i64, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(SYSTEMS_COUNT).await.map_err(q("prepare systems count"))?;
        Ok(client.query_one(&statement, &[&owner]).await.map_err(q("count systems"))?.get(0))
    }
}
