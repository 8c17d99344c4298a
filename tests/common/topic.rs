//! Reading a topic back as a downstream consumer would: read committed, from the beginning, in
//! a consumer group of its own.

use std::time::{Duration, Instant};

use apache_avro::types::Value;
use manifold::config::Config;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::OwnedMessage;
use schema_registry_converter::async_impl::avro::AvroDecoder;
use schema_registry_converter::async_impl::schema_registry::SrSettings;

/// How long a topic must stay quiet after the expected messages, so a duplicate would show.
const QUIET: Duration = Duration::from_secs(2);

/// A consumer subscribed to `topic` that sees committed messages only, from the start.
pub fn committed_reader(config: &Config, topic: &str) -> BaseConsumer {
    let mut client = manifold::kafka::client_config(&config.kafka);
    client
        .set("group.id", super::unique("reader"))
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", "read_committed")
        // Room for the largest dead letter (a maximal input message plus headers).
        .set("fetch.message.max.bytes", "2000000");
    let reader: BaseConsumer = client.create().expect("topic reader");
    reader.subscribe(&[topic]).expect("subscribe");
    reader
}

/// Every committed message on `topic`: polls until `want` arrived and then a quiet spell
/// passed, or until `timeout`.
pub fn read_committed(config: &Config, topic: &str, want: usize, timeout: Duration) -> Vec<OwnedMessage> {
    let reader = committed_reader(config, topic);
    let mut messages = Vec::new();
    let deadline = Instant::now() + timeout;
    let mut quiet_since: Option<Instant> = None;
    while Instant::now() < deadline {
        match reader.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                messages.push(m.detach());
                quiet_since = None;
            }
            // The client reconnects by itself; what the test checks is which messages came.
            Some(Err(e)) => eprintln!("reading {topic}: {e}"),
            None if messages.len() >= want && quiet_since.get_or_insert_with(Instant::now).elapsed() > QUIET => break,
            None => {}
        }
    }
    messages
}

/// `read_committed`, each value decoded from Avro in the Confluent framing via the registry.
/// The blocking read runs off the runtime's workers, so the pipeline under test keeps both.
pub async fn read_committed_avro(config: &Config, topic: &str, want: usize, timeout: Duration) -> Vec<Value> {
    let (reader_config, reader_topic) = (config.clone(), topic.to_owned());
    let messages = tokio::task::spawn_blocking(move || read_committed(&reader_config, &reader_topic, want, timeout)).await.expect("topic reader");
    let decoder = AvroDecoder::new(SrSettings::new(config.schema_registry.url.clone()));
    let mut values = Vec::with_capacity(messages.len());
    for m in &messages {
        values.push(decoder.decode(m.payload()).await.expect("Avro in the Confluent framing").value);
    }
    values
}
