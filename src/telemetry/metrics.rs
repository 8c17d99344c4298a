use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

/// The process-wide registry. Components register their own collectors on it at start-up and
/// keep the handles; `/metrics` renders it.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
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
        let registry = Registry::new();
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

    pub fn registry(&self) -> &Registry {
        &self.registry
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

/// Registers a collector built from constant, valid options; failure is a programming error.
pub fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    collector: prometheus::Result<C>,
) -> C {
    let collector = collector.expect("metric options are constant and valid");
    registry.register(Box::new(collector.clone())).expect("each metric is registered once");
    collector
}
