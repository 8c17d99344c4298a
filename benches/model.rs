//! Scoring latency of one 60 s window on one thread, GNN vs the MLP baseline, the GNN with the
//! sensors that drove each score (occlusion: one more forward pass per present sensor), and what
//! a device sending the rig's native rates (43,680 readings a window instead of 1,020) costs.
//!
//! `taskset -c 0 cargo bench --bench model` (scoring never spawns threads; taskset makes sure
//! nothing else of the process competes either). Before criterion's own statistics, prints the
//! p50/p99 latency and windows per second of a plain loop.

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use manifold::model::{DEFAULT_MODEL_DIR, Network, RigModel};
use manifold::train::Networks;

type Window = HashMap<String, Vec<f64>>;

fn setup() -> (RigModel, Vec<Window>, Vec<Window>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = RigModel::load(&root.join(DEFAULT_MODEL_DIR)).expect("shipped model");
    let cycles = manifold::rig::load(&root.join(manifold::rig::SAMPLE_DATA)).expect("sample data");
    let windows = cycles.iter().map(manifold::rig::Cycle::window).collect();
    // A few native-rate cycles are enough (each holds 43,680 values).
    let native = cycles.iter().take(16).map(manifold::rig::Cycle::native_window).collect();
    (model, windows, native)
}

/// p50 of scoring a whole 60 s window as the rig scorer does (brought to the trained sampling
/// first), in µs.
fn window_p50(model: &RigModel, windows: &[Window], n: usize) -> f64 {
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        black_box(model.score_window(&windows[i % windows.len()], 60.0));
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

/// The cost of a device's rate: the same cycles at 1 Hz and at the rig's native rates.
fn rate_percentiles(model: &RigModel, windows: &[Window], native: &[Window]) {
    let one_hz = window_p50(model, windows, 5000);
    let fast = window_p50(model, native, 1000);
    println!("score_window 60 s: 1 Hz (1,020 readings) p50 {one_hz:.1} µs; native rates (43,680 readings) p50 {fast:.1} µs; ratio {:.1}", fast / one_hz);
}

fn percentiles(model: &RigModel, windows: &[HashMap<String, Vec<f64>>], network: Network, explained: bool) -> f64 {
    let score = |w: &HashMap<String, Vec<f64>>| {
        if explained {
            black_box(model.score_explained_with(w, network));
        } else {
            black_box(model.score_with(w, network));
        }
    };
    windows.iter().take(50).for_each(score);
    let n = if explained { 1000 } else { 5000 };
    let mut times = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let t = Instant::now();
        score(&windows[i % windows.len()]);
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let total = started.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let label = if explained { " with drivers" } else { "" };
    println!(
        "{network:?}{label}: p50 {:.1} µs, p99 {:.1} µs, {:.0} windows/s on one thread",
        times[n / 2],
        times[n * 99 / 100],
        n as f64 / total
    );
    times[n / 2]
}

/// The candle forward pass for one window, as training has it, for comparison (see
/// `src/model/fast.rs`); set `RAYON_NUM_THREADS` to see how much of it is candle asking for the
/// number of cores.
fn candle_percentiles(model: &RigModel, windows: &[HashMap<String, Vec<f64>>]) {
    let networks = Networks::of(model).expect("candle networks of the shipped model");
    let n = 1000;
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        black_box(networks.probabilities(model, &windows[i % windows.len()], Network::Gnn).unwrap());
        times.push(t.elapsed().as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    println!("Gnn through candle: p50 {:.1} µs (RAYON_NUM_THREADS {:?})", times[n / 2], std::env::var("RAYON_NUM_THREADS").ok());
}

/// What the shipped feature layout costs against `uci-rig-v1` (the summary layout: no step
/// features, 27 inputs a node instead of 44), measured in this run beside it.
fn layout_cost(model: &RigModel, windows: &[Window], plain: f64, explained: f64) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let old = RigModel::load(&root.join("models/uci-rig-v1")).expect("uci-rig-v1");
    println!("uci-rig-v1 ({:?} features, {} inputs a node) in the same run:", old.feature_layout(), old.node_features());
    let old_plain = percentiles(&old, windows, Network::Gnn, false);
    let old_explained = percentiles(&old, windows, Network::Gnn, true);
    println!(
        "{:?} features ({} inputs a node) cost {:.2}× plain and {:.2}× with drivers at p50",
        model.feature_layout(),
        model.node_features(),
        plain / old_plain,
        explained / old_explained
    );
}

fn bench(c: &mut Criterion) {
    let (model, windows, native) = setup();
    // `cargo test --all-targets` runs this file once in a debug build without `--bench`:
    // criterion then only smoke-tests each function, and so do we.
    if std::env::args().any(|a| a == "--bench") {
        let plain = percentiles(&model, &windows, Network::Gnn, false);
        percentiles(&model, &windows, Network::Mlp, false);
        let explained = percentiles(&model, &windows, Network::Gnn, true);
        println!("drivers cost {:.1}× plain GNN scoring at p50", explained / plain);
        layout_cost(&model, &windows, plain, explained);
        candle_percentiles(&model, &windows);
        rate_percentiles(&model, &windows, &native);
    }
    let mut group = c.benchmark_group("score_window");
    group.throughput(Throughput::Elements(1));
    for (name, network) in [("gnn", Network::Gnn), ("mlp", Network::Mlp)] {
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % windows.len();
                black_box(model.score_with(&windows[i], network))
            })
        });
    }
    for (name, set) in [("gnn_window_1hz", &windows), ("gnn_window_native_rates", &native)] {
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % set.len();
                black_box(model.score_window(&set[i], 60.0))
            })
        });
    }
    let mut i = 0;
    group.bench_function("gnn_with_drivers", |b| {
        b.iter(|| {
            i = (i + 1) % windows.len();
            black_box(model.score_explained(&windows[i]))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
