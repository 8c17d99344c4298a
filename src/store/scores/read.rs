//! Scores as the API reads them back: the stored rows of a window become the scored windows
//! they came from.

use chrono::{DateTime, Utc};

use crate::domain::{ComponentScore, Driver, ScoredWindow};
use crate::store::{Store, StoreError, q};

const SCORES_WINDOWS: &str = include_str!("../sql/scores_windows.sql");
const SCORES_OF_WINDOW: &str = include_str!("../sql/scores_of_window.sql");

/// Scores history filter: windows starting in [from, to) and before `before`.
#[derive(Debug, Clone)]
pub struct ScoresQuery {
    pub system_id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub before: DateTime<Utc>,
    pub component: Option<String>,
    pub limit: i64,
}

/// Rows in (window desc, component) order become scored windows: a new one wherever the
/// window, revision, model version or time of scoring changes. The latest revision of each
/// component need not be the same one, so one window can come back in several parts, next to
/// each other.
fn group(system_id: &str, rows: &[tokio_postgres::Row]) -> Vec<ScoredWindow> {
    let mut windows: Vec<ScoredWindow> = Vec::new();
    for row in rows {
        let start: DateTime<Utc> = row.get(0);
        let revision: i32 = row.get(2);
        let model_version: String = row.get(3);
        let computed_at: DateTime<Utc> = row.get(9);
        let drivers: Option<Vec<Driver>> = row.get::<_, Option<serde_json::Value>>(10).and_then(|v| serde_json::from_value(v).ok());
        let component = ComponentScore {
            component_id: row.get(4),
            score: f64::from(row.get::<_, f32>(5)),
            condition: row.get(6),
            // Not stored: the manifest of the score's model version names the class (the API
            // fills these in with `model::ConditionCatalogue`).
            condition_name: None,
            severity: None,
            // Written from these types (`write.rs`): what does not read back is not there.
            probabilities: row.get::<_, Option<serde_json::Value>>(7).and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default(),
            features: row.get::<_, Option<serde_json::Value>>(8).and_then(|v| serde_json::from_value(v).ok()),
        };
        let drivers = drivers.map(|d| (component.component_id.clone(), d));
        match windows.last_mut() {
            Some(w) if w.window_start == start && w.revision == revision && w.model_version == model_version && w.computed_at == computed_at => {
                w.components.push(component);
                w.contributions.extend(drivers);
            }
            _ => windows.push(ScoredWindow {
                system_id: system_id.to_owned(),
                window_start: start,
                window_end: row.get(1),
                revision,
                model_version,
                computed_at,
                components: vec![component],
                contributions: drivers.into_iter().collect(),
            }),
        }
    }
    windows
}

impl Store {
    /// The scores of a system's windows, newest window first; each window's components in id
    /// order, each at its latest revision (see [`group`] for the parts this makes).
    pub async fn scored_windows(&self, query: &ScoresQuery) -> Result<Vec<ScoredWindow>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(SCORES_WINDOWS).await.map_err(q("prepare scores history"))?;
        let rows = client
            .query(&statement, &[&query.system_id, &query.from, &query.to, &query.before, &query.limit, &query.component])
            .await
            .map_err(q("read scores history"))?;
        Ok(group(&query.system_id, &rows))
    }

    /// The scores of one window revision, in component order (usually one part).
    pub async fn window_scores(&self, system_id: &str, window_start: DateTime<Utc>, revision: i32) -> Result<Vec<ScoredWindow>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(SCORES_OF_WINDOW).await.map_err(q("prepare window scores"))?;
        let rows = client.query(&statement, &[&system_id, &window_start, &revision]).await.map_err(q("read window scores"))?;
        Ok(group(system_id, &rows))
    }
}
