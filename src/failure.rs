//! The one place that decides what kind of failure an error is, and so what to do about it.
//!
//! - *Transient*: the dependency may answer next time (connection lost, timeouts, serialization
//!   conflicts, resources, broker unavailable). Pause, retry with back-off.
//! - *Data-permanent*: this message's content cannot be stored or published (a value the
//!   database refuses, a program limit, a record too large for the broker). Isolate the one
//!   message or event and set it aside with the reason; retrying it would fail again.
//! - *Systemic*: the deployment is wrong (permissions, a missing table, bad credentials, a fenced
//!   producer). Stop making progress loudly (readiness false, a metric, an error log saying what
//!   to fix) and never dead-letter: no message is at fault.
//!
//! Codes not in the tables are systemic for PostgreSQL (an unknown SQL failure is more likely a
//! bug or a deployment problem than one message's fault) and transient for Kafka (librdkafka
//! reports most of its own trouble as connectivity). A circuit breaker ([`Breaker`]) turns a run
//! of transient failures into a systemic one, so nothing is retried quietly forever.

use std::time::{Duration, Instant};

use rdkafka::types::RDKafkaErrorCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    Transient,
    DataPermanent,
    Systemic,
}

impl FailureKind {
    /// A bounded label value for metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Transient => "transient",
            FailureKind::DataPermanent => "data_permanent",
            FailureKind::Systemic => "systemic",
        }
    }
}

/// What kind of failure a PostgreSQL error is, by its SQLSTATE (and, for 23514, its message:
/// "no partition of relation … found for row" is a partition that maintenance has not made
/// yet, while any other check violation is the row's content).
pub fn classify_sqlstate(code: &str, message: &str) -> FailureKind {
    use FailureKind::*;
    let class = code.get(..2).unwrap_or("");
    match code {
        // Serialization failure and deadlock: the same transaction succeeds when retried.
        "40001" | "40P01" => return Transient,
        // Query cancelled (statement timeout), lock not available, object in use.
        "57014" | "55P03" | "55006" => return Transient,
        "23514" if message.contains("no partition") => return Transient,
        // Read-only transaction: pointed at a standby. A failover may fix it, an operator must
        // otherwise; either way no message is at fault.
        "25006" => return Systemic,
        _ => {}
    }
    match class {
        // Connection exceptions, insufficient resources, operator intervention (shutdown,
        // cannot connect now), system errors (I/O).
        "08" | "53" | "57" | "58" => Transient,
        // Data exceptions (bad encoding, NUL, out of range, overflow), integrity violations of
        // a row's content, program limits (index row too large, too many arguments).
        "22" | "23" | "54" => DataPermanent,
        // Syntax or access rule (42501 permission denied, 42P01 missing table, 42703 missing
        // column), authorization, missing database or schema, unsupported feature, internal
        // errors and corruption, configuration files: the deployment.
        _ => Systemic,
    }
}

/// What an operator should do about a systemic PostgreSQL failure, by its SQLSTATE.
pub fn sqlstate_hint(code: &str) -> &'static str {
    match code {
        "42501" => "grant manifold's database role the privileges on its tables (or run manifold as the role that ran `manifold migrate`)",
        "42P01" | "42703" | "42883" | "42P10" => "the schema is missing or older than this binary: run `manifold migrate`",
        "28000" | "28P01" => "the database refused the credentials: check the user and password in database.url",
        "3D000" => "the database named in database.url does not exist",
        "3F000" => "a schema manifold needs does not exist: run `manifold migrate`",
        "25006" => "database.url points at a read-only standby: point it at the primary",
        _ if code.starts_with("XX") => "the database reports an internal error or corruption: check its logs",
        _ => "the database refuses every write: check its logs and the error above",
    }
}

