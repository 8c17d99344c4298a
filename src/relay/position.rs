//! The relay's position: the last outbox sequence a committed transaction published.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::{Message, Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::kafka::KafkaError;

pub fn encode(seq: i64) -> Vec<u8> {
    serde_json::json!({ "last_seq": seq }).to_string().into_bytes()
}

fn decode(payload: &[u8]) -> Option<i64> {
    serde_json::from_slice::<serde_json::Value>(payload).ok()?.get("last_seq")?.as_i64()
}

/// Reads the position topic to its end with read_committed; the newest record under `key`
/// wins. Run after `init_transactions`, which aborts whatever the previous instance left open.
pub async fn read(kafka: &KafkaConfig, topic: &str, key: &str, timeout: Duration) -> Result<i64, KafkaError> {
    let kafka = kafka.clone();
    let (topic, key) = (topic.to_owned(), key.to_owned());
    tokio::task::spawn_blocking(move || read_blocking(&kafka, &topic, &key, timeout))
        .await
        .map_err(|source| KafkaError::Join { context: "read the relay position", source })?
}

fn read_blocking(kafka: &KafkaConfig, topic: &str, key: &str, timeout: Duration) -> Result<i64, KafkaError> {
    let consumer: BaseConsumer = crate::kafka::consumer(kafka, "manifold-relay-position-reader", &[], DefaultConsumerContext)?;
    let client_err = |context| move |source| KafkaError::Client { context, source };
    let (_, high) = consumer.fetch_watermarks(topic, 0, timeout).map_err(client_err("read the position watermarks"))?;
    if high == 0 {
        return Ok(0);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning).map_err(client_err("position offset"))?;
    consumer.assign(&tpl).map_err(client_err("assign the position topic"))?;
    let deadline = Instant::now() + timeout;
    let mut last = 0;
    loop {
        if let Some(result) = consumer.poll(Duration::from_millis(100)) {
            let message = result.map_err(client_err("read the position topic"))?;
            if message.key() == Some(key.as_bytes())
                && let Some(seq) = message.payload().and_then(decode)
            {
                last = seq;
            }
        }
        let position = consumer.position().map_err(client_err("position"))?;
        let at = position.find_partition(topic, 0).and_then(|e| e.offset().to_raw()).unwrap_or(0);
        if at >= high {
            return Ok(last);
        }
        if Instant::now() > deadline {
            return Err(KafkaError::Topic { topic: topic.to_owned(), message: format!("could not read to offset {high} in time") });
        }
    }
}
