//! The checks every scenario ends with: a) readings stored exactly once, b) scores published
//! exactly once.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use manifold::sim::SimulateReport;

use super::{Chaos, TRANSACTION_TIMEOUT};

impl Chaos {
    pub(super) async fn readings_exactly_once(&self, report: &SimulateReport) -> Readings {
        let client = super::super::connect(&self.p.db_url).await;
        let stored = manifold::sim::checksum::stored(&client).await.expect("stored checksums");
        let duplicates: i64 = client
            .query_one("SELECT count(*) FROM (SELECT 1 FROM readings GROUP BY series_id, time HAVING count(*) > 1) d", &[])
            .await
            .expect("duplicates")
            .get(0);
        let dead: i64 = client.query_one("SELECT count(*) FROM dead_letters", &[]).await.expect("dead letters").get(0);
        let sent: BTreeMap<(String, String), (u64, String)> =
            report.series.iter().map(|s| ((s.system_id.clone(), s.sensor_id.clone()), (s.readings, s.checksum.clone()))).collect();
        let kept: BTreeMap<(String, String), (u64, String)> =
            stored.iter().map(|s| ((s.system_id.clone(), s.sensor_id.clone()), (s.readings, s.checksum.clone()))).collect();
        let lost = sent.iter().map(|(k, (n, _))| n.saturating_sub(kept.get(k).map_or(0, |(m, _)| *m))).sum();
        let differ: Vec<String> = sent
            .keys()
            .chain(kept.keys())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .filter(|k| sent.get(*k) != kept.get(*k))
            .map(|k| format!("{k:?}: sent {:?}, stored {:?}", sent.get(k), kept.get(k)))
            .collect();
        Readings {
            scenario: self.scenario,
            expected: report.readings,
            stored: stored.iter().map(|s| s.readings).sum(),
            duplicates,
            lost,
            differ,
            dead,
            bad: report.bad,
        }
    }

    /// Every (system, window, revision) ready in `windows` against the scores topic, read
    /// committed: each once, with distinct components, and nothing else.
    pub(super) async fn scores_exactly_once(&self) -> Scores {
        let client = super::super::connect(&self.p.db_url).await;
        let rows = client.query("SELECT system_id, window_start, ready_revision FROM windows WHERE ready_revision IS NOT NULL", &[]).await.expect("windows");
        let ready: BTreeSet<(String, i64, i32)> = rows
            .iter()
            .flat_map(|r| {
                let (system, start): (String, DateTime<Utc>) = (r.get(0), r.get(1));
                (0..=r.get::<_, i32>(2)).map(move |revision| (system.clone(), start.timestamp_micros(), revision))
            })
            .collect();
        // A replica killed for good may leave a transaction open until the broker aborts it.
        let messages = super::super::scores::read(&self.p, ready.len(), self.bound + TRANSACTION_TIMEOUT).await;
        let mut seen: BTreeMap<(String, i64, i32), usize> = BTreeMap::new();
        let mut components_repeated = Vec::new();
        for m in &messages {
            *seen.entry((m.system_id.clone(), m.window_start, m.revision)).or_default() += 1;
            let components: BTreeSet<&str> = m.components.iter().map(|(c, _)| c.as_str()).collect();
            if components.is_empty() || components.len() != m.components.len() {
                components_repeated.push(format!("{m:?}"));
            }
        }
        let show = |k: &(String, i64, i32)| format!("{} {} rev {}", k.0, k.1, k.2);
        Scores {
            scenario: self.scenario,
            ready: ready.len(),
            messages: messages.len(),
            twice: seen.iter().filter(|(_, n)| **n > 1).map(|(k, n)| format!("{} ×{n}", show(k))).collect(),
            missing: ready.iter().filter(|k| !seen.contains_key(*k)).map(show).collect(),
            unexpected: seen.keys().filter(|k| !ready.contains(*k)).map(show).collect(),
            components_repeated,
        }
    }
}

pub(super) struct Scores {
    scenario: &'static str,
    pub ready: usize,
    pub messages: usize,
    pub twice: Vec<String>,
    pub missing: Vec<String>,
    unexpected: Vec<String>,
    components_repeated: Vec<String>,
}

impl Scores {
    pub fn assert(&self) {
        let s = self.scenario;
        assert!(self.twice.is_empty(), "{s}: score messages published twice: {:?}", self.twice);
        assert!(self.missing.is_empty(), "{s}: {} ready window revisions not published: {:?}", self.missing.len(), self.missing);
        assert!(self.unexpected.is_empty(), "{s}: scores for windows not ready: {:?}", self.unexpected);
        assert!(self.components_repeated.is_empty(), "{s}: messages without components or with one twice: {:?}", self.components_repeated);
        assert!(self.ready > 0, "{s}: no window became ready");
    }
}

pub(super) struct Readings {
    scenario: &'static str,
    expected: u64,
    stored: u64,
    pub duplicates: i64,
    pub lost: u64,
    differ: Vec<String>,
    dead: i64,
    bad: u64,
}

impl Readings {
    pub fn assert(&self) {
        let s = self.scenario;
        assert_eq!(self.duplicates, 0, "{s}: (series, time) stored more than once");
        assert_eq!(self.lost, 0, "{s}: readings lost");
        assert_eq!(self.stored, self.expected, "{s}: readings stored");
        assert!(self.differ.is_empty(), "{s}: per-series count or checksum differs: {:#?}", self.differ);
        assert_eq!(self.dead, self.bad as i64, "{s}: each bad message dead-lettered once");
    }
}
