//! The condition classes of the rig's four labelled components, as the UCI documentation
//! (`uci_documentation.txt`, `profile.txt` columns 1–4) defines them: the label value, its name
//! and how bad it is. Training writes this table into every manifest it makes, so scoring, the
//! API and the demo read the names from the model they belong to, never from here.

use crate::domain::Severity;

/// One class of a component: its label in `profile.txt` and what it means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RigClass {
    pub label: u8,
    /// The documentation's words (one typo, "effifiency", corrected).
    pub name: &'static str,
    pub severity: Severity,
}

/// A labelled component: its unit, its healthy class and its classes in head output order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RigTarget {
    pub component: &'static str,
    pub unit: &'static str,
    pub nominal: u8,
    pub classes: &'static [RigClass],
}

const fn class(label: u8, name: &'static str, severity: Severity) -> RigClass {
    RigClass { label, name, severity }
}

use Severity as S;

/// The cooler has no "severe" grade: the documentation goes from reduced efficiency straight to
/// close to total failure.
pub const RIG_TARGETS: [RigTarget; 4] = [
    RigTarget {
        component: "cooler",
        unit: "%",
        nominal: 100,
        classes: &[class(3, "close to total failure", S::Failure), class(20, "reduced efficiency", S::Degraded), class(100, "full efficiency", S::Ok)],
    },
    RigTarget {
        component: "valve",
        unit: "%",
        nominal: 100,
        classes: &[
            class(100, "optimal switching behavior", S::Ok),
            class(90, "small lag", S::Degraded),
            class(80, "severe lag", S::Severe),
            class(73, "close to total failure", S::Failure),
        ],
    },
    RigTarget {
        component: "pump",
        unit: "leakage",
        nominal: 0,
        classes: &[class(0, "no leakage", S::Ok), class(1, "weak leakage", S::Degraded), class(2, "severe leakage", S::Severe)],
    },
    RigTarget {
        component: "accumulator",
        unit: "bar",
        nominal: 130,
        classes: &[
            class(130, "optimal pressure", S::Ok),
            class(115, "slightly reduced pressure", S::Degraded),
            class(100, "severely reduced pressure", S::Severe),
            class(90, "close to total failure", S::Failure),
        ],
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_component_has_one_nominal_class_of_severity_ok_and_grades_worsen_away_from_it() {
        for target in RIG_TARGETS {
            let nominal: Vec<_> = target.classes.iter().filter(|c| c.label == target.nominal).collect();
            assert_eq!(nominal.len(), 1, "{}", target.component);
            assert_eq!(nominal[0].severity, Severity::Ok, "{}", target.component);
            assert_eq!(target.classes.iter().filter(|c| c.severity == Severity::Ok).count(), 1, "{}: only the nominal class is ok", target.component);
            // Ordered by distance from nominal, the grades never get better.
            let mut by_distance: Vec<_> = target.classes.to_vec();
            by_distance.sort_by_key(|c| c.label.abs_diff(target.nominal));
            assert!(by_distance.windows(2).all(|w| w[0].severity < w[1].severity), "{}: {by_distance:?}", target.component);
        }
    }
}
