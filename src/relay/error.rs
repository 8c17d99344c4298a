//! The relay's errors, and what kind of failure each is (decided by [`crate::failure`]).

use crate::failure::FailureKind;
use crate::kafka::KafkaError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("schema registry unavailable: {0}")]
    Registry(String),
    #[error("the schema registry refused the window-ready schema: {0}")]
    Schema(String),
    #[error("relay stalled: {0}")]
    Stalled(&'static str),
}

impl RelayError {
    pub(super) fn failure(&self) -> FailureKind {
        let kind = match self {
            RelayError::Kafka(e) => e.failure(),
            RelayError::Store(e) => e.failure(),
            RelayError::Registry(_) | RelayError::Stalled(_) => FailureKind::Transient,
            RelayError::Schema(_) => FailureKind::Systemic,
        };
        // Content failures are handled where the event is known; one that gets here has no
        // event to blame (the position record, the failure record itself): someone must look.
        if kind == FailureKind::DataPermanent { FailureKind::Systemic } else { kind }
    }

    /// librdkafka says the producer is unusable; the next attempt creates a new one.
    pub(super) fn fatal(&self) -> bool {
        matches!(self, RelayError::Kafka(e) if e.rdkafka_source().is_some_and(crate::kafka::is_fatal))
    }

    /// What an operator should do about a systemic failure.
    pub(super) fn fix(&self) -> &'static str {
        use rdkafka::types::RDKafkaErrorCode as K;
        match self {
            RelayError::Kafka(e @ (KafkaError::Client { .. } | KafkaError::Transaction { .. })) => match e.rdkafka_source().and_then(|s| s.rdkafka_error_code()) {
                Some(K::TopicAuthorizationFailed | K::ClusterAuthorizationFailed | K::TransactionalIdAuthorizationFailed) => {
                    "grant the relay's principal Write and Describe on its topics and on relay.transactional_id"
                }
                Some(K::UnknownTopic | K::UnknownTopicOrPartition | K::UnknownPartition | K::InvalidTopic) => {
                    "create the topics: manifold topics create (or fix topics.*.name)"
                }
                Some(K::ProducerFenced | K::Fenced | K::InvalidProducerEpoch | K::TransactionCoordinatorFenced) => {
                    "another process uses the same relay.transactional_id: give each deployment its own"
                }
                Some(K::SaslAuthenticationFailed | K::Authentication | K::SSL | K::UnsupportedSASLMechanism | K::IllegalSASLState) => {
                    "check the Kafka credentials and TLS settings (kafka.client.*)"
                }
                _ => "check the Kafka client settings (kafka.client.*) and the broker's logs",
            },
            RelayError::Kafka(_) => "check the Kafka settings and that the topics exist (manifold check)",
            RelayError::Store(_) => "check the database: manifold migrate, and the role's grants on outbox and outbox_failures",
            RelayError::Schema(_) => "the window-ready schema conflicts with the registry's: check the subject's compatibility",
            RelayError::Registry(_) | RelayError::Stalled(_) => "check that Kafka and the schema registry answer (manifold check)",
        }
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::error::KafkaError as Rd;
    use rdkafka::types::RDKafkaErrorCode as K;

    use super::*;

    fn kafka(code: K) -> RelayError {
        RelayError::Kafka(KafkaError::Client { context: "test", source: Rd::MessageProduction(code) })
    }

    #[test]
    fn a_broker_outage_is_transient_and_a_deployment_problem_is_systemic() {
        assert_eq!(kafka(K::AllBrokersDown).failure(), FailureKind::Transient);
        assert_eq!(RelayError::Registry("down".into()).failure(), FailureKind::Transient);
        assert_eq!(kafka(K::TopicAuthorizationFailed).failure(), FailureKind::Systemic);
        assert_eq!(kafka(K::UnknownTopicOrPartition).failure(), FailureKind::Systemic);
        assert_eq!(kafka(K::ProducerFenced).failure(), FailureKind::Systemic);
        assert_eq!(RelayError::Schema("incompatible".into()).failure(), FailureKind::Systemic);
    }

    #[test]
    fn a_content_failure_with_no_event_to_blame_is_systemic_never_data_permanent() {
        // Refusals of an event are handled where the event is known; this one escaped.
        assert_eq!(kafka(K::MessageSizeTooLarge).failure(), FailureKind::Systemic);
    }

    #[test]
    fn systemic_failures_say_what_to_fix() {
        assert!(kafka(K::ProducerFenced).fix().contains("relay.transactional_id"));
        assert!(kafka(K::UnknownTopicOrPartition).fix().contains("manifold topics create"));
        assert!(kafka(K::TopicAuthorizationFailed).fix().contains("Write"));
    }
}
