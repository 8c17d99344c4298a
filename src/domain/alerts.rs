//! Condition alerts: a pure function of one component's latest-revision levels in window
//! order. Nothing here reads a clock, a table or a topic, so the same scores always give the
//! same alerts with the same ids, whoever derives them and however often.
//!
//! Hysteresis: the component's state changes only after `consecutive` windows in a row agree
//! on a new level; "in a row" means each window starts where the previous one ended (a missing
//! window breaks the streak). The state starts `ok`. Leaving `ok` opens an alert, identified by
//! the system, the component and the first window of the streak that opened it; moving to a
//! worse level escalates it; coming back to `ok` the same way clears it. A better but not ok
//! level (critical → warning) keeps the alert at its worst level: only recovery ends it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::AlertLevel;

/// One component's level in one window (at the window's latest revision).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowLevel {
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub level: AlertLevel,
}

/// One alert's life as the scores tell it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub alert_id: String,
    pub system_id: String,
    pub component_id: String,
    /// The worst level the alert reached (warning or critical).
    pub level: AlertLevel,
    /// The first window of the streak that opened it.
    pub opened_window_start: DateTime<Utc>,
    pub opened_window_end: DateTime<Utc>,
    /// The first window of the streak that cleared it; None while it is open.
    pub cleared_window_start: Option<DateTime<Utc>>,
}

impl Alert {
    pub fn is_open(&self) -> bool {
        self.cleared_window_start.is_none()
    }
}

/// What happened to an alert between two derivations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertEventKind {
    Opened,
    Escalated,
    Cleared,
    /// Its past changed (a late revision or a rescore) but it still exists.
    Revised,
    /// A late revision or a rescore means it never happened.
    Withdrawn,
}

impl AlertEventKind {
    pub const ALL: [AlertEventKind; 5] =
        [AlertEventKind::Opened, AlertEventKind::Escalated, AlertEventKind::Cleared, AlertEventKind::Revised, AlertEventKind::Withdrawn];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertEventKind::Opened => "opened",
            AlertEventKind::Escalated => "escalated",
            AlertEventKind::Cleared => "cleared",
            AlertEventKind::Revised => "revised",
            AlertEventKind::Withdrawn => "withdrawn",
        }
    }

    pub fn parse(text: &str) -> Option<AlertEventKind> {
        AlertEventKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// An alert's new state and what changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertEvent {
    pub kind: AlertEventKind,
    pub alert: Alert,
}

/// The alert's id: the same system, component and opening window always give the same id.
pub fn alert_id(system_id: &str, component_id: &str, opened_window_start: DateTime<Utc>) -> String {
    let mut hash = Sha256::new();
    for part in [system_id.as_bytes(), b"\0", component_id.as_bytes(), b"\0", &opened_window_start.timestamp_micros().to_be_bytes()] {
        hash.update(part);
    }
    hash.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Where one component's derivation stands after its newest window: all it needs to go on
/// with later windows exactly as a derivation over the whole history would. Kept between
/// batches so that scores arriving in window order cost a derivation of the new windows only,
/// not of the past day again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The newest window derived.
    pub last_start: DateTime<Utc>,
    pub last_end: DateTime<Utc>,
    /// The state the hysteresis settled on.
    pub state: AlertLevel,
    /// The current streak: its level, its first window and its length.
    pub streak: (AlertLevel, WindowLevel, u32),
    /// The alert not yet cleared, if any.
    pub open: Option<Alert>,
}

/// A component's alerts, oldest first, from its levels in window order (one per window start;
/// unordered input is sorted, a repeated window keeps its last entry).
pub fn derive(system_id: &str, component_id: &str, levels: &[WindowLevel], consecutive: u32) -> Vec<Alert> {
    derive_from(None, system_id, component_id, levels, consecutive).0
}

