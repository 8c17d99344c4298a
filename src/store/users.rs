//! Users and API keys. Keys are stored as a SHA-256 hash with a short prefix to find the row.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Store, StoreError, q};

const USER_CREATE: &str = include_str!("sql/user_create.sql");
const API_KEY_INSERT: &str = include_str!("sql/api_key_insert.sql");
const USER_BY_KEY: &str = include_str!("sql/user_by_key.sql");

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

    /// Candidates for a key prefix: the caller compares the hashes in constant time.
    pub async fn users_by_key_prefix(&self, prefix: &str) -> Result<Vec<(User, Vec<u8>, Uuid)>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(USER_BY_KEY).await.map_err(q("prepare key lookup"))?;
        let rows = client.query(&statement, &[&prefix]).await.map_err(q("look up an API key"))?;
        Ok(rows.iter().map(|r| (user(r), r.get(6), r.get(7))).collect())
    }
}
