//! The chunk being assembled, kept per partition so a revoked partition's share can be dropped.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::store::ingest::{AcceptedBatch, Chunk, DeadLetter, OffsetAdvance};

#[derive(Default)]
struct PartitionShare {
    batches: Vec<AcceptedBatch>,
    dead_letters: Vec<DeadLetter>,
    /// Offset of the last message taken from this partition.
    last_offset: i64,
}

#[derive(Default)]
pub struct Pending {
    shares: BTreeMap<i32, PartitionShare>,
    readings: usize,
    opened_at: Option<Instant>,
    /// Newest event time of each accepted batch, for the end-to-end delay histogram.
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

    fn share(&mut self, partition: i32, offset: i64) -> &mut PartitionShare {
        self.opened_at.get_or_insert_with(Instant::now);
        let share = self.shares.entry(partition).or_default();
        share.last_offset = offset;
        share
    }

    pub fn accept(&mut self, partition: i32, offset: i64, batch: AcceptedBatch) {
        self.readings += batch.rows.len();
        if let Some(newest) = batch.rows.iter().map(|r| r.time_us).max() {
            self.newest_event_us.push(newest);
        }
        self.share(partition, offset).batches.push(batch);
    }

    pub fn dead_letter(&mut self, partition: i32, offset: i64, letter: DeadLetter) {
        self.share(partition, offset).dead_letters.push(letter);
    }

    /// Drops a revoked partition's share: its messages will be consumed again by its new owner.
    pub fn abandon(&mut self, partition: i32) {
        if let Some(share) = self.shares.remove(&partition) {
            self.readings -= share.batches.iter().map(|b| b.rows.len()).sum::<usize>();
        }
        if self.shares.is_empty() {
            *self = Pending::default();
        }
    }

    /// Empties the pending state into the chunk to write, given each partition's stored offset
    /// (the compare-and-set guard), with the newest event time of each batch.
    pub fn take_chunk(&mut self, topic: &str, stored: impl Fn(i32) -> Option<i64>) -> (Chunk, Vec<i64>) {
        let taken = std::mem::take(self);
        let mut chunk = Chunk::default();
        for (partition, share) in taken.shares {
            chunk.batches.extend(share.batches);
            chunk.dead_letters.extend(share.dead_letters);
            chunk.offsets.push(OffsetAdvance {
                topic: topic.to_owned(),
                partition,
                expected: stored(partition),
                next: share.last_offset + 1,
            });
        }
        (chunk, taken.newest_event_us)
    }
}
