//! `manifold simulate`: virtual devices replaying the UCI hydraulic rig, one system each.

pub mod checksum;
pub mod plan;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::producer::FutureRecord;
use serde::Serialize;

pub use checksum::{Checksums, SeriesChecksum};
pub use plan::TimePlan;

use crate::codec::RecordEncoder;
use crate::config::Config;
use crate::domain::{RawBatch, RawSeries, SystemId};
use crate::kafka::producer;
use crate::rig::{self, Cycle};
use crate::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WireFormat {
    Avro,
    Json,
}

#[derive(Debug, Clone)]
pub struct SimulateOptions {
    pub data: PathBuf,
    pub systems: usize,
    pub system_prefix: String,
    pub cycles: usize,
    /// None: as fast as possible, a backfill whose event times end now. N: one cycle every
    /// 60/N s, each sent once it has ended (1: live; above 1: a time-lapse of the recent past).
    pub speed: Option<f64>,
    /// Every n-th message is a bad one (rotating through the kinds of bad input).
    pub bad_every: Option<usize>,
    pub format: WireFormat,
    /// First dataset row to replay (rows wrap around).
    pub offset: usize,
    /// Send each sensor at the rate the real rig samples it (see [`native_cycle_batch`])
    /// instead of the data set's 1 Hz.
    pub native_rates: bool,
}

#[derive(Debug, Default, Clone, Serialize, PartialEq, Eq)]
pub struct SimulateReport {
    pub batches: u64,
    /// Readings in the good batches (the bad messages' are not counted anywhere).
    pub readings: u64,
    pub bad: u64,
    /// Per series, the good readings sent and their checksum (see [`checksum`]): what a
    /// checker compares with `readings` to prove each was stored exactly once.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<SeriesChecksum>,
}

pub fn system_id(prefix: &str, index: usize) -> String {
    format!("{prefix}-{index}")
}

/// The readings of one cycle of one system as a batch; event times start at `start_us`.
pub fn cycle_batch(system: &str, cycle: &Cycle, start_us: i64) -> RawBatch {
    let series = cycle
        .readings()
        .map(|(sensor, values)| RawSeries { sensor_id: sensor.id.into(), start: start_us, interval_us: 1_000_000, times_us: vec![], values: values.clone() })
        .collect();
    RawBatch { batch_id: Some(format!("{system}-{start_us}")), system_id: system.into(), produced_at: Some(chrono::Utc::now().timestamp_micros()), series }
}

/// As [`cycle_batch`], at the rates the real rig samples (`RigSensor::native_rate_hz`): each
/// 1 s value repeated, 100 samples a second for the pressures and the motor power, 10 for the
/// flows (43,680 readings a cycle), so the 1 s means of what is sent are the data set's values.
pub fn native_cycle_batch(system: &str, cycle: &Cycle, start_us: i64) -> RawBatch {
    let mut batch = cycle_batch(system, cycle, start_us);
    for (series, (sensor, values)) in batch.series.iter_mut().zip(cycle.readings()) {
        let per_second = sensor.native_rate_hz.round().max(1.0) as usize;
        series.interval_us = 1_000_000 / per_second as i64;
        series.values = values.iter().flat_map(|v| std::iter::repeat_n(*v, per_second)).collect();
    }
    batch
}

/// Creates each simulated system's equipment (owned by the simulator user) when missing.
pub async fn ensure_equipment(store: &Store, prefix: &str, systems: usize) -> anyhow::Result<()> {
    let owner = store.ensure_user("simulator@manifold.local", "Device simulator").await?;
    let topology = rig::rig_topology().validate()?;
    for i in 0..systems {
        let id = system_id(prefix, i);
        if store.load_system(&id).await?.is_none() {
            store.put_equipment(owner, &SystemId::parse(&id)?, &format!("UCI hydraulic rig #{i}"), &topology).await?;
        }
    }
    Ok(())
}

