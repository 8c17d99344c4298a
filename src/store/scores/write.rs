//! Scores into `anomaly_scores`: one row per component of each scored window.

use chrono::{DateTime, Utc};

use crate::store::{Store, StoreError, q};
use crate::domain::ScoredWindow;

const SCORES_UPSERT: &str = include_str!("../sql/scores_upsert.sql");

impl Store {
    /// Stores the windows' scores, idempotently per system, component, window and revision.
    pub async fn upsert_scores(&self, windows: &[&ScoredWindow]) -> Result<(), StoreError> {
        let rows: Vec<_> = windows.iter().flat_map(|w| w.components.iter().map(move |c| (*w, c))).collect();
        if rows.is_empty() {
            return Ok(());
        }
        let systems: Vec<&str> = rows.iter().map(|(w, _)| w.system_id.as_str()).collect();
        let components: Vec<&str> = rows.iter().map(|(_, c)| c.component_id.as_str()).collect();
        let starts: Vec<DateTime<Utc>> = rows.iter().map(|(w, _)| w.window_start).collect();
        let ends: Vec<DateTime<Utc>> = rows.iter().map(|(w, _)| w.window_end).collect();
        let revisions: Vec<i32> = rows.iter().map(|(w, _)| w.revision).collect();
        let versions: Vec<&str> = rows.iter().map(|(w, _)| w.model_version.as_str()).collect();
        // `real` in the table: the scores API serves them as f32.
        let scores: Vec<f32> = rows.iter().map(|(_, c)| c.score as f32).collect();
        let classes: Vec<Option<&str>> = rows.iter().map(|(_, c)| c.condition.as_deref()).collect();
        let probs: Vec<serde_json::Value> = rows.iter().map(|(_, c)| serde_json::to_value(&c.probabilities).unwrap_or_default()).collect();
        // No features is JSON `null`, not SQL NULL.
        let features: Vec<serde_json::Value> = rows.iter().map(|(_, c)| serde_json::to_value(&c.features).unwrap_or_default()).collect();
        let computed: Vec<DateTime<Utc>> = rows.iter().map(|(w, _)| w.computed_at).collect();
        // Drivers are SQL NULL when the scorer names none for the component.
        let drivers: Vec<Option<serde_json::Value>> =
            rows.iter().map(|(w, c)| w.contributions.get(&c.component_id).and_then(|d| serde_json::to_value(d).ok())).collect();
        let client = self.client().await?;
        let statement = client.prepare_cached(SCORES_UPSERT).await.map_err(q("prepare score upsert"))?;
        client
            .execute(&statement, &[&systems, &components, &starts, &ends, &revisions, &versions, &scores, &classes, &probs, &features, &computed, &drivers])
            .await
            .map_err(q("upsert scores"))?;
        Ok(())
    }
}
