//! c) recovery: where the pipeline was at a fault, when it works again, and who holds the relay.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rdkafka::consumer::Consumer;

use super::{Chaos, POLL, Proc};

/// The relay's advisory lock key (`RELAY_LOCK` in `src/relay/mod.rs`) as pg_locks shows it.
const RELAY_LOCK_CLASSID: i64 = 0x6d66_7265;
const RELAY_LOCK_OBJID: i64 = 0x6c61_7931;

/// Where the pipeline was when a fault was injected: the input topic's ends and the window
/// revisions already ready. Caught up means all of it stored and scored.
pub struct Progress {
    at: Instant,
    ends: BTreeMap<i32, i64>,
    windows: (Vec<String>, Vec<DateTime<Utc>>, Vec<i32>),
}

impl Progress {
    /// New input on every partition that had any, and more window revisions ready.
    fn beyond(&self, earlier: &Progress) -> bool {
        let grown = earlier.ends.iter().all(|(partition, end)| *end == 0 || self.ends.get(partition).is_some_and(|now| now > end));
        let revisions = |p: &Progress| p.windows.2.iter().map(|r| *r as i64 + 1).sum::<i64>();
        grown && revisions(self) > revisions(earlier)
    }
}

impl Chaos {
    /// The input topic's ends and the window revisions ready now.
    pub async fn progress(&self) -> Progress {
        let at = Instant::now();
        let topic = self.p.config.topics.batches.name.clone();
        let mut ends = BTreeMap::new();
        for partition in 0..self.p.config.topics.partitions_of(&self.p.config.topics.batches) {
            let (_, high) = self.watermarks.fetch_watermarks(&topic, partition, Duration::from_secs(10)).expect("input topic watermarks");
            ends.insert(partition, high);
        }
        let client = super::super::connect(&self.p.db_url).await;
        let rows =
            client.query("SELECT system_id, window_start, ready_revision FROM windows WHERE ready_revision IS NOT NULL", &[]).await.expect("ready windows");
        let windows = (rows.iter().map(|r| r.get(0)).collect(), rows.iter().map(|r| r.get(1)).collect(), rows.iter().map(|r| r.get(2)).collect());
        Progress { at, ends, windows }
    }

    /// Whether everything in `since` is stored (each partition's stored offset at its end then)
    /// and every window revision ready then is scored.
    async fn caught_up(&self, since: &Progress) -> bool {
        let client = super::super::connect(&self.p.db_url).await;
        let stored = super::super::whole_path::stored_offsets(&self.p).await;
        if since.ends.iter().any(|(partition, end)| *end > 0 && stored.get(partition).copied().unwrap_or(0) < *end) {
            return false;
        }
        let unscored: i64 = client
            .query_one(
                "SELECT count(*) FROM unnest($1::text[], $2::timestamptz[], $3::int4[]) AS t(system_id, window_start, revision)
                 WHERE NOT EXISTS (SELECT 1 FROM anomaly_scores a WHERE (a.system_id, a.window_start, a.revision) = (t.system_id, t.window_start, t.revision))",
                &[&since.windows.0, &since.windows.1, &since.windows.2],
            )
            .await
            .expect("unscored windows")
            .get(0);
        unscored == 0
    }

    /// Waits until the pipeline works again after a fault (`fault`, taken as it was injected)
    /// and records how long that took from the fault; fails past `bound`. Working again means
    /// caught up with a later snapshot holding new input on every partition that had any and a
    /// window readied since the fault: storing and scoring what came after it, not only what
    /// was done before. So the time includes waiting for the stream's next cycle.
    pub async fn recovered(&mut self, fault: &Progress) -> Duration {
        let mut target: Option<Progress> = None;
        loop {
            if target.is_none() {
                let now = self.progress().await;
                target = now.beyond(fault).then_some(now);
            }
            if let Some(target) = &target
                && self.caught_up(target).await
            {
                let took = fault.at.elapsed();
                self.recoveries.push(took);
                return took;
            }
            let took = fault.at.elapsed();
            assert!(
                took < self.bound,
                "{}: not working again {took:.1?} after the fault (bound {:.1?}; new input and a new ready window seen: {}); logs in {}",
                self.scenario,
                self.bound,
                target.is_some(),
                self.logs.display()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits until everything in `progress` is stored and scored, within `bound`.
    pub async fn caught_up_with(&self, progress: &Progress) -> Duration {
        let start = Instant::now();
        while !self.caught_up(progress).await {
            assert!(start.elapsed() < self.bound, "{}: not caught up after {:.1?}; logs in {}", self.scenario, self.bound, self.logs.display());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        start.elapsed()
    }

    /// Which of `procs` holds the relay's advisory lock: the one whose log says it leads, while
    /// the lock is held in this pipeline's database. Waits up to the recovery bound for one.
    pub async fn relay_holder(&self, procs: &[Proc]) -> usize {
        let client = super::super::connect(&self.p.db_url).await;
        let deadline = Instant::now() + self.bound;
        loop {
            let held: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
                       AND classid::int8 = $1 AND objid::int8 = $2",
                    &[&RELAY_LOCK_CLASSID, &RELAY_LOCK_OBJID],
                )
                .await
                .expect("pg_locks")
                .get(0);
            let leading: Vec<usize> = procs.iter().enumerate().filter(|(_, p)| p.log_text().contains("relay leading")).map(|(i, _)| i).collect();
            assert!(leading.len() <= 1, "{}: two relays lead at once: {leading:?}", self.scenario);
            if let (1, [holder]) = (held, leading.as_slice()) {
                return *holder;
            }
            assert!(Instant::now() < deadline, "{}: no relay leads (lock held: {held}); logs in {}", self.scenario, self.logs.display());
            tokio::time::sleep(POLL).await;
        }
    }
}
