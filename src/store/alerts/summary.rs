//! What a dashboard or report needs of a period: per component, time per condition class and
//! per alert state, alerts opened and how long they took to acknowledge.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::store::{Store, StoreError, q};

const CONDITIONS: &str = include_str!("../sql/summary_conditions.sql");
const ALERTS: &str = include_str!("../sql/summary_alerts.sql");

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComponentSummary {
    /// Seconds of scored windows in the period.
    pub scored_seconds: f64,
    /// Class → seconds (scores without a class are only in `scored_seconds`).
    pub conditions: BTreeMap<String, f64>,
    /// Level (`warning`, `critical`) → seconds an alert of that level was open.
    pub alert_seconds: BTreeMap<String, f64>,
    pub alerts_opened: i64,
    /// Mean seconds from the opening event to the ack, over the acknowledged alerts opened in
    /// the period.
    pub mean_time_to_ack_seconds: Option<f64>,
}

impl Store {
    pub async fn summary(&self, system_id: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<BTreeMap<String, ComponentSummary>, StoreError> {
        let client = self.client().await?;
        let mut out: BTreeMap<String, ComponentSummary> = BTreeMap::new();
        for row in client.query(CONDITIONS, &[&system_id, &from, &to]).await.map_err(q("summarize conditions"))? {
            let entry = out.entry(row.get(0)).or_default();
            let seconds: f64 = row.get::<_, Option<f64>>(2).unwrap_or(0.0);
            entry.scored_seconds += seconds;
            if let Some(class) = row.get::<_, Option<String>>(1) {
                *entry.conditions.entry(class).or_default() += seconds;
            }
        }
        let mut acks: BTreeMap<String, (f64, i64)> = BTreeMap::new();
        for row in client.query(ALERTS, &[&system_id, &from, &to]).await.map_err(q("summarize alerts"))? {
            let component: String = row.get(0);
            let entry = out.entry(component.clone()).or_default();
            *entry.alert_seconds.entry(row.get(1)).or_default() += row.get::<_, Option<f64>>(2).unwrap_or(0.0);
            entry.alerts_opened += row.get::<_, i64>(3);
            let acked = acks.entry(component).or_default();
            acked.0 += row.get::<_, Option<f64>>(4).unwrap_or(0.0);
            acked.1 += row.get::<_, i64>(5);
        }
        for (component, (seconds, count)) in acks {
            if let Some(entry) = out.get_mut(&component).filter(|_| count > 0) {
                entry.mean_time_to_ack_seconds = Some(seconds / count as f64);
            }
        }
        Ok(out)
    }
}
