//! Reading score messages back as a downstream consumer would (read_committed, Avro).

use std::time::{Duration, Instant};

use apache_avro::types::Value;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use schema_registry_converter::async_impl::avro::AvroDecoder;
use schema_registry_converter::async_impl::schema_registry::SrSettings;

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
    let mut config = manifold::kafka::client_config(&p.config.kafka);
    config.set("group.id", super::unique("scores")).set("auto.offset.reset", "earliest").set("isolation.level", "read_committed");
    let reader: BaseConsumer = config.create().unwrap();
    reader.subscribe(&[&p.config.topics.scores.name]).unwrap();
    let decoder = AvroDecoder::new(SrSettings::new(p.config.schema_registry.url.clone()));
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut quiet_since: Option<Instant> = None;
    while Instant::now() < deadline {
        match reader.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                out.push(parse(decoder.decode(m.payload()).await.unwrap().value));
                quiet_since = None;
            }
            _ if out.len() >= want => {
                let since = *quiet_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(2) {
                    break;
                }
            }
            _ => {}
        }
    }
    out
}
