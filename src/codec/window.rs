//! Window-ready events: the outbox holds them as JSON with the schema's field names; the relay
//! encodes them to Avro when it publishes (it is the part that talks to the registry).

use apache_avro::types::Value;
use serde::{Deserialize, Serialize};

use super::CodecError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowReady {
    pub system_id: String,
    pub window_start: i64,
    pub window_end: i64,
    pub revision: i32,
    pub reading_count: i64,
    pub sensors: Vec<String>,
    pub closed_by: String,
}

const CLOSE_REASONS: [&str; 4] = ["WATERMARK", "IDLE", "LATE_DATA", "RESCORE"];

impl WindowReady {
    pub fn from_json(bytes: &[u8]) -> Result<Self, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError::Encode(format!("window-ready event: {e}")))
    }

    pub fn to_avro(&self) -> Result<Value, CodecError> {
        let reason = CLOSE_REASONS
            .iter()
            .position(|r| *r == self.closed_by)
            .ok_or_else(|| CodecError::Encode(format!("unknown close reason {:?}", self.closed_by)))?;
        Ok(Value::Record(vec![
            ("system_id".into(), Value::String(self.system_id.clone())),
            ("window_start".into(), Value::TimestampMicros(self.window_start)),
            ("window_end".into(), Value::TimestampMicros(self.window_end)),
            ("revision".into(), Value::Int(self.revision)),
            ("reading_count".into(), Value::Long(self.reading_count)),
            ("sensors".into(), Value::Array(self.sensors.iter().cloned().map(Value::String).collect())),
            ("closed_by".into(), Value::Enum(reason as u32, self.closed_by.clone())),
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
            closed_by: text("closed_by").unwrap_or_else(|_| "WATERMARK".into()),
        })
    }
}
