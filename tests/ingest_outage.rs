//! A database outage mid-stream: the connection is cut, later stalled. Ingest pauses, reports
//! not ready, resumes by itself, and nothing is lost, repeated or dead-lettered.

mod common;

use std::time::Duration;

use common::batch::BatchBuilder;
use common::pipeline::TestPipeline;
use common::proxy::Proxy;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_then_stalled_database_pauses_ingest_and_loses_nothing() {
    let direct = TestPipeline::new(&[]).await;
    let prefix = direct.rigs(2).await;
    let upstream = {
        let url = reqwest::Url::parse(&direct.db_url).unwrap();
        format!("{}:{}", url.host_str().unwrap(), url.port().unwrap())
    };
    let proxy = Proxy::start(upstream).await;
    let mut proxied_url = reqwest::Url::parse(&direct.db_url).unwrap();
    proxied_url.set_port(Some(proxy.port)).unwrap();
    let mut config = direct.config.clone();
    config.database = manifold::config::Config::load(
        &Default::default(),
        &[("DATABASE_URL".to_owned(), proxied_url.to_string()), ("ENV".into(), "test".into())].into_iter().collect(),
    )
    .unwrap()
    .database;
    config.database.connect_timeout_ms = std::time::Duration::from_millis(1000);

    let token = tokio_util::sync::CancellationToken::new();
    let metrics = manifold::telemetry::Metrics::new();
    let running = tokio::spawn(manifold::startup::run(manifold::startup::ProcessSet::Ingest, config, metrics.clone(), token.clone()));
    let start = chrono::Utc::now().timestamp_micros() - 3_600_000_000;
    let total = 150;
    let mut paused_seen = false;
    for i in 0..total {
        let system = format!("{prefix}-{}", i % 2);
        let batch = BatchBuilder::new(&system).id(format!("o{i}")).per_second("PS1", start + i * 10_000_000, vec![100.0; 10]);
        direct.produce(&system, &batch.json()).await;
        match i {
            40 => proxy.cut(),
            70 => {
                // Give ingest time to notice, then check it reports the outage.
                tokio::time::sleep(Duration::from_secs(2)).await;
                paused_seen |= metrics.render().contains("manifold_ingest_paused 1");
                proxy.restore();
            }
            100 => proxy.stall(),
            120 => {
                tokio::time::sleep(Duration::from_secs(2)).await;
                proxy.restore();
            }
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    direct.wait_for("SELECT count(*) FROM ingested_batches", total, Duration::from_secs(60)).await;
    assert!(paused_seen, "ingest reported the outage while the database was cut off");
    assert_eq!(direct.query_i64("SELECT count(*) FROM readings").await, total * 10);
    assert_eq!(direct.query_i64("SELECT count(*) FROM dead_letters").await, 0, "an outage is never the message's fault");
    assert!(metrics.render().contains("manifold_ingest_paused 0"), "resumed by itself");
    token.cancel();
    running.await.unwrap().unwrap();
}
