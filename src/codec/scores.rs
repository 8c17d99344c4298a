//! `anomaly_scores.avsc`: per-component scores of one window revision. The components are the
//! domain's; the schema carries neither their features nor contributions.

use apache_avro::types::Value;

use crate::domain::{ComponentScore, ScoredWindow};

#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyScores {
    pub system_id: String,
    pub window_start: i64,
    pub window_end: i64,
    pub revision: i32,
    pub model_version: String,
    pub overall_score: f64,
    pub components: Vec<ComponentScore>,
    pub computed_at: i64,
}

impl From<&ScoredWindow> for AnomalyScores {
    fn from(window: &ScoredWindow) -> Self {
        AnomalyScores {
            system_id: window.system_id.clone(),
            window_start: window.window_start.timestamp_micros(),
            window_end: window.window_end.timestamp_micros(),
            revision: window.revision,
            model_version: window.model_version.clone(),
            overall_score: window.overall_score(),
            components: window.components.clone(),
            computed_at: window.computed_at.timestamp_micros(),
        }
    }
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
