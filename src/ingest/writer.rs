//! Writing a chunk, and narrowing a chunk the database refuses for its content down to the one
//! message at fault, without breaking exactly-once.
//!
//! A data-permanent failure rolls the chunk back. Each partition is then written as
//! contiguous prefixes from its stored offset (compare-and-set as always), halving the prefix
//! until one message fails alone. That message is set aside as a `storage_rejected` dead letter
//! that moves the offset `k → k+1`, and the rest follows. A crash at any point leaves committed
//! prefixes committed and the rest to be consumed again, and dead letters stay in source-offset
//! order. A message is declared the culprit only if a known-good write of the same shape succeeds
//! (a canary, rolled back): otherwise the database refuses everything and the fault is systemic.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::Message;

use super::pending::{Part, Work};
use crate::domain::RejectKind;
use crate::failure::FailureKind;
use crate::domain::{AcceptedBatch, Row};
use crate::store::ingest::{Chunk, ChunkOutcome, WriteError, write_chunk};
use crate::store::{DeadLetter, OffsetAdvance, StorageEngine, Store, StoreError};
use crate::telemetry::traces::ChunkTrace;
use crate::window::WindowSpec;

/// What a writer needs; cheap to clone into the writer task.
#[derive(Clone)]
pub struct Target {
    pub store: Store,
    pub group: String,
    pub topic: String,
    pub engine: StorageEngine,
    pub windows: WindowSpec,
}

