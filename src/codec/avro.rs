//! Avro values ↔ batches, read by field name.
//!
//! Reading fields by name (with the schema's defaults for fields an older writer lacked) is the
//! reader/writer resolution this schema needs, done without resolving a whole value against a
//! reader schema per message.

use apache_avro::types::Value;

use crate::domain::{DomainError, RawBatch, RawSeries, RejectKind};

fn bad(field: &str, message: impl Into<String>) -> DomainError {
    DomainError::new(RejectKind::Malformed, field, message)
}

fn record(value: Value, field: &str) -> Result<Vec<(String, Value)>, DomainError> {
    match value {
        Value::Record(fields) => Ok(fields),
        other => Err(bad(field, format!("expected a record, found {}", kind(&other)))),
    }
}

fn take(fields: &mut [(String, Value)], name: &str) -> Option<Value> {
    fields.iter_mut().find(|(n, _)| n == name).map(|(_, v)| std::mem::replace(v, Value::Null))
}

fn unwrap_union(value: Value) -> Value {
    match value {
        Value::Union(_, inner) => *inner,
        other => other,
    }
}

fn string(value: Option<Value>, field: &str) -> Result<String, DomainError> {
    match value.map(unwrap_union) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(bad(field, format!("expected a string, found {}", kind(&other)))),
        None => Err(bad(field, "is missing")),
    }
}

fn long(value: Value, field: &str) -> Result<i64, DomainError> {
    match unwrap_union(value) {
        Value::Long(v) | Value::TimestampMicros(v) | Value::LocalTimestampMicros(v) => Ok(v),
        Value::TimestampMillis(v) | Value::LocalTimestampMillis(v) => Ok(v.saturating_mul(1000)),
        Value::Int(v) => Ok(i64::from(v)),
        other => Err(bad(field, format!("expected a long, found {}", kind(&other)))),
    }
}

fn array(value: Option<Value>, field: &str) -> Result<Vec<Value>, DomainError> {
    match value.map(unwrap_union) {
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(bad(field, format!("expected an array, found {}", kind(&other)))),
        None => Ok(Vec::new()),
    }
}

fn double(value: Value, field: &str) -> Result<f64, DomainError> {
    match value {
        Value::Double(v) => Ok(v),
        Value::Float(v) => Ok(f64::from(v)),
        Value::Long(v) => Ok(v as f64),
        Value::Int(v) => Ok(f64::from(v)),
        other => Err(bad(field, format!("expected a number, found {}", kind(&other)))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Boolean(_) => "boolean",
        Value::String(_) => "string",
        Value::Record(_) => "record",
        Value::Array(_) => "array",
        Value::Map(_) => "map",
        Value::Bytes(_) | Value::Fixed(..) => "bytes",
        _ => "another type",
    }
}

pub fn batch_from_value(value: Value) -> Result<RawBatch, DomainError> {
    let mut fields = record(value, "value")?;
    let batch_id = string(take(&mut fields, "batch_id"), "batch_id")?;
    let system_id = string(take(&mut fields, "system_id"), "system_id")?;
    let produced_at = match take(&mut fields, "produced_at").map(unwrap_union) {
        None | Some(Value::Null) => None,
        Some(v) => Some(long(v, "produced_at")?),
    };
    let items = array(take(&mut fields, "series"), "series")?;
    let mut series = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        series.push(series_from_value(item, i)?);
    }
    Ok(RawBatch { batch_id: Some(batch_id), system_id, produced_at, series })
}

fn series_from_value(value: Value, index: usize) -> Result<RawSeries, DomainError> {
    let field = |name: &str| format!("series[{index}].{name}");
    let mut fields = record(value, &field(""))?;
    let sensor_id = string(take(&mut fields, "sensor_id"), &field("sensor_id"))?;
    let start = long(take(&mut fields, "start").ok_or_else(|| bad(&field("start"), "is missing"))?, &field("start"))?;
    let interval_us = match take(&mut fields, "interval_us") {
        Some(v) => long(v, &field("interval_us"))?,
        None => 0,
    };
    let times_us = array(take(&mut fields, "times_us"), &field("times_us"))?
        .into_iter()
        .map(|v| long(v, &field("times_us")))
        .collect::<Result<Vec<_>, _>>()?;
    let values = array(take(&mut fields, "values"), &field("values"))?
        .into_iter()
        .map(|v| double(v, &field("values")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RawSeries { sensor_id, start, interval_us, times_us, values })
}

pub fn batch_to_value(batch: &RawBatch) -> Value {
    let series = batch
        .series
        .iter()
        .map(|s| {
            Value::Record(vec![
                ("sensor_id".into(), Value::String(s.sensor_id.clone())),
                ("start".into(), Value::TimestampMicros(s.start)),
                ("interval_us".into(), Value::Long(s.interval_us)),
                ("times_us".into(), Value::Array(s.times_us.iter().map(|t| Value::Long(*t)).collect())),
                ("values".into(), Value::Array(s.values.iter().map(|v| Value::Double(*v)).collect())),
            ])
        })
        .collect();
    let produced_at = match batch.produced_at {
        Some(t) => Value::Union(1, Box::new(Value::TimestampMicros(t))),
        None => Value::Union(0, Box::new(Value::Null)),
    };
    Value::Record(vec![
        ("batch_id".into(), Value::String(batch.batch_id.clone().unwrap_or_default())),
        ("system_id".into(), Value::String(batch.system_id.clone())),
        ("produced_at".into(), produced_at),
        ("series".into(), Value::Array(series)),
    ])
}
