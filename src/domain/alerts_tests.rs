use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use AlertLevel::{Critical as C, Ok as O, Warning as W};

fn at(index: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 10, 0, 0).unwrap() + Duration::seconds(60 * index)
}

/// Windows 0, 1, 2, … with these levels; `None` is a missing window.
fn series(levels: &[Option<AlertLevel>]) -> Vec<WindowLevel> {
    (0..)
        .zip(levels)
        .filter_map(|(i, level)| level.map(|level| WindowLevel { window_start: at(i), window_end: at(i + 1), level }))
        .collect()
}

fn all(levels: &[AlertLevel]) -> Vec<Option<AlertLevel>> {
    levels.iter().copied().map(Some).collect()
}

#[test]
fn flapping_scores_open_nothing() {
    let levels = all(&[O, W, O, W, C, W, O, C, O, W, W, O]);
    assert!(derive("s", "valve", &series(&levels), 3).is_empty());
}

#[test]
fn n_agreeing_windows_open_one_alert_at_the_first_of_them_and_recovery_clears_it() {
    let levels = all(&[O, W, W, W, W, O, O, O, O]);
    let alerts = derive("s", "valve", &series(&levels), 3);
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0];
    assert_eq!((alert.level, alert.opened_window_start, alert.opened_window_end), (W, at(1), at(2)));
    assert_eq!(alert.cleared_window_start, Some(at(5)));
    assert_eq!(alert.alert_id, alert_id("s", "valve", at(1)));
    // Two ok windows are not yet a recovery.
    let alerts = derive("s", "valve", &series(&levels[..7]), 3);
    assert!(alerts[0].is_open());
}

#[test]
fn a_worse_streak_escalates_and_a_better_one_keeps_the_worst_level() {
    let levels = all(&[W, W, C, C, W, W]);
    let alerts = derive("s", "valve", &series(&levels), 2);
    assert_eq!(alerts.len(), 1);
    assert_eq!((alerts[0].level, alerts[0].opened_window_start), (C, at(0)));
    assert!(alerts[0].is_open());
}

#[test]
fn a_missing_window_breaks_the_streak() {
    let gap = [Some(W), Some(W), None, Some(W), Some(O)];
    assert!(derive("s", "valve", &series(&gap), 3).is_empty());
    let whole = [Some(W), Some(W), Some(W), Some(O)];
    assert_eq!(derive("s", "valve", &series(&whole), 3).len(), 1);
}

#[test]
fn ids_are_deterministic_and_do_not_depend_on_input_order() {
    let mut levels = series(&all(&[O, C, C, O, O, W, W, W]));
    let first = derive("s", "cooler", &levels, 2);
    levels.reverse();
    assert_eq!(derive("s", "cooler", &levels, 2), first);
    assert_eq!(first.len(), 2);
    assert_ne!(first[0].alert_id, first[1].alert_id);
    assert_ne!(alert_id("s", "cooler", at(1)), alert_id("s", "valve", at(1)));
    assert_ne!(alert_id("s", "cooler", at(1)), alert_id("t", "cooler", at(1)));
    assert_eq!(first[0].alert_id.len(), 32);
}

#[test]
fn events_follow_an_alert_from_opening_to_clearing() {
    let levels = all(&[W, W, C, C, O, O]);
    let mut before = Vec::new();
    let mut kinds = Vec::new();
    for n in 1..=levels.len() {
        let after = derive("s", "valve", &series(&levels[..n]), 2);
        kinds.extend(changes(&before, &after).into_iter().map(|e| e.kind));
        before = after;
    }
    assert_eq!(kinds, [AlertEventKind::Opened, AlertEventKind::Escalated, AlertEventKind::Cleared]);
    // Derived again from the same scores: nothing happened.
    assert!(changes(&before, &derive("s", "valve", &series(&levels), 2)).is_empty());
}

