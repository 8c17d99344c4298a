//! How bad a condition class is, for a maintenance engineer: the scale every class of a model
//! is placed on (the rig model's manifest names each class and gives its severity).
//!
//! Four grades, ordered (`Ok < Degraded < Severe < Failure`), because the UCI rig documents up
//! to four per component (valve: optimal, small lag, severe lag, close to total failure). An
//! alert has three states; [`Severity::alert`] folds the grades onto them: ok → ok,
//! degraded → warning, severe and failure → critical.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How bad a condition class is, from least to most: ok, degraded, severe, failure. As an alert
/// state: ok is ok, degraded a warning, severe and failure critical.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Works as designed (cooler full efficiency, valve optimal switching, no leakage, optimal
    /// accumulator pressure): nothing to do.
    Ok,
    /// Works, less well (reduced efficiency, small lag, weak leakage, slightly reduced pressure):
    /// plan maintenance.
    Degraded,
    /// Works badly (severe lag, severe leakage, severely reduced pressure): act soon.
    Severe,
    /// Close to total failure: act now.
    Failure,
}

/// The three states an alert can be in; what [`Severity::alert`] maps a grade onto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertLevel {
    Ok,
    Warning,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::Ok, Severity::Degraded, Severity::Severe, Severity::Failure];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Degraded => "degraded",
            Severity::Severe => "severe",
            Severity::Failure => "failure",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The alert state of a component in this condition.
    pub fn alert(self) -> AlertLevel {
        match self {
            Severity::Ok => AlertLevel::Ok,
            Severity::Degraded => AlertLevel::Warning,
            Severity::Severe | Severity::Failure => AlertLevel::Critical,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grades_are_ordered_and_fold_monotonically_onto_the_three_alert_states() {
        let alerts: Vec<AlertLevel> = Severity::ALL.iter().map(|s| s.alert()).collect();
        assert_eq!(alerts, [AlertLevel::Ok, AlertLevel::Warning, AlertLevel::Critical, AlertLevel::Critical]);
        assert!(Severity::ALL.windows(2).all(|w| w[0] < w[1]));
        for s in Severity::ALL {
            assert_eq!(Severity::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(Severity::parse("warning"), None);
    }
}
