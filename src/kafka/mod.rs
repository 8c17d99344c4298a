//! Kafka clients built from one configuration, and topic administration.

pub mod fences;
pub mod groups;
pub mod lag;
pub mod recorder;
pub mod repeats;
pub mod topics;
pub mod transactional;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::FromClientConfigAndContext;

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
    /// A transactional call (init, begin, commit, abort) failed: what the transaction
    /// coordinator said, or that the producer must be recreated.
    #[error("{context}: {source}")]
    Transaction {
        context: &'static str,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A blocking librdkafka call run off the async threads did not finish: it panicked or the
    /// runtime is shutting down. Nothing is known about the call's effect.
    #[error("{context}: the blocking call did not finish: {source}")]
    Join {
        context: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("topic {topic}: {message}")]
    Topic { topic: String, message: String },
}

impl KafkaError {
    /// What kind of failure this is (see [`crate::failure`], where the decision is made).
    pub fn failure(&self) -> crate::failure::FailureKind {
        match self {
            KafkaError::Config(_) | KafkaError::Topic { .. } => crate::failure::FailureKind::Systemic,
            KafkaError::Client { source, .. } | KafkaError::Transaction { source, .. } => classify(source),
            // The call is retried with the client (or the process) started over.
            KafkaError::Join { .. } => crate::failure::FailureKind::Transient,
        }
    }

    /// What librdkafka said, when it said something.
    pub fn rdkafka_source(&self) -> Option<&rdkafka::error::KafkaError> {
        match self {
            KafkaError::Client { source, .. } | KafkaError::Transaction { source, .. } => Some(source),
            KafkaError::Config(_) | KafkaError::Join { .. } | KafkaError::Topic { .. } => None,
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
    pass_through(&mut client, config);
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

/// Every producer manifold owns is idempotent and uses murmur2_random; pass-through
/// properties still come last, so an operator can override anything.
fn build_producer(config: &KafkaConfig, settings: &[(&str, &str)]) -> Result<rdkafka::producer::FutureProducer, KafkaError> {
    let mut client = client_config(config);
    client.set("enable.idempotence", "true").set("partitioner", "murmur2_random");
    for (key, value) in settings {
        client.set(*key, *value);
    }
    pass_through(&mut client, config);
    client.create().map_err(|e| KafkaError::Config(e.to_string()))
}

/// A consumer in `group_id` that commits nothing by itself and reads only committed
/// transactions, from the earliest offset when the group has none; `settings` are the
/// caller's own, and pass-through properties still come last.
pub fn consumer<C, T>(config: &KafkaConfig, group_id: &str, settings: &[(&str, &str)], context: C) -> Result<T, KafkaError>
where
    C: ClientContext,
    T: FromClientConfigAndContext<C>,
{
    let mut client = client_config(config);
    client
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        // Aborted transactions (a relay's, infer's, a device's) must never be read.
        .set("isolation.level", "read_committed");
    for (key, value) in settings {
        client.set(*key, *value);
    }
    pass_through(&mut client, config);
    client.create_with_context(context).map_err(|e| KafkaError::Config(e.to_string()))
}

/// The operator's properties, over anything manifold set.
fn pass_through(client: &mut ClientConfig, config: &KafkaConfig) {
    for (key, value) in config.client.iter() {
        client.set(key, value);
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::error::KafkaError as Rd;
    use rdkafka::types::RDKafkaErrorCode as K;

    use super::*;
    use crate::failure::FailureKind;

    #[test]
    fn a_failed_transaction_is_classified_by_what_librdkafka_said() {
        let fenced = KafkaError::Transaction { context: "init transactions", source: Rd::MessageProduction(K::ProducerFenced) };
        assert_eq!(fenced.failure(), FailureKind::Systemic);
        assert!(fenced.rdkafka_source().is_some(), "fencing is recognised from the transaction's error");
        let away = KafkaError::Transaction { context: "commit transaction", source: Rd::MessageProduction(K::AllBrokersDown) };
        assert_eq!(away.failure(), FailureKind::Transient);
    }

    #[tokio::test]
    async fn a_blocking_call_that_never_came_back_is_its_own_transient_error() {
        let join = tokio::task::spawn_blocking(|| panic!("the call panicked")).await.unwrap_err();
        let err = KafkaError::Join { context: "abort transaction", source: join };
        assert_eq!(err.failure(), FailureKind::Transient);
        assert!(err.rdkafka_source().is_none());
        assert!(err.to_string().starts_with("abort transaction: the blocking call did not finish"), "{err}");
    }
}