/// As [`derive`], going on from `cursor` (the state after the windows derived before; `None`
/// starts fresh): the alerts opened or still open in `levels` (windows at or before the
/// cursor's newest are ignored), and the cursor after them (`None` when nothing was derived).
pub fn derive_from(cursor: Option<Cursor>, system_id: &str, component_id: &str, levels: &[WindowLevel], consecutive: u32) -> (Vec<Alert>, Option<Cursor>) {
    let mut by_start: BTreeMap<DateTime<Utc>, WindowLevel> = BTreeMap::new();
    for level in levels {
        if cursor.as_ref().is_none_or(|c| level.window_start > c.last_start) {
            by_start.insert(level.window_start, *level);
        }
    }
    let needed = consecutive.max(1);
    let mut alerts = Vec::new();
    let (mut open, mut state, mut streak, mut last) = match cursor {
        Some(c) => (c.open, c.state, Some(c.streak), Some((c.last_start, c.last_end))),
        None => (None, AlertLevel::Ok, None, None),
    };
    for window in by_start.values() {
        let contiguous = last.map(|(_, end)| end) == Some(window.window_start);
        last = Some((window.window_start, window.window_end));
        let (level, first, length) = match streak {
            Some((level, first, length)) if contiguous && level == window.level => (level, first, length + 1),
            _ => (window.level, *window, 1),
        };
        streak = Some((level, first, length));
        if length < needed || level == state {
            continue;
        }
        match (&mut open, level) {
            (None, AlertLevel::Ok) => {}
            (None, level) => {
                open = Some(Alert {
                    alert_id: alert_id(system_id, component_id, first.window_start),
                    system_id: system_id.to_owned(),
                    component_id: component_id.to_owned(),
                    level,
                    opened_window_start: first.window_start,
                    opened_window_end: first.window_end,
                    cleared_window_start: None,
                });
            }
            (Some(alert), AlertLevel::Ok) => {
                alert.cleared_window_start = Some(first.window_start);
                alerts.extend(open.take());
            }
            (Some(alert), level) => alert.level = alert.level.max(level),
        }
        state = level;
    }
    alerts.extend(open.clone());
    let cursor = match (last, streak) {
        (Some((last_start, last_end)), Some(streak)) => Some(Cursor { last_start, last_end, state, streak, open }),
        _ => None,
    };
    (alerts, cursor)
}

/// The events that take the alerts `before` to the alerts `after` (both of one system), in a
/// fixed order: by the alert's opening window (then id), then kind in life order.
pub fn changes(before: &[Alert], after: &[Alert]) -> Vec<AlertEvent> {
    let old: BTreeMap<&str, &Alert> = before.iter().map(|a| (a.alert_id.as_str(), a)).collect();
    let new: BTreeMap<&str, &Alert> = after.iter().map(|a| (a.alert_id.as_str(), a)).collect();
    let mut events = Vec::new();
    for (id, alert) in &new {
        let event = |kind| AlertEvent { kind, alert: (*alert).clone() };
        match old.get(id) {
            None => {
                // Opened and cleared since the last derivation: the opening as it was then.
                let opened = Alert { cleared_window_start: None, ..(*alert).clone() };
                events.push(AlertEvent { kind: AlertEventKind::Opened, alert: opened });
                if !alert.is_open() {
                    events.push(event(AlertEventKind::Cleared));
                }
            }
            Some(was) if was == alert => {}
            Some(was) if was.is_open() && !alert.is_open() && was.level == alert.level => events.push(event(AlertEventKind::Cleared)),
            Some(was) if was.is_open() && alert.is_open() && alert.level > was.level => events.push(event(AlertEventKind::Escalated)),
            Some(_) => events.push(event(AlertEventKind::Revised)),
        }
    }
    for (id, alert) in &old {
        if !new.contains_key(id) {
            events.push(AlertEvent { kind: AlertEventKind::Withdrawn, alert: (*alert).clone() });
        }
    }
    events.sort_by(|a, b| (a.alert.opened_window_start, &a.alert.alert_id, a.kind).cmp(&(b.alert.opened_window_start, &b.alert.alert_id, b.kind)));
    events
}

#[cfg(test)]
#[path = "alerts_tests.rs"]
mod tests;
