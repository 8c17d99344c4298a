use std::collections::HashMap;

use uuid::Uuid;

use super::*;
use crate::domain::{BatchLimits, RawSeries};
use crate::store::SeriesMeta;

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
