//! One Kafka transaction: a run of events plus the relay's position, with every delivery report
//! kept, so a record the broker refuses is attributed to its outbox event.

use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use super::RelayError;
use super::limits::Record;
use crate::domain::TopicRole;
use crate::failure::FailureKind;
use crate::kafka::transactional::TxProducer;
use crate::kafka::{KafkaError, classify};
use crate::telemetry::traces::TraceSpan;

/// An event ready to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub seq: i64,
    pub role: TopicRole,
    pub topic: String,
    pub record: Record,
    /// The value's size before it was cut to the limit, when it was.
    pub cut_from: Option<usize>,
    /// The event's span in its window's trace (none for events without one): it ends when
    /// the run is dropped, after the transaction.
    pub trace: TraceSpan,
}

/// Where the relay writes how far it got, in the same transaction.
pub struct PositionRecord<'a> {
    pub topic: &'a str,
    pub key: &'a [u8],
    pub seq: i64,
}

/// An event the broker or the client refused for its content.
#[derive(Debug)]
pub struct Refusal {
    /// Index in the run.
    pub index: usize,
    pub error: RdKafkaError,
}

#[derive(Debug)]
pub enum Outcome {
    Committed,
    /// The transaction was aborted because these events were refused for their content. When
    /// the abort itself failed, `abort_error` says why (the producer must be recreated).
    Refused { refusals: Vec<Refusal>, abort_error: Option<RelayError> },
    /// The transaction was aborted and every failure was the aftermath of an earlier one (a
    /// record purged while the producer recovered from the last abort): send the run again.
    Purged,
}

/// Publishes `run` and `position` in one transaction. Refusals for content are returned (the
/// transaction aborted); any other failure aborts and is returned as the error.
pub async fn transaction(tx: &TxProducer, run: &[Outgoing], position: PositionRecord<'_>, timeout: Duration) -> Result<Outcome, RelayError> {
    tx.begin()?;
    let producer = tx.producer();
    let mut pending = FuturesUnordered::new();
    let mut failures: Vec<(Option<usize>, RdKafkaError)> = Vec::new();
    for (index, out) in run.iter().enumerate() {
        match send(producer, &out.topic, &out.record) {
            Ok(delivery) => pending.push(tagged(Some(index), delivery)),
            Err(error) => {
                // Refused before it left (over librdkafka's own limit, or the transaction is
                // already failing): nothing after it is worth sending.
                failures.push((Some(index), error));
                break;
            }
        }
    }
    if failures.is_empty() {
        let body = super::position::encode(position.seq);
        let record = FutureRecord::to(position.topic).key(position.key).payload(body.as_slice());
        match producer.send_result(record) {
            Ok(delivery) => pending.push(tagged(None, delivery)),
            Err((error, _)) => failures.push((None, error)),
        }
    }
    // Wait for every report, but stop at the first failure: after one, librdkafka may hold the
    // rest back until the transaction is aborted, which resolves them.
    let deadline = tokio::time::Instant::now() + timeout;
    while failures.is_empty() {
        match tokio::time::timeout_at(deadline, pending.next()).await {
            Ok(Some((index, Err(error)))) => failures.push((index, error)),
            Ok(Some((_, Ok(())))) => {}
            Ok(None) => break,
            Err(_) => {
                tx.abort().await?;
                return Err(RelayError::Stalled("delivery reports did not arrive within the transaction timeout"));
            }
        }
    }
    if failures.is_empty() {
        if let Err(err) = tx.commit().await {
            // Nothing of an aborted transaction is visible to read_committed readers.
            let _ = tx.abort().await;
            return Err(err.into());
        }
        return Ok(Outcome::Committed);
    }
    let abort_error = tx.abort().await.err().map(RelayError::from);
    // The abort resolved the reports still outstanding; records batched with a refused one
    // report the same refusal, and all of them are suspects.
    let drain = tokio::time::Instant::now() + Duration::from_secs(10);
    while let Ok(Some((index, result))) = tokio::time::timeout_at(drain, pending.next()).await {
        if let Err(error) = result {
            failures.push((index, error));
        }
    }
    let mut refusals = Vec::new();
    let mut other = None;
    for (index, error) in failures {
        match (index, classify(&error)) {
            (Some(index), FailureKind::DataPermanent) => refusals.push(Refusal { index, error }),
            (_, FailureKind::Transient) if is_aftermath(&error) => {}
            (Some(_), _) | (None, _) => {
                other.get_or_insert(KafkaError::Client { context: "deliver a relay record", source: error });
            }
        }
    }
    refusals.sort_by_key(|r| r.index);
    match (refusals.is_empty(), other) {
        (false, _) => Ok(Outcome::Refused { refusals, abort_error }),
        (true, Some(error)) => Err(error.into()),
        (true, None) => abort_error.map_or(Ok(Outcome::Purged), Err),
    }
}

/// Errors that only follow another failure (purged by the abort, refused in a failing
/// transaction): they say nothing about their own record.
fn is_aftermath(error: &RdKafkaError) -> bool {
    use rdkafka::types::RDKafkaErrorCode as K;
    matches!(error.rdkafka_error_code(), Some(K::PurgeQueue | K::PurgeInflight | K::State))
}

type Tagged = std::pin::Pin<Box<dyn std::future::Future<Output = (Option<usize>, Result<(), RdKafkaError>)> + Send>>;

fn tagged(index: Option<usize>, delivery: DeliveryFuture) -> Tagged {
    Box::pin(async move {
        let result = match delivery.await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err((error, _))) => Err(error),
            // The producer went away with the report: as if purged.
            Err(_) => Err(RdKafkaError::Canceled),
        };
        (index, result)
    })
}

fn send(producer: &FutureProducer, topic: &str, record: &Record) -> Result<DeliveryFuture, RdKafkaError> {
    let mut headers = OwnedHeaders::new_with_capacity(record.headers.len());
    for (key, value) in &record.headers {
        headers = headers.insert(Header { key, value: Some(value.as_str()) });
    }
    let mut out = FutureRecord::to(topic).payload(record.value.as_slice()).headers(headers);
    if let Some(key) = &record.key {
        out = out.key(key.as_slice());
    }
    producer.send_result(out).map_err(|(error, _)| error)
}
