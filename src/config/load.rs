//! Layering: built-in defaults, an optional file, the replaced backend's variables, then
//! `MANIFOLD__SECTION__KEY` variables (the most specific source wins).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::{Table, Value};

const DEFAULTS: &str = include_str!("../../config/default.toml");
const ENV_PREFIX: &str = "MANIFOLD__";

/// Variable names of the FastAPI backend manifold replaces, and where they land.
const LEGACY_VARIABLES: [(&str, &str); 6] = [
    ("DATABASE_URL", "database.url"),
    ("KAFKA_BROKERS", "kafka.brokers"),
    ("SCHEMA_REGISTRY_URL", "schema_registry.url"),
    ("GNN_SERVICE_URL", "gnn.service_url"),
    ("SECRET_KEY", "api.secret_key"),
    ("ENV", "env"),
];

/// Standard variables of other tools manifold honours, and where they land.
const STANDARD_VARIABLES: [(&str, &str); 1] = [("OTEL_EXPORTER_OTLP_ENDPOINT", "telemetry.otlp_endpoint")];

#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// A TOML file layered over the defaults (`--config`).
    pub file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("unknown configuration key `{key}`{origin}")]
    UnknownKey { key: String, origin: String },
    #[error("configuration key `{key}`{origin}: {message}")]
    Type { key: String, origin: String, message: String },
    #[error("configuration key `{key}`: {why}")]
    Invalid { key: String, why: String },
}

pub(super) fn layered<T: DeserializeOwned>(
    sources: &Sources,
    env: &BTreeMap<String, String>,
) -> Result<T, ConfigError> {
    let mut root = parse(DEFAULTS, Path::new("<built-in defaults>"))?;
    if let Some(path) = &sources.file {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.clone(), source })?;
        merge(&mut root, parse(&text, path)?);
    }
    let origins = apply_env(&mut root, env)?;
    serde_path_to_error::deserialize(Value::Table(root)).map_err(|err| {
        let path = err.path().to_string();
        let message = err.inner().to_string();
        if let Some(field) = unknown_field(&message) {
            let key = if path.ends_with(field) { path } else { join(&path, field) };
            let origin = origin_of(&origins, &key);
            ConfigError::UnknownKey { key, origin }
        } else {
            let origin = origin_of(&origins, &path);
            ConfigError::Type { key: path, origin, message }
        }
    })
}

fn parse(text: &str, path: &Path) -> Result<Table, ConfigError> {
    text.parse::<Table>()
        .map_err(|err| ConfigError::Syntax { path: path.to_owned(), message: err.to_string() })
}

/// Deep merge: tables merge key by key, anything else is replaced.
fn merge(base: &mut Table, over: Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(base_table)), Value::Table(over_table)) => merge(base_table, over_table),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Applies environment overrides; returns which variable set which key, for error messages.
fn apply_env(root: &mut Table, env: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut overrides: Vec<(Vec<String>, &str, &str)> = LEGACY_VARIABLES
        .iter()
        .chain(&STANDARD_VARIABLES)
        .filter_map(|(var, key)| env.get(*var).map(|value| (split_key(key), *var, value.as_str())))
        .collect();
    for (var, value) in env.range(ENV_PREFIX.to_owned()..) {
        let Some(rest) = var.strip_prefix(ENV_PREFIX) else { break };
        overrides.push((env_path(rest), var.as_str(), value.as_str()));
    }
    let mut origins = BTreeMap::new();
    for (path, var, value) in overrides {
        let key = path.join(".");
        set(root, &path, value).map_err(|message| ConfigError::Type {
            key: key.clone(),
            origin: format!(" (from {var})"),
            message,
        })?;
        origins.insert(key, var.to_owned());
    }
    Ok(origins)
}

/// `KAFKA__CLIENT__SASL_MECHANISM` → `kafka.client.sasl.mechanism`: librdkafka property names
/// have dots and no underscores, and a variable name cannot hold a dot.
fn env_path(rest: &str) -> Vec<String> {
    let mut path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
    if path.len() > 2 && path[0] == "kafka" && path[1] == "client" {
        let property = path[2..].join(".").replace('_', ".");
        path.truncate(2);
        path.push(property);
    }
    path
}

fn split_key(key: &str) -> Vec<String> {
    key.split('.').map(str::to_owned).collect()
}

/// Sets a string from the environment, typed like the value it replaces.
fn set(root: &mut Table, path: &[String], raw: &str) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut table = root;
    for part in parents {
        let entry = table.entry(part.clone()).or_insert_with(|| Value::Table(Table::new()));
        table = match entry {
            Value::Table(t) => t,
            _ => return Err(format!("`{part}` is a value, not a section")),
        };
    }
    let typed = match table.get(last) {
        Some(Value::Integer(_)) => Value::Integer(raw.trim().parse().map_err(|_| format!("expected an integer, got {raw:?}"))?),
        Some(Value::Float(_)) => Value::Float(raw.trim().parse().map_err(|_| format!("expected a number, got {raw:?}"))?),
        Some(Value::Boolean(_)) => Value::Boolean(raw.trim().parse().map_err(|_| format!("expected true or false, got {raw:?}"))?),
        Some(Value::Table(_)) => return Err("is a section; set its keys instead".into()),
        // Lists of strings from the environment are comma-separated: `https://a,https://b`.
        Some(Value::Array(_)) => Value::Array(raw.split(',').map(str::trim).filter(|x| !x.is_empty()).map(|x| Value::String(x.to_owned())).collect()),
        Some(_) => Value::String(raw.to_owned()),
        // A key without a default (an optional one): take the TOML reading of the text.
        None => infer(raw),
    };
    table.insert(last.clone(), typed);
    Ok(())
}

fn infer(raw: &str) -> Value {
    let trimmed = raw.trim();
    // Only digits that survive as a number ("000042", a password, does not) become one.
    if let Ok(i) = trimmed.parse::<i64>()
        && i.to_string() == trimmed
    {
        Value::Integer(i)
    } else if let Ok(b) = trimmed.parse::<bool>() {
        Value::Boolean(b)
    } else {
        Value::String(raw.to_owned())
    }
}

fn unknown_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("unknown field `")?;
    rest.split('`').next()
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() || path == "." { field.to_owned() } else { format!("{path}.{field}") }
}

fn origin_of(origins: &BTreeMap<String, String>, key: &str) -> String {
    origins.get(key).map(|var| format!(" (from {var})")).unwrap_or_default()
}