#[test]
fn a_late_revision_withdraws_or_revises_an_alert_deterministically() {
    let before = derive("s", "valve", &series(&all(&[W, W, W, O])), 2);
    // Window 1 was re-scored ok: the streak that opened the alert never was.
    let withdrawn = derive("s", "valve", &series(&all(&[W, O, W, O])), 2);
    let events = changes(&before, &withdrawn);
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].kind, &events[0].alert), (AlertEventKind::Withdrawn, &before[0]));
    // Window 2 was re-scored critical: the same alert (same id), at another level.
    let revised = derive("s", "valve", &series(&all(&[W, W, C, C])), 2);
    let events = changes(&before, &revised);
    assert_eq!(events.iter().map(|e| e.kind).collect::<Vec<_>>(), [AlertEventKind::Escalated]);
    assert_eq!(events[0].alert.alert_id, before[0].alert_id);
    // Window 0 was re-scored ok: the alert opens one window later, under another id.
    let moved = derive("s", "valve", &series(&all(&[O, W, W, O])), 2);
    let mut kinds: Vec<_> = changes(&before, &moved).into_iter().map(|e| e.kind).collect();
    kinds.sort();
    assert_eq!(kinds, [AlertEventKind::Opened, AlertEventKind::Withdrawn]);
    // A cleared alert whose clearing is revised away is open again: revised.
    let cleared = derive("s", "valve", &series(&all(&[W, W, O, O])), 2);
    let reopened = derive("s", "valve", &series(&all(&[W, W, O, W])), 2);
    assert_eq!(changes(&cleared, &reopened).iter().map(|e| e.kind).collect::<Vec<_>>(), [AlertEventKind::Revised]);
    // Deterministic: the same revision gives the same events.
    assert_eq!(changes(&before, &withdrawn), changes(&before, &withdrawn));
}

#[test]
fn event_kinds_read_back_from_their_names() {
    for kind in AlertEventKind::ALL {
        assert_eq!(AlertEventKind::parse(kind.as_str()), Some(kind));
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
    }
}

mod resumed {
    use proptest::prelude::*;

    use super::*;

    fn level() -> impl Strategy<Value = Option<AlertLevel>> {
        prop_oneof![4 => Just(Some(O)), 2 => Just(Some(W)), 2 => Just(Some(C)), 1 => Just(None)]
    }

    proptest! {
        /// Scores arriving in window order are derived a batch at a time from the cursor the
        /// previous batch left: the alerts must be those of one derivation over everything.
        #[test]
        fn a_derivation_resumed_from_cursors_equals_one_over_the_whole_history(
            levels in proptest::collection::vec(level(), 0..60),
            cuts in proptest::collection::vec(0usize..60, 0..5),
            consecutive in 1u32..4,
        ) {
            let windows = series(&levels);
            let whole = derive("s", "valve", &windows, consecutive);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(windows.len())).collect();
            cuts.push(windows.len());
            cuts.sort_unstable();
            let (mut alerts, mut cursor, mut from) = (Vec::new(), None, 0);
            for cut in cuts {
                let (mut found, next) = derive_from(cursor.clone(), "s", "valve", &windows[from..cut], consecutive);
                // The alert open at the cursor comes back with this part's verdict on it.
                if let Some(open) = cursor.as_ref().and_then(|c: &Cursor| c.open.as_ref()) {
                    alerts.retain(|a: &Alert| a.alert_id != open.alert_id);
                }
                alerts.append(&mut found);
                cursor = next.or(cursor);
                from = cut;
            }
            prop_assert_eq!(alerts, whole);
        }
    }

    #[test]
    fn windows_at_or_before_the_cursor_are_not_derived_again() {
        let windows = series(&all(&[W, W, W, O]));
        let (_, cursor) = derive_from(None, "s", "valve", &windows[..3], 3);
        let cursor = cursor.unwrap();
        assert!(cursor.open.is_some());
        // The same three windows again change nothing; the fourth is one ok window, not a recovery.
        let (alerts, again) = derive_from(Some(cursor.clone()), "s", "valve", &windows, 3);
        assert_eq!(alerts, vec![cursor.open.clone().unwrap()]);
        assert_eq!(again.unwrap().last_start, at(3));
    }
}
