use std::collections::HashMap;

use uuid::Uuid;

use super::*;
use crate::domain::{BatchLimits, RawSeries, SeriesMeta};

const NOW: i64 = 1_800_000_000_000_000;
const HOUR: i64 = 3_600_000_000;

fn system() -> SystemMeta {
    SystemMeta {
        owner_id: Uuid::nil(),
        sensors: HashMap::from([
            ("PS1".to_owned(), SeriesMeta { series_id: 1, min: 0.0, max: 200.0 }),
            ("TS1".to_owned(), SeriesMeta { series_id: 2, min: -40.0, max: 120.0 }),
        ]),
    }
}

fn batch(series: Vec<(&str, i64, Vec<f64>)>) -> SensorBatch {
    let raw = RawBatch {
        batch_id: Some("b1".into()),
        system_id: "rig".into(),
        produced_at: None,
        series: series
            .into_iter()
            .map(|(s, start, values)| RawSeries { sensor_id: s.into(), start, interval_us: 1_000_000, times_us: vec![], values })
            .collect(),
    };
    SensorBatch::parse(raw, &BatchLimits::default()).unwrap()
}

fn validator(policy: BadReadingsPolicy) -> Validator {
    Validator { max_future_us: HOUR, retention_us: 24 * HOUR, policy }
}

