//! `[alerts]`: how many windows must agree before an alert state changes, and the score
//! thresholds for scores that carry no class severity.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::ConfigError;
use crate::domain::AlertLevel;

/// The kind name whose thresholds cover every kind not named.
pub const DEFAULT_KIND: &str = "default";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    pub consecutive_windows: u32,
    /// Per component kind (`pump`, `valve`, …, or `default`).
    pub thresholds: BTreeMap<String, ScoreThresholds>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreThresholds {
    #[serde(deserialize_with = "super::units::number")]
    pub warning: f64,
    #[serde(deserialize_with = "super::units::number")]
    pub critical: f64,
}

impl AlertsConfig {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key: String, why: &str| Err(ConfigError::Invalid { key, why: why.to_owned() });
        if self.consecutive_windows == 0 {
            return invalid("alerts.consecutive_windows".into(), "must be at least 1");
        }
        if !self.thresholds.contains_key(DEFAULT_KIND) {
            return invalid("alerts.thresholds.default".into(), "is required: it covers every component kind not named");
        }
        for (kind, t) in &self.thresholds {
            if !(0.0..=1.0).contains(&t.warning) || !(0.0..=1.0).contains(&t.critical) || t.warning > t.critical {
                return invalid(format!("alerts.thresholds.{kind}"), "needs 0 <= warning <= critical <= 1");
            }
        }
        Ok(())
    }

    /// The level of a score without a class severity, for a component of this kind.
    pub fn level_of_score(&self, kind: Option<&str>, score: f64) -> AlertLevel {
        let t = kind.and_then(|k| self.thresholds.get(k)).or_else(|| self.thresholds.get(DEFAULT_KIND));
        match t {
            Some(t) if score >= t.critical => AlertLevel::Critical,
            Some(t) if score >= t.warning => AlertLevel::Warning,
            _ => AlertLevel::Ok,
        }
    }
}
