//! Scores as the API shows them (history, latest, live feed): the JSON of the domain's scored
//! windows, one entry per window with each component's latest revision.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::{ComponentScore, Driver, ScoredWindow, Severity};
use crate::model::ConditionCatalogue;

// The schema names are the API's (`ScoredWindow`, `ComponentScore`); doc comments on these two
// structs would become schema descriptions in /openapi.json.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ScoredWindow)]
pub struct ScoredWindowBody {
    pub system_id: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    /// Raised when late readings changed the window and it was scored again.
    pub revision: i32,
    pub model_version: String,
    pub components: Vec<ComponentScoreBody>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = ComponentScore)]
pub struct ComponentScoreBody {
    pub component_id: String,
    /// 0 (healthy) to 1 (anomalous).
    pub score: f32,
    /// The predicted condition class, when the model has one for this component.
    pub class: Option<String>,
    /// What the class means (e.g. "reduced efficiency"), from the manifest of `model_version`;
    /// null when the model has no classes or the API does not know that model version.
    pub class_name: Option<String>,
    /// How bad the class is (ok < degraded < severe < failure); null as `class_name`.
    pub severity: Option<Severity>,
    #[schema(value_type = Option<Object>)]
    pub class_probs: Option<serde_json::Value>,
    /// The window features the model saw for this component.
    #[schema(value_type = Option<Object>)]
    pub features: Option<serde_json::Value>,
    /// Up to three sensors that drove the score up, strongest first (empty: none did); null when
    /// the scorer does not say (the external service may not; scores stored before drivers).
    pub drivers: Option<Vec<SensorDriver>>,
    pub computed_at: DateTime<Utc>,
}

/// A sensor that drove a component's score.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SensorDriver {
    #[schema(example = "PS2")]
    pub sensor_id: String,
    /// Larger is stronger. The rig model: how much the log-odds of the score,
    /// ln(score / (1 − score)), fall when this sensor is left out. The baseline: the sensor's
    /// robust z-score against its own history.
    pub effect: f64,
}

impl ComponentScoreBody {
    fn new(score: &ComponentScore, drivers: Option<&Vec<Driver>>, computed_at: DateTime<Utc>) -> Self {
        Self {
            component_id: score.component_id.clone(),
            // Stored as `real`: the f32 it was is what the API shows.
            score: score.score as f32,
            class: score.condition.clone(),
            class_name: score.condition_name.clone(),
            severity: score.severity,
            class_probs: serde_json::to_value(&score.probabilities).ok(),
            features: score.features.as_ref().and_then(|f| serde_json::to_value(f).ok()),
            drivers: drivers.map(|d| d.iter().map(|d| SensorDriver { sensor_id: d.sensor_id.clone(), effect: d.effect }).collect()),
            computed_at,
        }
    }
}

/// One entry per window from the stored parts (next to each other, window by window, as the
/// store reads them): the window's bounds and model version are its first part's, its revision
/// the highest, its components all parts' in order. Each component's class is named from the
/// manifest of its own part's model version.
pub fn bodies(parts: Vec<ScoredWindow>, conditions: &ConditionCatalogue) -> Vec<ScoredWindowBody> {
    let mut windows: Vec<ScoredWindowBody> = Vec::new();
    for mut part in parts {
        for component in &mut part.components {
            conditions.describe(&part.model_version, component);
        }
        let components = part.components.iter().map(|c| ComponentScoreBody::new(c, part.contributions.get(&c.component_id), part.computed_at));
        match windows.last_mut() {
            Some(w) if w.window_start == part.window_start => {
                w.revision = w.revision.max(part.revision);
                w.components.extend(components);
            }
            _ => windows.push(ScoredWindowBody {
                system_id: part.system_id.clone(),
                window_start: part.window_start,
                window_end: part.window_end,
                revision: part.revision,
                model_version: part.model_version.clone(),
                components: components.collect(),
            }),
        }
    }
    windows
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeDelta;

    use super::*;

    fn part(start_minute: i64, revision: i32, computed_second: i64, components: &[(&str, f64)]) -> ScoredWindow {
        let start = DateTime::UNIX_EPOCH + TimeDelta::minutes(start_minute);
        ScoredWindow {
            system_id: "rig-1".into(),
            window_start: start,
            window_end: start + TimeDelta::minutes(1),
            revision,
            model_version: format!("v{revision}"),
            computed_at: DateTime::UNIX_EPOCH + TimeDelta::seconds(computed_second),
            components: components
                .iter()
                .map(|(id, score)| ComponentScore { component_id: (*id).into(), score: *score, condition: None, condition_name: None, severity: None, probabilities: BTreeMap::new(), features: None })
                .collect(),
            contributions: BTreeMap::new(),
        }
    }

    #[test]
    fn the_parts_of_a_window_make_one_entry_each_component_with_its_own_time() {
        // Window 5: the accumulator and pump at revision 1, the motor still at revision 0 (the
        // later scorer does not score it); window 4: one part.
        let parts = vec![part(5, 1, 20, &[("accumulator", 0.25)]), part(5, 0, 10, &[("motor", 0.5)]), part(5, 1, 20, &[("pump", 0.1)]), part(4, 0, 9, &[("pump", 0.0)])];
        let windows = bodies(parts, &ConditionCatalogue::default());
        assert_eq!(windows.len(), 2);
        let (first, second) = (&windows[0], &windows[1]);
        assert_eq!((first.revision, first.model_version.as_str()), (1, "v1"), "the highest revision, the first part's version");
        let times: Vec<(&str, i64)> = first.components.iter().map(|c| (c.component_id.as_str(), c.computed_at.timestamp())).collect();
        assert_eq!(times, [("accumulator", 20), ("motor", 10), ("pump", 20)]);
        assert_eq!(second.components.len(), 1);
    }

    #[test]
    fn a_component_shows_as_it_was_stored() {
        let mut window = part(0, 0, 0, &[("pump", f64::from(0.1f32))]);
        window.components[0].features = Some(BTreeMap::from([("PS1.mean".to_owned(), 150.5)]));
        window.contributions.insert("pump".into(), vec![Driver { sensor_id: "PS1".into(), effect: 0.25 }]);
        window.components.push(ComponentScore { component_id: "valve".into(), score: 0.0, condition: None, condition_name: None, severity: None, probabilities: BTreeMap::new(), features: None });
        let text = serde_json::to_string(&bodies(vec![window], &ConditionCatalogue::default())[0].components).unwrap();
        assert!(text.contains(r#""score":0.1,"#), "the stored f32, not its f64 widening: {text}");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(json[0]["features"], serde_json::json!({"PS1.mean": 150.5}));
        assert_eq!(json[1]["class_probs"], serde_json::json!({}));
        assert_eq!(json[1]["features"], serde_json::Value::Null);
        assert_eq!(json[0]["drivers"], serde_json::json!([{"sensor_id": "PS1", "effect": 0.25}]));
        assert_eq!(json[1]["drivers"], serde_json::Value::Null, "the valve is not explained");
    }
}