#[test]
fn good_readings_become_rows_with_series_ids() {
    match validator(BadReadingsPolicy::RejectBatch).check(&batch(vec![("PS1", NOW, vec![1.0, 2.0]), ("TS1", NOW, vec![30.0])]), &system(), NOW) {
        Verdict::Accept(a) => {
            assert_eq!(a.rows.len(), 3);
            assert_eq!(a.rows[2], Row { series_id: 2, time_us: NOW, value: 30.0 });
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn each_kind_of_bad_reading_is_named() {
    let cases = [
        (("XX9", NOW, vec![1.0]), RejectKind::UnknownSensor, "series[0].sensor_id"),
        (("PS1", NOW, vec![1.0, f64::NAN]), RejectKind::NonFinite, "series[0].values[1]"),
        (("PS1", NOW, vec![f64::INFINITY]), RejectKind::NonFinite, "series[0].values[0]"),
        (("PS1", NOW, vec![250.0]), RejectKind::OutOfRange, "series[0].values[0]"),
        (("PS1", NOW + 2 * HOUR, vec![1.0]), RejectKind::FutureTime, "series[0].values[0]"),
        (("PS1", NOW - 25 * HOUR, vec![1.0]), RejectKind::ExpiredTime, "series[0].values[0]"),
    ];
    for (series, kind, field) in cases {
        match validator(BadReadingsPolicy::RejectBatch).check(&batch(vec![series]), &system(), NOW) {
            Verdict::Reject(err) => assert_eq!((err.kind, err.field.as_str()), (kind, field), "{err}"),
            other => panic!("{kind:?}: {other:?}"),
        }
    }
}

#[test]
fn store_valid_policy_splits_a_batch_under_a_derived_id() {
    let b = batch(vec![("PS1", NOW, vec![1.0, 999.0, 3.0]), ("XX9", NOW, vec![5.0])]);
    match validator(BadReadingsPolicy::StoreValid).check(&b, &system(), NOW) {
        Verdict::Partial { accepted, rejected, error } => {
            assert_eq!(accepted.rows.iter().map(|r| r.value).collect::<Vec<_>>(), vec![1.0, 3.0]);
            assert_eq!(rejected.batch_id.as_deref(), Some("b1~rejected"));
            let bad: Vec<f64> = rejected.series.iter().flat_map(|s| s.values.clone()).collect();
            assert_eq!(bad, vec![999.0, 5.0]);
            assert_eq!(rejected.series[0].times_us, vec![NOW + 1_000_000], "a rejected reading keeps its time");
            assert_eq!(error.kind, RejectKind::OutOfRange);
            assert!(error.message.starts_with("2 of 4 readings rejected"), "{}", error.message);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reject_batch_policy_rejects_the_whole_batch() {
    let b = batch(vec![("PS1", NOW, vec![1.0, 999.0])]);
    assert!(matches!(validator(BadReadingsPolicy::RejectBatch).check(&b, &system(), NOW), Verdict::Reject(_)));
}

#[test]
fn a_range_stored_before_ranges_were_bounded_still_admits_only_bounded_values() {
    let mut wide = system();
    wide.sensors.insert("PS1".into(), SeriesMeta { series_id: 1, min: -1e308, max: 1e308 });
    let at_bound = batch(vec![("PS1", NOW, vec![Sensor::MAX_MAGNITUDE, -Sensor::MAX_MAGNITUDE])]);
    assert!(matches!(validator(BadReadingsPolicy::RejectBatch).check(&at_bound, &wide, NOW), Verdict::Accept(_)));
    let beyond = batch(vec![("PS1", NOW, vec![1.0, 1e300])]);
    match validator(BadReadingsPolicy::RejectBatch).check(&beyond, &wide, NOW) {
        Verdict::Reject(err) => assert_eq!((err.kind, err.field.as_str()), (RejectKind::OutOfRange, "series[0].values[1]")),
        other => panic!("{other:?}"),
    }
}

/// PostgreSQL's timestamptz holds 4713 BC to 294276 AD.
fn storable_time(us: i64) -> bool {
    use chrono::Datelike;
    chrono::DateTime::from_timestamp_micros(us).is_some_and(|t| (-4712..=294_275).contains(&t.year()))
}

fn any_value() -> impl proptest::strategy::Strategy<Value = f64> {
    use proptest::prelude::*;
    prop_oneof![
        proptest::num::f64::ANY,
        Just(f64::MAX),
        Just(-f64::MAX),
        Just(1e308),
        Just(Sensor::MAX_MAGNITUDE),
        Just(-Sensor::MAX_MAGNITUDE),
        -250.0..250.0f64,
    ]
}

fn any_time() -> impl proptest::strategy::Strategy<Value = i64> {
    use proptest::prelude::*;
    prop_oneof![3 => (NOW - 30 * HOUR)..(NOW + 3 * HOUR), 1 => proptest::num::i64::ANY, 1 => Just(i64::MAX), 1 => Just(i64::MIN)]
}

/// Ranges as the catalogue may hold them, including ones stored before ranges were bounded.
fn any_range() -> impl proptest::strategy::Strategy<Value = (f64, f64)> {
    use proptest::prelude::*;
    prop_oneof![Just((-f64::MAX, f64::MAX)), Just((-1e308, 1e308)), Just((0.0, 200.0)), (any_value(), any_value())]
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config::with_cases(1024))]

    /// Whatever arrives and whatever ranges the catalogue holds, every row validation accepts
    /// can be written: COPY (finite float8, a timestamptz in range), the last-value table, and
    /// the 1-minute aggregate (no sum of accepted values can overflow float8), and the batch
    /// id is text PostgreSQL takes.
    #[test]
    fn the_validator_never_accepts_what_the_database_would_refuse(
        batch_id in proptest::prop_oneof![1 => ".{0,200}", 3 => "[a-z0-9~-]{1,40}"],
        ranges in proptest::collection::vec(any_range(), 2),
        series in proptest::collection::vec(
            (proptest::sample::select(vec!["PS1", "TS1", "XX9"]), any_time(), -2i64..2_000_000,
             proptest::collection::vec(any_time(), 0..4), proptest::collection::vec(any_value(), 1..6)),
            1..4),
        store_valid in proptest::bool::ANY,
    ) {
        let mut meta = system();
        for ((_, m), (a, b)) in meta.sensors.iter_mut().zip(&ranges) {
            (m.min, m.max) = (a.min(*b), a.max(*b));
        }
        let raw = RawBatch {
            batch_id: Some(batch_id),
            system_id: "rig".into(),
            produced_at: None,
            series: series.into_iter().map(|(sensor, start, interval_us, times, values)| {
                let values = if times.is_empty() { values } else { values.into_iter().cycle().take(times.len()).collect() };
                RawSeries { sensor_id: sensor.into(), start, interval_us, times_us: times, values }
            }).collect(),
        };
        let Ok(parsed) = SensorBatch::parse(raw, &BatchLimits::default()) else { return Ok(()) };
        let policy = if store_valid { BadReadingsPolicy::StoreValid } else { BadReadingsPolicy::RejectBatch };
        let v = validator(policy);
        let accepted = match v.check(&parsed, &meta, NOW) {
            Verdict::Accept(a) | Verdict::Partial { accepted: a, .. } => a,
            Verdict::Reject(_) => return Ok(()),
        };
        proptest::prop_assert!(crate::domain::text::is_clean(&accepted.batch_id, 160));
        let mut sum = 0.0f64;
        for row in &accepted.rows {
            proptest::prop_assert!(row.value.is_finite() && row.value.abs() <= Sensor::MAX_MAGNITUDE, "{}", row.value);
            proptest::prop_assert!(storable_time(row.time_us));
            proptest::prop_assert!(row.time_us >= NOW - v.retention_us && row.time_us <= NOW + v.max_future_us);
            sum += row.value.abs();
        }
        // The worst any bucket can hold: as many readings at the bound as int8 can count.
        proptest::prop_assert!(sum.is_finite() && (i64::MAX as f64 * Sensor::MAX_MAGNITUDE).is_finite());
    }
}
