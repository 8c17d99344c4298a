//! Window-ready records set aside for their content, so no single one can stall a partition:
//! a record that cannot be decoded, an event that is not a window, an answer a scorer must not
//! give. Each is recorded with a reason (`scoring_failures`) and the batch commits past it.

use std::collections::HashSet;

use apache_avro::types::Value;
use chrono::{DateTime, Utc};
use schema_registry_converter::error::SRCError;

use crate::codec::WindowReady;
use crate::domain::{ScoredWindow, text};
use crate::failure::{self, FailureKind};
use crate::store::{ScoringFailure, SystemInfo};

/// Why a record was set aside: the bounded label of `manifold_infer_windows_failed_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// Not Confluent-framed Avro, or bytes that do not match their writer schema.
    Undecodable,
    /// A schema id the registry does not know.
    UnknownSchema,
    /// Avro, but not a window (missing fields, an impossible window).
    WrongShape,
    /// A score outside [0, 1] or not finite, a component scored twice, unreadable probabilities.
    InvalidScore,
    /// A component the system's topology does not have.
    UnknownComponent,
    /// The external service refused this window (4xx).
    ScorerRefused,
    /// The database refused this window's rows for their content.
    StorageRejected,
}

impl FailReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::Undecodable => "undecodable",
            FailReason::UnknownSchema => "unknown_schema",
            FailReason::WrongShape => "wrong_shape",
            FailReason::InvalidScore => "invalid_score",
            FailReason::UnknownComponent => "unknown_component",
            FailReason::ScorerRefused => "scorer_refused",
            FailReason::StorageRejected => "storage_rejected",
        }
    }
}

/// One record set aside: where it came from, what is known of its window, and why.
#[derive(Debug, Clone)]
pub struct WindowFailure {
    pub partition: i32,
    pub offset: i64,
    pub event: Option<WindowReady>,
    pub reason: FailReason,
    pub message: String,
}

impl WindowFailure {
    pub fn new(partition: i32, offset: i64, event: Option<WindowReady>, reason: FailReason, message: &str) -> Self {
        Self { partition, offset, event, reason, message: text::message(message) }
    }

    /// The row for `scoring_failures`; the window's times only when PostgreSQL can hold them.
    pub fn row(&self, topic: &str) -> ScoringFailure {
        let event = self.event.as_ref();
        ScoringFailure {
            source_topic: topic.to_owned(),
            source_partition: self.partition,
            source_offset: self.offset,
            system_id: event.map(|e| text::sanitize(&e.system_id, 256)),
            window_start: event.and_then(|e| storable_time(e.window_start)),
            window_end: event.and_then(|e| storable_time(e.window_end)),
            revision: event.map(|e| e.revision),
            reason: self.reason.as_str().to_owned(),
            message: self.message.clone(),
        }
    }
}

/// Times from year 1 to 9999: a wider range than any window manifold makes, narrower than
/// PostgreSQL's timestamptz, so the failure row itself cannot be refused.
fn storable_time(us: i64) -> Option<DateTime<Utc>> {
    const MIN_US: i64 = -62_135_596_800_000_000;
    const MAX_US: i64 = 253_402_300_799_999_999;
    (MIN_US..=MAX_US).contains(&us).then(|| DateTime::from_timestamp_micros(us)).flatten()
}

/// What a registry or Avro failure means for the record: a schema the registry does not have
/// (404) or bytes that do not decode are the record's; an unreachable or failing registry is
/// not, and is classified like any other dependency.
pub fn decode_failure(err: &SRCError) -> (FailureKind, FailReason) {
    if err.retriable {
        return (FailureKind::Transient, FailReason::Undecodable);
    }
    match crate::codec::http_status(err) {
        Some(404) => (FailureKind::DataPermanent, FailReason::UnknownSchema),
        Some(status) => (failure::classify_http_status(status), FailReason::Undecodable),
        None => (FailureKind::DataPermanent, FailReason::Undecodable),
    }
}

