use std::time::Duration;

use tokio_postgres::error::SqlState;

use super::{DependencyReport, Outcome, misconfig};
use crate::config::Config;
use crate::kafka::recorder::{BrokerProblem, MetadataProbe, ProblemKind, probe_metadata};
use crate::store::{Store, migrate};

const STACK_HINT: &str = "start the local stack with `scripts/stack up`";

fn fail(problem: impl Into<String>, fix: impl Into<String>) -> Outcome {
    Outcome::Fail { problem: problem.into(), fix: fix.into() }
}

pub async fn database(config: &Config) -> DependencyReport {
    let target = config.database.url.redacted();
    let outcome = match Store::dedicated(&config.database).await {
        Err(err) => database_failure(&err),
        Ok(client) => schema_state(&client).await,
    };
    DependencyReport { dependency: "postgres", target, outcome }
}

async fn schema_state(client: &tokio_postgres::Client) -> Outcome {
    let server = match client.query_one("SHOW server_version", &[]).await {
        Ok(row) => row.get::<_, String>(0),
        Err(err) => return fail(format!("connected, but a query failed: {err}"), "check the role's privileges"),
    };
    let latest = migrate::latest_version();
    match migrate::current_version(client).await {
        Ok(version) if version >= latest => Outcome::Ok { detail: format!("PostgreSQL {server}, schema version {version}") },
        Ok(version) => fail(
            format!("PostgreSQL {server} answers, but the schema is at version {version} of {latest}"),
            "run `manifold migrate`",
        ),
        Err(err) => fail(format!("connected, but reading the schema version failed: {err}"), "check the role's privileges"),
    }
}

fn database_failure(err: &crate::store::StoreError) -> Outcome {
    use crate::store::StoreError;
    if let Some(outcome) = tls_failure(err) {
        return outcome;
    }
    let source = match err {
        StoreError::Query { source, .. } => Some(source),
        _ => None,
    };
    let code = source.and_then(|s| s.code());
    match code {
        Some(c) if *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => fail(
            "authentication failed",
            "check the user and password in DATABASE_URL (or database.url)",
        ),
        Some(c) if *c == SqlState::INVALID_CATALOG_NAME => fail(
            "the database does not exist",
            "create it (`createdb NAME`) or point DATABASE_URL at an existing database",
        ),
        Some(c) => fail(format!("the server refused the connection ({})", c.code()), "see the database server's log"),
        None => fail(
            format!("cannot connect: {err}"),
            format!("{STACK_HINT}, or set DATABASE_URL to a reachable PostgreSQL"),
        ),
    }
}

/// TLS problems are configuration, never "start the stack": say which setting to change.
fn tls_failure(err: &crate::store::StoreError) -> Option<Outcome> {
    let crate::store::StoreError::Tls(problem) = err else { return None };
    let fix = if problem.contains("requires TLS") && problem.contains("did not use it") {
        "connect with TLS: set sslmode=require (or verify-full with sslrootcert=CA-FILE) in DATABASE_URL"
    } else if problem.contains("does not support") {
        "enable ssl on the server, or lower sslmode in DATABASE_URL if plaintext is acceptable"
    } else {
        "point sslrootcert in DATABASE_URL at the CA that signed the server's certificate \
         (and, for verify-full, connect to a host name the certificate names)"
    };
    Some(fail(format!("TLS: {problem}"), fix))
}

pub async fn kafka(config: &Config) -> DependencyReport {
    let target = config.kafka.brokers.clone();
    let timeout = config.kafka.request_timeout_ms.min(Duration::from_secs(5));
    // One failed connection is enough to know; don't let librdkafka retry for the whole timeout.
    let outcome = match probe_metadata(&config.kafka, timeout, &[("log_level", "3")]).await {
        Err(err) => fail(format!("client configuration rejected: {err}"), "fix the kafka.client.* properties"),
        Ok(MetadataProbe { answer: Ok((brokers, present)), .. }) => {
            let wanted: Vec<String> = config.topics.all().iter().map(|(_, t)| t.name.clone()).collect();
            let missing: Vec<&String> = wanted.iter().filter(|t| !present.contains(t)).collect();
            if missing.is_empty() {
                Outcome::Ok { detail: format!("{brokers} broker(s), all {} topics present", wanted.len()) }
            } else {
                let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                fail(format!("{brokers} broker(s) answer, but topics are missing: {}", names.join(", ")), "run `manifold topics create`")
            }
        }
        Ok(MetadataProbe { answer: Err(err), problem }) => match problem {
            Some(BrokerProblem { kind: ProblemKind::Authentication, reason }) => {
                fail(format!("authentication failed: {reason}"), misconfig::KAFKA_AUTHENTICATION.fix)
            }
            Some(BrokerProblem { kind: ProblemKind::Tls, reason }) => fail(format!("TLS: {reason}"), misconfig::KAFKA_TLS.fix),
            _ => fail(
                format!("no broker answered within {} ms: {err}", timeout.as_millis()),
                format!("{STACK_HINT}, or set KAFKA_BROKERS; for SASL/TLS set kafka.client.* properties"),
            ),
        },
    };
    DependencyReport { dependency: "kafka", target, outcome }
}

fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder().timeout(timeout).build()
}

/// The registry's HTTP client: its timeout, CA and credentials, as every other registry client.
fn registry_client(config: &Config) -> Result<reqwest::Client, String> {
    crate::codec::http_client_builder(&config.schema_registry)
        .map_err(|e| e.to_string())?
        .build()
        .map_err(|e| e.to_string())
}

pub async fn schema_registry(config: &Config) -> DependencyReport {
    let base = config.schema_registry.url.trim_end_matches('/').to_owned();
    let url = format!("{base}/subjects");
    let outcome = match registry_client(config) {
        Err(err) => fail(format!("cannot build an HTTP client: {err}"), "check schema_registry.ca_file and the TLS setup of this machine"),
        Ok(http) => match crate::codec::authorize(http.get(&url), &config.schema_registry).send().await {
            Err(err) if is_tls(&err) => fail(format!("TLS: {}", without_url(&err)), misconfig::REGISTRY_TLS.fix),
            Err(err) => fail(
                format!("cannot reach it: {}", without_url(&err)),
                format!("{STACK_HINT}, or set SCHEMA_REGISTRY_URL to a Confluent-compatible registry"),
            ),
            Ok(response) if response.status().is_success() => match response.json::<Vec<String>>().await {
                Ok(subjects) => Outcome::Ok { detail: format!("Confluent API answers, {} subject(s)", subjects.len()) },
                Err(_) => fail(
                    "answers, but not with the Confluent subjects list",
                    "point SCHEMA_REGISTRY_URL at the Confluent-compatible API (Apicurio: …/apis/ccompat/v7)",
                ),
            },
            Ok(response) if matches!(response.status().as_u16(), 401 | 403) => fail(
                format!("authentication failed: GET /subjects answered HTTP {}", response.status()),
                misconfig::REGISTRY_AUTHENTICATION.fix,
            ),
            Ok(response) => fail(
                format!("GET /subjects answered HTTP {}", response.status()),
                "point SCHEMA_REGISTRY_URL at the Confluent-compatible API (Apicurio: …/apis/ccompat/v7)",
            ),
        },
    };
    DependencyReport { dependency: "schema-registry", target: without_password(&base), outcome }
}

/// The URL for the report, with a password written into it (`https://key:secret@host`) hidden.
fn without_password(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            // set_password only fails for URLs that cannot have one, which this one has.
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// A failed TLS handshake (an unverifiable certificate, a plaintext server), by what the TLS
/// library said somewhere in the error's chain.
fn is_tls(err: &reqwest::Error) -> bool {
    misconfig::mentions_tls(&without_url(err))
}

pub async fn gnn_service(config: &Config) -> DependencyReport {
    let Some(url) = config.gnn.service_url.clone() else {
        return DependencyReport {
            dependency: "gnn-service",
            target: "-".into(),
            outcome: Outcome::Skipped { detail: "not configured; windows are scored in process".into() },
        };
    };
    let outcome = match http_client(config.gnn.timeout_ms) {
        Err(err) => fail(format!("cannot build an HTTP client: {err}"), "check the TLS setup of this machine"),
        // Any HTTP answer proves the service is there; its scoring route takes POSTs only.
        Ok(http) => match http.get(&url).send().await {
            Ok(response) => Outcome::Ok { detail: format!("answers (HTTP {})", response.status().as_u16()) },
            Err(err) => fail(format!("cannot reach it: {}", without_url(&err)), "start the GNN service or unset GNN_SERVICE_URL"),
        },
    };
    DependencyReport { dependency: "gnn-service", target: url, outcome }
}

/// reqwest errors repeat the URL, which the report already shows.
fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.without_url_ref().to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}

trait WithoutUrl {
    fn without_url_ref(&self) -> String;
}

impl WithoutUrl for reqwest::Error {
    fn without_url_ref(&self) -> String {
        if self.is_timeout() {
            "timed out".into()
        } else if self.is_connect() {
            "connection failed".into()
        } else {
            "request failed".into()
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_password_in_the_registry_url_is_not_reported() {
        assert_eq!(super::without_password("https://key:s3cret@registry.example/apis"), "https://key:***@registry.example/apis");
        assert_eq!(super::without_password("http://127.0.0.1:8081"), "http://127.0.0.1:8081");
    }
}
