use super::*;

const S: i64 = 1_000_000;

fn spec() -> WindowSpec {
    WindowSpec { length_us: 60 * S, origin_us: 0, lateness_us: 10 * S, idle_timeout_us: 120 * S }
}

#[test]
fn event_times_map_to_aligned_windows_also_before_the_origin() {
    let s = spec();
    assert_eq!(s.start_of(0), 0);
    assert_eq!(s.start_of(59 * S), 0);
    assert_eq!(s.start_of(60 * S), 60 * S);
    assert_eq!(s.start_of(-1), -60 * S);
    let shifted = WindowSpec { origin_us: 15 * S, ..s };
    assert_eq!(shifted.start_of(74 * S), 15 * S);
    assert_eq!(shifted.start_of(75 * S), 75 * S);
}

#[test]
fn out_of_order_readings_count_in_their_own_window_and_never_move_the_watermark_back() {
    let s = spec();
    let mut acc = WindowAccumulator::default();
    for (sensor, t) in [("PS1", 61 * S), ("PS1", 5 * S), ("TS1", 125 * S), ("PS1", 59 * S), ("TS1", 62 * S)] {
        acc.add(&s, "rig", sensor, t);
    }
    let deltas = acc.deltas(&s);
    let summary: Vec<(i64, i64, Vec<&str>)> =
        deltas.iter().map(|d| (d.window_start / S, d.readings, d.sensors.iter().map(String::as_str).collect())).collect();
    assert_eq!(summary, vec![(0, 2, vec!["PS1"]), (60, 2, vec!["PS1", "TS1"]), (120, 1, vec!["TS1"])]);
    assert_eq!(acc.newest()["rig"], 125 * S, "the newest event time, not the last one seen");
}

#[test]
fn systems_are_windowed_independently() {
    let s = spec();
    let mut acc = WindowAccumulator::default();
    acc.add(&s, "a", "PS1", 10 * S);
    acc.add(&s, "b", "PS1", 500 * S);
    assert_eq!(acc.newest()["a"], 10 * S);
    assert_eq!(acc.deltas(&s).len(), 2);
}
