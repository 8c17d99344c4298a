//! Per-reading cost of the ingest hot path: decode (Avro and JSON), validate, COPY-encode, and
//! the chunk's window bookkeeping (counts, and the slot bitmaps of complete windows).
//! Throughput is in readings, so criterion reports readings/s for each step. `trace_export_off`
//! measures what traces cost with export off: one batch decoded and validated, without and with
//! the trace calls its chunk, window, relay and infer steps make (export is off in a bench).
//!
//! cargo bench --bench hot_path

use std::collections::HashMap;
use std::hint::black_box;

use apache_avro::Schema;
use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use manifold::codec::{batch_from_value, batch_to_value, decode_json, schemas};
use manifold::domain::{BadReadingsPolicy, BatchLimits, SensorBatch, SeriesMeta, SystemMeta, Validator, Verdict};
use manifold::rig::{self, RIG_SENSORS};
use manifold::sim;
use manifold::store::PgTimestamp;
use tokio_postgres::types::{ToSql, Type};

fn rig_batch() -> manifold::domain::RawBatch {
    let cycles = rig::load(std::path::Path::new(rig::SAMPLE_DATA)).expect("sample data");
    sim::cycle_batch("rig-0", &cycles[0], chrono::Utc::now().timestamp_micros() - 120_000_000)
}

fn rig_meta() -> SystemMeta {
    let sensors = RIG_SENSORS
        .iter()
        .enumerate()
        .map(|(i, sensor)| (sensor.id.to_owned(), SeriesMeta { series_id: i as i32 + 1, min: sensor.min, max: sensor.max }))
        .collect::<HashMap<_, _>>();
    SystemMeta { owner_id: uuid::Uuid::nil(), sensors }
}

#[allow(deprecated)] // the registry client decodes with this same one-call reader
fn bench(c: &mut Criterion) {
    let raw = rig_batch();
    let readings = raw.series.iter().map(|s| s.values.len() as u64).sum::<u64>();
    let schema = Schema::parse_str(schemas::SENSOR_BATCH).unwrap();
    let avro = apache_avro::to_avro_datum(&schema, batch_to_value(&raw)).unwrap();
    let json = serde_json::to_vec(&raw).unwrap();
    let limits = BatchLimits::default();

    let mut group = c.benchmark_group("per_reading");
    group.throughput(Throughput::Elements(readings));
    group.bench_function("decode_avro", |b| {
        b.iter(|| {
            let value = apache_avro::from_avro_datum(&schema, &mut black_box(avro.as_slice()), None).unwrap();
            SensorBatch::parse(batch_from_value(value).unwrap(), &limits).unwrap()
        })
    });
    group.bench_function("decode_json", |b| b.iter(|| SensorBatch::parse(decode_json(black_box(&json)).unwrap(), &limits).unwrap()));

    let batch = SensorBatch::parse(raw.clone(), &limits).unwrap();
    let meta = rig_meta();
    let validator = Validator { max_future_us: 86_400_000_000, retention_us: 30 * 86_400_000_000, policy: BadReadingsPolicy::RejectBatch };
    let now = chrono::Utc::now().timestamp_micros();
    group.bench_function("validate", |b| {
        b.iter(|| match validator.check(black_box(&batch), &meta, now) {
            Verdict::Accept(a) => a.rows.len(),
            other => panic!("{other:?}"),
        })
    });

    let rows = match validator.check(&batch, &meta, now) {
        Verdict::Accept(a) => a.rows,
        other => panic!("{other:?}"),
    };
    // What BinaryCopyInWriter does per row: a field count, then each value length-prefixed.
    group.bench_function("copy_encode", |b| {
        let mut buf = BytesMut::with_capacity(rows.len() * 40);
        b.iter(|| {
            buf.clear();
            for row in &rows {
                buf.extend_from_slice(&3i16.to_be_bytes());
                for (value, ty) in [(&PgTimestamp(row.time_us) as &(dyn ToSql + Sync), Type::TIMESTAMPTZ), (&row.series_id, Type::INT4), (&row.value, Type::FLOAT8)] {
                    let at = buf.len();
                    buf.extend_from_slice(&[0; 4]);
                    value.to_sql_checked(&ty, &mut buf).unwrap();
                    let len = (buf.len() - at - 4) as i32;
                    buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
                }
            }
            black_box(buf.len())
        })
    });
    // The chunk's window bookkeeping: per-window counts and sensors, and the per-sensor slot
    // bitmaps that tell a complete window (one upsert row per window and sensor follows).
    let spec = manifold::window::WindowSpec { length_us: 60_000_000, origin_us: 0, lateness_us: 10_000_000, idle_timeout_us: 120_000_000 };
    let rates: HashMap<i32, f64> = (1..=RIG_SENSORS.len() as i32).map(|id| (id, 1.0)).collect();
    let names: HashMap<i32, &str> = RIG_SENSORS.iter().enumerate().map(|(i, s)| (i as i32 + 1, s.id)).collect();
    group.bench_function("window_counts", |b| {
        b.iter(|| {
            let mut acc = manifold::window::WindowAccumulator::default();
            acc.add_batch(&spec, "rig-0", rows.iter().map(|r| (names[&r.series_id], r.time_us)));
            black_box(acc.is_empty())
        })
    });
    group.bench_function("window_slots", |b| {
        b.iter(|| {
            let mut slots = manifold::window::SlotAccumulator::default();
            slots.add_batch(&spec, "rig-0", &rates, rows.iter().map(|r| (r.series_id, r.time_us)));
            black_box(slots.deltas().len())
        })
    });
    group.finish();
    traces_off(c, &schema, &avro, &meta, &validator, readings);
}

