//! How long the pipeline may take to make progress again after a fault clears, derived from the
//! configured timeouts: the bound `make chaos` holds each scenario to, and what `manifold check`
//! prints.
//!
//! Each bound is the slowest process's sum of the waits that can stand between the fault
//! clearing and its next committed work, taking the worst case of each: the longest back-off
//! (a breaker that tripped during a long fault means the systemic pause), a connection attempt
//! that started just before (the connect timeout), and what the fault leaves behind (a dead
//! connection only TCP can detect, an open Kafka transaction only its timeout ends, a group
//! member whose session must expire).

use std::fmt;
use std::time::Duration;

use super::Config;

/// librdkafka's `reconnect.backoff.max.ms` when `kafka.client` does not set it.
const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultClass {
    /// PostgreSQL restarts (`pg_ctl restart -m fast`): every session ends at once.
    DatabaseRestart,
    /// The connections to PostgreSQL are cut (reset) and new ones refused for a while.
    ConnectionCut,
    /// The path to PostgreSQL stops forwarding without closing, longer than every timeout.
    ConnectionStall,
    /// The relay's lock holder hangs or loses the database: a standby takes the lead (counted
    /// from the moment the holder went silent, not from a fault clearing).
    RelayTakeover,
    /// The Kafka broker restarts.
    BrokerRestart,
}

impl FaultClass {
    pub const ALL: [FaultClass; 5] =
        [Self::DatabaseRestart, Self::ConnectionCut, Self::ConnectionStall, Self::RelayTakeover, Self::BrokerRestart];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DatabaseRestart => "database restart",
            Self::ConnectionCut => "database connection cut",
            Self::ConnectionStall => "database connection stall",
            Self::RelayTakeover => "relay lock takeover",
            Self::BrokerRestart => "kafka broker restart",
        }
    }
}

/// One named wait and its configured length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Term {
    pub name: &'static str,
    pub length: Duration,
}

/// The bound of one fault class: the slowest process and the waits that add up to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pub fault: FaultClass,
    pub process: &'static str,
    pub terms: Vec<Term>,
}

