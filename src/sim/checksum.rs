//! What a checker needs to prove that every reading the simulator sent was stored exactly once:
//! per series (system, sensor), the count of readings and an order-independent checksum, computed
//! here over what was sent and by `stored_checksums.sql` over `readings`.
//!
//! A reading's hash is the first 8 bytes, read big-endian, of SHA-256 over its event time in
//! microseconds (8 bytes, big-endian, signed) followed by the IEEE 754 bits of its value (8 bytes,
//! big-endian). A series' checksum is the sum of its readings' hashes modulo 2^64, so the order
//! in which readings arrive does not matter, while a lost, repeated or altered reading (time or
//! value, to the bit) changes it. PostgreSQL computes the same with `int8send`, `float8send` and
//! `sha256` (PostgreSQL 11+), summing in `numeric` since its `int8` arithmetic does not wrap.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::RawBatch;

/// One series' figures, as `manifold simulate --checksums` prints them and as the database
/// holds them. The checksum is 16 hex digits, so JSON tools without 64-bit integers keep it whole.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SeriesChecksum {
    pub system_id: String,
    pub sensor_id: String,
    pub readings: u64,
    pub checksum: String,
}

/// The hash of one reading (see the module's documentation).
pub fn reading_hash(time_us: i64, value: f64) -> u64 {
    let mut sha = Sha256::new();
    sha.update(time_us.to_be_bytes());
    sha.update(value.to_bits().to_be_bytes());
    let digest = sha.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// Accumulates count and checksum per (system, sensor).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Checksums {
    series: BTreeMap<(String, String), (u64, u64)>,
}

impl Checksums {
    pub fn add(&mut self, system_id: &str, sensor_id: &str, time_us: i64, value: f64) {
        let entry = self.series.entry((system_id.to_owned(), sensor_id.to_owned())).or_default();
        entry.0 += 1;
        entry.1 = entry.1.wrapping_add(reading_hash(time_us, value));
    }

    /// Every reading of `batch`, at the times ingest gives them: `times_us` when listed, else
    /// `start + i × interval_us`.
    pub fn add_batch(&mut self, batch: &RawBatch) {
        for series in &batch.series {
            for (i, value) in series.values.iter().enumerate() {
                let time_us = series.times_us.get(i).copied().unwrap_or(series.start + i as i64 * series.interval_us);
                self.add(&batch.system_id, &series.sensor_id, time_us, *value);
            }
        }
    }

    pub fn readings(&self) -> u64 {
        self.series.values().map(|(n, _)| n).sum()
    }

    /// Ordered by system, then sensor.
    pub fn series(&self) -> Vec<SeriesChecksum> {
        self.series
            .iter()
            .map(|((system_id, sensor_id), (readings, sum))| SeriesChecksum {
                system_id: system_id.clone(),
                sensor_id: sensor_id.clone(),
                readings: *readings,
                checksum: format!("{sum:016x}"),
            })
            .collect()
    }
}

/// The same figures over every reading stored in the database `client` is connected to.
pub async fn stored(client: &tokio_postgres::Client) -> Result<Vec<SeriesChecksum>, tokio_postgres::Error> {
    let rows = client.query(include_str!("stored_checksums.sql"), &[]).await?;
    let mut series: Vec<SeriesChecksum> = rows
        .iter()
        .map(|r| {
            let sum: String = r.get(3);
            // The SQL reduces the sum to [0, 2^64): a value outside would be a bug there.
            let sum: u64 = sum.parse().unwrap_or(u64::MAX);
            SeriesChecksum { system_id: r.get(0), sensor_id: r.get(1), readings: r.get::<_, i64>(2) as u64, checksum: format!("{sum:016x}") }
        })
        .collect();
    // Sorted here, not in SQL, where the database's collation may order ids differently.
    series.sort();
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::RawSeries;

    #[test]
    fn the_checksum_ignores_order_and_sees_a_repeat_a_loss_and_a_changed_bit() {
        let readings = [(1_000_000, 1.5), (2_000_000, 2.5), (3_000_000, -0.0)];
        let sum = |list: &[(i64, f64)]| {
            let mut c = Checksums::default();
            list.iter().for_each(|(t, v)| c.add("s", "PS1", *t, *v));
            c.series()
        };
        let reference = sum(&readings);
        assert_eq!(sum(&[readings[2], readings[0], readings[1]]), reference);
        assert_ne!(sum(&[readings[0], readings[1], readings[2], readings[1]])[0].checksum, reference[0].checksum);
        assert_ne!(sum(&readings[..2])[0].checksum, reference[0].checksum);
        assert_ne!(sum(&[readings[0], readings[1], (3_000_000, 0.0)])[0].checksum, reference[0].checksum);
        assert_ne!(sum(&[readings[0], readings[1], (3_000_001, -0.0)])[0].checksum, reference[0].checksum);
    }

    #[test]
    fn a_batch_counts_at_the_times_ingest_stores() {
        let regular = RawSeries { sensor_id: "PS1".into(), start: 10, interval_us: 5, times_us: vec![], values: vec![1.0, 2.0] };
        let listed = RawSeries { sensor_id: "TS1".into(), start: 0, interval_us: 0, times_us: vec![7, 3], values: vec![4.0, 5.0] };
        let mut from_batch = Checksums::default();
        from_batch.add_batch(&RawBatch { batch_id: None, system_id: "s".into(), produced_at: None, series: vec![regular, listed] });
        let mut by_hand = Checksums::default();
        [("PS1", 10, 1.0), ("PS1", 15, 2.0), ("TS1", 7, 4.0), ("TS1", 3, 5.0)].into_iter().for_each(|(s, t, v)| by_hand.add("s", s, t, v));
        assert_eq!(from_batch, by_hand);
        assert_eq!(from_batch.readings(), 4);
    }

    /// The SQL twin's hash of one reading, computed by PostgreSQL in `tests/chaos.rs` too.
    #[test]
    fn a_known_reading_hashes_as_postgresql_computes_it() {
        // SELECT ('x' || encode(substring(sha256(int8send(1700000000000000) || float8send(1.5::float8)) FROM 1 FOR 8), 'hex'))::bit(64)::int8
        assert_eq!(reading_hash(1_700_000_000_000_000, 1.5) as i64, 2_531_645_996_134_223_526);
    }
}
