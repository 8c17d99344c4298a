//! Window-ready events: the one shape of `schemas/window_ready.avsc`. Ingest serializes it to
//! JSON with the schema's field names into the outbox; the relay reads that back and encodes it
//! to Avro when it publishes (it is the part that talks to the registry).

use apache_avro::types::Value;
use serde::{Deserialize, Serialize};

use super::CodecError;
use crate::domain::CloseReason;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowReady {
    pub system_id: String,
    pub window_start: i64,
    pub window_end: i64,
    pub revision: i32,
    pub reading_count: i64,
    pub sensors: Vec<String>,
    pub closed_by: CloseReason,
}

impl WindowReady {
    pub fn from_json(bytes: &[u8]) -> Result<Self, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError::Encode(format!("window-ready event: {e}")))
    }

    /// The outbox payload.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("strings, integers and a unit enum always serialize")
    }

    pub fn to_avro(&self) -> Result<Value, CodecError> {
        Ok(Value::Record(vec![
            ("system_id".into(), Value::String(self.system_id.clone())),
            ("window_start".into(), Value::TimestampMicros(self.window_start)),
            ("window_end".into(), Value::TimestampMicros(self.window_end)),
            ("revision".into(), Value::Int(self.revision)),
            ("reading_count".into(), Value::Long(self.reading_count)),
            ("sensors".into(), Value::Array(self.sensors.iter().cloned().map(Value::String).collect())),
            ("closed_by".into(), Value::Enum(self.closed_by.index(), self.closed_by.as_str().to_owned())),
        ]))
    }

    /// Reads a decoded Avro value back (for consumers of `windows.ready.v1`).
    pub fn from_avro(value: Value) -> Result<Self, CodecError> {
        let Value::Record(fields) = value else { return Err(CodecError::Encode("window-ready: not a record".into())) };
        let get = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        let long = |name: &str| match get(name) {
            Some(Value::Long(v) | Value::TimestampMicros(v)) => Ok(v),
            Some(Value::Int(v)) => Ok(i64::from(v)),
            other => Err(CodecError::Encode(format!("window-ready: {name} is {other:?}"))),
        };
        let text = |name: &str| match get(name) {
            Some(Value::String(s) | Value::Enum(_, s)) => Ok(s),
            other => Err(CodecError::Encode(format!("window-ready: {name} is {other:?}"))),
        };
        let sensors = match get("sensors") {
            Some(Value::Array(items)) => items.into_iter().filter_map(|v| if let Value::String(s) = v { Some(s) } else { None }).collect(),
            _ => Vec::new(),
        };
        Ok(Self {
            system_id: text("system_id")?,
            window_start: long("window_start")?,
            window_end: long("window_end")?,
            revision: long("revision")? as i32,
            reading_count: long("reading_count")?,
            sensors,
            // The schema's default stands in for a symbol this reader does not know.
            closed_by: text("closed_by").ok().and_then(|s| CloseReason::parse(&s)).unwrap_or(CloseReason::Watermark),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::schemas;

    /// The Avro enum index is the position in `CloseReason::ALL`: it must be the schema's order.
    #[test]
    fn close_reasons_are_the_schema_symbols_in_order() {
        let schema: serde_json::Value = serde_json::from_str(schemas::WINDOW_READY).unwrap();
        let field = schema["fields"].as_array().unwrap().iter().find(|f| f["name"] == "closed_by").unwrap();
        let symbols: Vec<&str> = field["type"]["symbols"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        let ours: Vec<&str> = CloseReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(symbols, ours);
        assert_eq!(field["default"], CloseReason::Watermark.as_str());
    }

    #[test]
    fn the_outbox_json_reads_back_and_keeps_micros_as_integers() {
        let event = WindowReady {
            system_id: "rig-1".into(),
            window_start: 1_767_225_600_000_001,
            window_end: 1_767_225_660_000_001,
            revision: 2,
            reading_count: 1020,
            sensors: vec!["CE".into(), "PS1".into()],
            closed_by: CloseReason::LateData,
        };
        let json = event.to_json();
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["window_start"].as_i64(), Some(1_767_225_600_000_001));
        assert_eq!(value["closed_by"], "LATE_DATA");
        assert_eq!(WindowReady::from_json(&json).unwrap(), event);
    }
}