/// One committed transaction: the offsets it moved and what it stored.
pub struct Committed {
    pub offsets: Vec<(i32, i64)>,
    pub outcome: ChunkOutcome,
    /// (reason, partition, offset, message) of each dead letter it wrote.
    pub letters: Vec<(&'static str, i32, i64, String)>,
}

pub enum WriteFailure {
    /// Another consumer moved a partition: what is left is void, re-read the stored offsets.
    Fenced { partition: i32 },
    Store { kind: FailureKind, error: StoreError },
}

/// The result of writing a piece of work: what committed, and what is left if something failed.
pub struct Report {
    pub committed: Vec<Committed>,
    pub left: Work,
    pub failure: Option<WriteFailure>,
    /// True when the chunk had to be narrowed down (a data-permanent failure).
    pub isolated: bool,
    pub took: Duration,
}

/// Writes `work` in one transaction; if the database refuses its content, narrows it down.
pub async fn write(target: Target, mut work: Work) -> Report {
    let started = Instant::now();
    let mut report = Report { committed: Vec::new(), left: Work::default(), failure: None, isolated: false, took: Duration::ZERO };
    let whole: Vec<(&Part, usize)> = work.parts.iter().filter(|p| !p.messages.is_empty()).map(|p| (p, p.messages.len())).collect();
    let chunk = chunk_of(&target.topic, &whole, None);
    match commit(&target, &chunk, Finish::Commit).await {
        Ok(outcome) => {
            report.committed.push(committed(&chunk, outcome));
            work.parts.clear();
        }
        Err(WriteError::Fenced { partition, .. }) => report.failure = Some(WriteFailure::Fenced { partition }),
        Err(WriteError::Store(error)) => match error.failure() {
            FailureKind::DataPermanent => {
                report.isolated = true;
                isolate(&target, &mut work, &mut report).await;
            }
            kind => report.failure = Some(WriteFailure::Store { kind, error }),
        },
    }
    work.parts.retain(|p| !p.messages.is_empty());
    report.left = work;
    report.took = started.elapsed();
    report
}

async fn isolate(target: &Target, work: &mut Work, report: &mut Report) {
    for part in &mut work.parts {
        while !part.messages.is_empty() {
            let mut size = part.messages.len();
            loop {
                let chunk = chunk_of(&target.topic, &[(&*part, size)], None);
                match commit(target, &chunk, Finish::Commit).await {
                    Ok(outcome) => {
                        report.committed.push(committed(&chunk, outcome));
                        advance(part, size);
                        break;
                    }
                    Err(WriteError::Fenced { partition, .. }) => {
                        report.failure = Some(WriteFailure::Fenced { partition });
                        return;
                    }
                    Err(WriteError::Store(error)) if error.failure() == FailureKind::DataPermanent => {
                        if size > 1 {
                            size /= 2;
                            continue;
                        }
                        match set_aside(target, part, &error).await {
                            Ok(done) => {
                                report.committed.push(done);
                                advance(part, 1);
                                break;
                            }
                            Err(failure) => {
                                report.failure = Some(failure);
                                return;
                            }
                        }
                    }
                    Err(WriteError::Store(error)) => {
                        report.failure = Some(WriteFailure::Store { kind: error.failure(), error });
                        return;
                    }
                }
            }
        }
    }
}

/// The first message of `part` failed alone with `error`. Dead-letters it as
/// `storage_rejected`, unless a known-good write of the same shape fails too.
async fn set_aside(target: &Target, part: &Part, error: &StoreError) -> Result<Committed, WriteFailure> {
    let culprit = &part.messages[0];
    let canary = Canary::of(part);
    let probe = chunk_of(&target.topic, &[(part, 1)], Some(&canary));
    match commit(target, &probe, Finish::Rollback).await {
        Ok(_) => {}
        Err(WriteError::Fenced { partition, .. }) => return Err(WriteFailure::Fenced { partition }),
        Err(WriteError::Store(canary_error)) => {
            // The database refuses harmless content too: nothing is this message's fault.
            let kind = match canary_error.failure() {
                FailureKind::DataPermanent => FailureKind::Systemic,
                other => other,
            };
            return Err(WriteFailure::Store { kind, error: canary_error });
        }
    }
    let identity = culprit.batch.as_ref().map(|b| (b.system_id.clone(), b.batch_id.clone()));
    let identity = identity.or_else(|| culprit.letter.as_ref().map(|l| (l.system_id.clone().unwrap_or_default(), l.batch_id.clone().unwrap_or_default())));
    let letter = DeadLetter {
        source_topic: target.topic.clone(),
        source_partition: part.partition,
        source_offset: culprit.offset,
        key: culprit.message.key().map(<[u8]>::to_vec),
        value: culprit.message.payload().map(<[u8]>::to_vec),
        kind: RejectKind::StorageRejected.as_str(),
        message: format!("the database refused this message's content: {}", error.reason_text()),
        system_id: identity.as_ref().map(|i| i.0.clone()).filter(|s| !s.is_empty()),
        batch_id: identity.map(|i| i.1).filter(|s| !s.is_empty()),
    };
    let chunk = Chunk {
        batches: Vec::new(),
        dead_letters: vec![&letter],
        offsets: vec![OffsetAdvance { topic: target.topic.clone(), partition: part.partition, expected: part.expected, next: part.next_after(1) }],
    };
    match commit(target, &chunk, Finish::Commit).await {
        Ok(outcome) => Ok(committed(&chunk, outcome)),
        Err(WriteError::Fenced { partition, .. }) => Err(WriteFailure::Fenced { partition }),
        // The dead letter is built so that it cannot fail; if it does, the deployment is wrong.
        Err(WriteError::Store(error)) => Err(WriteFailure::Store { kind: FailureKind::Systemic, error }),
    }
}

/// Harmless content shaped like the culprit: one reading of the same series at its own time
/// with the value 0, or a plain dead letter at its position. Written and rolled back.
struct Canary {
    batch: Option<AcceptedBatch>,
    letter: Option<DeadLetter>,
}

impl Canary {
    fn of(part: &Part) -> Canary {
        let culprit = &part.messages[0];
        let batch = culprit.batch.as_ref().and_then(|b| {
            let first = b.rows.first()?;
            let row = Row { series_id: first.series_id, time_us: first.time_us, value: 0.0 };
            let sensor = b.sensors.get(&first.series_id).cloned().unwrap_or_default();
            Some(AcceptedBatch {
                system_id: b.system_id.clone(),
                batch_id: format!("manifold-canary-{}", uuid::Uuid::new_v4()),
                rows: vec![row],
                sensors: HashMap::from([(first.series_id, sensor)]),
            })
        });
        let letter = culprit.letter.as_ref().map(|l| DeadLetter {
            key: None,
            value: None,
            message: "canary".into(),
            system_id: None,
            batch_id: None,
            ..l.clone()
        });
        Canary { batch, letter }
    }
}

fn advance(part: &mut Part, n: usize) {
    part.expected = Some(part.next_after(n));
    part.messages.drain(..n);
}

/// The chunk of the first `n` messages of each part (or, with a canary, the canary in place of
/// the one message's content).
fn chunk_of<'a>(topic: &str, parts: &[(&'a Part, usize)], canary: Option<&'a Canary>) -> Chunk<'a> {
    let mut chunk = Chunk::default();
    for (part, n) in parts {
        match canary {
            Some(canary) => {
                chunk.batches.extend(canary.batch.as_ref());
                chunk.dead_letters.extend(canary.letter.as_ref());
            }
            None => {
                for taken in &part.messages[..*n] {
                    chunk.batches.extend(taken.batch.as_ref());
                    chunk.dead_letters.extend(taken.letter.as_ref());
                }
            }
        }
        chunk.offsets.push(OffsetAdvance { topic: topic.to_owned(), partition: part.partition, expected: part.expected, next: part.next_after(*n) });
    }
    chunk
}

