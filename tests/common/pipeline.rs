//! A private pipeline per test: its own database (migrated), topics, consumer group and relay id.

use std::process::Command;
use std::time::Duration;

use manifold::config::Config;
use manifold::kafka::topics;
use manifold::sim;
use manifold::store::Store;
use rdkafka::producer::FutureRecord;
use tokio_util::sync::CancellationToken;

pub struct TestPipeline {
    producer: rdkafka::producer::FutureProducer,
    pub config: Config,
    pub prefix: String,
    pub db_url: String,
    pub env: Vec<(String, String)>,
}

impl TestPipeline {
    /// Fresh database and topics; `extra` are more environment overrides.
    pub async fn new(extra: &[(&str, &str)]) -> Self {
        let (db_url, _) = super::migrated_database().await;
        let prefix = super::unique("p");
        let mut env: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), db_url.clone()),
            ("MANIFOLD__TOPICS__PARTITIONS".into(), "3".into()),
            ("MANIFOLD__TOPICS__BATCHES__NAME".into(), format!("{prefix}.batches")),
            ("MANIFOLD__TOPICS__DEAD_LETTERS__NAME".into(), format!("{prefix}.dlq")),
            ("MANIFOLD__TOPICS__WINDOWS_READY__NAME".into(), format!("{prefix}.windows")),
            ("MANIFOLD__TOPICS__SCORES__NAME".into(), format!("{prefix}.scores")),
            ("MANIFOLD__TOPICS__ALERTS__NAME".into(), format!("{prefix}.alerts")),
            ("MANIFOLD__TOPICS__RELAY_POSITION__NAME".into(), format!("{prefix}.position")),
            ("MANIFOLD__INGEST__GROUP_ID".into(), format!("{prefix}-ingest")),
            ("MANIFOLD__INGEST__LISTEN".into(), "127.0.0.1:0".into()),
            ("MANIFOLD__INGEST__CHUNK_MAX_DELAY_MS".into(), "50".into()),
            ("MANIFOLD__INGEST__RETRY_MAX_MS".into(), "1000".into()),
            ("MANIFOLD__INGEST__SESSION_TIMEOUT_MS".into(), "6000".into()),
            ("MANIFOLD__RELAY__TRANSACTIONAL_ID".into(), format!("{prefix}-relay")),
            // Shared ids would make parallel tests' workers fence each other and rebalance.
            ("MANIFOLD__INFER__GROUP_ID".into(), format!("{prefix}-infer")),
            ("MANIFOLD__INFER__TRANSACTIONAL_ID".into(), format!("{prefix}-infer-0")),
            ("MANIFOLD__INFER__LISTEN".into(), "127.0.0.1:0".into()),
            ("MANIFOLD__INFER__SESSION_TIMEOUT_MS".into(), "6000".into()),
            ("MANIFOLD__RELAY__POLL_INTERVAL_MS".into(), "50".into()),
        ];
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let config = super::config_with(&pairs);
        if std::env::var_os("MANIFOLD_TEST_LOG").is_some() {
            manifold::telemetry::init_logging(&config.telemetry);
        }
        manifold::store::maintenance::Maintenance::new(config.database.clone(), config.storage.clone(), manifold::telemetry::Metrics::new())
            .run_once(chrono::Utc::now())
            .await
            .expect("partitions");
        topics::create(&config.kafka, &config.topics).await.expect("topics");
        let producer = manifold::kafka::producer(&config.kafka).expect("producer");
        TestPipeline { producer, config, prefix, db_url, env }
    }

    pub fn store(&self) -> Store {
        Store::new(&self.config.database).unwrap()
    }

    /// Registers `systems` rigs named `<prefix>-rig-N`.
    pub async fn rigs(&self, systems: usize) -> String {
        let name = format!("{}-rig", self.prefix);
        sim::ensure_equipment(&self.store(), &name, systems).await.expect("equipment");
        name
    }

    /// Runs ingest (with relay and maintenance) in this process until the token is cancelled.
    pub fn spawn_ingest(&self) -> (CancellationToken, tokio::task::JoinHandle<()>) {
        let token = CancellationToken::new();
        let config = self.config.clone();
        let t = token.clone();
        let handle = tokio::spawn(async move {
            manifold::startup::run(manifold::startup::ProcessSet::Ingest, config, manifold::telemetry::Metrics::new(), t).await.expect("ingest runs");
        });
        (token, handle)
    }

    /// The real `manifold` binary with `args`, in this pipeline's environment: the stack's
    /// addresses, then the pipeline's own database, topics and group ids.
    pub fn manifold(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_manifold"));
        command.args(args).envs(super::stack_env()).envs(self.env.iter().cloned());
        command
    }

    /// Runs `manifold args` to its end, insists it succeeded, and returns what it printed.
    pub fn run_manifold(&self, args: &[&str]) -> String {
        let out = self.manifold(args).output().unwrap_or_else(|e| panic!("run manifold {args:?}: {e}"));
        assert!(out.status.success(), "manifold {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).expect("manifold prints UTF-8")
    }

    pub async fn produce(&self, key: &str, payload: &[u8]) {
        self.producer
            .send(FutureRecord::to(&self.config.topics.batches.name).key(key).payload(payload), Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("produce");
    }

    pub async fn query_i64(&self, sql: &str) -> i64 {
        let client = super::connect(&self.db_url).await;
        client.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
    }

    /// Polls `sql` (one bigint) until it equals `want`, or panics after `timeout`.
    pub async fn wait_for(&self, sql: &str, want: i64, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.query_i64(sql).await;
            if got == want {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "{sql}: still {got}, wanted {want}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
