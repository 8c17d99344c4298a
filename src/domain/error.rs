use std::fmt;

/// Why input was rejected. The set is closed, so it is safe as a metric label and a header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    /// Bytes that are neither a registered Avro schema nor JSON of the batch shape.
    Malformed,
    /// Confluent framing with a schema id the registry does not know.
    UnknownSchema,
    EmptyBatch,
    OversizedBatch,
    /// A field with an invalid value (id syntax, lengths that disagree, bad interval, …).
    InvalidField,
    UnknownSystem,
    UnknownSensor,
    NonFinite,
    OutOfRange,
    FutureTime,
    ExpiredTime,
    /// Valid by every check, but the database refused to store it (a data exception or a
    /// program limit, isolated to this one message).
    StorageRejected,
}

impl RejectKind {
    pub const ALL: [RejectKind; 12] = [
        RejectKind::Malformed,
        RejectKind::UnknownSchema,
        RejectKind::EmptyBatch,
        RejectKind::OversizedBatch,
        RejectKind::InvalidField,
        RejectKind::UnknownSystem,
        RejectKind::UnknownSensor,
        RejectKind::NonFinite,
        RejectKind::OutOfRange,
        RejectKind::FutureTime,
        RejectKind::ExpiredTime,
        RejectKind::StorageRejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectKind::Malformed => "malformed",
            RejectKind::UnknownSchema => "unknown_schema",
            RejectKind::EmptyBatch => "empty_batch",
            RejectKind::OversizedBatch => "oversized_batch",
            RejectKind::InvalidField => "invalid_field",
            RejectKind::UnknownSystem => "unknown_system",
            RejectKind::UnknownSensor => "unknown_sensor",
            RejectKind::NonFinite => "non_finite",
            RejectKind::OutOfRange => "out_of_range",
            RejectKind::FutureTime => "future_time",
            RejectKind::ExpiredTime => "expired_time",
            RejectKind::StorageRejected => "storage_rejected",
        }
    }

    pub fn parse(text: &str) -> Option<RejectKind> {
        RejectKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for RejectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected value: what kind of problem, which field, and a message for people.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct DomainError {
    pub kind: RejectKind,
    /// The offending field, as a path (`series[3].values[17]`), so HTTP errors can name it.
    pub field: String,
    pub message: String,
}

impl DomainError {
    pub fn new(kind: RejectKind, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { kind, field: field.into(), message: message.into() }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(RejectKind::InvalidField, field, message)
    }
}
