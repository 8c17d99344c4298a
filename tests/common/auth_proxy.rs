//! A TLS-terminating proxy in front of the stack's schema registry that demands credentials:
//! Apicurio's own authentication needs an OIDC server, which cannot run here, so this stands in
//! for a secured registry (Confluent Cloud, Apicurio behind a gateway). It serves HTTPS with the
//! stack's server certificate (signed by the stack's CA) and forwards only requests carrying the
//! expected basic credentials or bearer token; anything else gets 401 and is not forwarded.
//! It can also answer the next requests with a server error, as a registry does while its
//! storage restarts.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::net::{TcpListener, TcpStream};
use tokio_native_tls::{TlsAcceptor, TlsStream};

pub const USER: &str = "registry-user";
pub const PASSWORD: &str = "registry-pass";
pub const TOKEN: &str = "registry-token";

pub struct AuthProxy {
    /// `https://127.0.0.1:PORT` plus the upstream URL's path.
    pub url: String,
    forwarded: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    failing: Arc<AtomicUsize>,
}

impl AuthProxy {
    /// The next `n` requests with valid credentials get HTTP 500 and are not forwarded.
    pub fn fail_next(&self, n: usize) {
        self.failing.store(n, Ordering::SeqCst);
    }

    /// Requests that carried valid credentials and went to the registry.
    pub fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }

    /// Requests answered 401.
    pub fn refused(&self) -> usize {
        self.refused.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct Shared {
    upstream: String,
    http: reqwest::Client,
    forwarded: Arc<AtomicUsize>,
    refused: Arc<AtomicUsize>,
    failing: Arc<AtomicUsize>,
}

/// Starts the proxy for the registry at `upstream` (e.g. `http://127.0.0.1:58080/apis/ccompat/v7`),
/// with the certificate and key in `tls_dir` (`server.crt`, `server.key`).
pub async fn start(upstream: &str, tls_dir: &std::path::Path) -> AuthProxy {
    let cert = std::fs::read(tls_dir.join("server.crt")).expect("the stack's server certificate");
    let key = std::fs::read(tls_dir.join("server.key")).expect("the stack's server key");
    let identity = native_tls::Identity::from_pkcs8(&cert, &key).expect("a PKCS#8 key and its certificate");
    let acceptor = TlsAcceptor::from(native_tls::TlsAcceptor::new(identity).expect("TLS acceptor"));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();

    let parsed = reqwest::Url::parse(upstream).expect("registry URL");
    let origin = format!("{}://{}:{}", parsed.scheme(), parsed.host_str().unwrap(), parsed.port_or_known_default().unwrap());
    let shared = Shared {
        upstream: origin,
        http: reqwest::Client::new(),
        forwarded: Arc::default(),
        refused: Arc::default(),
        failing: Arc::default(),
    };
    let proxy = AuthProxy {
        url: format!("https://127.0.0.1:{port}{}", parsed.path().trim_end_matches('/')),
        forwarded: shared.forwarded.clone(),
        refused: shared.refused.clone(),
        failing: shared.failing.clone(),
    };
    let app = axum::Router::new().fallback(forward).with_state(shared);
    tokio::spawn(async move { axum::serve(TlsListener { tcp: listener, acceptor }, app).await.unwrap() });
    proxy
}

fn authorized(headers: &HeaderMap) -> bool {
    use base64::Engine;
    let Some(value) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
    value == format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))) || value == format!("Bearer {TOKEN}")
}

async fn forward(State(shared): State<Shared>, request: Request) -> Response {
    if !authorized(request.headers()) {
        shared.refused.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Basic realm=\"registry\", Bearer")], "{\"error_code\":401,\"message\":\"Unauthorized\"}").into_response();
    }
    if shared.failing.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
        // What Apicurio answered while its PostgreSQL restarted.
        let body = "{\"error_code\":500,\"message\":\"FATAL: terminating connection due to administrator command\"}";
        return (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let (parts, body) = request.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, 16 << 20).await {
        Ok(b) => b,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap();
    let mut upstream = shared.http.request(method, format!("{}{path}", shared.upstream)).body(body.to_vec());
    for name in [header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(value) = parts.headers.get(&name) {
            upstream = upstream.header(name.as_str(), value.as_bytes());
        }
    }
    match upstream.send().await {
        Ok(answer) => {
            shared.forwarded.fetch_add(1, Ordering::SeqCst);
            let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
            let content_type = answer.headers().get("content-type").map(|v| v.as_bytes().to_vec());
            let bytes = answer.bytes().await.unwrap_or_default();
            let mut response = Response::builder().status(status);
            if let Some(ct) = content_type {
                response = response.header(header::CONTENT_TYPE, ct);
            }
            response.body(Body::from(bytes)).unwrap()
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

/// TCP connections with a finished TLS handshake; a failed handshake (a client that does not
/// trust the certificate) is dropped and the next connection accepted.
struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.tcp.accept().await else { continue };
            if let Ok(Ok(tls)) = tokio::time::timeout(std::time::Duration::from_secs(5), self.acceptor.accept(stream)).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}
