//! An in-test OTLP/HTTP receiver: a collector cannot run here, so this stands in for one. It
//! takes `POST /v1/traces` with JSON bodies (the OTLP/JSON encoding: ids as hex strings) and
//! keeps the spans it decoded.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Span {
    pub service: String,
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// (trace id, span id) of each link.
    pub links: Vec<(String, String)>,
    pub attributes: BTreeMap<String, String>,
    pub error: bool,
}

#[derive(Clone, Default)]
pub struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
    /// Requests that were not OTLP/JSON trace exports, so a wrong encoding fails loudly.
    refused: Arc<Mutex<Vec<String>>>,
}

impl Received {
    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }

    pub fn refused(&self) -> Vec<String> {
        self.refused.lock().unwrap().clone()
    }

    /// Polls until `done` holds for the spans received, or panics after `timeout`.
    pub async fn wait_until(&self, timeout: Duration, what: &str, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
            assert!(tokio::time::Instant::now() < deadline, "{what}: not within {timeout:?}; received {names:?}, refused {:?}", self.refused());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Serves on a free port of 127.0.0.1; returns the base URL (for `OTEL_EXPORTER_OTLP_ENDPOINT`).
///
/// It runs on a thread and runtime of its own: the exporters drop a batch whose request times
/// out, so the receiver must answer even while the test's own workers are busy or blocked.
pub async fn start() -> (String, Received) {
    let received = Received::default();
    let app = Router::new().route("/v1/traces", post(export)).with_state(received.clone());
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the receiver");
    listener.set_nonblocking(true).expect("non-blocking listener");
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("the receiver's runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            axum::serve(listener, app).await.expect("receiver runs")
        })
    });
    (base, received)
}

async fn export(State(received): State<Received>, headers: HeaderMap, body: Bytes) -> (StatusCode, [(header::HeaderName, &'static str); 1], &'static str) {
    let json = [(header::CONTENT_TYPE, "application/json")];
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let parsed = serde_json::from_slice::<Value>(&body).ok().filter(|_| content_type.starts_with("application/json"));
    let Some(request) = parsed else {
        received.refused.lock().unwrap().push(format!("{content_type}: {} bytes", body.len()));
        return (StatusCode::BAD_REQUEST, json, "{}");
    };
    let mut spans = Vec::new();
    for resource in request["resourceSpans"].as_array().into_iter().flatten() {
        let service = attributes(&resource["resource"]["attributes"]).remove("service.name").unwrap_or_default();
        for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
            for span in scope["spans"].as_array().into_iter().flatten() {
                spans.push(decode(&service, span));
            }
        }
    }
    received.spans.lock().unwrap().extend(spans);
    (StatusCode::OK, json, "{}")
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_ascii_lowercase()
}

fn decode(service: &str, span: &Value) -> Span {
    Span {
        service: service.to_owned(),
        name: span["name"].as_str().unwrap_or_default().to_owned(),
        trace_id: text(&span["traceId"]),
        span_id: text(&span["spanId"]),
        parent_span_id: text(&span["parentSpanId"]),
        links: span["links"].as_array().into_iter().flatten().map(|l| (text(&l["traceId"]), text(&l["spanId"]))).collect(),
        attributes: attributes(&span["attributes"]),
        // STATUS_CODE_ERROR is 2; the JSON encoding may spell enums by number or name.
        error: matches!(&span["status"]["code"], Value::Number(n) if n.as_u64() == Some(2)) || span["status"]["code"] == "STATUS_CODE_ERROR",
    }
}

/// OTLP attributes (`[{key, value: {stringValue | intValue | ...}}]`) as text.
fn attributes(list: &Value) -> BTreeMap<String, String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|kv| {
            let key = kv["key"].as_str()?.to_owned();
            let value = kv["value"].as_object()?.values().next()?;
            Some((key, value.as_str().map_or_else(|| value.to_string(), str::to_owned)))
        })
        .collect()
}
