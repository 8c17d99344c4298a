//! The schema registry's address and how to authenticate to it: basic auth (Confluent Cloud's
//! API key and secret) or a bearer token, and a CA to trust besides the system's for a registry
//! with a private certificate authority.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::{ConfigError, Secret, units};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    pub url: String,
    #[serde(deserialize_with = "units::millis")]
    pub timeout_ms: Duration,
    /// Basic auth user (with `password`); exclusive with `token`.
    #[serde(default, deserialize_with = "text")]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// Sent as `Authorization: Bearer …`.
    #[serde(default)]
    pub token: Option<Secret>,
    /// PEM certificates trusted for the registry's TLS, besides the system's.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// How requests to the registry authenticate, decided once from the configuration.
#[derive(Debug, Clone, Copy)]
pub enum RegistryAuth<'a> {
    None,
    Basic { username: &'a str, password: &'a str },
    Bearer { token: &'a str },
}

impl SchemaRegistryConfig {
    pub fn auth(&self) -> RegistryAuth<'_> {
        match (&self.username, &self.password, &self.token) {
            (Some(username), Some(password), _) => RegistryAuth::Basic { username, password: password.expose() },
            (_, _, Some(token)) => RegistryAuth::Bearer { token: token.expose() },
            _ => RegistryAuth::None,
        }
    }

    /// The CA file's certificates (PEM), read when the configuration is loaded so a missing or
    /// unreadable file is reported before anything connects.
    pub fn ca_pem(&self) -> Result<Option<Vec<u8>>, ConfigError> {
        let Some(path) = &self.ca_file else { return Ok(None) };
        read_ca(path).map(Some).map_err(|why| ConfigError::Invalid { key: "schema_registry.ca_file".into(), why })
    }

    /// Basic and bearer are exclusive, basic needs both halves, secrets are not empty.
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, why: &str| Err(ConfigError::Invalid { key: format!("schema_registry.{key}"), why: why.to_owned() });
        let blank = |s: &Option<Secret>| s.as_ref().is_some_and(|s| s.expose().trim().is_empty());
        if self.token.is_some() && (self.username.is_some() || self.password.is_some()) {
            return invalid("token", "a bearer token and basic auth (username, password) are exclusive: set one of them");
        }
        match (&self.username, &self.password) {
            (Some(_), None) => return invalid("password", "basic auth needs a password with schema_registry.username"),
            (None, Some(_)) => return invalid("username", "basic auth needs a username with schema_registry.password"),
            (Some(user), Some(_)) if user.trim().is_empty() => return invalid("username", "must not be empty"),
            _ => {}
        }
        if blank(&self.password) {
            return invalid("password", "must not be empty");
        }
        if blank(&self.token) {
            return invalid("token", "must not be empty");
        }
        self.ca_pem()?;
        Ok(())
    }
}

fn read_ca(path: &Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| format!("{} is not a valid PEM certificate bundle: {e}", path.display()))?;
    Ok(pem)
}

/// An optional string key that a `MANIFOLD__…` variable may set to digits or `true` (which the
/// loader reads as a number or a boolean when the key has no default).
fn text<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Scalar>::deserialize(de)?.map(|s| s.0))
}

/// A string, or a number or boolean taken as its text.
pub(super) struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        match toml::Value::deserialize(de)? {
            toml::Value::String(s) => Ok(Scalar(s)),
            toml::Value::Integer(i) => Ok(Scalar(i.to_string())),
            toml::Value::Boolean(b) => Ok(Scalar(b.to_string())),
            // The value is never echoed: it may be a secret.
            other => Err(serde::de::Error::custom(format!("expected a string, not {}", other.type_str()))),
        }
    }
}
