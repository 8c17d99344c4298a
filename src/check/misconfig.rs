//! Named misconfigurations: what a failing command's error means and what to do about it. The
//! same names and fixes are in the README ("Operations → When something is misconfigured"),
//! and `manifold check` reports each of them for its dependency.

use rdkafka::types::RDKafkaErrorCode;
use serde::Serialize;

use crate::codec::CodecError;
use crate::kafka::KafkaError;
use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Misconfiguration {
    pub name: &'static str,
    pub fix: &'static str,
}

pub const WRONG_DATABASE_PASSWORD: Misconfiguration = Misconfiguration {
    name: "wrong database password",
    fix: "check the user and password in DATABASE_URL (or database.url); `manifold check` shows which URL is used",
};
pub const DATABASE_MISSING: Misconfiguration = Misconfiguration {
    name: "database does not exist",
    fix: "create it (`createdb NAME`) or point DATABASE_URL at an existing database",
};
pub const DATABASE_UNREACHABLE: Misconfiguration = Misconfiguration {
    name: "database unreachable",
    fix: "start PostgreSQL (locally: `scripts/stack up`) or set DATABASE_URL to a reachable server",
};
pub const DATABASE_TLS: Misconfiguration = Misconfiguration {
    name: "database TLS refused or unverifiable",
    fix: "fix sslmode/sslrootcert in DATABASE_URL: verify-ca and verify-full need the CA that signed the server's certificate in sslrootcert; a server that requires TLS refuses sslmode=disable",
};
pub const SCHEMA_NOT_MIGRATED: Misconfiguration = Misconfiguration {
    name: "missing migration",
    fix: "run `manifold migrate` with this binary against the same DATABASE_URL",
};
pub const UNKNOWN_TOPIC: Misconfiguration = Misconfiguration {
    name: "unknown topic",
    fix: "run `manifold topics create`, or fix the topic names (topics.*.name, MANIFOLD__TOPICS__*__NAME)",
};
pub const KAFKA_UNREACHABLE: Misconfiguration = Misconfiguration {
    name: "Kafka unreachable",
    fix: "start Kafka (locally: `scripts/stack up`) or set KAFKA_BROKERS; for SASL/TLS set kafka.client.* properties",
};
pub const REGISTRY_UNREACHABLE: Misconfiguration = Misconfiguration {
    name: "schema registry unreachable",
    fix: "start the registry (locally: `scripts/stack up`) or set SCHEMA_REGISTRY_URL to its Confluent-compatible API (Apicurio: …/apis/ccompat/v7)",
};

/// Every row, in the README's order.
pub const TABLE: &[Misconfiguration] =
    &[WRONG_DATABASE_PASSWORD, DATABASE_MISSING, DATABASE_UNREACHABLE, DATABASE_TLS, SCHEMA_NOT_MIGRATED, UNKNOWN_TOPIC, KAFKA_UNREACHABLE, REGISTRY_UNREACHABLE];

/// Which named misconfiguration a command's error is, if any, by the first error in its chain
/// that says.
pub fn diagnose(err: &anyhow::Error) -> Option<Misconfiguration> {
    err.chain().find_map(|cause| {
        if let Some(store) = cause.downcast_ref::<StoreError>() {
            return of_store(store);
        }
        if let Some(kafka) = cause.downcast_ref::<KafkaError>() {
            return of_kafka(kafka);
        }
        if let Some(CodecError::Unavailable(_)) = cause.downcast_ref::<CodecError>() {
            return Some(REGISTRY_UNREACHABLE);
        }
        None
    })
}

fn of_store(err: &StoreError) -> Option<Misconfiguration> {
    match err {
        StoreError::Unavailable(_) => Some(DATABASE_UNREACHABLE),
        StoreError::Tls(_) => Some(DATABASE_TLS),
        StoreError::Query { source, .. } => match source.code().map(|c| c.code()) {
            Some("28P01" | "28000") => Some(WRONG_DATABASE_PASSWORD),
            Some("3D000") => Some(DATABASE_MISSING),
            Some("42P01" | "3F000") => Some(SCHEMA_NOT_MIGRATED),
            Some(_) => None,
            // No SQLSTATE: the server was never reached.
            None => Some(DATABASE_UNREACHABLE),
        },
        _ => None,
    }
}

fn of_kafka(err: &KafkaError) -> Option<Misconfiguration> {
    use RDKafkaErrorCode::*;
    match err {
        KafkaError::Topic { .. } => Some(UNKNOWN_TOPIC),
        _ => match err.rdkafka_source().and_then(|e| e.rdkafka_error_code()) {
            Some(UnknownTopicOrPartition | UnknownTopic | UnknownPartition) => Some(UNKNOWN_TOPIC),
            Some(AllBrokersDown | BrokerTransportFailure | OperationTimedOut | RequestTimedOut | Resolve | BrokerNotAvailable) => {
                Some(KAFKA_UNREACHABLE)
            }
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_its_own_name_and_says_what_to_do() {
        let mut names: Vec<&str> = TABLE.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), TABLE.len());
        assert!(TABLE.iter().all(|m| m.fix.len() > 20));
    }

    #[test]
    fn errors_are_named_through_their_context() {
        let topic = anyhow::Error::new(KafkaError::Topic { topic: "t".into(), message: "does not exist".into() }).context("showing offsets");
        assert_eq!(diagnose(&topic), Some(UNKNOWN_TOPIC));
        let down = anyhow::Error::new(KafkaError::Client { context: "metadata", source: rdkafka::error::KafkaError::MetadataFetch(RDKafkaErrorCode::OperationTimedOut) });
        assert_eq!(diagnose(&down), Some(KAFKA_UNREACHABLE));
        assert_eq!(diagnose(&anyhow::Error::new(StoreError::Unavailable("refused".into()))), Some(DATABASE_UNREACHABLE));
        assert_eq!(diagnose(&anyhow::Error::new(CodecError::Unavailable("refused".into()))), Some(REGISTRY_UNREACHABLE));
        assert_eq!(diagnose(&anyhow::Error::new(StoreError::Tls("handshake failed".into())).context("connecting")), Some(DATABASE_TLS));
        assert_eq!(diagnose(&anyhow::anyhow!("something else")), None);
    }
}
