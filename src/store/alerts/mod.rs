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

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::{Store, StoreError, q};
use crate::domain::alerts::{self, Alert, AlertEvent, AlertEventKind, Cursor, WindowLevel};
use crate::domain::AlertLevel;

const HORIZON: &str = include_str!("../sql/alerts_horizon.sql");
const CURRENT: &str = include_str!("../sql/alerts_current.sql");
const VERSIONS: &str = include_str!("../sql/alerts_versions.sql");
const VERSIONS_CAS: &str = include_str!("../sql/alerts_versions_cas.sql");
const SCORES_SINCE: &str = include_str!("../sql/alerts_scores_since.sql");
const UPSERT: &str = include_str!("../sql/alerts_upsert.sql");
const EVENT_INSERT: &str = include_str!("../sql/alert_events_insert.sql");
const CAUSED: &str = include_str!("../sql/alert_events_caused.sql");
const CURSORS: &str = include_str!("../sql/alerts_cursors.sql");
const CURSORS_UPSERT: &str = include_str!("../sql/alerts_cursors_upsert.sql");

/// The level of one stored score: (system, model version, component, class, score) → level.
pub type AlertLevelOf<'a> = dyn Fn(&str, &str, &str, Option<&str>, f64) -> AlertLevel + Send + Sync + 'a;

/// One system's part of a batch's alert derivation.
#[derive(Debug, Clone, Copy)]
pub struct AlertDerivation<'a> {
    pub system_id: &'a str,
    /// The system's newest scored window revision of the batch: what its events are caused by.
    pub cause: (DateTime<Utc>, i32),
    /// The system's oldest window scored in the batch.
    pub oldest: DateTime<Utc>,
}

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

