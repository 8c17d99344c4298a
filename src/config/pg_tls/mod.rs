//! PostgreSQL TLS settings with libpq's meaning. tokio-postgres knows only disable/prefer/require
//! and rejects the certificate parameters, so they are taken out of the connection string here,
//! once, when the configuration loads; the rest goes to tokio-postgres unchanged.

pub(super) mod params;
#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SslMode {
    Disable,
    Allow,
    #[default]
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn parse(value: &str) -> Result<Self, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode={other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whose certificates the server's chain must lead to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// A PEM file of trusted CA certificates (only these are trusted, as in libpq).
    File(PathBuf),
    /// `sslrootcert=system`: the operating system's trust store.
    System,
}

/// What one connection attempt does about TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Plain,
    Tls,
}

/// The TLS settings of the database connection, decided at load time.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PgTls {
    /// The mode in effect: `require` with a root certificate present is already `verify-ca` here.
    pub mode: SslMode,
    /// The mode as written (or libpq's default), for messages.
    pub requested: SslMode,
    /// Set for verify-ca and verify-full.
    pub root_cert: Option<RootCert>,
    /// A client certificate and its key, both PEM (the key PKCS#8).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// The `ssl*` parameters as written in the connection string, before defaults and checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsParams {
    pub sslmode: Option<String>,
    pub sslrootcert: Option<String>,
    pub sslcert: Option<String>,
    pub sslkey: Option<String>,
}

/// Where libpq looks when a parameter is not given: `~/.postgresql/`.
pub fn default_dir(home: Option<&Path>) -> Option<PathBuf> {
    home.map(|home| home.join(".postgresql"))
}

impl PgTls {
    /// Splits a connection string (URL or key=value) into its TLS settings and the rest,
    /// which tokio-postgres accepts. Files are looked up relative to `home` as libpq does.
    pub fn from_connection_string(url: &str, home: Option<&Path>) -> Result<(PgTls, String), String> {
        let (params, rest) = params::split(url)?;
        let tls = Self::decide(&params, default_dir(home).as_deref(), &|path| path.is_file())?;
        Ok((tls, rest))
    }

    /// libpq's rules, as a pure function of the parameters and which files exist.
    pub fn decide(params: &TlsParams, default_dir: Option<&Path>, exists: &dyn Fn(&Path) -> bool) -> Result<PgTls, String> {
        let requested = params.sslmode.as_deref().map(SslMode::parse).transpose()?.unwrap_or_default();
        let default_file = |name: &str| default_dir.map(|dir| dir.join(name));
        let root = match params.sslrootcert.as_deref() {
            Some("system") => Some(RootCert::System),
            Some(path) => Some(RootCert::File(PathBuf::from(path))),
            None => default_file("root.crt").filter(|path| exists(path)).map(RootCert::File),
        };
        let mode = match (requested, &root) {
            // libpq: "if a root CA file exists, require behaves like verify-ca".
            (SslMode::Require, Some(_)) => SslMode::VerifyCa,
            (mode, _) => mode,
        };
        let root_cert = match mode {
            SslMode::VerifyCa | SslMode::VerifyFull => match root {
                Some(RootCert::File(path)) if !exists(&path) => {
                    return Err(format!("sslmode={requested} needs the root certificate {}, which does not exist", path.display()));
                }
                None => {
                    let looked = default_file("root.crt").map_or_else(|| "~/.postgresql/root.crt".to_owned(), |p| p.display().to_string());
                    return Err(format!(
                        "sslmode={requested} needs a root certificate: set sslrootcert=FILE or provide {looked}"
                    ));
                }
                root => root,
            },
            _ => None,
        };
        if matches!(root_cert, Some(RootCert::System)) && mode != SslMode::VerifyFull {
            return Err("sslrootcert=system is only allowed with sslmode=verify-full".to_owned());
        }
        let client_cert = match (params.sslcert.as_deref(), params.sslkey.as_deref()) {
            (None, None) => {
                let cert = default_file("postgresql.crt").filter(|p| exists(p));
                let key = default_file("postgresql.key").filter(|p| exists(p));
                cert.zip(key)
            }
            (Some(cert), key) => {
                let key = key.map(PathBuf::from).or_else(|| default_file("postgresql.key"));
                let key = key.ok_or("sslcert is set but sslkey is not")?;
                Some((PathBuf::from(cert), key))
            }
            (None, Some(_)) => return Err("sslkey is set but sslcert is not".to_owned()),
        };
        if mode != SslMode::Disable {
            for path in client_cert.iter().flat_map(|(cert, key)| [cert, key]) {
                if !exists(path) {
                    return Err(format!("the client certificate file {} does not exist", path.display()));
                }
            }
        }
        Ok(PgTls { mode, requested, root_cert, client_cert })
    }

    /// The attempts a connection makes, in order: libpq's `allow` tries plaintext first,
    /// `prefer` TLS first; the others make one.
    pub fn attempts(&self) -> &'static [Attempt] {
        match self.mode {
            SslMode::Disable => &[Attempt::Plain],
            SslMode::Allow => &[Attempt::Plain, Attempt::Tls],
            SslMode::Prefer => &[Attempt::Tls, Attempt::Plain],
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => &[Attempt::Tls],
        }
    }

    /// Whether the server's chain is checked against `root_cert`.
    pub fn verifies_chain(&self) -> bool {
        matches!(self.mode, SslMode::VerifyCa | SslMode::VerifyFull)
    }

    /// Whether the server's name must match the host connected to.
    pub fn verifies_host(&self) -> bool {
        self.mode == SslMode::VerifyFull
    }

    /// The root certificate named in messages.
    pub fn root_cert_name(&self) -> String {
        match &self.root_cert {
            Some(RootCert::File(path)) => path.display().to_string(),
            Some(RootCert::System) => "the system's trust store".to_owned(),
            None => "no root certificate (not verified)".to_owned(),
        }
    }
}
