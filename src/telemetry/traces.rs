//! Optional OpenTelemetry traces, exported over OTLP/HTTP with JSON bodies when an endpoint is
//! configured (`telemetry.otlp_endpoint`, or the standard `OTEL_EXPORTER_OTLP_ENDPOINT`).
//!
//! One trace per announced window revision. It starts at the transaction that announces the
//! window (`window.announce`, a root span linked to the `ingest.chunk` spans whose
//! transactions wrote the window's readings), goes on in the relay (`relay.publish`, its
//! child) and ends in infer (`infer.score`, the relay span's child). The context travels as a
//! W3C `traceparent`: in the outbox row's headers, then in the window-ready message's Kafka
//! headers, and infer puts its own on the score message.
//!
//! With export off nothing here makes a span, a header or a stored link: every entry point is
//! one relaxed atomic load that answers "off".

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanContext, Status, TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::TelemetryConfig;

/// The `tracing` target of every span exported; the export layer sees no other.
pub const TARGET: &str = "manifold::traces";
/// The W3C Trace Context header, in the outbox headers and on Kafka messages.
pub const TRACEPARENT: &str = "traceparent";
/// Chunk links kept per window: the newest ones (the bound is in `windows_upsert.sql`).
pub const MAX_LINKS: usize = 16;

static ON: AtomicBool = AtomicBool::new(false);

/// True once an exporter is installed: spans are made and contexts carried only then.
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

/// The OTLP/HTTP traces URL for a configured base endpoint (the `/v1/traces` the variable's
/// specification appends), or `None` when export is off.
pub fn traces_url(config: &TelemetryConfig) -> Option<String> {
    let base = config.otlp_endpoint.as_deref().map(str::trim).filter(|e| !e.is_empty())?;
    Some(format!("{}/v1/traces", base.trim_end_matches('/')))
}

#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("cannot build the OTLP exporter for {url}: {message}")]
    Exporter { url: String, message: String },
}

/// The installed exporter; [`Exporter::shutdown`] sends what is still buffered.
pub struct Exporter {
    provider: SdkTracerProvider,
    url: String,
}

impl Exporter {
    /// An exporter when an endpoint is configured, none otherwise. Spans are batched and sent
    /// from the SDK's own thread (`OTEL_BSP_*` tune it), never from a request or ingest task.
    pub fn from_config(config: &TelemetryConfig, service_name: Option<&str>) -> Result<Option<Exporter>, TraceError> {
        let Some(url) = traces_url(config) else { return Ok(None) };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpJson)
            .with_endpoint(url.clone())
            .build()
            .map_err(|e| TraceError::Exporter { url: url.clone(), message: e.to_string() })?;
        let resource = opentelemetry_sdk::Resource::builder().with_service_name(service_name.unwrap_or("manifold").to_owned()).build();
        let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
        Ok(Some(Exporter { provider, url }))
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub(super) fn tracer(&self) -> SdkTracer {
        self.provider.tracer("manifold")
    }

    /// Spans are made from now on.
    pub(super) fn activate(&self) {
        ON.store(true, Ordering::Relaxed);
    }

    /// Stops making spans and sends the buffered ones (blocking: call it off the runtime).
    pub fn shutdown(self) {
        ON.store(false, Ordering::Relaxed);
        if let Err(err) = self.provider.shutdown() {
            tracing::warn!(error = %err, url = %self.url, "traces not all exported at shutdown");
        }
    }
}

/// A span of a window's trace (or of an ingest chunk), or nothing with export off. It ends when
/// the last clone is dropped.
#[derive(Debug, Clone, Default)]
pub struct TraceSpan(Option<tracing::Span>);

impl TraceSpan {
    /// This span's `traceparent`, to store or send with what it announces.
    pub fn traceparent(&self) -> Option<String> {
        let span = self.0.as_ref()?;
        let context = span.context();
        let span_ref = context.span();
        let sc = span_ref.span_context();
        sc.is_valid().then(|| format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8()))
    }

    /// Marks the span failed: what it stands for did not happen (a rolled-back transaction, an
    /// aborted publish, a window set aside).
    pub fn failed(&self, why: &str) {
        if let Some(span) = &self.0 {
            span.set_status(Status::error(why.to_owned()));
        }
    }
}

/// The span context a stored or received `traceparent` names; none when it is malformed.
pub fn parse(traceparent: &str) -> Option<SpanContext> {
    struct One<'a>(&'a str);
    impl Extractor for One<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            (key == TRACEPARENT).then_some(self.0)
        }
        fn keys(&self) -> Vec<&str> {
            vec![TRACEPARENT]
        }
    }
    let context = TraceContextPropagator::new().extract(&One(traceparent));
    let sc = context.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// The span of one ingest transaction (a root: chunks are not part of a window's trace, they
/// are linked from it).
pub fn chunk(batches: usize, readings: usize, dead_letters: usize) -> TraceSpan {
    if !enabled() {
        return TraceSpan(None);
    }
    TraceSpan(Some(tracing::info_span!(
        target: TARGET,
        parent: None,
        "ingest.chunk",
        manifold.batches = batches,
        manifold.readings = readings,
        manifold.dead_letters = dead_letters,
    )))
}