/// The same work twice in one run, so the ratio is free of machine drift: the per-batch hot
/// path, and that path plus every trace call a chunk of one batch makes (chunk span, its
/// traceparent for the window upsert, one announce span with its outbox traceparent, one relay
/// span and one infer span) while no exporter is installed.
fn traces_off(c: &mut Criterion, schema: &Schema, avro: &[u8], meta: &SystemMeta, validator: &Validator, readings: u64) {
    use manifold::telemetry::traces;
    assert!(!traces::enabled(), "a bench installs no exporter");
    let limits = BatchLimits::default();
    let now = chrono::Utc::now().timestamp_micros();
    #[allow(deprecated)]
    let path = || {
        let value = apache_avro::from_avro_datum(schema, &mut black_box(avro), None).unwrap();
        let batch = SensorBatch::parse(batch_from_value(value).unwrap(), &limits).unwrap();
        match validator.check(&batch, meta, now) {
            Verdict::Accept(a) => a.rows.len(),
            other => panic!("{other:?}"),
        }
    };
    let parent = Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    let start = chrono::Utc::now();
    let mut group = c.benchmark_group("trace_export_off");
    group.throughput(Throughput::Elements(readings));
    group.bench_function("baseline", |b| b.iter(path));
    let calls = |rows: usize| {
        let mut chunk = traces::ChunkTrace::start(1, rows, 0);
        let link = chunk.traceparent();
        let window = traces::announce("rig-0", start, 0, "WATERMARK", black_box(&[]));
        let stored = window.traceparent();
        chunk.announced(vec![window]);
        let relay = traces::relay(black_box(parent), 1, "windows");
        let score = traces::score(black_box(parent), 0, 1);
        black_box((link, stored, relay.traceparent(), score.traceparent()));
    };
    group.bench_function("with_trace_calls", |b| {
        b.iter(|| {
            let rows = path();
            calls(rows);
            rows
        })
    });
    // The calls alone, per batch: the difference the two above cannot resolve under noise.
    group.bench_function("trace_calls_alone", |b| b.iter(|| calls(black_box(1020))));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
