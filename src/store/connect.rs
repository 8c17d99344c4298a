//! Every PostgreSQL connection manifold opens (pool, dedicated, LISTEN) goes through here, so
//! each one honours the configured `sslmode` the way libpq does.

use std::future::Future;
use std::pin::Pin;

use deadpool_postgres::Connect;
use postgres_native_tls::{MakeTlsConnector, TlsStream};
use tokio_postgres::config::SslMode as DriverMode;
use tokio_postgres::{Client, Connection, Socket};

use super::StoreError;
use crate::config::pg_tls::{Attempt, PgTls, RootCert, SslMode};

pub type PgConnection = Connection<Socket, TlsStream<Socket>>;

/// The TLS half of a connection: the connector built from the settings, once per pool.
#[derive(Clone)]
pub struct Connector {
    tls: PgTls,
    make: MakeTlsConnector,
}

impl Connector {
    /// Reads the certificate files; a file that cannot be read or parsed is named in the error.
    pub fn new(tls: &PgTls) -> Result<Self, StoreError> {
        let mut builder = native_tls::TlsConnector::builder();
        // Without verification libpq still encrypts: `require`, `prefer` and `allow` accept any
        // certificate, `verify-ca` checks the chain only, `verify-full` the host name too.
        builder.danger_accept_invalid_certs(!tls.verifies_chain());
        builder.danger_accept_invalid_hostnames(!tls.verifies_host());
        if let Some(RootCert::File(path)) = &tls.root_cert {
            let pem = read(path, "root certificate")?;
            let roots = native_tls::Certificate::stack_from_pem(&pem)
                .map_err(|e| StoreError::Tls(format!("the root certificate {} is not PEM: {e}", path.display())))?;
            // Like libpq: only the named file is trusted, not the system's store.
            builder.disable_built_in_roots(true);
            for root in roots {
                builder.add_root_certificate(root);
            }
        }
        if let Some((cert, key)) = &tls.client_cert {
            let identity = native_tls::Identity::from_pkcs8(&read(cert, "client certificate")?, &read(key, "client key")?)
                .map_err(|e| {
                    StoreError::Tls(format!(
                        "the client certificate {} with key {} cannot be used ({e}); the key must be PEM PKCS#8 \
                         (convert with `openssl pkcs8 -topk8 -nocrypt`)",
                        cert.display(),
                        key.display()
                    ))
                })?;
            builder.identity(identity);
        }
        let connector = builder.build().map_err(|e| StoreError::Tls(format!("cannot set up TLS: {e}")))?;
        Ok(Self { tls: tls.clone(), make: MakeTlsConnector::new(connector) })
    }

    /// Connects, trying plaintext and TLS in the order the mode asks for; a later attempt is
    /// made only when the server answered the earlier one with a refusal.
    pub async fn connect(&self, pg: &tokio_postgres::Config) -> Result<(Client, PgConnection), tokio_postgres::Error> {
        let attempts = self.tls.attempts();
        let mut last = None;
        for (index, attempt) in attempts.iter().enumerate() {
            let mut pg = pg.clone();
            pg.ssl_mode(driver_mode(self.tls.mode, *attempt));
            match pg.connect(self.make.clone()).await {
                Ok(connected) => return Ok(connected),
                Err(err) if err.as_db_error().is_some() && index + 1 < attempts.len() => last = Some(err),
                Err(err) => return Err(err),
            }
        }
        Err(last.expect("at least one attempt is made"))
    }

    /// A driver error in terms of the TLS settings, when TLS is what went wrong.
    pub fn explain(&self, context: &'static str, err: tokio_postgres::Error) -> StoreError {
        match tls_problem(&self.tls, &err) {
            Some(problem) => StoreError::Tls(format!("{context}: {problem}")),
            None => StoreError::query(context, err),
        }
    }
}

/// What tokio-postgres is told for one attempt. `prefer`'s TLS attempt is the driver's own
/// `prefer`, which goes on in plaintext on the same socket when the server has no TLS.
fn driver_mode(mode: SslMode, attempt: Attempt) -> DriverMode {
    match (attempt, mode) {
        (Attempt::Plain, _) => DriverMode::Disable,
        (Attempt::Tls, SslMode::Prefer) => DriverMode::Prefer,
        (Attempt::Tls, _) => DriverMode::Require,
    }
}

fn read(path: &std::path::Path, what: &str) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|e| StoreError::Tls(format!("cannot read the {what} {}: {e}", path.display())))
}

/// Says what is wrong when the failure is about TLS: a handshake that failed (naming the root
/// certificate the server was checked against), a server without TLS, or a server that
/// refuses connections without it.
pub fn tls_problem(tls: &PgTls, err: &tokio_postgres::Error) -> Option<String> {
    if let Some(db) = err.as_db_error() {
        // pg_hba.conf's hostssl-only rules answer "… no encryption" to a plaintext attempt.
        return (db.code().code() == "28000" && db.message().ends_with("no encryption")).then(|| {
            format!(
                "the server requires TLS for this connection, but sslmode={} did not use it ({})",
                tls.requested,
                db.message()
            )
        });
    }
    let text = err.to_string();
    if text.contains("server does not support TLS") {
        return Some(format!("sslmode={} requires TLS, but the server does not support it", tls.requested));
    }
    let handshake = chain_has::<native_tls::Error>(err) || text.contains("TLS handshake");
    handshake.then(|| {
        let cause = std::error::Error::source(err).map_or_else(String::new, |s| format!(": {s}"));
        format!(
            "TLS handshake failed (sslmode={}, root certificate {}){cause}",
            tls.requested,
            tls.root_cert_name()
        )
    })
}

fn chain_has<T: std::error::Error + 'static>(err: &tokio_postgres::Error) -> bool {
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        if inner.is::<T>() {
            return true;
        }
        source = inner.source();
    }
    false
}

/// The pool connects the same way as everything else.
pub struct PoolConnect(pub Connector);

impl Connect for PoolConnect {
    fn connect(
        &self,
        pg: &tokio_postgres::Config,
    ) -> Pin<Box<dyn Future<Output = Result<(Client, tokio::task::JoinHandle<()>), tokio_postgres::Error>> + Send + '_>> {
        let pg = pg.clone();
        Box::pin(async move {
            let (client, connection) = self.0.connect(&pg).await?;
            let driver = tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!(error = %err, "pooled database connection closed");
                }
            });
            Ok((client, driver))
        })
    }
}
