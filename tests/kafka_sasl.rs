//! Secured dependencies reached by manifold's own client code:
//! - Kafka over SASL_SSL (SCRAM) through the stack's second listener (`scripts/stack env`:
//!   KAFKA_SASL_BROKERS, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD, MANIFOLD_STACK_CA);
//! - the schema registry behind an in-test HTTPS proxy that demands basic or bearer credentials
//!   (Apicurio's own authentication needs an OIDC server, which cannot run here).
//!
//! Wrong credentials and an unrelated CA must each be named for what they are, by `manifold
//! check` and by a failing command, never as "start the stack".

mod common;
#[path = "common/auth_proxy.rs"]
mod auth_proxy;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use manifold::check::misconfig::{self, Misconfiguration};
use manifold::check::{DependencyReport, Outcome};
use manifold::codec::{BatchDecoder, CodecError, RecordEncoder, registry};
use manifold::config::{Config, Sources};
use manifold::domain::BatchLimits;
use manifold::kafka::topics::{self, TopicOutcome};
use manifold::sim::{SimulateOptions, WireFormat};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::producer::FutureRecord;

use common::certs::unrelated_ca;
use common::stack::stack_variable;

fn stack_ca() -> String {
    stack_variable("MANIFOLD_STACK_CA")
}


/// Topic names of this test's own.
fn topic_env(prefix: &str) -> Vec<(String, String)> {
    manifold::domain::TopicRole::ALL
        .iter()
        .map(|role| (format!("MANIFOLD__TOPICS__{}__NAME", role.as_str().to_uppercase()), format!("{prefix}.{}", role.as_str())))
        .chain([("MANIFOLD__TOPICS__PARTITIONS".to_owned(), "1".to_owned())])
        .collect()
}

/// The stack's settings with Kafka pointed at the SASL_SSL listener.
fn sasl_env(prefix: &str, mechanism: &str, password: &str, ca: &str) -> Vec<(String, String)> {
    let mut env = topic_env(prefix);
    env.extend(
        [
            ("KAFKA_BROKERS", stack_variable("KAFKA_SASL_BROKERS")),
            ("MANIFOLD__KAFKA__REQUEST_TIMEOUT_MS", "5000".into()),
            ("MANIFOLD__KAFKA__CLIENT__SECURITY_PROTOCOL", "SASL_SSL".into()),
            ("MANIFOLD__KAFKA__CLIENT__SASL_MECHANISM", mechanism.into()),
            ("MANIFOLD__KAFKA__CLIENT__SASL_USERNAME", stack_variable("KAFKA_SASL_USERNAME")),
            ("MANIFOLD__KAFKA__CLIENT__SASL_PASSWORD", password.into()),
            ("MANIFOLD__KAFKA__CLIENT__SSL_CA_LOCATION", ca.into()),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );
    env
}

fn load(env: &[(String, String)]) -> Config {
    let mut all = common::stack_env();
    all.extend(env.iter().cloned());
    Config::load(&Sources::default(), &all).expect("config loads")
}

async fn report(config: &Config, dependency: &str) -> DependencyReport {
    manifold::check::run(config).await.into_iter().find(|r| r.dependency == dependency).expect("a report per dependency")
}

/// The report failed with a problem saying `problem` and exactly the row's fix.
fn assert_named(report: &DependencyReport, problem: &str, row: Misconfiguration) {
    match &report.outcome {
        Outcome::Fail { problem: said, fix } => {
            assert!(said.contains(problem), "{report:?}");
            assert_eq!(fix, row.fix, "{report:?}");
        }
        other => panic!("expected {} to fail, got {other:?}", report.dependency),
    }
}

/// The real binary with the stack's settings and `env`: it fails with exit code 1, naming `row`
/// and its fix. Run off the async threads, which serve the proxy meanwhile.
async fn assert_exit_error(args: &'static [&'static str], env: Vec<(String, String)>, row: Misconfiguration) {
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_manifold"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(common::stack_env())
            .envs(env)
            .output()
            .expect("run manifold")
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "manifold {args:?}: {stderr}");
    assert!(stderr.contains(&format!("problem: {}", row.name)), "manifold {args:?}: {stderr}");
    assert!(stderr.contains(&format!("fix: {}", row.fix)), "manifold {args:?}: {stderr}");
}

