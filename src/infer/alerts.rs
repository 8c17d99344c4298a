//! Condition alerts inside the infer transaction: after a batch's scores are stored, each
//! scored system's alerts are derived again from its latest-revision scores (see
//! `store::alerts` for why an aborted Kafka transaction loses no event), and the events caused
//! by the batch's windows are encoded for the same Kafka transaction as the scores.

use std::collections::{BTreeMap, HashMap};

use apache_avro::types::Value;
use chrono::{DateTime, Duration, Utc};

use super::batch::ComponentKinds;
use super::error::InferError;
use super::scorer::{ScoreError, Scored};
use crate::codec::RecordEncoder;
use crate::config::AlertsConfig;
use crate::domain::AlertLevel;
use crate::model::ConditionCatalogue;
use crate::store::{AlertDerivation, Store, StoredAlertEvent};

/// How far before a batch's oldest window a late revision may still change alerts.
const LOOKBACK_HOURS: i64 = 24;

/// A window's start and revision.
type WindowRevision = (DateTime<Utc>, i32);

pub struct AlertDeriver {
    pub config: AlertsConfig,
    pub conditions: ConditionCatalogue,
    pub encoder: RecordEncoder,
    pub topic: String,
}

/// The Avro record of `schemas/alert_events.avsc`.
pub fn to_avro(e: &StoredAlertEvent) -> Value {
    let a = &e.alert;
    let level = if a.level == AlertLevel::Critical { "critical" } else { "warning" };
    let kind = crate::domain::AlertEventKind::ALL.iter().position(|k| *k == e.kind).unwrap_or(0);
    Value::Record(vec![
        ("event_id".into(), Value::String(e.event_id.clone())),
        ("kind".into(), Value::Enum(kind as u32, e.kind.as_str().to_owned())),
        ("alert_id".into(), Value::String(a.alert_id.clone())),
        ("system_id".into(), Value::String(a.system_id.clone())),
        ("component_id".into(), Value::String(a.component_id.clone())),
        ("level".into(), Value::String(level.into())),
        ("status".into(), Value::String(e.status.into())),
        ("opened_window_start".into(), Value::TimestampMicros(a.opened_window_start.timestamp_micros())),
        ("opened_window_end".into(), Value::TimestampMicros(a.opened_window_end.timestamp_micros())),
        (
            "cleared_window_start".into(),
            match a.cleared_window_start {
                Some(t) => Value::Union(1, Box::new(Value::TimestampMicros(t.timestamp_micros()))),
                None => Value::Union(0, Box::new(Value::Null)),
            },
        ),
        ("cause_window_start".into(), Value::TimestampMicros(e.cause_start.timestamp_micros())),
        ("cause_revision".into(), Value::Int(e.cause_revision)),
    ])
}

impl AlertDeriver {
    /// A stored score's level: its class's severity when the model's manifest names the class,
    /// else the score against the thresholds of the component's kind.
    fn level(&self, kinds: &HashMap<String, String>, version: &str, component: &str, class: Option<&str>, score: f64) -> AlertLevel {
        match class.and_then(|c| self.conditions.lookup(version, component, c)) {
            Some(spec) => spec.severity.alert(),
            None => self.config.level_of_score(kinds.get(component).map(String::as_str), score),
        }
    }

    /// Derives the alerts of every system the batch scored and returns the events caused by
    /// the batch's windows (those made now and those made by an earlier, aborted attempt).
    /// `kinds`: each system's component kinds, as the batch loaded them (a system without a
    /// topology has none: its levels come from the default thresholds).
    pub async fn events(&self, store: &Store, scored: &[&Scored], kinds: &ComponentKinds) -> Result<Vec<StoredAlertEvent>, InferError> {
        // Per system: its oldest scored window and its newest revision scored (the cause).
        let mut systems: BTreeMap<&str, (DateTime<Utc>, WindowRevision)> = BTreeMap::new();
        for s in scored {
            let w = &s.window;
            let entry = systems.entry(w.system_id.as_str()).or_insert((w.window_start, (w.window_start, w.revision)));
            entry.0 = entry.0.min(w.window_start);
            entry.1 = entry.1.max((w.window_start, w.revision));
        }
        let none = HashMap::new();
        let level_of = |system: &str, version: &str, component: &str, class: Option<&str>, score: f64| {
            self.level(kinds.get(system).unwrap_or(&none), version, component, class, score)
        };
        let batch: Vec<AlertDerivation<'_>> =
            systems.iter().map(|(system, (oldest, cause))| AlertDerivation { system_id: system, cause: *cause, oldest: *oldest }).collect();
        store
            .derive_alerts(&batch, Duration::hours(LOOKBACK_HOURS), self.config.consecutive_windows, &level_of)
            .await
            .map_err(ScoreError::from)?;
        let causes: Vec<(String, DateTime<Utc>, i32)> = scored.iter().map(|s| (s.window.system_id.clone(), s.window.window_start, s.window.revision)).collect();
        Ok(store.events_caused_by(&causes).await.map_err(ScoreError::from)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_class_gives_its_severity_and_anything_else_the_thresholds_of_its_kind() {
        let dir = &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(crate::model::DEFAULT_MODEL_DIR);
        let manifest = crate::model::read_manifest(dir).unwrap();
        let config = crate::config::Config::load(&Default::default(), &Default::default()).unwrap();
        let deriver = AlertDeriver {
            config: config.alerts.clone(),
            conditions: ConditionCatalogue::new([&manifest]),
            encoder: RecordEncoder::new(&config.schema_registry, "t", crate::codec::schemas::ALERT_EVENTS).unwrap(),
            topic: "t".into(),
        };
        let kinds = HashMap::from([("valve".to_owned(), "valve".to_owned())]);
        let v = manifest.version.as_str();
        // The class decides, whatever the score: 73 % is close to total failure, 90 % a small lag.
        assert_eq!(deriver.level(&kinds, v, "valve", Some("73"), 0.0), AlertLevel::Critical);
        assert_eq!(deriver.level(&kinds, v, "valve", Some("90"), 1.0), AlertLevel::Warning);
        assert_eq!(deriver.level(&kinds, v, "valve", Some("100"), 1.0), AlertLevel::Ok);
        // No class, or one the manifest does not name (another model version): the thresholds.
        assert_eq!(deriver.level(&kinds, v, "valve", None, 0.95), AlertLevel::Critical);
        assert_eq!(deriver.level(&kinds, "gnn-service", "valve", Some("73"), 0.1), AlertLevel::Ok);
    }
}
