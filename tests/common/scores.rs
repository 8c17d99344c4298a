//! Reading score messages back as a downstream consumer would (read_committed, Avro).

use std::time::Duration;

use apache_avro::types::Value;

use super::pipeline::TestPipeline;

#[derive(Debug, Clone)]
pub struct ScoreMessage {
    pub system_id: String,
    pub window_start: i64,
    pub revision: i32,
    pub model_version: String,
    pub components: Vec<(String, f64)>,
}

fn field(fields: &[(String, Value)], name: &str) -> Value {
    fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or(Value::Null)
}

fn parse(value: Value) -> ScoreMessage {
    let Value::Record(f) = value else { panic!("not a record") };
    let text = |v: Value| if let Value::String(s) = v { s } else { panic!("{v:?}") };
    let components = match field(&f, "components") {
        Value::Array(items) => items
            .into_iter()
            .map(|c| {
                let Value::Record(cf) = c else { panic!() };
                let Value::Double(score) = field(&cf, "score") else { panic!() };
                (text(field(&cf, "component_id")), score)
            })
            .collect(),
        other => panic!("{other:?}"),
    };
    ScoreMessage {
        system_id: text(field(&f, "system_id")),
        window_start: match field(&f, "window_start") { Value::TimestampMicros(t) | Value::Long(t) => t, o => panic!("{o:?}") },
        revision: match field(&f, "revision") { Value::Int(r) => r, o => panic!("{o:?}") },
        model_version: text(field(&f, "model_version")),
        components,
    }
}

/// Reads score messages until `want` arrived and a further poll brings nothing, or the timeout.
/// A shortfall prints where the windows stopped (stored, ready, scored, relayed), so a failure
/// says which stage was stuck.
pub async fn read(p: &TestPipeline, want: usize, timeout: Duration) -> Vec<ScoreMessage> {
    let messages: Vec<ScoreMessage> = super::topic::read_committed_avro(&p.config, &p.config.topics.scores.name, want, timeout).await.into_iter().map(parse).collect();
    if messages.len() < want {
        eprintln!("{} of {want} score messages; pipeline state: {}", messages.len(), stage_report(&p.db_url).await);
    }
    messages
}

async fn stage_report(db_url: &str) -> String {
    let client = super::connect(db_url).await;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM windows), (SELECT count(*) FROM windows WHERE ready_revision IS NOT NULL), \
                    (SELECT count(DISTINCT (system_id, window_start, revision)) FROM anomaly_scores), \
                    (SELECT count(*) FROM outbox WHERE topic_role = 'windows_ready'), \
                    (SELECT count(*) FROM outbox WHERE topic_role = 'scores'), \
                    (SELECT count(*) FROM outbox WHERE published_at IS NULL), \
                    (SELECT count(*) FROM scoring_failures), (SELECT count(*) FROM dead_letters)",
            &[],
        )
        .await
        .expect("pipeline state");
    let n = |i: usize| row.get::<_, i64>(i);
    format!(
        "windows {} (ready {}), scored revisions {}, outbox windows_ready {} / scores {} / unpublished {}, scoring failures {}, dead letters {}",
        n(0), n(1), n(2), n(3), n(4), n(5), n(6), n(7)
    )
}
