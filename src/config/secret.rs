//! Values that carry credentials: they deserialize like strings but never print them.

use std::collections::BTreeMap;
use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer};

/// A secret string; `Debug` shows only that it is set. Digits or `true` from a `MANIFOLD__…`
/// variable are taken as text, and a value of the wrong type is refused without echoing it.
#[derive(Clone)]
pub struct Secret(SecretString);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        super::registry::Scalar::deserialize(deserializer).map(|s| Secret(SecretString::from(s.0)))
    }
}

impl Secret {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

/// A PostgreSQL URL whose password is hidden in `Debug` and `Display`.
#[derive(Clone)]
pub struct DatabaseUrl(SecretString);

impl DatabaseUrl {
    pub fn new(url: &str) -> Self {
        Self(SecretString::from(url.to_owned()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URL with its password replaced, for logs and reports.
    pub fn redacted(&self) -> String {
        match reqwest::Url::parse(self.expose()) {
            Ok(mut url) => {
                if url.password().is_some() {
                    // set_password only fails for URLs that cannot have one, which we just ruled out.
                    let _ = url.set_password(Some("***"));
                }
                url.to_string()
            }
            // Key=value connection strings: hide the password pair however it is spaced or quoted.
            Err(_) => match super::pg_tls::params::key_value_pairs(self.expose()) {
                Ok(pairs) => pairs
                    .iter()
                    .map(|(key, _, raw)| if *key == "password" { "password=***" } else { raw })
                    .collect::<Vec<_>>()
                    .join(" "),
                // Unparseable: the driver will refuse it too; show nothing that could be a secret.
                Err(_) => "[unparseable connection string]".to_owned(),
            },
        }
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|url| DatabaseUrl::new(&url))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// librdkafka properties passed through unchanged (`kafka.client.*`).
///
/// Values may be written as TOML strings, numbers or booleans; librdkafka takes strings.
#[derive(Clone, Default)]
pub struct KafkaClientProperties(BTreeMap<String, String>);

impl KafkaClientProperties {
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    fn is_sensitive(key: &str) -> bool {
        ["password", "secret", "key", "token", "jaas"].iter().any(|word| key.contains(word))
            && !key.ends_with(".location")
    }
}

impl<'de> Deserialize<'de> for KafkaClientProperties {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<String, toml::Value>::deserialize(deserializer)?;
        let mut properties = BTreeMap::new();
        for (key, value) in raw {
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(serde::de::Error::custom(format!(
                        "kafka.client.{key} must be a string, number or boolean, not {}",
                        other.type_str()
                    )));
                }
            };
            properties.insert(key, text);
        }
        Ok(Self(properties))
    }
}

impl fmt::Debug for KafkaClientProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (key, value) in &self.0 {
            if Self::is_sensitive(key) {
                map.entry(key, &"[redacted]");
            } else {
                map.entry(key, value);
            }
        }
        map.finish()
    }
}
