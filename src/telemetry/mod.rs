//! Logs (tracing), metrics (one Prometheus registry shared by every component), and optional
//! trace export (OpenTelemetry, see [`traces`]).

mod metrics;
pub mod ops;
pub mod traces;

use std::io::IsTerminal;

use tracing::Level;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogFormat, TelemetryConfig};

pub use metrics::{Metrics, Registrar, histogram, register};
pub use traces::{Exporter, TraceError};

/// Installs the global subscriber. Logs go to stderr so that commands can print reports on stdout.
/// `RUST_LOG`, when set, wins over the configured level.
pub fn init_logging(config: &TelemetryConfig) {
    install(config, None);
}

/// Logs as [`init_logging`], and spans exported to `exporter` when there is one. Export is on
/// only when this installed the subscriber (a second init keeps the first, without export).
pub fn init(config: &TelemetryConfig, exporter: Option<&Exporter>) -> bool {
    let installed = install(config, exporter);
    if let Some(exporter) = exporter.filter(|_| installed) {
        exporter.activate();
        tracing::info!(url = exporter.url(), "exporting traces (OTLP/HTTP)");
    }
    installed
}

fn install(config: &TelemetryConfig, exporter: Option<&Exporter>) -> bool {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.log_level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = if json {
        logs.json().flatten_event(true).with_current_span(true).with_span_list(false).with_filter(filter).boxed()
    } else {
        logs.with_filter(filter).boxed()
    };
    // Its own filter: the log level does not decide which spans are exported, and only the
    // spans of a window's trace are (see traces), whatever else is instrumented.
    let export = exporter.map(|e| {
        tracing_opentelemetry::layer()
            .with_tracer(e.tracer())
            .with_location(false)
            .with_threads(false)
            .with_filter(Targets::new().with_target(traces::TARGET, Level::INFO))
    });
    // A second init (tests, embedding) keeps the first subscriber; that is not an error worth failing on.
    tracing_subscriber::registry().with(logs).with(export).try_init().is_ok()
}
