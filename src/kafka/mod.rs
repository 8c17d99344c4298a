//! Kafka clients built from one configuration, and topic administration.

pub mod topics;

use rdkafka::ClientConfig;

use crate::config::KafkaConfig;

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("kafka client configuration rejected: {0}")]
    Config(String),
    #[error("{context}: {source}")]
    Client {
        context: &'static str,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("topic {topic}: {message}")]
    Topic { topic: String, message: String },
}

impl KafkaError {
    /// What kind of failure this is (see [`crate::failure`], where the decision is made).
    pub fn failure(&self) -> crate::failure::FailureKind {
        match self {
            KafkaError::Config(_) | KafkaError::Topic { .. } => crate::failure::FailureKind::Systemic,
            KafkaError::Client { source, .. } => classify(source),
        }
    }
}

/// The kind of a librdkafka error: by its code, and fatal errors (the client is unusable until
/// recreated) are transient for a caller that recreates its client.
pub fn classify(error: &rdkafka::error::KafkaError) -> crate::failure::FailureKind {
    match error.rdkafka_error_code() {
        Some(code) => crate::failure::classify_kafka(code),
        None => crate::failure::FailureKind::Transient,
    }
}

/// True when librdkafka says the client can no longer be used and must be recreated.
pub fn is_fatal(error: &rdkafka::error::KafkaError) -> bool {
    match error {
        rdkafka::error::KafkaError::Transaction(e) => e.is_fatal(),
        other => other.rdkafka_error_code() == Some(rdkafka::types::RDKafkaErrorCode::Fatal),
    }
}

/// The settings every manifold client shares; pass-through properties are applied last so an
/// operator can override anything (SASL, TLS, timeouts) without a code change.
pub fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut client = ClientConfig::new();
    client
        .set("bootstrap.servers", &config.brokers)
        .set("client.id", "manifold")
        .set("socket.timeout.ms", config.request_timeout_ms.as_millis().to_string())
        .set("broker.address.family", "v4");
    for (key, value) in config.client.iter() {
        client.set(key, value);
    }
    client
}

/// An idempotent producer with the Java-compatible partitioner, so a system's key lands on the
/// same partition whichever client produced it.
pub fn producer(config: &KafkaConfig) -> Result<rdkafka::producer::FutureProducer, KafkaError> {
    build_producer(config, &[("linger.ms", "10"), ("compression.type", "lz4")])
}

/// For a caller waiting on each acknowledgement (an HTTP request): a short linger, since the
/// batching comes from many concurrent requests rather than from waiting, and delivery given up
/// after `delivery_timeout_ms`, so a request never waits on a broker that is down.
pub fn request_producer(config: &KafkaConfig, delivery_timeout_ms: u64) -> Result<rdkafka::producer::FutureProducer, KafkaError> {
    let timeout = delivery_timeout_ms.to_string();
    build_producer(config, &[("linger.ms", "1"), ("compression.type", "lz4"), ("message.timeout.ms", &timeout)])
}

/// A transactional producer: a stable `transactional.id` fences the previous instance's open
/// transaction as soon as this one calls `init_transactions`.
pub fn transactional_producer(config: &KafkaConfig, transactional_id: &str) -> Result<rdkafka::producer::FutureProducer, KafkaError> {
    build_producer(config, &[("transactional.id", transactional_id), ("linger.ms", "5"), ("transaction.timeout.ms", "60000")])
}

/// The relay's transactional producer. `max_bytes` is its `message.max.bytes` (the largest
/// record any of its topics takes, so a maximal dead letter is not refused by the client);
/// `batch_size` keeps a batch of several records under the smallest topic limit, since the
/// broker counts a whole batch against `max.message.bytes`.
pub fn relay_producer(
    config: &KafkaConfig,
    transactional_id: &str,
    max_bytes: usize,
    batch_size: usize,
) -> Result<rdkafka::producer::FutureProducer, KafkaError> {
    let (max_bytes, batch_size) = (max_bytes.max(1000).to_string(), batch_size.max(1).to_string());
    build_producer(
        config,
        &[
            ("transactional.id", transactional_id),
            ("linger.ms", "5"),
            ("transaction.timeout.ms", "60000"),
            ("message.max.bytes", &max_bytes),
            ("batch.size", &batch_size),
        ],
    )
}

/// Every producer manifold owns is idempotent and uses murmur2_random; pass-through
/// properties still come last, so an operator can override anything.
fn build_producer(config: &KafkaConfig, settings: &[(&str, &str)]) -> Result<rdkafka::producer::FutureProducer, KafkaError> {
    let mut client = client_config(config);
    client.set("enable.idempotence", "true").set("partitioner", "murmur2_random");
    for (key, value) in settings {
        client.set(*key, *value);
    }
    for (key, value) in config.client.iter() {
        client.set(key, value);
    }
    client.create().map_err(|e| KafkaError::Config(e.to_string()))
}