/// A bad message of the `n`-th kind, for `system` (the simulator's dead-letter drill):
/// garbage bytes, a NaN, a value out of range, or an unknown sensor.
async fn bad_message(n: u64, system: &str, start_us: i64, cycle: &Cycle, encoder: &RecordEncoder, format: WireFormat) -> anyhow::Result<Vec<u8>> {
    let mut batch = cycle_batch(system, cycle, start_us);
    batch.batch_id = Some(format!("{system}-{start_us}-bad{n}"));
    match n % 4 {
        0 => return Ok(b"\x07not a batch".to_vec()),
        // JSON has no NaN; a JSON device's equivalent mistake is a negative pressure.
        1 if format == WireFormat::Avro => batch.series[0].values[0] = f64::NAN,
        1 => batch.series[0].values[0] = -1.0,
        2 => batch.series[1].values[3] = 1e9,
        _ => batch.series[2].sensor_id = "PS99".into(),
    }
    encode(&batch, encoder, format).await
}

async fn encode(batch: &RawBatch, encoder: &RecordEncoder, format: WireFormat) -> anyhow::Result<Vec<u8>> {
    Ok(match format {
        WireFormat::Avro => encoder.encode_batch(batch).await?,
        WireFormat::Json => serde_json::to_vec(batch)?,
    })
}

pub async fn run(config: &Config, options: &SimulateOptions) -> anyhow::Result<SimulateReport> {
    let cycles = rig::load(&options.data)?;
    anyhow::ensure!(!cycles.is_empty(), "no cycles in {}", options.data.display());
    let store = Store::new(&config.database)?;
    ensure_equipment(&store, &options.system_prefix, options.systems).await?;
    let topic = config.topics.batches.name.clone();
    let encoder = RecordEncoder::for_batches(&config.schema_registry, &topic)?;
    let producer = producer(&config.kafka)?;

    // Event times are never ahead of the wall clock: see `TimePlan`.
    let plan = TimePlan::new(chrono::Utc::now().timestamp_micros(), options.cycles, options.speed);
    let started = Instant::now();
    let total = (options.cycles * options.systems) as u64;
    let bar = if std::io::stderr().is_terminal() { indicatif::ProgressBar::new(total) } else { indicatif::ProgressBar::hidden() };
    let mut report = SimulateReport::default();
    let mut sums = Checksums::default();
    let mut deliveries = Vec::new();
    for c in 0..options.cycles {
        let start_us = plan.start_us(c);
        let due = started.checked_add(plan.send_after(c)).context("--speed is too slow to schedule")?;
        tokio::time::sleep_until(due.into()).await;
        // The plan holds by construction; this holds it against a clock stepped back meanwhile.
        let ahead_us = plan.end_us(c) - chrono::Utc::now().timestamp_micros();
        if ahead_us > 0 {
            tokio::time::sleep(Duration::from_micros(ahead_us as u64)).await;
        }
        for s in 0..options.systems {
            let system = system_id(&options.system_prefix, s);
            let cycle = &cycles[(options.offset + c + s * 7) % cycles.len()];
            let n = report.batches + report.bad + 1;
            let payload = match options.bad_every {
                Some(every) if every > 0 && n % every as u64 == 0 => {
                    report.bad += 1;
                    bad_message(report.bad, &system, start_us, cycle, &encoder, options.format).await?
                }
                _ => {
                    let batch = if options.native_rates { native_cycle_batch(&system, cycle, start_us) } else { cycle_batch(&system, cycle, start_us) };
                    report.batches += 1;
                    report.readings += batch.series.iter().map(|s| s.values.len() as u64).sum::<u64>();
                    sums.add_batch(&batch);
                    encode(&batch, &encoder, options.format).await?
                }
            };
            let record = FutureRecord::to(&topic).key(system.as_bytes()).payload(&payload);
            let delivery = producer.send_result(record).map_err(|(e, _)| e)?;
            deliveries.push(delivery);
            bar.inc(1);
        }
        // Bound the messages in flight, and surface delivery errors early.
        if deliveries.len() >= 1000 || options.speed.is_some() {
            for delivery in deliveries.drain(..) {
                delivery.await?.map_err(|(e, _)| e)?;
            }
        }
    }
    for delivery in deliveries {
        delivery.await?.map_err(|(e, _)| e)?;
    }
    bar.finish_and_clear();
    report.series = sums.series();
    Ok(report)
}