/// What kind of failure a librdkafka error code is.
pub fn classify_kafka(code: RDKafkaErrorCode) -> FailureKind {
    use FailureKind::*;
    use RDKafkaErrorCode as K;
    match code {
        // The record's content: too large for the broker or the topic, or refused as a record.
        K::MessageSizeTooLarge
        | K::InvalidMessageSize
        | K::MessageBatchTooLarge
        | K::InvalidRecord
        | K::InvalidMessage
        | K::InvalidTimestamp
        | K::BadMessage
        | K::KeySerialization
        | K::ValueSerialization
        | K::UnsupportedForMessageFormat => DataPermanent,
        // Credentials, authorization, configuration, missing topics, and being fenced by
        // another instance with the same transactional id: an operator must act.
        K::TopicAuthorizationFailed
        | K::GroupAuthorizationFailed
        | K::ClusterAuthorizationFailed
        | K::TransactionalIdAuthorizationFailed
        | K::SaslAuthenticationFailed
        | K::Authentication
        | K::UnsupportedSASLMechanism
        | K::IllegalSASLState
        | K::SSL
        | K::InvalidConfig
        | K::InvalidArgument
        | K::UnknownTopic
        | K::UnknownTopicOrPartition
        | K::UnknownPartition
        | K::InvalidTopic
        | K::TopicDeletionDisabled
        | K::UnsupportedVersion
        | K::UnsupportedFeature
        | K::ProducerFenced
        | K::Fenced
        | K::InvalidProducerEpoch
        | K::TransactionCoordinatorFenced
        | K::FencedInstanceId
        | K::InvalidTransactionTimeout
        | K::NotConfigured
        | K::NotImplemented => Systemic,
        _ => Transient,
    }
}

/// What kind of failure an HTTP answer of a dependency is (the external scorer, the schema
/// registry). A 404 from the registry's lookup by id is the caller's to interpret (an unknown
/// schema id is the record's fault); elsewhere it is a wrong URL.
pub fn classify_http_status(status: u16) -> FailureKind {
    use FailureKind::*;
    match status {
        // Timeout, too many requests, server errors: it may answer next time.
        408 | 429 | 500..=599 => Transient,
        // The request's content refused: malformed, conflicting, too large, unprocessable.
        400 | 409 | 413 | 415 | 422 => DataPermanent,
        // Authentication, authorization, a wrong URL or method: the deployment.
        _ => Systemic,
    }
}

/// Turns a run of failures into a systemic one: after `threshold` consecutive failures, or
/// failures without a success for longer than `window`, the dependency is not coming back by
/// itself and someone must look.
#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: u32,
    window: Duration,
    consecutive: u32,
    first_at: Option<Instant>,
}

impl Breaker {
    pub fn new(threshold: u32, window: Duration) -> Self {
        Self { threshold: threshold.max(1), window, consecutive: 0, first_at: None }
    }

    /// Records a failure of `kind` at `now`; returns the kind to act on.
    pub fn failed(&mut self, kind: FailureKind, now: Instant) -> FailureKind {
        self.consecutive = self.consecutive.saturating_add(1);
        let first = *self.first_at.get_or_insert(now);
        if kind == FailureKind::Transient && (self.consecutive >= self.threshold || now.duration_since(first) >= self.window) {
            FailureKind::Systemic
        } else {
            kind
        }
    }

    pub fn succeeded(&mut self) {
        self.consecutive = 0;
        self.first_at = None;
    }

    /// True while the breaker has tripped (the last failures count as systemic).
    pub fn open(&self, now: Instant) -> bool {
        self.consecutive >= self.threshold || self.first_at.is_some_and(|first| now.duration_since(first) >= self.window)
    }
}

#[cfg(test)]
mod tests {
    use super::FailureKind::*;
    use super::*;

    #[test]
    fn sqlstates_classify_as_the_table_says() {
        let table: &[(&str, &str, FailureKind)] = &[
            ("08006", "connection failure", Transient),
            ("08001", "cannot connect", Transient),
            ("40001", "could not serialize access", Transient),
            ("40P01", "deadlock detected", Transient),
            ("53100", "disk full", Transient),
            ("53200", "out of memory", Transient),
            ("53300", "too many connections", Transient),
            ("57P01", "terminating connection due to administrator command", Transient),
            ("57P03", "the database system is starting up", Transient),
            ("57014", "canceling statement due to statement timeout", Transient),
            ("55P03", "could not obtain lock", Transient),
            ("58030", "could not write to file", Transient),
            ("23514", "no partition of relation \"readings\" found for row", Transient),
            ("23514", "new row violates check constraint \"anomaly_scores_score_check\"", DataPermanent),
            ("22021", "invalid byte sequence for encoding \"UTF8\": 0x00", DataPermanent),
            ("22P05", "unsupported Unicode escape sequence", DataPermanent),
            ("22003", "value out of range: overflow", DataPermanent),
            ("22001", "value too long for type character varying(64)", DataPermanent),
            ("23502", "null value in column violates not-null constraint", DataPermanent),
            ("23505", "duplicate key value violates unique constraint", DataPermanent),
            ("54000", "index row size exceeds btree version 4 maximum", DataPermanent),
            ("54023", "cannot pass more than 100 arguments", DataPermanent),
            ("42501", "permission denied for table readings", Systemic),
            ("42P01", "relation \"readings\" does not exist", Systemic),
            ("42703", "column does not exist", Systemic),
            ("42883", "function does not exist", Systemic),
            ("28P01", "password authentication failed", Systemic),
            ("3D000", "database does not exist", Systemic),
            ("25006", "cannot execute INSERT in a read-only transaction", Systemic),
            ("0A000", "feature not supported", Systemic),
            ("XX000", "internal error", Systemic),
            ("XX001", "data corrupted", Systemic),
            ("P0001", "raise exception", Systemic),
        ];
        for (code, message, want) in table {
            assert_eq!(classify_sqlstate(code, message), *want, "{code} {message}");
        }
    }