impl Bound {
    pub fn total(&self) -> Duration {
        self.terms.iter().map(|t| t.length).sum()
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let terms: Vec<String> = self.terms.iter().map(|t| format!("{} {}", t.name, seconds(t.length))).collect();
        write!(f, "{:<26} <= {:>7}  ({}: {})", self.fault.as_str(), seconds(self.total()), self.process, terms.join(" + "))
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

fn term(name: &'static str, length: Duration) -> Term {
    Term { name, length }
}

/// The bound of every fault class.
pub fn recovery_bounds(config: &Config) -> Vec<Bound> {
    FaultClass::ALL.iter().map(|fault| recovery_bound(config, *fault)).collect()
}

/// The bound of one fault class: the largest of the processes' sums.
pub fn recovery_bound(config: &Config, fault: FaultClass) -> Bound {
    let candidates: Vec<(&'static str, Vec<Term>)> = match fault {
        FaultClass::DatabaseRestart | FaultClass::ConnectionCut => database_waits(config, &[]),
        // A connection whose data went unacknowledged is ended by tcp_user_timeout (a path
        // that resumes earlier delivers what was held, which is sooner).
        FaultClass::ConnectionStall => database_waits(config, &[term("database.tcp_user_timeout_ms", config.database.tcp_user_timeout_ms)]),
        FaultClass::RelayTakeover => vec![(
            "relay",
            vec![
                // The server ends the silent holder's session; a standby asks once per check.
                term("relay.lock_release_ms", config.relay.lock_release_ms),
                term("relay.lock_check_ms", config.relay.lock_check_ms),
                term("kafka init (request timeout)", producer_call(config)),
            ],
        )],
        FaultClass::BrokerRestart => broker_waits(config),
    };
    let (process, terms) = candidates
        .into_iter()
        .max_by_key(|(_, terms)| terms.iter().map(|t| t.length).sum::<Duration>())
        .expect("every class has at least one process");
    Bound { fault, process, terms }
}

/// How long a transactional call (init, commit) waits for the coordinator.
fn producer_call(config: &Config) -> Duration {
    config.kafka.request_timeout_ms.max(Duration::from_secs(10))
}

/// After the database answers again: each process's longest pause, one connection attempt,
/// and what it does before its next commit.
fn database_waits(config: &Config, extra: &[Term]) -> Vec<(&'static str, Vec<Term>)> {
    let connect = term("database.connect_timeout_ms", config.database.connect_timeout_ms);
    let with = |mut terms: Vec<Term>| {
        terms.extend_from_slice(extra);
        terms.push(connect.clone());
        terms
    };
    vec![
        // Ingest's breaker keeps retrying at retry_max_ms once tripped.
        (
            "ingest",
            with(vec![
                term("ingest.retry_max_ms", config.ingest.retry_max_ms),
                term("ingest.chunk_max_delay_ms", config.ingest.chunk_max_delay_ms),
            ]),
        ),
        (
            "infer",
            with(vec![
                term("infer.systemic_retry_ms", config.infer.systemic_retry_ms.max(config.infer.retry_ms)),
                term("infer.batch_wait_ms", config.infer.batch_wait_ms),
            ]),
        ),
        (
            "relay",
            with(vec![
                term("relay.systemic_retry_ms", config.relay.systemic_retry_ms.max(config.relay.retry_max_ms)),
                term("relay.lock_check_ms", config.relay.lock_check_ms),
                term("kafka init (request timeout)", producer_call(config)),
                term("relay.poll_interval_ms", config.relay.poll_interval_ms),
            ]),
        ),
    ]
}

/// After the broker answers again: the client's reconnect back-off, a group member's session
/// expiring, a transaction the fault left open timing out (read_committed readers wait on
/// it), then the process's own pause and one transactional call.
fn broker_waits(config: &Config) -> Vec<(&'static str, Vec<Term>)> {
    let reconnect = term("reconnect.backoff.max.ms", reconnect_backoff_max(config));
    let transaction = term("kafka.transaction_timeout_ms", config.kafka.transaction_timeout_ms);
    vec![
        (
            "ingest",
            vec![
                reconnect.clone(),
                term("ingest.session_timeout_ms", config.ingest.session_timeout_ms),
                transaction.clone(),
                term("ingest.retry_max_ms", config.ingest.retry_max_ms),
                term("ingest.chunk_max_delay_ms", config.ingest.chunk_max_delay_ms),
            ],
        ),
        (
            "infer",
            vec![
                reconnect.clone(),
                term("infer.session_timeout_ms", config.infer.session_timeout_ms),
                transaction.clone(),
                term("infer.systemic_retry_ms", config.infer.systemic_retry_ms.max(config.infer.retry_ms)),
                term("kafka commit (request timeout)", producer_call(config)),
            ],
        ),
        (
            "relay",
            vec![
                reconnect,
                transaction,
                term("relay.systemic_retry_ms", config.relay.systemic_retry_ms.max(config.relay.retry_max_ms)),
                term("kafka init (request timeout)", producer_call(config)),
                term("relay.poll_interval_ms", config.relay.poll_interval_ms),
            ],
        ),
    ]
}

fn reconnect_backoff_max(config: &Config) -> Duration {
    config
        .kafka
        .client
        .iter()
        .find(|(key, _)| *key == "reconnect.backoff.max.ms")
        .and_then(|(_, value)| value.trim().parse().ok())
        .map_or(RECONNECT_BACKOFF_MAX, Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Config {
        let env: BTreeMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        Config::load(&Default::default(), &env).expect("valid configuration")
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn the_defaults_give_the_documented_bounds() {
        let config = load(&[]);
        let bound = |fault| recovery_bound(&config, fault);
        // relay: systemic retry 30 + lock check 2 + init 10 + poll 0.1 + connect 5.
        assert_eq!(bound(FaultClass::DatabaseRestart).total(), secs(47.1));
        assert_eq!(bound(FaultClass::DatabaseRestart).process, "relay");
        assert_eq!(bound(FaultClass::ConnectionCut).total(), secs(47.1));
        // The stall adds tcp_user_timeout (20 s).
        assert_eq!(bound(FaultClass::ConnectionStall).total(), secs(67.1));
        // Lock release 10 + check 2 + init 10.
        assert_eq!(bound(FaultClass::RelayTakeover).total(), secs(22.0));
        // infer: reconnect 10 + session 10 + transaction 60 + systemic retry 30 + commit 10.
        assert_eq!(bound(FaultClass::BrokerRestart).total(), secs(120.0));
        assert_eq!(bound(FaultClass::BrokerRestart).process, "infer");
    }

    #[test]
    fn each_bound_follows_the_timeouts_it_names() {
        let base = load(&[]);
        let changed = load(&[
            ("MANIFOLD__KAFKA__TRANSACTION_TIMEOUT_MS", "20000"),
            ("MANIFOLD__DATABASE__TCP_USER_TIMEOUT_MS", "30000"),
            ("MANIFOLD__RELAY__LOCK_RELEASE_MS", "4000"),
        ]);
        let diff = |fault| recovery_bound(&base, fault).total().as_secs_f64() - recovery_bound(&changed, fault).total().as_secs_f64();
        assert!((diff(FaultClass::BrokerRestart) - 40.0).abs() < 1e-9, "60 s → 20 s transaction timeout");
        assert!((diff(FaultClass::ConnectionStall) + 10.0).abs() < 1e-9, "20 s → 30 s tcp_user_timeout");
        assert!((diff(FaultClass::RelayTakeover) - 6.0).abs() < 1e-9, "10 s → 4 s lock release");
        assert!(diff(FaultClass::DatabaseRestart).abs() < 1e-9, "a restart does not wait on any of them");
    }

    #[test]
    fn the_slowest_process_sets_the_bound() {
        // With short relay and infer pauses, ingest's long back-off is the slowest.
        let config = load(&[
            ("MANIFOLD__INGEST__RETRY_MAX_MS", "120000"),
            ("MANIFOLD__INFER__SYSTEMIC_RETRY_MS", "1000"),
            ("MANIFOLD__RELAY__SYSTEMIC_RETRY_MS", "1000"),
        ]);
        let bound = recovery_bound(&config, FaultClass::DatabaseRestart);
        assert_eq!(bound.process, "ingest");
        assert_eq!(bound.total(), secs(120.0 + 0.2 + 5.0));
    }

    #[test]
    fn an_operators_reconnect_backoff_counts() {
        let config = load(&[("MANIFOLD__KAFKA__CLIENT__RECONNECT_BACKOFF_MAX_MS", "1000")]);
        assert_eq!(recovery_bound(&config, FaultClass::BrokerRestart).total(), secs(111.0));
    }

    #[test]
    fn timeouts_that_do_not_fit_each_other_are_refused_at_load() {
        let refused = |pairs: &[(&str, &str)], key: &str| {
            let env: BTreeMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            let err = Config::load(&Default::default(), &env).unwrap_err();
            assert!(matches!(&err, crate::config::ConfigError::Invalid { key: k, .. } if k == key), "{pairs:?}: {err}");
        };
        refused(&[("MANIFOLD__DATABASE__STATEMENT_TIMEOUT_MS", "1000")], "database.statement_timeout_ms");
        refused(&[("MANIFOLD__DATABASE__CONNECT_TIMEOUT_MS", "0")], "database.connect_timeout_ms");
        refused(&[("MANIFOLD__DATABASE__KEEPALIVES_INTERVAL_MS", "500")], "database.keepalives_idle_ms");
        refused(&[("MANIFOLD__DATABASE__TCP_USER_TIMEOUT_MS", "15000")], "database.tcp_user_timeout_ms");
        refused(&[("MANIFOLD__KAFKA__TRANSACTION_TIMEOUT_MS", "10000")], "kafka.transaction_timeout_ms");
        refused(&[("MANIFOLD__KAFKA__TRANSACTION_TIMEOUT_MS", "900001")], "kafka.transaction_timeout_ms");
        refused(&[("MANIFOLD__INGEST__SESSION_TIMEOUT_MS", "500")], "ingest.session_timeout_ms");
        refused(&[("MANIFOLD__RELAY__LOCK_RELEASE_MS", "3000")], "relay.lock_release_ms");
    }

    #[test]
    fn each_line_names_the_fault_the_total_and_its_terms() {
        let line = recovery_bound(&load(&[]), FaultClass::RelayTakeover).to_string();
        assert!(line.starts_with("relay lock takeover"), "{line}");
        assert!(line.contains("22.0 s") && line.contains("relay.lock_release_ms 10.0 s"), "{line}");
    }
}
