//! Scores as the API serves them: one entry per scored window, its components inside.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::{Store, StoreError, q};

const SCORES_WINDOWS: &str = include_str!("sql/scores_windows.sql");
const SCORES_OF_WINDOW: &str = include_str!("sql/scores_of_window.sql");

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScoredWindow {
    pub system_id: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// Raised when late readings changed the window and it was scored again.
    pub revision: i32,
    pub model_version: String,
    pub components: Vec<ComponentScore>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ComponentScore {
    pub component_id: String,
    /// 0 (healthy) to 1 (anomalous).
    pub score: f32,
    /// The predicted condition class, when the model has one for this component.
    pub class: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub class_probs: Option<serde_json::Value>,
    /// The window features the model saw for this component.
    #[schema(value_type = Option<Object>)]
    pub features: Option<serde_json::Value>,
    pub computed_at: DateTime<Utc>,
}

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

/// Rows in (window desc, component) order become one entry per window.
fn group(system_id: &str, rows: &[tokio_postgres::Row]) -> Vec<ScoredWindow> {
    let mut windows: Vec<ScoredWindow> = Vec::new();
    for row in rows {
        let start: DateTime<Utc> = row.get(0);
        let revision: i32 = row.get(2);
        let component = ComponentScore {
            component_id: row.get(4),
            score: row.get(5),
            class: row.get(6),
            class_probs: row.get(7),
            features: row.get(8),
            computed_at: row.get(9),
        };
        match windows.last_mut() {
            Some(w) if w.window_start == start => {
                w.revision = w.revision.max(revision);
                w.components.push(component);
            }
            _ => windows.push(ScoredWindow {
                system_id: system_id.to_owned(),
                window_start: start,
                window_end: row.get(1),
                revision,
                model_version: row.get(3),
                components: vec![component],
            }),
        }
    }
    windows
}

impl Store {
    pub async fn scored_windows(&self, query: &ScoresQuery) -> Result<Vec<ScoredWindow>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(SCORES_WINDOWS).await.map_err(q("prepare scores history"))?;
        let rows = client
            .query(&statement, &[&query.system_id, &query.from, &query.to, &query.before, &query.limit, &query.component])
            .await
            .map_err(q("read scores history"))?;
        Ok(group(&query.system_id, &rows))
    }

    pub async fn scored_window(&self, system_id: &str, window_start: DateTime<Utc>, revision: i32) -> Result<Option<ScoredWindow>, StoreError> {
        let client = self.client().await?;
        let statement = client.prepare_cached(SCORES_OF_WINDOW).await.map_err(q("prepare window scores"))?;
        let rows = client.query(&statement, &[&system_id, &window_start, &revision]).await.map_err(q("read window scores"))?;
        Ok(group(system_id, &rows).into_iter().next())
    }
}
