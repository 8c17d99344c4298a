//! `anomaly_scores.avsc`: per-component scores of one window revision. The components are the
//! domain's; the schema carries their drivers (the window's `contributions`), not their features.

use std::collections::BTreeMap;

use apache_avro::types::Value;

use crate::domain::{ComponentScore, Driver, ScoredWindow};

#[derive(Debug, Clone, PartialEq)]
pub struct AnomalyScores {
    pub system_id: String,
    pub window_start: i64,
    pub window_end: i64,
    pub revision: i32,
    pub model_version: String,
    pub overall_score: f64,
    pub components: Vec<ComponentScore>,
    /// Per component id, the sensors that drove its score; a component without an entry is
    /// published with `drivers` null.
    pub drivers: BTreeMap<String, Vec<Driver>>,
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
            drivers: window.contributions.clone(),
            computed_at: window.computed_at.timestamp_micros(),
        }
    }
}

/// A `["null", "string"]` union.
fn optional(text: Option<&str>) -> Value {
    match text {
        Some(text) => Value::Union(1, Box::new(Value::String(text.to_owned()))),
        None => Value::Union(0, Box::new(Value::Null)),
    }
}

/// A `["null", array of SensorDriver]` union.
fn drivers(drivers: Option<&Vec<Driver>>) -> Value {
    match drivers {
        Some(drivers) => {
            let items = drivers
                .iter()
                .map(|d| Value::Record(vec![("sensor_id".into(), Value::String(d.sensor_id.clone())), ("effect".into(), Value::Double(d.effect))]))
                .collect();
            Value::Union(1, Box::new(Value::Array(items)))
        }
        None => Value::Union(0, Box::new(Value::Null)),
    }
}

impl AnomalyScores {
    pub fn to_avro(&self) -> Value {
        let components = self
            .components
            .iter()
            .map(|c| {
                let condition = optional(c.condition.as_deref());
                let probabilities = c.probabilities.iter().map(|(k, v)| (k.clone(), Value::Double(*v))).collect();
                Value::Record(vec![
                    ("component_id".into(), Value::String(c.component_id.clone())),
                    ("score".into(), Value::Double(c.score)),
                    ("condition".into(), condition),
                    ("probabilities".into(), Value::Map(probabilities)),
                    ("condition_name".into(), optional(c.condition_name.as_deref())),
                    ("severity".into(), optional(c.severity.map(|s| s.as_str()))),
                    ("drivers".into(), drivers(self.drivers.get(&c.component_id))),
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use apache_avro::Schema;
    use apache_avro::reader::datum::GenericDatumReader;
    use apache_avro::writer::datum::GenericDatumWriter;

    use super::*;
    use crate::codec::schemas::ANOMALY_SCORES;
    use crate::domain::Severity;

    /// The schema before classes had names: today's without the three optional fields.
    fn schema_without_names() -> Schema {
        let mut json: serde_json::Value = serde_json::from_str(ANOMALY_SCORES).unwrap();
        let components = json["fields"].as_array_mut().unwrap().iter_mut().find(|f| f["name"] == "components").unwrap();
        let fields = components["type"]["items"]["fields"].as_array_mut().unwrap();
        let before = fields.len();
        fields.retain(|f| f["name"] != "condition_name" && f["name"] != "severity" && f["name"] != "drivers");
        assert_eq!(fields.len(), before - 3);
        Schema::parse(&json).unwrap()
    }

    fn write(schema: &Schema, value: Value) -> Vec<u8> {
        GenericDatumWriter::builder(schema).build().unwrap().write_value_to_vec(value).unwrap()
    }

    /// Bytes written with `writer`, read (resolved) with `reader`.
    fn read(writer: &Schema, reader: &Schema, bytes: &[u8]) -> Value {
        GenericDatumReader::builder(writer).reader_schema(reader).build().unwrap().read_value(&mut &bytes[..]).unwrap()
    }

    fn component(message: &Value) -> Vec<(String, Value)> {
        let Value::Record(fields) = message else { panic!("{message:?}") };
        let Some((_, Value::Array(items))) = fields.iter().find(|(n, _)| n == "components") else { panic!() };
        let Value::Record(component) = &items[0] else { panic!() };
        component.clone()
    }

    #[test]
    fn the_optional_names_decode_with_the_new_schema_and_are_skipped_by_old_readers_and_old_messages_read_as_null() {
        let new = Schema::parse_str(ANOMALY_SCORES).unwrap();
        let old = schema_without_names();
        let score = ComponentScore {
            component_id: "cooler".into(),
            score: 0.9,
            condition: Some("20".into()),
            condition_name: Some("reduced efficiency".into()),
            severity: Some(Severity::Degraded),
            probabilities: BTreeMap::from([("20".to_owned(), 0.9)]),
            features: None,
        };
        let message = AnomalyScores {
            system_id: "rig-1".into(),
            window_start: 0,
            window_end: 60_000_000,
            revision: 0,
            model_version: "uci-rig-v3".into(),
            overall_score: 0.9,
            components: vec![score],
            drivers: BTreeMap::from([("cooler".to_owned(), vec![Driver { sensor_id: "CE".into(), effect: 0.5 }])]),
            computed_at: 61_000_000,
        };
        let bytes = write(&new, message.to_avro());

        let read_new = component(&read(&new, &new, &bytes));
        let field = |fields: &[(String, Value)], name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        assert_eq!(field(&read_new, "condition_name"), Some(Value::Union(1, Box::new(Value::String("reduced efficiency".into())))));
        assert_eq!(field(&read_new, "severity"), Some(Value::Union(1, Box::new(Value::String("degraded".into())))));
        let ce = Value::Record(vec![("sensor_id".into(), Value::String("CE".into())), ("effect".into(), Value::Double(0.5))]);
        assert_eq!(field(&read_new, "drivers"), Some(Value::Union(1, Box::new(Value::Array(vec![ce])))));

        let read_old = component(&read(&new, &old, &bytes));
        assert_eq!(field(&read_old, "condition"), Some(Value::Union(1, Box::new(Value::String("20".into())))));
        assert_eq!(field(&read_old, "condition_name"), None, "an old reader does not see the new field");
        assert_eq!(field(&read_old, "drivers"), None, "nor the drivers");

        // A message written before the names (old writer) reads as null with the new schema.
        let old_bytes = write(&old, read(&new, &old, &bytes));
        let upgraded = component(&read(&old, &new, &old_bytes));
        assert_eq!(field(&upgraded, "condition_name"), Some(Value::Union(0, Box::new(Value::Null))));
        assert_eq!(field(&upgraded, "severity"), Some(Value::Union(0, Box::new(Value::Null))));
        assert_eq!(field(&upgraded, "drivers"), Some(Value::Union(0, Box::new(Value::Null))));
    }
}
