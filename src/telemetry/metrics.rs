use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

/// The process-wide registry. Components register their own collectors on it at start-up and
/// keep the handles; `/metrics` renders it.
#[derive(Clone)]
pub struct Metrics {
    registry: Registrar,
    pub maintenance: MaintenanceMetrics,
}

#[derive(Clone)]
pub struct MaintenanceMetrics {
    /// Partitions created or dropped, and rows pruned, by action (bounded set of values).
    pub actions_total: IntCounterVec,
    /// Maintenance runs by outcome (ok, error).
    pub runs_total: IntCounterVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registrar::default();
        let maintenance = MaintenanceMetrics {
            actions_total: register(
                &registry,
                IntCounterVec::new(
                    Opts::new("manifold_maintenance_actions_total", "Partitions created/dropped and rows pruned by storage maintenance"),
                    &["action"],
                ),
            ),
            runs_total: register(
                &registry,
                IntCounterVec::new(Opts::new("manifold_maintenance_runs_total", "Storage maintenance runs by outcome"), &["outcome"]),
            ),
        };
        Self { registry, maintenance }
    }

    pub fn registry(&self) -> &Registrar {
        &self.registry
    }

    /// Every registered metric as `name{label,…}`, sorted. `/metrics` shows a labelled metric
    /// only once a label value was used, so this is the way to see all of them (the golden
    /// test pins it).
    pub fn registered(&self) -> Vec<String> {
        self.registry.names.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }

    /// The Prometheus text exposition of every registered collector.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The Prometheus registry plus the descriptors registered on it: prometheus cannot list its
/// collectors, and a labelled metric is absent from `/metrics` until a label value is used.
#[derive(Clone, Default)]
pub struct Registrar {
    registry: Registry,
    names: Arc<Mutex<BTreeSet<String>>>,
}

impl std::ops::Deref for Registrar {
    type Target = Registry;
    fn deref(&self) -> &Registry {
        &self.registry
    }
}

/// Registers a collector built from constant, valid options; failure is a programming error.
pub fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registrar,
    collector: prometheus::Result<C>,
) -> C {
    let collector = collector.expect("metric options are constant and valid");
    registry.registry.register(Box::new(collector.clone())).expect("each metric is registered once");
    let mut names = registry.names.lock().unwrap_or_else(|p| p.into_inner());
    for desc in collector.desc() {
        let labels = if desc.variable_labels.is_empty() { String::new() } else { format!("{{{}}}", desc.variable_labels.join(",")) };
        names.insert(format!("{}{labels}", desc.fq_name));
    }
    collector
}

/// Registers an unlabelled histogram with explicit buckets (chosen per metric from its expected
/// range, so the quantiles an operator reads are not all in the first or last bucket).
pub fn histogram(registry: &Registrar, name: &str, help: &str, buckets: &[f64]) -> prometheus::Histogram {
    register(registry, prometheus::Histogram::with_opts(prometheus::HistogramOpts::new(name, help).buckets(buckets.to_vec())))
}