fn committed(chunk: &Chunk<'_>, outcome: ChunkOutcome) -> Committed {
    Committed {
        offsets: chunk.offsets.iter().map(|a| (a.partition, a.next)).collect(),
        letters: chunk.dead_letters.iter().map(|l| (l.kind, l.source_partition, l.source_offset, l.message.clone())).collect(),
        outcome,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Finish {
    Commit,
    Rollback,
}

/// One transaction, with its span when traces are exported (a canary, rolled back by design,
/// has none: it must not leave links or announce spans for windows it never wrote).
async fn commit(target: &Target, chunk: &Chunk<'_>, finish: Finish) -> Result<ChunkOutcome, WriteError> {
    let mut trace = match finish {
        Finish::Commit => ChunkTrace::start(chunk.batches.len(), chunk.reading_count(), chunk.dead_letters.len()),
        Finish::Rollback => ChunkTrace::off(),
    };
    let result = transaction(target, chunk, finish, &mut trace).await;
    if let Err(err) = &result {
        trace.failed(&err.to_string());
    }
    result
}

async fn transaction(target: &Target, chunk: &Chunk<'_>, finish: Finish, trace: &mut ChunkTrace) -> Result<ChunkOutcome, WriteError> {
    let mut client = target.store.client().await?;
    let tx = client.transaction().await.map_err(|e| StoreError::query("begin the ingest transaction", e))?;
    let outcome = write_chunk(&tx, &target.group, target.engine, &target.windows, chunk, trace).await?;
    match finish {
        Finish::Commit => {
            let committing = Instant::now();
            tx.commit().await.map_err(|e| StoreError::query("commit the ingest transaction", e))?;
            let (s, ms) = (&outcome.steps, |d: Duration| d.as_secs_f64() * 1000.0);
            tracing::debug!(
                readings = outcome.readings_written,
                claim_ms = ms(s.claim),
                copy_ms = ms(s.copy),
                derived_ms = ms(s.derived),
                windows_ms = ms(s.windows),
                outbox_ms = ms(s.outbox),
                commit_ms = ms(committing.elapsed()),
                "chunk committed"
            );
        }
        Finish::Rollback => tx.rollback().await.map_err(|e| StoreError::query("roll back the canary", e))?,
    }
    Ok(outcome)
}
