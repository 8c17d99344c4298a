//! One batch from records to stored scores, with every window that fails for its content set
//! aside (and the others still scored). An error that is not one window's fault fails the
//! whole batch, which is then retried or, if systemic, reported.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::message::{BorrowedMessage, Message};
use schema_registry_converter::async_impl::avro::AvroDecoder;

use super::poison::{self, FailReason, WindowFailure};
use super::scorer::{HttpScorerError, ScoreError, Scored, time};
use super::error::InferError;
use super::worker::InferWorker;
use crate::codec::{AnomalyScores, WindowReady};
use crate::failure::FailureKind;
use crate::store::{StoreError, SystemInfo};
use crate::telemetry::traces::{self, TraceSpan};

/// What a batch came to: windows scored (and stored), each with its span in the window's trace
/// (none with export off), and records set aside.
#[derive(Default)]
pub struct Outcome {
    pub scored: Vec<(Scored, TraceSpan)>,
    pub failed: Vec<WindowFailure>,
    /// The kinds of the alert events published with the scores (for the metric).
    pub alert_events: Vec<crate::domain::AlertEventKind>,
    /// Per system loaded, the kind of each of its components, as loaded with its windows: what
    /// alert derivation reads, so it does not ask the database again.
    pub component_kinds: ComponentKinds,
    pub steps: BatchSteps,
}

/// Where a batch's time went, logged at debug with the committed batch: what to look at when
/// infer falls behind the windows announced.
#[derive(Debug, Default, Clone, Copy)]
pub struct BatchSteps {
    pub decode: Duration,
    /// The windows' readings and systems from the database.
    pub load: Duration,
    pub score: Duration,
    /// Upserting the scores.
    pub store: Duration,
    /// Encoding the score messages and recording the windows set aside.
    pub encode: Duration,
    /// Deriving, storing and encoding the alert events.
    pub alerts: Duration,
    /// The Kafka transaction: scores, alert events and offsets.
    pub commit: Duration,
}

/// A decoded event with where it came from.
struct Event {
    partition: i32,
    offset: i64,
    event: WindowReady,
    trace: TraceSpan,
}

impl Event {
    fn fail(&self, reason: FailReason, message: &str) -> WindowFailure {
        self.trace.failed(reason.as_str());
        WindowFailure::new(self.partition, self.offset, Some(self.event.clone()), reason, message)
    }
}

/// The message's span in its window's trace: a child of the relay's span named by its
/// `traceparent` header. Headers are not even looked at with export off.
fn trace_of(message: &BorrowedMessage<'_>) -> TraceSpan {
    use rdkafka::message::Headers;
    if !traces::enabled() {
        return TraceSpan::default();
    }
    let parent = message
        .headers()
        .and_then(|h| h.iter().find(|h| h.key == traces::TRACEPARENT))
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok());
    traces::score(parent, message.partition(), message.offset())
}

impl InferWorker {
    /// Decodes, scores, checks and stores the batch's windows.
    pub(super) async fn prepare(&mut self, batch: &[BorrowedMessage<'_>]) -> Result<Outcome, InferError> {
        let mut outcome = Outcome::default();
        let mut step = Instant::now();
        let events = self.decode(batch, &mut outcome).await?;
        outcome.steps.decode = lap(&mut step);
        let loaded = self.load(&events, &mut outcome).await?;
        outcome.steps.load = lap(&mut step);
        let mut scored: Vec<(&Event, Scored)> = Vec::with_capacity(loaded.len());
        for (event, values, info) in loaded {
            if let Some(topology) = info.as_ref().and_then(|i| i.topology.as_ref()) {
                outcome
                    .component_kinds
                    .entry(event.event.system_id.clone())
                    .or_insert_with(|| topology.components.iter().map(|c| (c.id.as_str().to_owned(), c.kind.clone())).collect());
            }
            let started = Instant::now();
            match self.scorer.score(&event.event, &values, info.as_ref()).await {
                Ok(answer) => {
                    self.metrics.scoring_seconds.with_label_values(&[answer.scorer]).observe(started.elapsed().as_secs_f64());
                    match poison::check_answer(&answer.window, info.as_ref()) {
                        Ok(()) => scored.push((event, answer)),
                        Err((reason, message)) => outcome.failed.push(event.fail(reason, &message)),
                    }
                }
                Err(err) => match score_failure(&err) {
                    Some(reason) => outcome.failed.push(event.fail(reason, &err.to_string())),
                    None => return Err(err.into()),
                },
            }
        }
        outcome.steps.score = lap(&mut step);
        self.upsert(scored, &mut outcome).await?;
        outcome.steps.store = lap(&mut step);
        Ok(outcome)
    }

    async fn decode(&mut self, batch: &[BorrowedMessage<'_>], outcome: &mut Outcome) -> Result<Vec<Event>, InferError> {
        let mut events = Vec::with_capacity(batch.len());
        for message in batch {
            let (partition, offset) = (message.partition(), message.offset());
            let Some(payload) = message.payload().filter(|p| !p.is_empty()) else {
                outcome.failed.push(WindowFailure::new(partition, offset, None, FailReason::Undecodable, "the record has no value"));
                continue;
            };
            match self.decoder.decode(Some(payload)).await {
                Ok(decoded) => match poison::window_event(decoded.value) {
                    Ok(event) => events.push(Event { partition, offset, event, trace: trace_of(message) }),
                    Err((partial, why)) => outcome.failed.push(WindowFailure::new(partition, offset, partial.map(|e| *e), FailReason::WrongShape, &why)),
                },
                Err(err) => match poison::decode_failure(&err) {
                    (FailureKind::DataPermanent, reason) => outcome.failed.push(WindowFailure::new(partition, offset, None, reason, &err.to_string())),
                    (kind, _) => {
                        // The client caches refusals per schema id; a fresh one asks again.
                        self.decoder = AvroDecoder::new(self.registry.clone());
                        return Err(InferError::Registry { kind, message: err.to_string() });
                    }
                },
            }
        }
        Ok(events)
    }

    /// Each event's readings and system, with one query each for the batch; if the database
    /// refuses the batch's query for its content, one window at a time, to find the culprit.
    async fn load<'e>(&self, events: &'e [Event], outcome: &mut Outcome) -> Result<Vec<Loaded<'e>>, InferError> {
        match self.load_all(events).await {
            Ok(loaded) => return Ok(loaded),
            Err(err) if err.failure() != FailureKind::DataPermanent => return Err(ScoreError::from(err).into()),
            Err(_) => {}
        }
        let mut loaded = Vec::with_capacity(events.len());
        for event in events {
            match self.load_all(std::slice::from_ref(event)).await {
                Ok(mut one) => loaded.append(&mut one),
                Err(err) if err.failure() == FailureKind::DataPermanent => {
                    outcome.failed.push(event.fail(FailReason::StorageRejected, &err.reason_text()));
                }
                Err(err) => return Err(ScoreError::from(err).into()),
            }
        }
        Ok(loaded)
    }

