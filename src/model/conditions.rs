//! Class names and severities by model version, for readers of stored scores: the table keeps
//! a score's class label and model version, and the manifest of that version says what the
//! label means. Names are not stored with the scores, so a manifest corrected later (a better
//! name) shows at once, and the table stays as it is.

use std::collections::HashMap;

use super::{ConditionSpec, Manifest};
use crate::domain::ComponentScore;

/// model version → (component, class) → name and severity.
#[derive(Debug, Clone, Default)]
pub struct ConditionCatalogue {
    by_version: HashMap<String, HashMap<(String, String), ConditionSpec>>,
}

impl ConditionCatalogue {
    /// The names of every manifest given (a later manifest of the same version wins).
    pub fn new<'a>(manifests: impl IntoIterator<Item = &'a Manifest>) -> Self {
        let mut by_version: HashMap<String, HashMap<(String, String), ConditionSpec>> = HashMap::new();
        for manifest in manifests {
            let names = by_version.entry(manifest.version.clone()).or_default();
            for target in &manifest.targets {
                for spec in &target.conditions {
                    names.insert((target.component.clone(), spec.class.clone()), spec.clone());
                }
            }
        }
        ConditionCatalogue { by_version }
    }

    pub fn lookup(&self, model_version: &str, component: &str, class: &str) -> Option<&ConditionSpec> {
        self.by_version.get(model_version)?.get(&(component.to_owned(), class.to_owned()))
    }

    /// Fills in the name and severity of a score read back from the table, when its model
    /// version is known and names its class; otherwise leaves them as they are.
    pub fn describe(&self, model_version: &str, score: &mut ComponentScore) {
        let Some(class) = score.condition.as_deref() else { return };
        if let Some(spec) = self.lookup(model_version, &score.component_id, class) {
            score.condition_name = Some(spec.name.clone());
            score.severity = Some(spec.severity);
        }
    }
}