/// Reads an event and checks that it describes a window manifold could have announced; when
/// it does not, returns what could be read of it with the reason.
pub fn window_event(value: Value) -> Result<WindowReady, (Option<Box<WindowReady>>, String)> {
    let event = WindowReady::from_avro(value).map_err(|e| (None, e.to_string()))?;
    let problem = if crate::domain::SystemId::parse(&event.system_id).is_err() {
        Some(format!("system_id {} is not a system id", text::echo(&event.system_id)))
    } else if storable_time(event.window_start).is_none() || storable_time(event.window_end).is_none() || event.window_start >= event.window_end {
        Some(format!("[{}, {}) is not a window", event.window_start, event.window_end))
    } else if event.revision < 0 {
        Some(format!("revision {} is negative", event.revision))
    } else {
        None
    };
    match problem {
        Some(why) => Err((Some(Box::new(event)), why)),
        None => Ok(event),
    }
}

/// Checks a scorer's answer before anything stores or publishes it: scores and probabilities
/// finite and in [0, 1], each component once and (when the topology is known) one of the
/// system's, drivers finite and (when the topology is known) the system's sensors, and every
/// text storable.
pub fn check_answer(window: &ScoredWindow, info: Option<&SystemInfo>) -> Result<(), (FailReason, String)> {
    let known: Option<HashSet<&str>> = info.and_then(|i| i.topology.as_ref()).map(|t| t.components.iter().map(|c| c.id.as_str()).collect());
    let unit = |x: f64| x.is_finite() && (0.0..=1.0).contains(&x);
    if !text::is_clean(&window.model_version, 128) {
        return Err((FailReason::InvalidScore, format!("model version {} is not storable", text::echo(&window.model_version))));
    }
    let mut seen = HashSet::new();
    for c in &window.components {
        let id = c.component_id.as_str();
        if !text::is_clean(id, 64) || known.as_ref().is_some_and(|k| !k.contains(id)) {
            return Err((FailReason::UnknownComponent, format!("component {} is not in the system's topology", text::echo(id))));
        }
        if !seen.insert(id) {
            return Err((FailReason::InvalidScore, format!("component {} scored twice", text::echo(id))));
        }
        if !unit(c.score) {
            return Err((FailReason::InvalidScore, format!("component {} scored {}, outside [0, 1]", text::echo(id), c.score)));
        }
        if c.condition.as_deref().is_some_and(|t| !text::is_clean(t, 64)) {
            return Err((FailReason::InvalidScore, format!("component {} has an unstorable condition", text::echo(id))));
        }
        if let Some((class, p)) = c.probabilities.iter().find(|(k, p)| !unit(**p) || !text::is_clean(k, 64)) {
            return Err((FailReason::InvalidScore, format!("component {} class {} has probability {p}", text::echo(id), text::echo(class))));
        }
    }
    let sensors: Option<HashSet<&str>> = info.and_then(|i| i.topology.as_ref()).map(|t| t.sensors.iter().map(|s| s.id.as_str()).collect());
    for (component, drivers) in &window.contributions {
        let bad = drivers.iter().find(|d| !d.effect.is_finite() || !text::is_clean(&d.sensor_id, 64) || sensors.as_ref().is_some_and(|k| !k.contains(d.sensor_id.as_str())));
        if let Some(d) = bad {
            return Err((FailReason::InvalidScore, format!("component {} names driver {} (effect {}), not a sensor of the system", text::echo(component), text::echo(&d.sensor_id), d.effect)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::ComponentScore;

    fn window(scores: &[(&str, f64)]) -> ScoredWindow {
        let components = scores
            .iter()
            .map(|(id, s)| ComponentScore { component_id: (*id).into(), score: *s, condition: None, condition_name: None, severity: None, probabilities: BTreeMap::new(), features: None })
            .collect();
        ScoredWindow {
            system_id: "rig-1".into(),
            window_start: DateTime::UNIX_EPOCH,
            window_end: DateTime::UNIX_EPOCH + chrono::TimeDelta::minutes(1),
            revision: 0,
            model_version: "gnn-service".into(),
            computed_at: Utc::now(),
            components,
            contributions: BTreeMap::new(),
        }
    }

    #[test]
    fn scores_outside_the_unit_interval_or_not_finite_are_invalid() {
        assert!(check_answer(&window(&[("pump", 0.0), ("valve", 1.0)]), None).is_ok());
        for bad in [1.7, -0.1, f64::NAN, f64::INFINITY] {
            let (reason, message) = check_answer(&window(&[("pump", bad)]), None).unwrap_err();
            assert_eq!(reason, FailReason::InvalidScore, "{bad}");
            assert!(message.contains("pump"), "{message}");
        }
        assert_eq!(check_answer(&window(&[("pump", 0.1), ("pump", 0.2)]), None).unwrap_err().0, FailReason::InvalidScore);
    }

    #[test]
    fn drivers_must_be_the_systems_sensors_with_finite_effects() {
        let info = SystemInfo { owner_id: uuid::Uuid::nil(), topology_hash: String::new(), topology: Some(crate::rig::rig_topology()) };
        let driver = |id: &str, effect: f64| crate::domain::Driver { sensor_id: id.into(), effect };
        let mut answer = window(&[("valve", 0.9)]);
        answer.contributions.insert("valve".into(), vec![driver("PS2", 0.4)]);
        assert!(check_answer(&answer, Some(&info)).is_ok());
        for bad in [driver("XX9", 0.4), driver("PS\u{0}2", 0.4), driver("PS3", f64::INFINITY)] {
            answer.contributions.insert("valve".into(), vec![driver("PS2", 0.4), bad.clone()]);
            let (reason, message) = check_answer(&answer, Some(&info)).unwrap_err();
            assert_eq!(reason, FailReason::InvalidScore, "{bad:?}");
            assert!(message.contains("valve") && !message.contains('\u{0}'), "{message}");
        }
    }

    #[test]
    fn components_must_be_storable_text() {
        let (reason, message) = check_answer(&window(&[("pu\u{0}mp", 0.5)]), None).unwrap_err();
        assert_eq!(reason, FailReason::UnknownComponent);
        assert!(!message.contains('\u{0}'));
    }

    #[test]
    fn registry_failures_are_the_record_only_when_the_schema_is_unknown() {
        let not_found = SRCError::new("HTTP request to schema registry failed with status 404 Not Found", Some("40403".into()), false);
        assert_eq!(decode_failure(&not_found), (FailureKind::DataPermanent, FailReason::UnknownSchema));
        let denied = SRCError::new("HTTP request to schema registry failed with status 401 Unauthorized", None, false);
        assert_eq!(decode_failure(&denied).0, FailureKind::Systemic);
        let broken = SRCError::new("HTTP request to schema registry failed with status 500 Internal Server Error", None, false);
        assert_eq!(decode_failure(&broken).0, FailureKind::Transient);
        let down = SRCError::new("http call to schema registry failed", None, true);
        assert_eq!(decode_failure(&down).0, FailureKind::Transient);
        let garbage = SRCError::new("Invalid bytes: first byte is 0x01, expected magic byte 0x00", None, false);
        assert_eq!(decode_failure(&garbage), (FailureKind::DataPermanent, FailReason::Undecodable));
    }

    #[test]
    fn an_event_must_describe_a_window() {
        let record = |start: i64, end: i64, system: &str| {
            Value::Record(vec![
                ("system_id".into(), Value::String(system.into())),
                ("window_start".into(), Value::TimestampMicros(start)),
                ("window_end".into(), Value::TimestampMicros(end)),
                ("revision".into(), Value::Int(0)),
                ("reading_count".into(), Value::Long(1)),
            ])
        };
        assert!(window_event(record(0, 60_000_000, "rig-1")).is_ok());
        assert!(window_event(record(60_000_000, 0, "rig-1")).is_err());
        assert!(window_event(record(i64::MIN, 0, "rig-1")).is_err());
        assert!(window_event(record(0, 60_000_000, "rig\u{0}1")).is_err());
        assert!(window_event(Value::Record(vec![("x".into(), Value::Int(1))])).is_err());
    }

    #[test]
    fn a_failure_row_is_always_storable() {
        let event = WindowReady {
            system_id: "bad\u{0}id".repeat(100),
            window_start: i64::MIN,
            window_end: 0,
            revision: 0,
            reading_count: 0,
            sensors: vec![],
            closed_by: crate::domain::CloseReason::Idle,
        };
        let row = WindowFailure::new(0, 7, Some(event), FailReason::WrongShape, &"\u{0}".repeat(5000)).row("t");
        assert!(row.system_id.as_deref().is_some_and(|s| text::is_clean(s, 256)));
        assert_eq!(row.window_start, None);
        assert!(text::is_clean(&row.message, text::MAX_MESSAGE_BYTES));
    }
}
