//! API keys, stored as a SHA-256 hash with a short prefix to find the row: listed, created,
//! revoked, looked up and checked per use.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::users::user;
use super::{Store, StoreError, User, q};

const KEYS_LIST: &str = include_str!("sql/keys_list.sql");
const KEY_CREATE: &str = include_str!("sql/key_create.sql");
const KEY_REVOKE: &str = include_str!("sql/key_revoke.sql");
const KEYS_TOUCH: &str = include_str!("sql/keys_touch.sql");
const KEY_ACTIVE: &str = include_str!("sql/key_active.sql");
const USER_BY_KEY: &str = include_str!("sql/user_by_key.sql");

/// A key as listed: never the key itself, only the prefix that identifies it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyInfo {
    pub key_id: Uuid,
    pub prefix: String,
    pub name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

fn key_info(r: &tokio_postgres::Row) -> KeyInfo {
    KeyInfo { key_id: r.get(0), prefix: r.get(1), name: r.get(2), created_at: r.get(3), last_used_at: r.get(4), revoked_at: r.get(5) }
}

impl Store {
    pub async fn list_keys(&self, user_id: Uuid) -> Result<Vec<KeyInfo>, StoreError> {
        let client = self.client().await?;
        let rows = client.query(KEYS_LIST, &[&user_id]).await.map_err(q("list keys"))?;
        Ok(rows.iter().map(key_info).collect())
    }

    pub async fn create_key(&self, user_id: Uuid, name: Option<&str>, prefix: &str, hash: &[u8]) -> Result<KeyInfo, StoreError> {
        let client = self.client().await?;
        let row = client.query_one(KEY_CREATE, &[&Uuid::now_v7(), &user_id, &prefix, &hash, &name]).await.map_err(q("create a key"))?;
        Ok(key_info(&row))
    }

    /// `false` when the user has no such active key.
    pub async fn revoke_key(&self, user_id: Uuid, key_id: Uuid) -> Result<bool, StoreError> {
        let client = self.client().await?;
        Ok(client.query_opt(KEY_REVOKE, &[&user_id, &key_id]).await.map_err(q("revoke a key"))?.is_some())
    }

    pub async fn touch_keys(&self, used: &[(Uuid, DateTime<Utc>)]) -> Result<(), StoreError> {
        if used.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = used.iter().map(|u| u.0).collect();
        let times: Vec<DateTime<Utc>> = used.iter().map(|u| u.1).collect();
        let client = self.client().await?;
        client.execute(KEYS_TOUCH, &[&ids, &times]).await.map_err(q("record key use"))?;
        Ok(())
    }

    /// True while the key works and its user still owns the system.
    pub async fn key_still_grants(&self, key_id: Uuid, system_id: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(KEY_ACTIVE).await.map_err(q("prepare key check"))?;
        Ok(client.query_one(&statement, &[&key_id, &system_id]).await.map_err(q("check a key"))?.get(0))
    }

    /// Candidates for a key prefix: the caller compares the hashes in constant time.
    pub async fn users_by_key_prefix(&self, prefix: &str) -> Result<Vec<(User, Vec<u8>, Uuid)>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(USER_BY_KEY).await.map_err(q("prepare key lookup"))?;
        let rows = client.query(&statement, &[&prefix]).await.map_err(q("look up an API key"))?;
        Ok(rows.iter().map(|r| (user(r), r.get(6), r.get(7))).collect())
    }
}
