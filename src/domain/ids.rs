use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::DomainError;

const MAX_ID_LEN: usize = 64;

/// Ids appear in topic keys, URLs and SQL parameters: a small, printable alphabet keeps them safe
/// in all three and unambiguous in logs.
fn check_id(field: &str, text: &str) -> Result<(), DomainError> {
    if text.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    if text.len() > MAX_ID_LEN {
        return Err(DomainError::invalid(field, format!("must be at most {MAX_ID_LEN} characters")));
    }
    if let Some(bad) = text.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))) {
        return Err(DomainError::invalid(field, format!("contains {bad:?}; use letters, digits, '-', '_', '.', ':'")));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(text: &str) -> Result<Self, DomainError> {
                Self::parse_at($field, text)
            }

            /// Like `parse`, naming `field` (e.g. `series[2].sensor_id`) in the error.
            pub fn parse_at(field: &str, text: &str) -> Result<Self, DomainError> {
                check_id(field, text)?;
                Ok(Self(text.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// One piece of equipment; the Kafka key of every topic.
    SystemId, "system_id"
);
id_type!(
    /// A sensor, unique within its system.
    SensorId, "sensor_id"
);
id_type!(
    /// A component (pump, valve, …), unique within its system.
    ComponentId, "component_id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_the_documented_alphabet_and_reject_the_rest() {
        assert!(SystemId::parse("rig-7.press_2:a").is_ok());
        for bad in ["", "has space", "semi;colon", "ü", &"x".repeat(65)] {
            let err = SystemId::parse(bad).unwrap_err();
            assert_eq!(err.field, "system_id", "{bad:?}");
        }
        assert_eq!(SensorId::parse_at("series[2].sensor_id", "a b").unwrap_err().field, "series[2].sensor_id");
    }
}
