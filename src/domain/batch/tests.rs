use super::*;

fn raw(series: Vec<RawSeries>) -> RawBatch {
    RawBatch { batch_id: Some("b-1".into()), system_id: "rig-1".into(), produced_at: None, series }
}

fn regular(sensor: &str, values: Vec<f64>) -> RawSeries {
    RawSeries { sensor_id: sensor.into(), start: 1_000_000, interval_us: 1_000_000, times_us: vec![], values }
}

fn reject(raw: RawBatch) -> DomainError {
    SensorBatch::parse(raw, &BatchLimits { max_readings: 10 }).unwrap_err()
}

#[test]
fn regular_series_expand_to_evenly_spaced_readings() {
    let batch = SensorBatch::parse(raw(vec![regular("PS1", vec![1.0, 2.0, 3.0])]), &BatchLimits::default()).unwrap();
    let readings: Vec<_> = batch.series[0].readings().collect();
    assert_eq!(readings.iter().map(|r| r.time_us).collect::<Vec<_>>(), vec![1_000_000, 2_000_000, 3_000_000]);
    assert_eq!(batch.reading_count(), 3);
}

#[test]
fn explicit_times_are_kept_as_given() {
    let mut s = regular("PS1", vec![1.0, 2.0]);
    s.times_us = vec![5, 9];
    let batch = SensorBatch::parse(raw(vec![s]), &BatchLimits::default()).unwrap();
    assert_eq!(batch.series[0].readings().map(|r| r.time_us).collect::<Vec<_>>(), vec![5, 9]);
}

#[test]
fn structural_problems_are_rejected_with_kind_and_field() {
    let mut no_id = raw(vec![regular("PS1", vec![1.0])]);
    no_id.batch_id = None;
    assert_eq!(reject(no_id).field, "batch_id");

    let empty = reject(raw(vec![]));
    assert_eq!(empty.kind, RejectKind::EmptyBatch);

    let big = reject(raw(vec![regular("PS1", vec![0.0; 11])]));
    assert_eq!(big.kind, RejectKind::OversizedBatch);

    let dup = reject(raw(vec![regular("PS1", vec![1.0]), regular("PS1", vec![2.0])]));
    assert_eq!((dup.kind, dup.field.as_str()), (RejectKind::InvalidField, "series[1].sensor_id"));

    let mut mismatch = regular("PS1", vec![1.0, 2.0]);
    mismatch.times_us = vec![1];
    assert_eq!(reject(raw(vec![mismatch])).field, "series[0].times_us");

    let mut no_interval = regular("PS1", vec![1.0, 2.0]);
    no_interval.interval_us = 0;
    assert_eq!(reject(raw(vec![no_interval])).field, "series[0].interval_us");

    let mut bad_system = raw(vec![regular("PS1", vec![1.0])]);
    bad_system.system_id = "a b".into();
    assert_eq!(reject(bad_system).field, "system_id");
}

#[test]
fn json_accepts_rfc3339_or_microseconds() {
    let json = r#"{"batch_id":"b","system_id":"s","produced_at":"2026-01-01T00:00:00Z",
        "series":[{"sensor_id":"PS1","start":"2026-01-01T00:00:01Z","interval_us":10000,"values":[1.5,2.5]}]}"#;
    let raw: RawBatch = serde_json::from_str(json).unwrap();
    assert_eq!(raw.produced_at, Some(1_767_225_600_000_000));
    assert_eq!(raw.series[0].start, 1_767_225_601_000_000);
    let micros = r#"{"batch_id":"b","system_id":"s","series":[{"sensor_id":"PS1","start":7,"values":[1.0]}]}"#;
    assert_eq!(serde_json::from_str::<RawBatch>(micros).unwrap().series[0].start, 7);
}

#[test]
fn retain_keeps_only_accepted_samples_with_their_times() {
    let batch = SensorBatch::parse(raw(vec![regular("PS1", vec![1.0, 2.0, 3.0])]), &BatchLimits::default()).unwrap();
    let kept = batch.series[0].retain(|i| i != 1).unwrap();
    assert_eq!(kept.readings().map(|r| (r.time_us, r.value)).collect::<Vec<_>>(), vec![(1_000_000, 1.0), (3_000_000, 3.0)]);
    assert!(batch.series[0].retain(|_| false).is_none());
}

#[test]
fn to_raw_round_trips() {
    let original = raw(vec![regular("PS1", vec![1.0, 2.0])]);
    let batch = SensorBatch::parse(original.clone(), &BatchLimits::default()).unwrap();
    assert_eq!(batch.to_raw(), original);
}
