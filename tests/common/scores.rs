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
pub async fn read(p: &TestPipeline, want: usize, timeout: Duration) -> Vec<ScoreMessage> {
    super::topic::read_committed_avro(&p.config, &p.config.topics.scores.name, want, timeout).await.into_iter().map(parse).collect()
}