#[tokio::test]
async fn scram_over_tls_creates_topics_and_carries_a_message_from_producer_to_consumer() {
    let prefix = common::unique("sasl");
    let producing = load(&sasl_env(&prefix, "SCRAM-SHA-512", &stack_variable("KAFKA_SASL_PASSWORD"), &stack_ca()));
    let created = topics::create(&producing.kafka, &producing.topics).await.expect("topics created over SASL_SSL");
    assert!(created.iter().all(|t| matches!(t.outcome, TopicOutcome::Created { .. })), "{created:?}");
    match report(&producing, "kafka").await.outcome {
        Outcome::Ok { detail } => {
            let expected = format!("all {} topics present", producing.topics.all().len());
            assert!(detail.contains(&expected), "{detail}");
        }
        other => panic!("manifold check over SASL_SSL: {other:?}"),
    }

    let producer = manifold::kafka::producer(&producing.kafka).expect("producer");
    let topic = producing.topics.batches.name.clone();
    producer
        .send(FutureRecord::to(&topic).key("system-1").payload("over SCRAM and TLS"), Duration::from_secs(10))
        .await
        .expect("delivered over SASL_SSL");

    // The other SCRAM mechanism the listener enables, for the reading side.
    let reading = load(&sasl_env(&prefix, "SCRAM-SHA-256", &stack_variable("KAFKA_SASL_PASSWORD"), &stack_ca()));
    let payload = first_message(reading, topic).await;
    assert_eq!(payload.as_deref(), Some(&b"over SCRAM and TLS"[..]));
}

/// The first message on `topic`, read through manifold's consumer builder in a group of its own.
async fn first_message(config: Config, topic: String) -> Option<Vec<u8>> {
    let group = common::unique("sasl_group");
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = manifold::kafka::consumer(&config.kafka, &group, &[], DefaultConsumerContext).expect("consumer");
        consumer.subscribe(&[&topic]).expect("subscribe");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => return message.payload().map(<[u8]>::to_vec),
                Some(Err(err)) => panic!("consuming over SASL_SSL: {err}"),
                None => {}
            }
        }
        None
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_scram_password_is_named_an_authentication_failure() {
    let env = sasl_env(&common::unique("sasl"), "SCRAM-SHA-512", "not-the-password", &stack_ca());
    let config = load(&env);
    let started = Instant::now();
    assert_named(&report(&config, "kafka").await, "authentication failed", misconfig::KAFKA_AUTHENTICATION);
    // The refusal ends the wait; it does not run into the request timeout.
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_exit_error(&["topics", "create"], env, misconfig::KAFKA_AUTHENTICATION).await;
}

#[tokio::test]
async fn a_broker_certificate_from_another_ca_is_named_a_tls_failure() {
    let dir = tempfile::tempdir().unwrap();
    let config = load(&sasl_env(&common::unique("sasl"), "SCRAM-SHA-512", &stack_variable("KAFKA_SASL_PASSWORD"), &unrelated_ca(dir.path())));
    let report = report(&config, "kafka").await;
    assert_named(&report, "TLS:", misconfig::KAFKA_TLS);
    let Outcome::Fail { problem, .. } = &report.outcome else { unreachable!() };
    assert!(problem.contains("certificate"), "the problem says what TLS refused: {problem}");
}

// --- the schema registry behind the authenticating HTTPS proxy -------------------------------

async fn proxy() -> auth_proxy::AuthProxy {
    let tls_dir = PathBuf::from(stack_ca()).parent().expect("the CA's directory").to_owned();
    auth_proxy::start(&common::stack_env()["SCHEMA_REGISTRY_URL"], &tls_dir).await
}

