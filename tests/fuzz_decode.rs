//! Property tests over the decode + validate path: whatever bytes arrive, the result is a batch
//! or a rejection with a reason, never a panic.

use std::collections::HashMap;

use apache_avro::Schema;
use manifold::codec::{batch_from_value, decode_json, schemas};
use manifold::config::BadReadingsPolicy;
use manifold::domain::{BatchLimits, RawBatch, RawSeries, SensorBatch};
use manifold::ingest::validate::Validator;
use manifold::store::{SeriesMeta, SystemMeta};
use proptest::prelude::*;

fn system() -> SystemMeta {
    SystemMeta { owner_id: uuid::Uuid::nil(), sensors: HashMap::from([("PS1".to_owned(), SeriesMeta { series_id: 1, min: 0.0, max: 200.0 })]) }
}

fn validate(raw: RawBatch) {
    if let Ok(batch) = SensorBatch::parse(raw, &BatchLimits { max_readings: 10_000 }) {
        for policy in [BadReadingsPolicy::RejectBatch, BadReadingsPolicy::StoreValid] {
            let v = Validator { max_future_us: 3_600_000_000, retention_us: 86_400_000_000, policy };
            let _ = v.check(&batch, &system(), 1_800_000_000_000_000);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_as_json_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(raw) = decode_json(&bytes) {
            validate(raw);
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
