//! Property tests over the decode + validate path: whatever bytes arrive, the result is a batch
//! or a rejection with a reason, never a panic.

use std::collections::HashMap;

use apache_avro::Schema;
use manifold::codec::{batch_from_value, decode_json, schemas};
use manifold::domain::{BadReadingsPolicy, BatchLimits, RawBatch, RawSeries, SensorBatch, SeriesMeta, SystemMeta, Validator, Verdict};
use proptest::prelude::*;

fn system() -> SystemMeta {
    SystemMeta { owner_id: uuid::Uuid::nil(), sensors: HashMap::from([("PS1".to_owned(), SeriesMeta { series_id: 1, min: 0.0, max: 200.0 })]) }
}

/// Whatever comes in, every reading is accounted for: stored, or in a rejection with a reason.
fn validate(raw: RawBatch) {
    match SensorBatch::parse(raw, &BatchLimits { max_readings: 10_000 }) {
        Err(err) => assert!(!err.field.is_empty() && !err.message.is_empty(), "a rejection names its field: {err:?}"),
        Ok(batch) => {
            let total = batch.reading_count();
            assert!(total > 0 && total <= 10_000);
            for policy in [BadReadingsPolicy::RejectBatch, BadReadingsPolicy::StoreValid] {
                let v = Validator { max_future_us: 3_600_000_000, retention_us: 86_400_000_000, policy };
                match v.check(&batch, &system(), 1_800_000_000_000_000) {
                    Verdict::Accept(a) => assert_eq!(a.rows.len(), total),
                    Verdict::Reject(err) => assert!(!err.message.is_empty()),
                    Verdict::Partial { accepted, rejected, .. } => {
                        let bad: usize = rejected.series.iter().map(|s| s.values.len()).sum();
                        assert_eq!(accepted.rows.len() + bad, total, "nothing dropped silently");
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_as_json_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        match decode_json(&bytes) {
            Ok(raw) => validate(raw),
            Err(err) => assert!(!err.to_string().is_empty()),
        }
    }

    #[test]
    #[allow(deprecated)] // the registry client decodes with this same one-call reader
    fn arbitrary_bytes_as_avro_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let schema = Schema::parse_str(schemas::SENSOR_BATCH).unwrap();
        if let Ok(value) = apache_avro::from_avro_datum(&schema, &mut bytes.as_slice(), None)
            && let Ok(raw) = batch_from_value(value)
        {
            validate(raw);
        }
    }

    #[test]
    fn arbitrary_batches_never_panic(
        id in "[a-z0-9 ]{0,8}",
        sensors in proptest::collection::vec(("(PS1|PS2|x y|)", any::<i64>(), any::<i64>(),
            proptest::collection::vec(any::<i64>(), 0..4), proptest::collection::vec(any::<f64>(), 0..6)), 0..4),
    ) {
        let series = sensors.into_iter().map(|(sensor_id, start, interval_us, times_us, values)| RawSeries { sensor_id, start, interval_us, times_us, values }).collect();
        validate(RawBatch { batch_id: Some(id), system_id: "rig".into(), produced_at: None, series });
    }
}