/// The root span of a window revision's trace, linked to the chunks that wrote its readings.
pub fn announce(system_id: &str, window_start: DateTime<Utc>, revision: i32, closed_by: &str, links: &[String]) -> TraceSpan {
    if !enabled() {
        return TraceSpan(None);
    }
    let span = tracing::info_span!(
        target: TARGET,
        parent: None,
        "window.announce",
        manifold.system_id = system_id,
        manifold.window_start = %window_start.to_rfc3339(),
        manifold.revision = revision,
        manifold.closed_by = closed_by,
    );
    for link in links.iter().filter_map(|l| parse(l)) {
        span.add_link(link);
    }
    TraceSpan(Some(span))
}

/// The relay's span for one outbox event, a child of the span that announced it; none for an
/// event without a trace (dead letters, events written while export was off).
pub fn relay(parent: Option<&str>, seq: i64, topic: &str) -> TraceSpan {
    if !enabled() {
        return TraceSpan(None);
    }
    child(parent, || tracing::info_span!(target: TARGET, parent: None, "relay.publish", otel.kind = "producer", manifold.outbox_seq = seq, messaging.destination.name = topic))
}

/// Infer's span for one window-ready message, a child of the relay's span: it covers scoring
/// the window through the transaction that publishes its scores.
pub fn score(parent: Option<&str>, partition: i32, offset: i64) -> TraceSpan {
    if !enabled() {
        return TraceSpan(None);
    }
    child(parent, || {
        tracing::info_span!(target: TARGET, parent: None, "infer.score", otel.kind = "consumer", messaging.kafka.partition = partition, messaging.kafka.offset = offset)
    })
}

fn child(parent: Option<&str>, make: impl FnOnce() -> tracing::Span) -> TraceSpan {
    let Some(parent) = parent.and_then(parse) else { return TraceSpan(None) };
    let span = make();
    // Fails only when the export layer is not installed, and then the span is not exported.
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    TraceSpan(Some(span))
}

/// The spans of one ingest transaction: its own and those of the windows it announces. They end
/// when this is dropped, after the commit; [`ChunkTrace::failed`] first when it did not commit.
#[derive(Debug, Default)]
pub struct ChunkTrace {
    span: TraceSpan,
    announced: Vec<TraceSpan>,
}

impl ChunkTrace {
    pub fn start(batches: usize, readings: usize, dead_letters: usize) -> ChunkTrace {
        ChunkTrace { span: chunk(batches, readings, dead_letters), announced: Vec::new() }
    }

    /// No spans: a transaction that is rolled back by design (a canary), or export off.
    pub fn off() -> ChunkTrace {
        ChunkTrace::default()
    }

    /// The chunk span's `traceparent`, stored with the windows it writes readings to.
    pub fn traceparent(&self) -> Option<String> {
        self.span.traceparent()
    }

    pub fn announced(&mut self, spans: Vec<TraceSpan>) {
        self.announced.extend(spans);
    }

    pub fn failed(&self, why: &str) {
        self.span.failed(why);
        for span in &self.announced {
            span.failed(why);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: Option<&str>) -> TelemetryConfig {
        TelemetryConfig { log_format: crate::config::LogFormat::Json, log_level: "info".into(), otlp_endpoint: endpoint.map(str::to_owned) }
    }

    #[test]
    fn export_is_off_without_an_endpoint_and_builds_no_exporter() {
        assert_eq!(traces_url(&config(None)), None);
        assert_eq!(traces_url(&config(Some("  "))), None, "an empty endpoint is unset, as the OTel specification says");
        assert!(Exporter::from_config(&config(None), None).unwrap().is_none());
        assert!(!enabled());
        assert!(chunk(1, 2, 0).traceparent().is_none());
        assert!(announce("rig-0", Utc::now(), 0, "WATERMARK", &[]).traceparent().is_none());
        let parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        assert!(relay(Some(parent), 1, "t").traceparent().is_none(), "off: no span even for an event with a trace");
    }

    #[test]
    fn the_traces_path_is_appended_to_the_base_endpoint() {
        assert_eq!(traces_url(&config(Some("http://collector:4318"))).as_deref(), Some("http://collector:4318/v1/traces"));
        assert_eq!(traces_url(&config(Some("http://collector:4318/"))).as_deref(), Some("http://collector:4318/v1/traces"));
    }

    #[test]
    fn a_traceparent_parses_to_its_span_context_and_garbage_to_none() {
        let sc = parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").expect("valid");
        assert_eq!(sc.trace_id().to_string(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(sc.span_id().to_string(), "b7ad6b7169203331");
        assert!(sc.is_sampled() && sc.is_remote());
        for bad in ["", "00-00000000000000000000000000000000-b7ad6b7169203331-01", "nonsense", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"] {
            assert!(parse(bad).is_none(), "{bad:?}");
        }
    }
}