/// The levels since each system's own start (`since`), for many systems in one query.
async fn levels_since_each(
    tx: &deadpool_postgres::Transaction<'_>,
    since: &[(&str, DateTime<Utc>)],
    level_of: &AlertLevelOf<'_>,
) -> Result<HashMap<String, BTreeMap<String, Vec<WindowLevel>>>, StoreError> {
    let mut levels: HashMap<String, BTreeMap<String, Vec<WindowLevel>>> = HashMap::new();
    if since.is_empty() {
        return Ok(levels);
    }
    let (systems, starts): (Vec<&str>, Vec<DateTime<Utc>>) = since.iter().copied().unzip();
    for row in tx.query(SCORES_SINCE, &[&systems, &starts]).await.map_err(q("read scores for alerts"))? {
        let (system, component): (String, String) = (row.get(0), row.get(1));
        let (version, class): (String, Option<String>) = (row.get(4), row.get(5));
        let level = level_of(&system, &version, &component, class.as_deref(), f64::from(row.get::<_, f32>(6)));
        let window = WindowLevel { window_start: row.get(2), window_end: row.get(3), level };
        levels.entry(system).or_default().entry(component).or_default().push(window);
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
    let levels = levels_since_each(tx, &[(system_id, from)], level_of).await?.remove(system_id).unwrap_or_default();
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

/// Stores the alerts an event changed and the events, keyed by the window revision that caused
/// them (a retry stores nothing twice).
async fn store_events(tx: &deadpool_postgres::Transaction<'_>, d: &AlertDerivation<'_>, events: &[AlertEvent]) -> Result<(), StoreError> {
    for event in events {
        let a = &event.alert;
        let status = status_of(event.kind, a);
        tx.execute(
            UPSERT,
            &[&a.alert_id, &a.system_id, &a.component_id, &level_text(a.level), &status, &a.opened_window_start, &a.opened_window_end, &a.cleared_window_start, &event.kind.as_str()],
        )
        .await
        .map_err(q("store an alert"))?;
        let id = event_id(event, d.cause.0, d.cause.1);
        let json = serde_json::to_value(a).unwrap_or_default();
        tx.execute(EVENT_INSERT, &[&id, &a.system_id, &a.alert_id, &event.kind.as_str(), &d.cause.0, &d.cause.1, &json])
            .await
            .map_err(q("store an alert event"))?;
    }
    Ok(())
}

impl Store {
    /// Derives the alerts of a batch's systems from their stored latest-revision scores, in
    /// one transaction, and stores what changed with the events (caused by each system's
    /// `cause`). While a system's scores arrive in window order (every window of the batch
    /// newer than each of its components' cursors), only its new windows are derived, going on
    /// from the cursors; otherwise (a late revision, a rescore, no cursor yet) everything since
    /// `oldest` minus `lookback` (or the opening of an alert not over by then) is derived again
    /// from scratch. Fails with [`StoreError::Superseded`] when another derivation of one of the
    /// systems committed in between; nothing of the batch is then stored.
    pub async fn derive_alerts(
        &self,
        systems: &[AlertDerivation<'_>],
        lookback: Duration,
        consecutive: u32,
        level_of: &AlertLevelOf<'_>,
    ) -> Result<(), StoreError> {
        if systems.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = systems.iter().map(|d| d.system_id).collect();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(q("begin alert derivation"))?;
        let versions: HashMap<String, i64> =
            tx.query(VERSIONS, &[&ids]).await.map_err(q("read alert versions"))?.iter().map(|r| (r.get(0), r.get(1))).collect();
        let mut cursors: HashMap<String, BTreeMap<String, Cursor>> = HashMap::new();
        let mut unreadable: Vec<String> = Vec::new();
        for row in tx.query(CURSORS, &[&ids]).await.map_err(q("read alert cursors"))? {
            let (system, component): (String, String) = (row.get(0), row.get(1));
            // A cursor this binary cannot read is only a lost shortcut: derive from scratch.
            match serde_json::from_value::<Cursor>(row.get(2)) {
                Ok(cursor) => {
                    cursors.entry(system).or_default().insert(component, cursor);
                }
                Err(_) => unreadable.push(system),
            }
        }
        unreadable.iter().for_each(|system| drop(cursors.remove(system)));
        let resumable = |d: &AlertDerivation<'_>| {
            let of = cursors.get(d.system_id)?;
            let newest = of.values().map(|c| c.last_start).max()?;
            (d.oldest > newest).then(|| of.values().map(|c| c.last_start).min()).flatten()
        };
        let since: Vec<(&str, DateTime<Utc>)> = systems.iter().filter_map(|d| resumable(d).map(|from| (d.system_id, from))).collect();
        let mut levels = levels_since_each(&tx, &since, level_of).await?;
        let mut derived: Vec<(&AlertDerivation<'_>, Derived)> = Vec::with_capacity(systems.len());
        for d in systems {
            let entry = if since.iter().any(|(s, _)| *s == d.system_id) {
                let of = cursors.remove(d.system_id).unwrap_or_default();
                let levels = levels.remove(d.system_id).unwrap_or_default();
                let before = of.values().filter_map(|c| c.open.clone()).collect();
                let (after, cursors) = derive_all(d.system_id, &levels, &of, consecutive);
                Derived { before, after, cursors }
            } else {
                derive_again(&tx, d.system_id, d.oldest - lookback, consecutive, level_of).await?
            };
            derived.push((d, entry));
        }
        let read: Vec<i64> = ids.iter().map(|id| versions.get(*id).copied().unwrap_or(0)).collect();
        let moved = tx.query(VERSIONS_CAS, &[&ids, &read]).await.map_err(q("move the alert versions"))?.len();
        if moved != ids.len() {
            return Err(StoreError::Superseded(format!("alerts of {} of {} systems: another derivation committed first", ids.len() - moved, ids.len())));
        }
        let (mut cursor_systems, mut cursor_components, mut cursor_values) = (Vec::new(), Vec::new(), Vec::new());
        for (d, derived) in &derived {
            store_events(&tx, d, &alerts::changes(&derived.before, &derived.after)).await?;
            for (component, cursor) in &derived.cursors {
                cursor_systems.push(d.system_id);
                cursor_components.push(component.as_str());
                cursor_values.push(serde_json::to_value(cursor).unwrap_or_default());
            }
        }
        tx.execute(CURSORS_UPSERT, &[&cursor_systems, &cursor_components, &cursor_values]).await.map_err(q("store alert cursors"))?;
        tx.commit().await.map_err(q("commit alert derivation"))?;
        Ok(())
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