    async fn load_all<'e>(&self, events: &'e [Event]) -> Result<Vec<Loaded<'e>>, StoreError> {
        let keys: Vec<_> = events.iter().map(|e| (e.event.system_id.clone(), time(e.event.window_start), time(e.event.window_end))).collect();
        let values = self.store.window_values(&keys).await?;
        let systems: Vec<&str> = events.iter().map(|e| e.event.system_id.as_str()).collect();
        let info = self.store.systems_info(&systems).await?;
        Ok(events.iter().zip(values).map(|(e, v)| (e, v, info.get(&e.event.system_id).cloned())).collect())
    }

    /// Stores the scores (idempotent per window revision); if the database refuses the batch's
    /// rows for their content, one window at a time, and the refused ones are set aside.
    async fn upsert(&self, scored: Vec<(&Event, Scored)>, outcome: &mut Outcome) -> Result<(), InferError> {
        let windows: Vec<_> = scored.iter().map(|(_, s)| &s.window).collect();
        match self.store.upsert_scores(&windows).await {
            Ok(()) => {
                outcome.scored.extend(scored.into_iter().map(|(e, s)| (s, e.trace.clone())));
                return Ok(());
            }
            Err(err) if err.failure() != FailureKind::DataPermanent => return Err(ScoreError::from(err).into()),
            Err(_) => {}
        }
        for (event, scored) in scored {
            match self.store.upsert_scores(&[&scored.window]).await {
                Ok(()) => outcome.scored.push((scored, event.trace.clone())),
                Err(err) if err.failure() == FailureKind::DataPermanent => {
                    outcome.failed.push(event.fail(FailReason::StorageRejected, &err.reason_text()));
                }
                Err(err) => return Err(ScoreError::from(err).into()),
            }
        }
        Ok(())
    }
}

type Loaded<'e> = (&'e Event, HashMap<String, Vec<f64>>, Option<SystemInfo>);

/// System id → component id → the component's kind.
pub type ComponentKinds = HashMap<String, HashMap<String, String>>;

/// The reason a scoring error sets its one window aside, or `None` when it is not the window's
/// fault (the batch is then retried or reported).
fn score_failure(err: &ScoreError) -> Option<FailReason> {
    match err {
        ScoreError::Service(HttpScorerError::Invalid(_)) => Some(FailReason::InvalidScore),
        ScoreError::Service(e) if e.failure() == FailureKind::DataPermanent => Some(FailReason::ScorerRefused),
        ScoreError::Store(e) if e.failure() == FailureKind::DataPermanent => Some(FailReason::StorageRejected),
        _ => None,
    }
}

/// The time since `step`, which moves to now.
pub(super) fn lap(step: &mut Instant) -> Duration {
    let now = Instant::now();
    let took = now - *step;
    *step = now;
    took
}

pub(super) fn to_message(scored: &Scored) -> AnomalyScores {
    AnomalyScores::from(&scored.window)
}
