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
pub const KAFKA_AUTHENTICATION: Misconfiguration = Misconfiguration {
    name: "Kafka authentication failed",
    fix: "check kafka.client.sasl.username and sasl.password (MANIFOLD__KAFKA__CLIENT__SASL_USERNAME, …_SASL_PASSWORD) and that sasl.mechanism is one the broker enables",
};
pub const KAFKA_TLS: Misconfiguration = Misconfiguration {
    name: "Kafka TLS handshake failed",
    fix: "point kafka.client.ssl.ca.location at the CA that signed the broker's certificate, and use security.protocol SSL or SASL_SSL only on a TLS listener",
};
pub const REGISTRY_UNREACHABLE: Misconfiguration = Misconfiguration {
    name: "schema registry unreachable",
    fix: "start the registry (locally: `scripts/stack up`) or set SCHEMA_REGISTRY_URL to its Confluent-compatible API (Apicurio: …/apis/ccompat/v7)",
};
pub const REGISTRY_AUTHENTICATION: Misconfiguration = Misconfiguration {
    name: "schema registry authentication failed",
    fix: "set schema_registry.username and schema_registry.password (MANIFOLD__SCHEMA_REGISTRY__USERNAME, …__PASSWORD), or schema_registry.token, to credentials the registry accepts",
};
pub const REGISTRY_TLS: Misconfiguration = Misconfiguration {
    name: "schema registry TLS unverifiable",
    fix: "point schema_registry.ca_file (MANIFOLD__SCHEMA_REGISTRY__CA_FILE) at the CA that signed the registry's certificate, and use https:// only for a TLS endpoint",
};

/// Every row, in the README's order.
pub const TABLE: &[Misconfiguration] = &[
    WRONG_DATABASE_PASSWORD,
    DATABASE_MISSING,
    DATABASE_UNREACHABLE,
    DATABASE_TLS,
    SCHEMA_NOT_MIGRATED,
    UNKNOWN_TOPIC,
    KAFKA_UNREACHABLE,
    KAFKA_AUTHENTICATION,
    KAFKA_TLS,
    REGISTRY_UNREACHABLE,
    REGISTRY_AUTHENTICATION,
    REGISTRY_TLS,
];

/// Whether an error's text is a TLS library's complaint (native-tls/OpenSSL wording).
pub fn mentions_tls(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    ["certificate", "tls", "ssl", "handshake"].iter().any(|word| text.contains(word))
}

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
        match cause.downcast_ref::<CodecError>() {
            Some(CodecError::Unauthorized(_)) => return Some(REGISTRY_AUTHENTICATION),
            Some(CodecError::Unavailable(text)) if mentions_tls(text) => return Some(REGISTRY_TLS),
            Some(CodecError::Unavailable(_)) => return Some(REGISTRY_UNREACHABLE),
            _ => {}
        }
        None
    })
}

/// A command that found Kafka "unreachable" may have been refused: its admin or consumer
/// client never hears librdkafka's background errors, so ask once more, listening for them.
/// Returns the row and librdkafka's reason when the brokers refused the login or the handshake.
pub async fn refine_kafka(known: Misconfiguration, kafka: &crate::config::KafkaConfig) -> (Misconfiguration, Option<String>) {
    use crate::kafka::recorder::{BrokerProblem, ProblemKind, probe_metadata};
    if known != KAFKA_UNREACHABLE {
        return (known, None);
    }
    let timeout = kafka.request_timeout_ms.min(std::time::Duration::from_secs(5));
    match probe_metadata(kafka, timeout, &[("log_level", "3")]).await {
        Ok(probe) => match probe.problem {
            Some(BrokerProblem { kind: ProblemKind::Authentication, reason }) => (KAFKA_AUTHENTICATION, Some(reason)),
            Some(BrokerProblem { kind: ProblemKind::Tls, reason }) => (KAFKA_TLS, Some(reason)),
            _ => (known, None),
        },
        Err(_) => (known, None),
    }
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
        // rdkafka gives an admin operation's error no code of its own; it carries one inside.
        _ => match err.rdkafka_source().and_then(|e| match e {
            rdkafka::error::KafkaError::AdminOp(code) => Some(*code),
            other => other.rdkafka_error_code(),
        }) {
            Some(UnknownTopicOrPartition | UnknownTopic | UnknownPartition) => Some(UNKNOWN_TOPIC),
            Some(Authentication | SaslAuthenticationFailed | UnsupportedSASLMechanism | IllegalSASLState) => Some(KAFKA_AUTHENTICATION),
            Some(SSL) => Some(KAFKA_TLS),
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
        let refused = anyhow::Error::new(CodecError::Unauthorized("HTTP 401".into()));
        assert_eq!(diagnose(&refused), Some(REGISTRY_AUTHENTICATION));
        let unverified = CodecError::Unavailable("http call to schema registry failed: error trying to connect: certificate verify failed".into());
        assert_eq!(diagnose(&anyhow::Error::new(unverified)), Some(REGISTRY_TLS));
        let sasl = KafkaError::Client { context: "metadata", source: rdkafka::error::KafkaError::MetadataFetch(RDKafkaErrorCode::Authentication) };
        assert_eq!(diagnose(&anyhow::Error::new(sasl)), Some(KAFKA_AUTHENTICATION));
        let admin = KafkaError::Client { context: "create topics", source: rdkafka::error::KafkaError::AdminOp(RDKafkaErrorCode::OperationTimedOut) };
        assert_eq!(diagnose(&anyhow::Error::new(admin)), Some(KAFKA_UNREACHABLE));
        assert_eq!(diagnose(&anyhow::anyhow!("something else")), None);
    }
}
