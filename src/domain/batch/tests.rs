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
    (s.interval_us, s.times_us) = (0, vec![5, 9]);
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
    (mismatch.interval_us, mismatch.times_us) = (0, vec![1]);
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

fn irregular(times: Vec<i64>) -> RawSeries {
    let values = vec![1.0; times.len()];
    RawSeries { sensor_id: "PS1".into(), start: times.first().copied().unwrap_or(0), interval_us: 0, times_us: times, values }
}

#[test]
fn a_series_is_either_regular_or_irregular_never_both_or_neither() {
    let both = RawSeries { interval_us: 1_000, ..irregular(vec![1, 2]) };
    assert_eq!(reject(raw(vec![regular("TS1", vec![1.0]), both])).field, "series[1].interval_us");

    let neither = RawSeries { interval_us: 0, ..regular("PS1", vec![1.0, 2.0]) };
    assert_eq!(reject(raw(vec![neither])).field, "series[0].interval_us");

    for values in [vec![1.0], vec![1.0, 2.0]] {
        let negative = RawSeries { interval_us: -1_000, ..regular("PS1", values) };
        let err = reject(raw(vec![negative]));
        assert_eq!((err.kind, err.field.as_str()), (RejectKind::InvalidField, "series[0].interval_us"));
    }

    let single = RawSeries { interval_us: 0, ..regular("PS1", vec![7.0]) };
    let batch = SensorBatch::parse(raw(vec![single]), &BatchLimits::default()).expect("one value needs no interval");
    assert_eq!(batch.series[0].readings().map(|r| r.time_us).collect::<Vec<_>>(), vec![1_000_000]);
    assert!(SensorBatch::parse(raw(vec![irregular(vec![3, 1, 2])]), &BatchLimits::default()).is_ok(), "irregular times need not be sorted");
}

#[test]
fn a_repeated_time_within_a_series_names_its_index() {
    let err = reject(raw(vec![irregular(vec![10, 20, 30, 20])]));
    assert_eq!((err.kind, err.field.as_str()), (RejectKind::InvalidField, "series[0].times_us[3]"));
    let err = reject(raw(vec![regular("TS1", vec![1.0]), irregular(vec![5, 5])]));
    assert_eq!(err.field, "series[1].times_us[1]");
    // The same time in two sensors' series is normal.
    let mut other = irregular(vec![5, 6]);
    other.sensor_id = "TS1".into();
    assert!(SensorBatch::parse(raw(vec![irregular(vec![5, 6]), other]), &BatchLimits::default()).is_ok());
}

#[test]
fn a_bad_rfc3339_time_is_echoed_bounded() {
    let huge = "9".repeat(100_000);
    let json = format!(r#"{{"batch_id":"b","system_id":"s","series":[{{"sensor_id":"PS1","start":"{huge}x","values":[1.0]}}]}}"#);
    let err = serde_json::from_str::<RawBatch>(&json).unwrap_err().to_string();
    assert!(err.len() < 400, "{} bytes", err.len());
    assert!(err.contains("100001 bytes"), "{err}");
}

proptest::proptest! {
    /// The structural rules hold for whatever a device sends: an accepted series has one
    /// value per distinct time, and every time is a representable instant.
    #[test]
    fn an_accepted_series_has_distinct_times(
        start in proptest::num::i64::ANY,
        interval in proptest::prop_oneof![proptest::num::i64::ANY, -2i64..3],
        times in proptest::collection::vec(proptest::prop_oneof![proptest::num::i64::ANY, 0i64..4], 0..6),
        n in 1usize..6,
    ) {
        let series = RawSeries { sensor_id: "PS1".into(), start, interval_us: interval, times_us: times.clone(), values: vec![0.5; if times.is_empty() { n } else { times.len() }] };
        if let Ok(batch) = SensorBatch::parse(raw(vec![series]), &BatchLimits::default()) {
            let got: Vec<i64> = batch.series[0].readings().map(|r| r.time_us).collect();
            let distinct: HashSet<i64> = got.iter().copied().collect();
            proptest::prop_assert_eq!(distinct.len(), got.len());
            proptest::prop_assert!(interval >= 0);
            proptest::prop_assert!(times.is_empty() || interval == 0);
        }
    }
}
