//! Condition alerts in PostgreSQL: derived from the stored latest-revision scores (the pure
//! function is `domain::alerts`), written with the events that changed them, guarded by a
//! per-system version compare-and-set; and read back for the API.
//!
//! Exactly once: each event is stored keyed by the scored window revision that caused it, in
//! the same transaction as the alert state it produced. The infer worker then publishes the
//! events of the windows it scored (`events_caused_by`) in the Kafka transaction of their
//! scores; if that transaction aborts, the retried batch derives nothing new (the state is
//! already there) but finds the same events by their causes and publishes them then.

mod read;
mod summary;

pub use read::AlertRow;
pub use summary::ComponentSummary;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Store, StoreError, q};
use crate::domain::alerts::{self, Alert, AlertEvent, AlertEventKind, Cursor, WindowLevel};
use crate::domain::AlertLevel;

const HORIZON: &str = include_str!("../sql/alerts_horizon.sql");
const SCORES: &str = include_str!("../sql/alerts_scores.sql");
const CURRENT: &str = include_str!("../sql/alerts_current.sql");
const VERSION: &str = include_str!("../sql/alerts_version.sql");
const VERSION_CAS: &str = include_str!("../sql/alerts_version_cas.sql");
const UPSERT: &str = include_str!("../sql/alerts_upsert.sql");
const EVENT_INSERT: &str = include_str!("../sql/alert_events_insert.sql");
const CAUSED: &str = include_str!("../sql/alert_events_caused.sql");
const CURSORS: &str = include_str!("../sql/alerts_cursors.sql");
const CURSORS_UPSERT: &str = include_str!("../sql/alerts_cursors_upsert.sql");

/// The level of one stored score: (model version, component, class, score) → level.
pub type AlertLevelOf<'a> = dyn Fn(&str, &str, Option<&str>, f64) -> AlertLevel + Send + Sync + 'a;

/// An event as stored and published: what happened, to which alert, caused by which window.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAlertEvent {
    pub event_id: String,
    pub kind: AlertEventKind,
    pub alert: Alert,
    pub status: &'static str,
    pub cause_start: DateTime<Utc>,
    pub cause_revision: i32,
}

fn level_text(level: AlertLevel) -> &'static str {
    match level {
        AlertLevel::Ok => "ok",
        AlertLevel::Warning => "warning",
        AlertLevel::Critical => "critical",
    }
}

fn parse_level(text: &str) -> AlertLevel {
    match text {
        "critical" => AlertLevel::Critical,
        "warning" => AlertLevel::Warning,
        _ => AlertLevel::Ok,
    }
}

fn status_of(kind: AlertEventKind, alert: &Alert) -> &'static str {
    match (kind, alert.is_open()) {
        (AlertEventKind::Withdrawn, _) => "withdrawn",
        (_, true) => "open",
        (_, false) => "cleared",
    }
}

