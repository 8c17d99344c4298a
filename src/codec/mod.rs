//! Wire formats: Avro in the Confluent framing (magic byte 0, 4-byte schema id, body) with a
//! schema registry, and JSON with the same fields for simple devices. Content is detected per
//! message.

mod avro;
mod client;
pub mod registry;
pub mod schemas;
mod scores;
mod window;

pub use scores::AnomalyScores;
pub use window::WindowReady;

use apache_avro::types::Value;
use schema_registry_converter::async_impl::avro::{AvroDecoder, AvroEncoder};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{SchemaType, SubjectNameStrategy, SuppliedSchema};

pub use avro::{batch_from_value, batch_to_value};
pub use client::{authorize, http_client_builder, http_status, registry_settings};

use crate::config::SchemaRegistryConfig;
use crate::domain::{BatchLimits, DomainError, RawBatch, RejectKind, SensorBatch};

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The message is bad: it goes to the dead letters with this reason.
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// The registry could not be asked (down, slow): retry, never dead-letter.
    #[error("schema registry unavailable: {0}")]
    Unavailable(String),
    /// The registry refused manifold's credentials: the deployment's fault, never a message's.
    #[error("schema registry refused the request: {0}")]
    Unauthorized(String),
    #[error("cannot encode: {0}")]
    Encode(String),
}

/// Decodes sensor batches. Writer schemas are fetched once per schema id and cached by the
/// registry client; fields are then read by name, so any compatible writer version decodes.
pub struct BatchDecoder {
    avro: AvroDecoder,
    limits: BatchLimits,
}

impl BatchDecoder {
    pub fn new(registry: &SchemaRegistryConfig, limits: BatchLimits) -> Result<Self, CodecError> {
        Ok(Self { avro: AvroDecoder::new(registry_settings(registry)?), limits })
    }

    pub async fn decode(&self, payload: Option<&[u8]>) -> Result<SensorBatch, CodecError> {
        let raw = self.decode_raw(payload).await?;
        Ok(SensorBatch::parse(raw, &self.limits)?)
    }

    pub async fn decode_raw(&self, payload: Option<&[u8]>) -> Result<RawBatch, CodecError> {
        let bytes = payload.unwrap_or_default();
        match bytes.first() {
            None => Err(malformed("the message has no value").into()),
            Some(0) => {
                let decoded = match self.avro.decode(Some(bytes)).await {
                    Ok(decoded) => decoded,
                    Err(err) => {
                        let err = registry_error(err);
                        // The client caches every failure it does not call retriable. Only a
                        // message's own fault may stay cached, or one bad minute of the
                        // registry would refuse this schema id until a restart.
                        if !matches!(err, CodecError::Rejected(_)) {
                            self.avro.remove_errors_from_cache();
                        }
                        return Err(err);
                    }
                };
                Ok(batch_from_value(decoded.value)?)
            }
            Some(_) => decode_json(bytes),
        }
    }
}

/// JSON batches: the fields of the Avro schema, with times as microseconds or RFC 3339 text.
pub fn decode_json(bytes: &[u8]) -> Result<RawBatch, CodecError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let what = if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            format!("JSON batch does not match the schema: {}", json_error_message(&e))
        } else {
            "neither Confluent-framed Avro (magic byte 0) nor a JSON object".to_owned()
        };
        malformed(&what).into()
    })
}

/// serde quotes the offending input in full (an unknown field's name, a string of the wrong
/// type), so a 600 KB field name would make a 600 KB error, dead letter header and HTTP answer:
/// the name is quoted through `text::echo` and the whole message bounded.
pub fn json_error_message(err: &serde_json::Error) -> String {
    use crate::domain::text;
    let full = err.to_string();
    if let Some(rest) = full.strip_prefix("unknown field `")
        && let Some(end) = rest.rfind("`, expected").or_else(|| rest.rfind("`, there are no fields"))
    {
        return text::message(&format!("unknown field {}{}", text::echo(&rest[..end]), &rest[end + 1..]));
    }
    text::message(&full)
}

fn malformed(message: &str) -> DomainError {
    DomainError::new(RejectKind::Malformed, "value", message)
}

fn registry_error(err: SRCError) -> CodecError {
    if client::transient(&err) {
        return CodecError::Unavailable(client::describe(&err));
    }
    if let Some(refused) = client::refused_credentials(&err) {
        return refused;
    }
    let text = client::describe(&err);
    // A schema the registry does not have is the message's fault; bytes that don't match the
    // writer schema are malformed.
    let kind = if text.contains("schema") && (text.contains("not found") || text.contains("40403") || text.contains("raw schema")) {
        RejectKind::UnknownSchema
    } else {
        RejectKind::Malformed
    };
    CodecError::Rejected(DomainError::new(kind, "value", text))
}

/// Encodes records in the Confluent framing, registering the bundled schema under
/// `<topic>-value` on first use (the registry returns the existing id when it is there); the
/// schema id is cached per subject after that.
pub struct RecordEncoder {
    avro: AvroEncoder,
    strategy: SubjectNameStrategy,
}

impl RecordEncoder {
    pub fn new(registry: &SchemaRegistryConfig, topic: &str, schema: &str) -> Result<Self, CodecError> {
        let supplied = SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned());
        let strategy = SubjectNameStrategy::TopicNameStrategyWithSchema(topic.to_owned(), false, supplied);
        Ok(Self { avro: AvroEncoder::new(registry_settings(registry)?), strategy })
    }

    /// An encoder for sensor batches on `topic`.
    pub fn for_batches(registry: &SchemaRegistryConfig, topic: &str) -> Result<Self, CodecError> {
        Self::new(registry, topic, schemas::SENSOR_BATCH)
    }

    pub async fn encode(&self, value: Value) -> Result<Vec<u8>, CodecError> {
        self.avro.encode_value(value, &self.strategy).await.map_err(|e| {
            // The client caches the subject's failure unless it calls it retriable; the next
            // call must ask the registry again, whatever went wrong (a 500, credentials fixed).
            self.avro.remove_errors_from_cache();
            if client::transient(&e) {
                CodecError::Unavailable(client::describe(&e))
            } else {
                client::refused_credentials(&e).unwrap_or(CodecError::Encode(e.error))
            }
        })
    }

    pub async fn encode_batch(&self, batch: &RawBatch) -> Result<Vec<u8>, CodecError> {
        self.encode(batch_to_value(batch)).await
    }
}
