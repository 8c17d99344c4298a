//! The worker's one error type, and what kind of failure each is.

use super::scorer::ScoreError;
use crate::failure::FailureKind;
use crate::kafka::KafkaError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Score(#[from] ScoreError),
    #[error("schema registry: {message}")]
    Registry { kind: FailureKind, message: String },
    /// Another live instance uses this worker's transactional id or group instance id.
    #[error("{0}")]
    Fenced(String),
    /// Partitions of the batch were revoked while it was in hand.
    #[error("partitions revoked during the batch")]
    Revoked,
    #[error("{0}")]
    Internal(String),
}

impl InferError {
    /// What kind of failure this is; the decision is [`crate::failure`]'s.
    pub fn failure(&self) -> FailureKind {
        match self {
            InferError::Kafka(e) => e.failure(),
            InferError::Score(ScoreError::Store(e)) => e.failure(),
            InferError::Score(ScoreError::Service(e)) => e.failure(),
            InferError::Registry { kind, .. } => *kind,
            InferError::Fenced(_) => FailureKind::Systemic,
            InferError::Revoked | InferError::Internal(_) => FailureKind::Transient,
        }
    }

    /// The error with what the database said (a driver error alone displays "db error"),
    /// for readiness and logs.
    pub fn detail(&self) -> String {
        match self {
            InferError::Score(ScoreError::Store(e @ StoreError::Query { context, .. })) => format!("{context}: {}", e.reason_text()),
            other => other.to_string(),
        }
    }

    /// What an operator should fix when this failure is systemic.
    pub(super) fn hint(&self) -> &'static str {
        match self {
            InferError::Score(ScoreError::Store(e)) => e.sqlstate().map_or("check database.url and that the database accepts connections", crate::failure::sqlstate_hint),
            InferError::Score(ScoreError::Service(_)) => "check gnn.service_url and what the scoring service answers",
            InferError::Registry { .. } => "check schema_registry.url and that the registry serves the window-ready and score schemas",
            InferError::Fenced(_) => "give each infer replica its own infer.instance",
            InferError::Kafka(_) | InferError::Revoked | InferError::Internal(_) => "check the brokers, the topics, their ACLs and kafka.client settings",
        }
    }

    /// A bounded label: which dependency failed.
    pub(super) fn label(&self) -> &'static str {
        match self {
            InferError::Kafka(_) | InferError::Fenced(_) | InferError::Revoked => "kafka",
            InferError::Score(ScoreError::Store(_)) => "database",
            InferError::Score(ScoreError::Service(_)) => "gnn_service",
            InferError::Registry { .. } => "schema_registry",
            InferError::Internal(_) => "internal",
        }
    }

    pub(super) fn kafka_source(&self) -> Option<&rdkafka::error::KafkaError> {
        match self {
            InferError::Kafka(e) => e.rdkafka_source(),
            _ => None,
        }
    }
}
