//! Alerts as the API reads them: a system's open and recent ones, and acknowledging one.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::store::{Store, StoreError, q};

const OF_SYSTEM: &str = include_str!("../sql/alerts_of_system.sql");
const ONE: &str = include_str!("../sql/alert_one.sql");
const ACK: &str = include_str!("../sql/alert_ack.sql");

/// One stored alert with its acknowledgement.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRow {
    pub alert_id: String,
    pub system_id: String,
    pub component_id: String,
    pub level: String,
    pub status: String,
    pub opened_window_start: DateTime<Utc>,
    pub opened_window_end: DateTime<Utc>,
    pub cleared_window_start: Option<DateTime<Utc>>,
    pub last_event: String,
    pub updated_at: DateTime<Utc>,
    pub acked_by: Option<Uuid>,
    pub acked_at: Option<DateTime<Utc>>,
}

fn row(system_id: String, r: &tokio_postgres::Row) -> AlertRow {
    AlertRow {
        alert_id: r.get(0),
        system_id,
        component_id: r.get(1),
        level: r.get(2),
        status: r.get(3),
        opened_window_start: r.get(4),
        opened_window_end: r.get(5),
        cleared_window_start: r.get(6),
        last_event: r.get(7),
        updated_at: r.get(8),
        acked_by: r.get(9),
        acked_at: r.get(10),
    }
}

impl Store {
    /// A system's alerts: the open ones first, then the most recent; withdrawn ones are left out.
    pub async fn alerts_of_system(&self, system_id: &str, limit: i64) -> Result<Vec<AlertRow>, StoreError> {
        let client = self.client().await?;
        let rows = client.query(OF_SYSTEM, &[&system_id, &limit]).await.map_err(q("read alerts"))?;
        Ok(rows.iter().map(|r| row(system_id.to_owned(), r)).collect())
    }

    /// One alert by id, whoever's (the live feed sends it to its system's sessions only).
    pub async fn alert(&self, alert_id: &str) -> Result<Option<AlertRow>, StoreError> {
        let client = self.client().await?;
        let found = client.query_opt(ONE, &[&alert_id]).await.map_err(q("read an alert"))?;
        Ok(found.map(|r| row(r.get(11), &r)))
    }

    /// Acknowledges an alert of a system `user` owns; the first ack stands. None when there is
    /// no such alert of theirs.
    pub async fn ack_alert(&self, alert_id: &str, user: Uuid) -> Result<Option<AlertRow>, StoreError> {
        let client = self.client().await?;
        let found = client.query_opt(ACK, &[&alert_id, &user]).await.map_err(q("acknowledge an alert"))?;
        Ok(found.map(|r| row(r.get(11), &r)))
    }
}
