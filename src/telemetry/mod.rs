//! Logs (tracing) and metrics (one Prometheus registry shared by every component).

mod metrics;
pub mod ops;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, TelemetryConfig};

pub use metrics::{Metrics, Registrar, histogram, register};

/// Installs the global subscriber. Logs go to stderr so that commands can print reports on stdout.
/// `RUST_LOG`, when set, wins over the configured level.
pub fn init_logging(config: &TelemetryConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests, embedding) keeps the first subscriber; that is not an error worth failing on.
    let _ = if json {
        builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init()
    } else {
        builder.try_init()
    };
}