/// The registry through `proxy`, trusting `ca`, with `credentials` (variable, value).
fn registry_env(proxy: &auth_proxy::AuthProxy, ca: &str, credentials: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = topic_env(&common::unique("sr"));
    env.push(("SCHEMA_REGISTRY_URL".into(), proxy.url.clone()));
    env.push(("MANIFOLD__SCHEMA_REGISTRY__CA_FILE".into(), ca.into()));
    env.extend(credentials.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    env
}

const BASIC: [(&str, &str); 2] =
    [("MANIFOLD__SCHEMA_REGISTRY__USERNAME", auth_proxy::USER), ("MANIFOLD__SCHEMA_REGISTRY__PASSWORD", auth_proxy::PASSWORD)];

fn sample_batch() -> manifold::domain::RawBatch {
    common::batch::BatchBuilder::new("rig-sasl").id("b-1").per_second("temp", 1_700_000_000_000_000, vec![1.0, 2.0]).build()
}

#[tokio::test]
async fn basic_auth_over_a_private_ca_registers_encodes_and_decodes_through_the_proxy() {
    let proxy = proxy().await;
    let config = load(&registry_env(&proxy, &stack_ca(), &BASIC));
    let registered = registry::register_all(&config.schema_registry, &config.topics).await.expect("registered through the proxy");
    let subjects: Vec<String> = registry::subjects(&config.topics).into_iter().map(|(subject, _)| subject).collect();
    assert_eq!(registered.iter().map(|r| r.subject.clone()).collect::<Vec<_>>(), subjects, "every schema registered through the proxy");

    let encoder = RecordEncoder::for_batches(&config.schema_registry, &config.topics.batches.name).unwrap();
    let bytes = encoder.encode_batch(&sample_batch()).await.expect("encoded with a registered schema");
    // A decoder of its own, so the writer schema is fetched by id through the proxy.
    let decoder = BatchDecoder::new(&config.schema_registry, BatchLimits { max_readings: 1000 }).unwrap();
    let decoded = decoder.decode_raw(Some(&bytes)).await.expect("decoded with the fetched schema");
    assert_eq!(decoded.batch_id.as_deref(), Some("b-1"));

    assert!(matches!(report(&config, "schema-registry").await.outcome, Outcome::Ok { .. }));
    assert!(proxy.forwarded() >= 5, "registration, encoding, decoding and check all went through: {}", proxy.forwarded());
    assert_eq!(proxy.refused(), 0);
}

#[tokio::test]
async fn a_bearer_token_is_what_the_registry_gets() {
    let proxy = proxy().await;
    let config = load(&registry_env(&proxy, &stack_ca(), &[("MANIFOLD__SCHEMA_REGISTRY__TOKEN", auth_proxy::TOKEN)]));
    registry::register_all(&config.schema_registry, &config.topics).await.expect("registered with a bearer token");
    assert!(matches!(report(&config, "schema-registry").await.outcome, Outcome::Ok { .. }));
    assert_eq!(proxy.refused(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_registry_credentials_are_named_and_never_make_a_message_a_dead_letter() {
    let proxy = proxy().await;
    let good = load(&registry_env(&proxy, &stack_ca(), &BASIC));
    let encoder = RecordEncoder::for_batches(&good.schema_registry, &good.topics.batches.name).unwrap();
    let bytes = encoder.encode_batch(&sample_batch()).await.expect("encoded with credentials");

    let wrong = [("MANIFOLD__SCHEMA_REGISTRY__USERNAME", auth_proxy::USER), ("MANIFOLD__SCHEMA_REGISTRY__PASSWORD", "wrong")];
    for credentials in [&[][..], &wrong[..]] {
        let env = registry_env(&proxy, &stack_ca(), credentials);
        let config = load(&env);
        let err = registry::register_all(&config.schema_registry, &config.topics).await.expect_err("refused");
        assert!(matches!(&err, CodecError::Unauthorized(m) if m.contains("401")), "{err}");
        assert_eq!(misconfig::diagnose(&anyhow::Error::new(err)), Some(misconfig::REGISTRY_AUTHENTICATION));
        // A good message whose schema cannot be fetched is the deployment's problem, not the message's.
        let decoder = BatchDecoder::new(&config.schema_registry, BatchLimits { max_readings: 1000 }).unwrap();
        let refused = decoder.decode_raw(Some(&bytes)).await.expect_err("schema fetch refused");
        assert!(matches!(refused, CodecError::Unauthorized(_)), "{refused}");
        assert_named(&report(&config, "schema-registry").await, "authentication failed", misconfig::REGISTRY_AUTHENTICATION);
        assert_exit_error(&["schemas", "register"], env, misconfig::REGISTRY_AUTHENTICATION).await;
    }
}

/// A registry that answers 500 for a moment (Apicurio while its PostgreSQL restarts) is a
/// transient failure: the encoder and the decoder say so, never refuse the message, and ask
/// again on the next call. The client library files a 500 as permanent and caches it per
/// subject and schema id, which once left infer unable to publish a score until restarted.
#[tokio::test]
async fn a_registry_server_error_is_retried_not_cached_and_never_makes_a_message_a_dead_letter() {
    let proxy = proxy().await;
    let config = load(&registry_env(&proxy, &stack_ca(), &BASIC));
    let encoder = RecordEncoder::for_batches(&config.schema_registry, &config.topics.batches.name).unwrap();
    proxy.fail_next(1);
    let failed = encoder.encode_batch(&sample_batch()).await.expect_err("the registry failed");
    assert!(matches!(failed, CodecError::Unavailable(ref m) if m.contains("500")), "{failed}");
    let bytes = encoder.encode_batch(&sample_batch()).await.expect("asked again once the registry answers");

    let decoder = BatchDecoder::new(&config.schema_registry, BatchLimits { max_readings: 1000 }).unwrap();
    proxy.fail_next(1);
    let failed = decoder.decode_raw(Some(&bytes)).await.expect_err("the registry failed");
    assert!(matches!(failed, CodecError::Unavailable(ref m) if m.contains("500")), "a retry, not a dead letter: {failed}");
    let decoded = decoder.decode_raw(Some(&bytes)).await.expect("asked again once the registry answers");
    assert_eq!(decoded.batch_id.as_deref(), Some("b-1"));
}

/// A piece of the pipeline with both dependencies secured: the simulator encodes rig batches
/// (schemas registered through the proxy) and produces them over SASL_SSL; they come back over
/// SASL_SSL and decode with the writer schema fetched through the proxy.
#[tokio::test]
async fn the_simulator_sends_avro_through_secured_kafka_and_an_authenticated_registry() {
    let proxy = proxy().await;
    let mut env = sasl_env(&common::unique("sasl"), "SCRAM-SHA-512", &stack_variable("KAFKA_SASL_PASSWORD"), &stack_ca());
    env.push(("SCHEMA_REGISTRY_URL".into(), proxy.url.clone()));
    env.push(("MANIFOLD__SCHEMA_REGISTRY__CA_FILE".into(), stack_ca()));
    env.extend(BASIC.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    // The simulator registers its systems (and their owner) first.
    let (database, _client) = common::migrated_database().await;
    env.push(("DATABASE_URL".into(), database));
    let config = load(&env);
    topics::create(&config.kafka, &config.topics).await.expect("topics created over SASL_SSL");
    let options = SimulateOptions {
        data: PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/data/uci-sample")),
        systems: 1,
        system_prefix: "sasl-rig".into(),
        cycles: 1,
        speed: None,
        bad_every: None,
        format: WireFormat::Avro,
        offset: 0,
        native_rates: false,
    };
    let sent = manifold::sim::run(&config, &options).await.expect("simulated over SASL_SSL and the proxy");
    assert!(sent.batches > 0 && sent.bad == 0, "{sent:?}");

    let bytes = first_message(config.clone(), config.topics.batches.name.clone()).await.expect("a batch came back");
    let decoder = BatchDecoder::new(&config.schema_registry, BatchLimits { max_readings: 1_000_000 }).unwrap();
    let batch = decoder.decode_raw(Some(&bytes)).await.expect("decoded through the proxy");
    assert_eq!(batch.system_id, "sasl-rig-0");
    assert_eq!(proxy.refused(), 0);
}

#[tokio::test]
async fn a_registry_certificate_from_another_ca_is_named_a_tls_failure() {
    let proxy = proxy().await;
    let dir = tempfile::tempdir().unwrap();
    let config = load(&registry_env(&proxy, &unrelated_ca(dir.path()), &BASIC));
    let err = registry::register_all(&config.schema_registry, &config.topics).await.expect_err("certificate not trusted");
    assert_eq!(misconfig::diagnose(&anyhow::Error::new(err)), Some(misconfig::REGISTRY_TLS));
    assert_named(&report(&config, "schema-registry").await, "TLS:", misconfig::REGISTRY_TLS);
    assert_eq!(proxy.forwarded(), 0);
}
