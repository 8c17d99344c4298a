//! The fault-injection suite, part A: real `manifold` processes killed and replaced while
//! `manifold simulate` streams, each scenario ending with the harness's checks
//! (`tests/common/chaos.rs`): every good reading stored exactly once (count and per-series
//! checksum), every ready window revision published exactly once on the scores topic,
//! recovery within the bound derived from the configured timeouts, peak RSS per process.
//! `make test` runs a short form of each; `make chaos` the long form (`CHAOS_READINGS`,
//! `CHAOS_KILLS`, `CHAOS_STREAM_SECONDS`, `CHAOS_SYSTEMS`, `CHAOS_SEED`).

mod common;

#[path = "chaos/infer_kill.rs"]
mod infer_kill;
#[path = "chaos/ingest_kill.rs"]
mod ingest_kill;
#[path = "chaos/relay_kill.rs"]
mod relay_kill;
#[path = "chaos/scale.rs"]
mod scale;

use std::time::{Duration, Instant};

/// One scenario at a time: each runs several processes on a 2-core box, and a scenario's
/// recovery times would otherwise measure its neighbours.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// When fault `k` of `n` is due: at a random moment of its share of the stream's first 80 %
/// (the rest leaves room for faults that came late, and data after the last one).
fn due(chaos: &mut common::chaos::Chaos, started: Instant, k: usize, n: usize) -> Instant {
    let share = chaos.sizes.stream * 4 / 5 / n.max(1) as u32;
    started + share * k as u32 + chaos.jitter(share)
}

async fn sleep_until(at: Instant) {
    tokio::time::sleep(at.saturating_duration_since(Instant::now())).await;
}

const WRITTEN: &str = "manifold_ingest_readings_written_total";
const SCORED: &str = "manifold_infer_windows_scored_total";
const PUBLISHED: &str = "manifold_relay_events_published_total";
/// How long a fresh process may take to do its first work while the stream flows.
const FIRST_WORK: Duration = Duration::from_secs(60);
