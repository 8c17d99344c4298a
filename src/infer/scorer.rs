//! Chooses and runs a scorer per window: the external GNN service when configured; otherwise
//! the rig model when the system's topology hash matches the model's manifest; otherwise the
//! baseline (the system against its own history).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::baseline;
use super::http::{HttpScorer, HttpScorerError, ScoreRequest};
use super::model::RigModel;
use crate::codec::{ComponentScoreRecord, WindowReady};
use crate::store::{Store, StoreError, SystemInfo};

pub const BASELINE_VERSION: &str = "baseline-robust-z-v1";
pub const SERVICE_VERSION: &str = "gnn-service";

#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Service(#[from] HttpScorerError),
}

/// One scored window, with the features that explain it (per component).
#[derive(Debug, Clone)]
pub struct ScoredWindow {
    pub event: WindowReady,
    pub model_version: String,
    /// `model`, `baseline` or `service`: a bounded label for metrics.
    pub scorer: &'static str,
    pub components: Vec<(ComponentScoreRecord, serde_json::Value)>,
}

pub struct Scorer {
    pub store: Store,
    pub model: Option<RigModel>,
    pub service: Option<HttpScorer>,
    pub history_minutes: i64,
}

fn time(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

impl Scorer {
    pub async fn score(&self, event: &WindowReady, values: &HashMap<String, Vec<f64>>, info: Option<&SystemInfo>) -> Result<ScoredWindow, ScoreError> {
        let scored = |model_version: String, scorer, components| ScoredWindow { event: event.clone(), model_version, scorer, components };
        let Some(info) = info else {
            // The equipment was deleted after its window closed: nothing left to score against.
            return Ok(scored(BASELINE_VERSION.into(), "baseline", Vec::new()));
        };
        if let Some(service) = &self.service {
            let request = ScoreRequest {
                user_id: info.owner_id.to_string(),
                system_id: &event.system_id,
                window_start: time(event.window_start).to_rfc3339(),
                window_end: time(event.window_end).to_rfc3339(),
                revision: event.revision,
            };
            let components = service
                .score(&request)
                .await?
                .into_iter()
                .map(|(component_id, score)| {
                    let record = ComponentScoreRecord { component_id, score, condition: None, probabilities: BTreeMap::new() };
                    (record, serde_json::Value::Null)
                })
                .collect();
            return Ok(scored(SERVICE_VERSION.into(), "service", components));
        }
        if let Some(model) = self.model.as_ref().filter(|m| m.manifest().topology_hash == info.topology_hash) {
            let components = model
                .score(values)
                .into_iter()
                .map(|c| {
                    let features = serde_json::to_value(&c.features).unwrap_or_default();
                    let record = ComponentScoreRecord { component_id: c.component_id, score: c.score, condition: c.condition, probabilities: c.probabilities };
                    (record, features)
                })
                .collect();
            return Ok(scored(model.manifest().version.clone(), "model", components));
        }
        let Some(topology) = &info.topology else {
            return Ok(scored(BASELINE_VERSION.into(), "baseline", Vec::new()));
        };
        let history = self.store.minute_means(&event.system_id, time(event.window_start), self.history_minutes).await?;
        let components = baseline::score(topology, values, &history)
            .into_iter()
            .map(|b| {
                let features = serde_json::to_value(&b.features).unwrap_or_default();
                (ComponentScoreRecord { component_id: b.component_id, score: b.score, condition: None, probabilities: BTreeMap::new() }, features)
            })
            .collect();
        Ok(scored(BASELINE_VERSION.into(), "baseline", components))
    }
}
