//! `manifold topics create` against the real broker.

mod common;

use std::time::Duration;

use manifold::kafka::{client_config, topics};
use manifold::kafka::topics::TopicOutcome;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;

fn topic_overrides(prefix: &str) -> Vec<(String, String)> {
    vec![
        ("MANIFOLD__TOPICS__PARTITIONS".into(), "3".into()),
        ("MANIFOLD__TOPICS__BATCHES__NAME".into(), format!("{prefix}.batches")),
        ("MANIFOLD__TOPICS__DEAD_LETTERS__NAME".into(), format!("{prefix}.dlq")),
        ("MANIFOLD__TOPICS__WINDOWS_READY__NAME".into(), format!("{prefix}.windows")),
        ("MANIFOLD__TOPICS__SCORES__NAME".into(), format!("{prefix}.scores")),
        ("MANIFOLD__TOPICS__SCORES__PARTITIONS".into(), "2".into()),
        ("MANIFOLD__TOPICS__ALERTS__NAME".into(), format!("{prefix}.alerts")),
        ("MANIFOLD__TOPICS__RELAY_POSITION__NAME".into(), format!("{prefix}.position")),
        ("MANIFOLD__TOPICS__DEAD_LETTERS__RETENTION_HOURS".into(), "48".into()),
    ]
}

#[tokio::test]
async fn topics_are_created_with_configured_partitions_and_retention_and_rerun_is_a_no_op() {
    let prefix = common::unique("t");
    let overrides = topic_overrides(&prefix);
    let pairs: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let config = common::config_with(&pairs);

    let first = topics::create(&config.kafka, &config.topics).await.unwrap();
    let outcomes: Vec<_> = first.iter().map(|t| (t.name.clone(), t.outcome.clone())).collect();
    assert_eq!(
        outcomes,
        vec![
            (format!("{prefix}.batches"), TopicOutcome::Created { partitions: 3 }),
            (format!("{prefix}.dlq"), TopicOutcome::Created { partitions: 3 }),
            (format!("{prefix}.windows"), TopicOutcome::Created { partitions: 3 }),
            (format!("{prefix}.scores"), TopicOutcome::Created { partitions: 2 }),
            (format!("{prefix}.alerts"), TopicOutcome::Created { partitions: 3 }),
            (format!("{prefix}.position"), TopicOutcome::Created { partitions: 1 }),
        ]
    );

    let admin: AdminClient<DefaultClientContext> = client_config(&config.kafka).create().unwrap();
    let metadata = admin.inner().fetch_metadata(Some(&format!("{prefix}.scores")), Duration::from_secs(10)).unwrap();
    assert_eq!(metadata.topics()[0].partitions().len(), 2, "the broker agrees on the partition count");
    let dlq = format!("{prefix}.dlq");
    // A broker started moments ago may describe a topic it just created without its configs.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let retention = loop {
        let configs = admin.describe_configs(&[ResourceSpecifier::Topic(&dlq)], &AdminOptions::new()).await.unwrap();
        let resource = configs.into_iter().next().unwrap().unwrap();
        let retention = resource.get("retention.ms").and_then(|e| e.value.clone());
        if retention.is_some() || tokio::time::Instant::now() >= deadline {
            break retention;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(retention.as_deref(), Some("172800000"), "48 hours of retention");

    let second = topics::create(&config.kafka, &config.topics).await.unwrap();
    for topic in &second {
        assert!(matches!(topic.outcome, TopicOutcome::Exists { .. }), "{topic:?}");
        assert!(!topic.partition_mismatch(), "{topic:?}");
    }
}
