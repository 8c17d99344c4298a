//! Avro in the Confluent framing against the stack's real schema registry: round trip, content
//! detection, unknown schema ids, and schema evolution in both directions.

mod common;

use apache_avro::Schema;
use apache_avro::types::Value;
use common::batch::{BatchBuilder, timed};
use manifold::codec::{BatchDecoder, CodecError, RecordEncoder, batch_to_value, schemas};
use manifold::config::Config;
use manifold::domain::{BatchLimits, RawBatch, RejectKind};
use schema_registry_converter::async_impl::schema_registry::{SrSettings, post_schema};
use schema_registry_converter::schema_registry_common::{SchemaType, SuppliedSchema};

fn config() -> Config {
    common::config_with(&[])
}

/// A regular and an irregular series.
fn batch(id: &str) -> RawBatch {
    let t0 = 1_700_000_000_000_000;
    BatchBuilder::new("rig-1")
        .id(id)
        .produced_at(t0)
        .per_second("PS1", t0, vec![150.5, 151.0, 149.75])
        .series([timed("TS1", t0, vec![t0, t0 + 500_000], vec![35.5, 35.6])])
        .build()
}

async fn register(config: &Config, subject: &str, schema: &str) -> u32 {
    let settings = SrSettings::new(config.schema_registry.url.clone());
    post_schema(&settings, subject.to_owned(), SuppliedSchema::new(None, SchemaType::Avro, schema.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("register {subject}: {e:?}"))
        .id
}

#[allow(deprecated)] // the one-call datum writer is all a test needs
fn framed(id: u32, schema: &str, value: Value) -> Vec<u8> {
    let schema = Schema::parse_str(schema).unwrap();
    let mut bytes = vec![0];
    bytes.extend_from_slice(&id.to_be_bytes());
    bytes.extend(apache_avro::to_avro_datum(&schema, value).unwrap());
    bytes
}

/// The current schema without `times_us`: the version before irregular series existed.
fn previous_schema() -> String {
    let mut schema: serde_json::Value = serde_json::from_str(schemas::SENSOR_BATCH).unwrap();
    let fields = schema["fields"][3]["type"]["items"]["fields"].as_array_mut().unwrap();
    fields.retain(|f| f["name"] != "times_us");
    schema.to_string()
}

/// The current schema plus a field a newer device firmware might add, with a default.
fn next_schema() -> String {
    let mut schema: serde_json::Value = serde_json::from_str(schemas::SENSOR_BATCH).unwrap();
    schema["fields"].as_array_mut().unwrap().push(serde_json::json!({"name": "firmware", "type": "string", "default": ""}));
    schema.to_string()
}

#[tokio::test]
async fn avro_batches_round_trip_through_the_registry() {
    let config = config();
    let topic = common::unique("codec");
    let encoder = RecordEncoder::for_batches(&config.schema_registry, &topic).unwrap();
    let decoder = BatchDecoder::new(&config.schema_registry, BatchLimits::default()).unwrap();
    let original = batch("b-1");
    let bytes = encoder.encode_batch(&original).await.unwrap();
    assert_eq!(bytes[0], 0, "Confluent magic byte");
    assert_eq!(decoder.decode_raw(Some(&bytes)).await.unwrap(), original);
    let parsed = decoder.decode(Some(&bytes)).await.unwrap();
    assert_eq!(parsed.reading_count(), 5);
}

#[tokio::test]
async fn json_batches_are_detected_and_decoded() {
    let config = config();
    let decoder = BatchDecoder::new(&config.schema_registry, BatchLimits::default()).unwrap();
    let json = serde_json::to_vec(&batch("b-json")).unwrap();
    assert_eq!(decoder.decode_raw(Some(&json)).await.unwrap(), batch("b-json"));
}

#[tokio::test]
async fn garbage_and_unknown_schema_ids_are_rejected_not_retried() {
    let config = config();
    let decoder = BatchDecoder::new(&config.schema_registry, BatchLimits::default()).unwrap();
    for (bytes, kind) in [
        (b"\x07garbage".to_vec(), RejectKind::Malformed),
        (b"{\"batch_id\": 1}".to_vec(), RejectKind::Malformed),
        (vec![0, 0x7f, 0xff, 0xff, 0x01, 2, 4], RejectKind::UnknownSchema),
    ] {
        match decoder.decode(Some(&bytes)).await {
            Err(CodecError::Rejected(err)) => assert_eq!(err.kind, kind, "{err}"),
            other => panic!("{bytes:?} gave {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_batch_from_the_previous_schema_decodes_after_a_field_with_a_default_is_added() {
    let config = config();
    let subject = format!("{}-value", common::unique("evolve_old"));
    let old_schema = previous_schema();
    let old_id = register(&config, &subject, &old_schema).await;
    let new_id = register(&config, &subject, schemas::SENSOR_BATCH).await;
    assert_ne!(old_id, new_id);

    let mut old_batch = batch("b-old");
    old_batch.series.truncate(1);
    let mut value = batch_to_value(&old_batch);
    if let Value::Record(fields) = &mut value
        && let Some((_, Value::Array(series))) = fields.iter_mut().find(|(n, _)| n == "series")
    {
        for item in series {
            if let Value::Record(f) = item {
                f.retain(|(n, _)| n != "times_us");
            }
        }
    }
    let bytes = framed(old_id, &old_schema, value);
    let decoder = BatchDecoder::new(&config.schema_registry, BatchLimits::default()).unwrap();
    let decoded = decoder.decode_raw(Some(&bytes)).await.unwrap();
    assert_eq!(decoded, old_batch, "times_us takes its default");
}

#[tokio::test]
async fn a_batch_from_a_newer_schema_decodes_with_this_reader() {
    let config = config();
    let subject = format!("{}-value", common::unique("evolve_new"));
    register(&config, &subject, schemas::SENSOR_BATCH).await;
    let newer = next_schema();
    let new_id = register(&config, &subject, &newer).await;

    let mut value = batch_to_value(&batch("b-new"));
    if let Value::Record(fields) = &mut value {
        fields.push(("firmware".into(), Value::String("2.1.0".into())));
    }
    let bytes = framed(new_id, &newer, value);
    let decoder = BatchDecoder::new(&config.schema_registry, BatchLimits::default()).unwrap();
    assert_eq!(decoder.decode_raw(Some(&bytes)).await.unwrap(), batch("b-new"), "the unknown field is ignored");
}
