//! `anomaly_scores.avsc`: per-component scores of one window revision.

use std::collections::BTreeMap;

use apache_avro::types::Value;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComponentScoreRecord {
    pub component_id: String,
    pub score: f64,
    pub condition: Option<String>,
    pub probabilities: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyScores {
    pub system_id: String,
    pub window_start: i64,
    pub window_end: i64,
    pub revision: i32,
    pub model_version: String,
    pub overall_score: f64,
    pub components: Vec<ComponentScoreRecord>,
    pub computed_at: i64,
}

impl AnomalyScores {
    pub fn to_avro(&self) -> Value {
        let components = self
            .components
            .iter()
            .map(|c| {
                let condition = match &c.condition {
                    Some(text) => Value::Union(1, Box::new(Value::String(text.clone()))),
                    None => Value::Union(0, Box::new(Value::Null)),
                };
                let probabilities = c.probabilities.iter().map(|(k, v)| (k.clone(), Value::Double(*v))).collect();
                Value::Record(vec![
                    ("component_id".into(), Value::String(c.component_id.clone())),
                    ("score".into(), Value::Double(c.score)),
                    ("condition".into(), condition),
                    ("probabilities".into(), Value::Map(probabilities)),
                ])
            })
            .collect();
        Value::Record(vec![
            ("system_id".into(), Value::String(self.system_id.clone())),
            ("window_start".into(), Value::TimestampMicros(self.window_start)),
            ("window_end".into(), Value::TimestampMicros(self.window_end)),
            ("revision".into(), Value::Int(self.revision)),
            ("model_version".into(), Value::String(self.model_version.clone())),
            ("overall_score".into(), Value::Double(self.overall_score)),
            ("components".into(), Value::Array(components)),
            ("computed_at".into(), Value::TimestampMicros(self.computed_at)),
        ])
    }
}