/// Deterministic: the same change of the same alert caused by the same window revision.
fn event_id(event: &AlertEvent, cause_start: DateTime<Utc>, cause_revision: i32) -> String {
    let mut hash = Sha256::new();
    hash.update(event.alert.alert_id.as_bytes());
    hash.update(event.kind.as_str().as_bytes());
    hash.update(cause_start.timestamp_micros().to_be_bytes());
    hash.update(cause_revision.to_be_bytes());
    hash.update(serde_json::to_vec(&event.alert).unwrap_or_default());
    hash.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

fn alert_from_json(value: Value) -> Option<Alert> {
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
    let time = |key: &str| value.get(key).and_then(Value::as_str).and_then(|t| DateTime::parse_from_rfc3339(t).ok()).map(|t| t.with_timezone(&Utc));
    Some(Alert {
        alert_id: text("alert_id")?,
        system_id: text("system_id")?,
        component_id: text("component_id")?,
        level: parse_level(&text("level")?),
        opened_window_start: time("opened_window_start")?,
        opened_window_end: time("opened_window_end")?,
        cleared_window_start: time("cleared_window_start"),
    })
}

/// A derivation's inputs and verdict: the alerts as stored before, as derived now, and the
/// components' cursors after it.
struct Derived {
    before: Vec<Alert>,
    after: Vec<Alert>,
    cursors: Vec<(String, Cursor)>,
}

/// The latest-revision level of each component in each window of a system from `from` on.
async fn levels_since(
    tx: &deadpool_postgres::Transaction<'_>,
    system_id: &str,
    from: DateTime<Utc>,
    level_of: &AlertLevelOf<'_>,
) -> Result<BTreeMap<String, Vec<WindowLevel>>, StoreError> {
    let mut levels: BTreeMap<String, Vec<WindowLevel>> = BTreeMap::new();
    for row in tx.query(SCORES, &[&system_id, &from]).await.map_err(q("read scores for alerts"))? {
        let component: String = row.get(0);
        let (version, class): (String, Option<String>) = (row.get(3), row.get(4));
        let level = level_of(&version, &component, class.as_deref(), f64::from(row.get::<_, f32>(5)));
        levels.entry(component).or_default().push(WindowLevel { window_start: row.get(1), window_end: row.get(2), level });
    }
    Ok(levels)
}

/// Each component's derivation from its cursor (`None`: from scratch) over its levels.
fn derive_all(system_id: &str, levels: &BTreeMap<String, Vec<WindowLevel>>, cursors: &BTreeMap<String, Cursor>, consecutive: u32) -> (Vec<Alert>, Vec<(String, Cursor)>) {
    let (mut after, mut next) = (Vec::new(), Vec::new());
    for (component, levels) in levels {
        let (found, cursor) = alerts::derive_from(cursors.get(component).cloned(), system_id, component, levels, consecutive);
        after.extend(found);
        next.extend(cursor.map(|c| (component.clone(), c)));
    }
    // A component with no new window keeps its open alert as it is.
    after.extend(cursors.iter().filter(|(c, _)| !levels.contains_key(*c)).filter_map(|(_, c)| c.open.clone()));
    (after, next)
}

/// A derivation from scratch of everything since `since` (or the opening of an alert not
/// over by then, so that no alert is cut in two), against the alerts stored since then.
async fn derive_again(
    tx: &deadpool_postgres::Transaction<'_>,
    system_id: &str,
    since: DateTime<Utc>,
    consecutive: u32,
    level_of: &AlertLevelOf<'_>,
) -> Result<Derived, StoreError> {
    let from: DateTime<Utc> =
        tx.query_one(HORIZON, &[&system_id, &since]).await.map_err(q("find the alert horizon"))?.get::<_, Option<DateTime<Utc>>>(0).unwrap_or(since);
    let levels = levels_since(tx, system_id, from, level_of).await?;
    let (after, cursors) = derive_all(system_id, &levels, &BTreeMap::new(), consecutive);
    let before: Vec<Alert> = tx
        .query(CURRENT, &[&system_id, &from])
        .await
        .map_err(q("read current alerts"))?
        .iter()
        .map(|r| Alert {
            alert_id: r.get(0),
            system_id: system_id.to_owned(),
            component_id: r.get(1),
            level: parse_level(r.get(2)),
            opened_window_start: r.get(3),
            opened_window_end: r.get(4),
            cleared_window_start: r.get(5),
        })
        .collect();
    Ok(Derived { before, after, cursors })
}

impl Store {
    /// Derives a system's alerts from its stored latest-revision scores and stores what
    /// changed with the events, caused by `cause` (the system's newest scored window revision of
    /// the batch), and returns them. While scores arrive in window order (every window of the
    /// batch newer than each component's cursor), only the new windows are derived, going on
    /// from the cursors; otherwise (a late revision, a rescore, no cursor yet) everything since
    /// `oldest` minus `lookback` (or the opening of an alert not over by then) is derived again
    /// from scratch. Fails with [`StoreError::Superseded`] when another derivation of the system
    /// committed in between.
    pub async fn derive_alerts(
        &self,
        system_id: &str,
        cause: (DateTime<Utc>, i32),
        oldest: DateTime<Utc>,
        lookback: Duration,
        consecutive: u32,
        level_of: &AlertLevelOf<'_>,
    ) -> Result<Vec<StoredAlertEvent>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(q("begin alert derivation"))?;
        let version: i64 = tx.query_one(VERSION, &[&system_id]).await.map_err(q("read alert version"))?.get(0);
        let mut cursors: BTreeMap<String, Cursor> = BTreeMap::new();
        for row in tx.query(CURSORS, &[&system_id]).await.map_err(q("read alert cursors"))? {
            // A cursor this binary cannot read is only a lost shortcut: derive from scratch.
            match serde_json::from_value::<Cursor>(row.get(1)) {
                Ok(cursor) => cursors.insert(row.get(0), cursor),
                Err(_) => {
                    cursors.clear();
                    break;
                }
            };
        }
        let newest = cursors.values().map(|c| c.last_start).max();
        let in_order = cursors.values().map(|c| c.last_start).min().filter(|_| newest.is_some_and(|newest| oldest > newest));
        let derived = match in_order {
            Some(from) => {
                let levels = levels_since(&tx, system_id, from, level_of).await?;
                let before = cursors.values().filter_map(|c| c.open.clone()).collect();
                let (after, cursors) = derive_all(system_id, &levels, &cursors, consecutive);
                Derived { before, after, cursors }
            }
            None => derive_again(&tx, system_id, oldest - lookback, consecutive, level_of).await?,
        };
        let events = alerts::changes(&derived.before, &derived.after);
        if tx.query_opt(VERSION_CAS, &[&system_id, &version]).await.map_err(q("move the alert version"))?.is_none() {
            return Err(StoreError::Superseded(format!("alerts of {system_id:?}: another derivation committed first")));
        }
        let mut stored = Vec::with_capacity(events.len());
        for event in &events {
            let a = &event.alert;
            let status = status_of(event.kind, a);
            tx.execute(
                UPSERT,
                &[&a.alert_id, &a.system_id, &a.component_id, &level_text(a.level), &status, &a.opened_window_start, &a.opened_window_end, &a.cleared_window_start, &event.kind.as_str()],
            )
            .await
            .map_err(q("store an alert"))?;
            let id = event_id(event, cause.0, cause.1);
            let json = serde_json::to_value(a).unwrap_or_default();
            tx.execute(EVENT_INSERT, &[&id, &a.system_id, &a.alert_id, &event.kind.as_str(), &cause.0, &cause.1, &json])
                .await
                .map_err(q("store an alert event"))?;
            stored.push(StoredAlertEvent { event_id: id, kind: event.kind, alert: a.clone(), status, cause_start: cause.0, cause_revision: cause.1 });
        }
        let (components, values): (Vec<&str>, Vec<Value>) =
            derived.cursors.iter().map(|(c, cursor)| (c.as_str(), serde_json::to_value(cursor).unwrap_or_default())).unzip();
        tx.execute(CURSORS_UPSERT, &[&system_id, &components, &values]).await.map_err(q("store alert cursors"))?;
        tx.commit().await.map_err(q("commit alert derivation"))?;
        Ok(stored)
    }

    /// The stored events caused by these scored window revisions (system, start, revision), in
    /// the order they were made.
    pub async fn events_caused_by(&self, causes: &[(String, DateTime<Utc>, i32)]) -> Result<Vec<StoredAlertEvent>, StoreError> {
        if causes.is_empty() {
            return Ok(Vec::new());
        }
        let systems: Vec<&str> = causes.iter().map(|c| c.0.as_str()).collect();
        let starts: Vec<DateTime<Utc>> = causes.iter().map(|c| c.1).collect();
        let revisions: Vec<i32> = causes.iter().map(|c| c.2).collect();
        let client = self.client().await?;
        let rows = client.query(CAUSED, &[&systems, &starts, &revisions]).await.map_err(q("read alert events"))?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                let kind = AlertEventKind::parse(r.get(1))?;
                let alert = alert_from_json(r.get(2))?;
                let status = status_of(kind, &alert);
                Some(StoredAlertEvent { event_id: r.get(0), kind, alert, status, cause_start: r.get(3), cause_revision: r.get(4) })
            })
            .collect())
    }
}
