//! The messages taken since the last chunk, kept per partition and per message, so a revoked
//! partition's share can be dropped and a chunk the database refuses can be narrowed down to
//! the one message at fault.

use std::collections::BTreeMap;
use std::time::Instant;

use rdkafka::message::OwnedMessage;

use crate::domain::AcceptedBatch;
use crate::store::DeadLetter;

/// One consumed message and what validation made of it. The original message is kept until
/// the chunk commits: if the database refuses the message's content, its bytes are what goes
/// to the dead letters.
pub struct Taken {
    pub offset: i64,
    pub message: OwnedMessage,
    pub batch: Option<AcceptedBatch>,
    pub letter: Option<DeadLetter>,
}

/// One partition's contiguous run of messages, and the stored offset it starts from (the
/// compare-and-set guard; None: never stored).
pub struct Part {
    pub partition: i32,
    pub expected: Option<i64>,
    pub messages: Vec<Taken>,
}

impl Part {
    /// The offset stored once the first `n` messages are committed.
    pub fn next_after(&self, n: usize) -> i64 {
        self.messages[n - 1].offset + 1
    }
}

/// A chunk to write: whole parts, in partition order, with the newest event time of each
/// accepted batch for the end-to-end delay histogram.
#[derive(Default)]
pub struct Work {
    pub parts: Vec<Part>,
    pub event_times: Vec<i64>,
}

impl Work {
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(|p| p.messages.is_empty())
    }
}

#[derive(Default)]
pub struct Pending {
    shares: BTreeMap<i32, Vec<Taken>>,
    readings: usize,
    opened_at: Option<Instant>,
    newest_event_us: Vec<i64>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.shares.is_empty()
    }

    pub fn readings(&self) -> usize {
        self.readings
    }

    pub fn opened_at(&self) -> Option<Instant> {
        self.opened_at
    }

    /// Adds a message with its verdict: an accepted batch, a dead letter, or both (a partly
    /// accepted batch).
    pub fn take(&mut self, partition: i32, message: OwnedMessage, batch: Option<AcceptedBatch>, letter: Option<DeadLetter>) {
        use rdkafka::Message;
        self.opened_at.get_or_insert_with(Instant::now);
        if let Some(batch) = &batch {
            self.readings += batch.rows.len();
            if let Some(newest) = batch.rows.iter().map(|r| r.time_us).max() {
                self.newest_event_us.push(newest);
            }
        }
        let offset = message.offset();
        self.shares.entry(partition).or_default().push(Taken { offset, message, batch, letter });
    }

    /// Drops a revoked partition's share: its messages will be consumed again by its new owner.
    pub fn abandon(&mut self, partition: i32) {
        if let Some(share) = self.shares.remove(&partition) {
            self.readings -= share.iter().filter_map(|t| t.batch.as_ref()).map(|b| b.rows.len()).sum::<usize>();
        }
        if self.shares.is_empty() {
            *self = Pending::default();
        }
    }

    /// Empties the pending state into the work to write, given each partition's stored offset.
    pub fn take_work(&mut self, stored: impl Fn(i32) -> Option<i64>) -> Work {
        let taken = std::mem::take(self);
        let parts = taken
            .shares
            .into_iter()
            .map(|(partition, messages)| Part { partition, expected: stored(partition), messages })
            .collect();
        Work { parts, event_times: taken.newest_event_us }
    }
}
