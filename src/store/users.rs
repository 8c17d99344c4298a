//! Users: created with a first API key, changed by an admin, ensured by the simulator.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Store, StoreError, q};

const USER_CREATE: &str = include_str!("sql/user_create.sql");
const API_KEY_INSERT: &str = include_str!("sql/api_key_insert.sql");
const USER_UPDATE: &str = include_str!("sql/user_update.sql");
const USER_ENSURE: &str = include_str!("sql/user_ensure.sql");

#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct User {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
    pub tier: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
}

pub(super) fn user(row: &tokio_postgres::Row) -> User {
    User { user_id: row.get(0), email: row.get(1), name: row.get(2), tier: row.get(3), role: row.get(4), created_at: row.get(5) }
}

/// Fields an admin may change; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct UserChange<'a> {
    pub tier: Option<&'a str>,
    pub role: Option<&'a str>,
    pub disabled: Option<bool>,
}

impl Store {
    /// Creates a user with a first API key (given as prefix and hash), in one transaction.
    /// `Conflict` when the email is taken.
    pub async fn create_user(&self, email: &str, name: &str, role: &str, key_prefix: &str, key_hash: &[u8]) -> Result<User, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(q("begin"))?;
        let row = tx.query_one(USER_CREATE, &[&Uuid::now_v7(), &email, &name, &role]).await.map_err(q("create a user"))?;
        let created = user(&row);
        tx.execute(API_KEY_INSERT, &[&Uuid::now_v7(), &created.user_id, &key_prefix, &key_hash, &"default"])
            .await
            .map_err(q("store the API key"))?;
        tx.commit().await.map_err(q("commit the user"))?;
        Ok(created)
    }

    /// The id of the user with this email, creating them when absent.
    pub async fn ensure_user(&self, email: &str, name: &str) -> Result<Uuid, StoreError> {
        let client = self.client().await?;
        let row = client.query_one(USER_ENSURE, &[&Uuid::now_v7(), &email, &name]).await.map_err(q("ensure a user"))?;
        Ok(row.get(0))
    }

    /// `None` when the user does not exist.
    pub async fn update_user(&self, user_id: Uuid, change: &UserChange<'_>) -> Result<Option<User>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(USER_UPDATE, &[&user_id, &change.tier, &change.role, &change.disabled])
            .await
            .map_err(q("update a user"))?;
        Ok(row.as_ref().map(user))
    }
}