    #[test]
    fn kafka_codes_classify_as_the_table_says() {
        use RDKafkaErrorCode as K;
        let table: &[(K, FailureKind)] = &[
            (K::BrokerTransportFailure, Transient),
            (K::AllBrokersDown, Transient),
            (K::MessageTimedOut, Transient),
            (K::OperationTimedOut, Transient),
            (K::RequestTimedOut, Transient),
            (K::QueueFull, Transient),
            (K::LeaderNotAvailable, Transient),
            (K::NotLeaderForPartition, Transient),
            (K::NotEnoughReplicas, Transient),
            (K::CoordinatorNotAvailable, Transient),
            (K::CoordinatorLoadInProgress, Transient),
            (K::ConcurrentTransactions, Transient),
            (K::NetworkException, Transient),
            (K::MessageSizeTooLarge, DataPermanent),
            (K::InvalidMessageSize, DataPermanent),
            (K::MessageBatchTooLarge, DataPermanent),
            (K::InvalidRecord, DataPermanent),
            (K::InvalidMessage, DataPermanent),
            (K::InvalidTimestamp, DataPermanent),
            (K::TopicAuthorizationFailed, Systemic),
            (K::TransactionalIdAuthorizationFailed, Systemic),
            (K::SaslAuthenticationFailed, Systemic),
            (K::SSL, Systemic),
            (K::UnknownTopicOrPartition, Systemic),
            (K::ProducerFenced, Systemic),
            (K::InvalidProducerEpoch, Systemic),
            (K::Fenced, Systemic),
            (K::FencedInstanceId, Systemic),
        ];
        for (code, want) in table {
            assert_eq!(classify_kafka(*code), *want, "{code:?}");
        }
    }

    #[test]
    fn every_systemic_table_entry_has_a_specific_hint() {
        for code in ["42501", "42P01", "42703", "28P01", "3D000", "25006"] {
            assert!(!sqlstate_hint(code).starts_with("the database refuses every write"), "{code}");
        }
    }

    #[test]
    fn http_statuses_classify_as_the_table_says() {
        let table: &[(u16, FailureKind)] = &[
            (408, Transient),
            (429, Transient),
            (500, Transient),
            (502, Transient),
            (503, Transient),
            (504, Transient),
            (400, DataPermanent),
            (413, DataPermanent),
            (422, DataPermanent),
            (401, Systemic),
            (403, Systemic),
            (404, Systemic),
            (405, Systemic),
        ];
        for (status, want) in table {
            assert_eq!(classify_http_status(*status), *want, "{status}");
        }
    }

    #[test]
    fn a_run_of_transient_failures_trips_the_breaker() {
        let now = Instant::now();
        let mut breaker = Breaker::new(3, Duration::from_secs(600));
        assert_eq!(breaker.failed(Transient, now), Transient);
        assert_eq!(breaker.failed(Transient, now), Transient);
        assert_eq!(breaker.failed(Transient, now), Systemic, "the third failure in a row is systemic");
        assert!(breaker.open(now));
        breaker.succeeded();
        assert!(!breaker.open(now));
        assert_eq!(breaker.failed(Transient, now), Transient, "a success resets the run");
    }

    #[test]
    fn failures_for_longer_than_the_window_trip_the_breaker() {
        let start = Instant::now();
        let mut breaker = Breaker::new(100, Duration::from_secs(60));
        assert_eq!(breaker.failed(Transient, start), Transient);
        assert_eq!(breaker.failed(Transient, start + Duration::from_secs(61)), Systemic);
    }

    #[test]
    fn the_breaker_never_turns_data_permanent_into_systemic() {
        let now = Instant::now();
        let mut breaker = Breaker::new(1, Duration::from_secs(60));
        assert_eq!(breaker.failed(DataPermanent, now), DataPermanent);
    }
}
