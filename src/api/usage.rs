//! Usage counted in memory and added to `usage_daily` in batches: no database write per
//! request. Readings per day are also what the daily quota is checked against.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use crate::store::{Store, StoreError, UsageDelta};

#[derive(Default)]
pub struct UsageTracker {
    inner: Mutex<Counters>,
}

#[derive(Default)]
struct Counters {
    /// Not yet flushed: (user, day) → (requests, readings).
    pending: HashMap<(Uuid, NaiveDate), (i64, i64)>,
    keys_used: HashMap<Uuid, DateTime<Utc>>,
    /// Readings accepted today per user: the stored total when first asked, plus this
    /// process's since then.
    readings_today: HashMap<Uuid, (NaiveDate, i64)>,
}

impl UsageTracker {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn record_request(&self, user_id: Uuid, key_id: Uuid) {
        let now = Utc::now();
        let mut c = self.lock();
        c.pending.entry((user_id, now.date_naive())).or_default().0 += 1;
        c.keys_used.insert(key_id, now);
    }

    pub fn record_readings(&self, user_id: Uuid, readings: i64) {
        let today = Utc::now().date_naive();
        let mut c = self.lock();
        c.pending.entry((user_id, today)).or_default().1 += readings;
        if let Some((day, total)) = c.readings_today.get_mut(&user_id)
            && *day == today
        {
            *total += readings;
        }
    }

    /// Readings the user has had accepted today (all instances' flushed counts plus ours).
    pub async fn readings_today(&self, store: &Store, user_id: Uuid) -> Result<i64, StoreError> {
        let today = Utc::now().date_naive();
        if let Some((day, total)) = self.lock().readings_today.get(&user_id)
            && *day == today
        {
            return Ok(*total);
        }
        let stored: i64 = store.usage(user_id, today, today).await?.iter().map(|d| d.readings).sum();
        let mut c = self.lock();
        let unflushed = c.pending.get(&(user_id, today)).map_or(0, |p| p.1);
        c.readings_today.insert(user_id, (today, stored + unflushed));
        Ok(stored + unflushed)
    }

    /// Writes what was counted since the last flush; on failure the counts are kept for the next.
    pub async fn flush(&self, store: &Store) -> Result<(), StoreError> {
        let (pending, keys) = {
            let mut c = self.lock();
            let today = Utc::now().date_naive();
            c.readings_today.retain(|_, (day, _)| *day == today);
            (std::mem::take(&mut c.pending), std::mem::take(&mut c.keys_used))
        };
        let deltas: Vec<UsageDelta> = pending.iter().map(|(&(user, day), &(req, rd))| (user, day, req, rd)).collect();
        let keys_vec: Vec<(Uuid, DateTime<Utc>)> = keys.iter().map(|(k, t)| (*k, *t)).collect();
        let result = match store.add_usage(&deltas).await {
            Ok(()) => store.touch_keys(&keys_vec).await,
            Err(err) => {
                let mut c = self.lock();
                for (key, (req, rd)) in pending {
                    let entry = c.pending.entry(key).or_default();
                    entry.0 += req;
                    entry.1 += rd;
                }
                Err(err)
            }
        };
        if result.is_err() {
            let mut c = self.lock();
            for (key, at) in keys {
                c.keys_used.entry(key).or_insert(at);
            }
        }
        result
    }
}
