//! One model for any subset of the rig: a system built of the same kinds of components and
//! sensors as the rig the model learnt, some of them missing (a smaller press), is scored by the
//! model with the sensors it lacks absent, as the model was trained to live with.
//!
//! The rule ([`RigModel::map_topology`]): each component of the system maps to the model's
//! component of the same kind, each sensor to the model's sensor of the same kind and unit on
//! that component, and each connection to a connection of the model's graph. Where the model
//! has several candidates (two pressures on the valve, two temperatures on the tank), the
//! system's sensor id must name one of them; a sensor with no counterpart, a candidate left
//! ambiguous, or two of the system's nodes landing on one of the model's refuse the mapping,
//! and the system gets the baseline scorer. The unit matters because the model's features are
//! normalised with the trained statistics: a pressure in psi would read as a different machine.
//!
//! A weak subset says so: every component's score carries a `confidence` feature, the share of
//! the component's evidence present in the window ([`evidence`]).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use super::occlusion::Drivers;
use super::{ComponentScore, GraphSpec, Manifest, ModelError, RigModel};
use crate::domain::Topology;

/// The feature of every rig-model score that says how much of the component's evidence the
/// window held (0 to 1).
pub const CONFIDENCE: &str = "confidence";

/// How much a sensor one connection further from a component counts towards the component's
/// evidence, relative to one nearer: a sensor on the component counts 1, on a neighbour ½, two
/// connections away ¼.
const EVIDENCE_DECAY: f64 = 0.5;

/// What a sensor measures, as its topology declares it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SensorKind {
    pub kind: String,
    pub unit: String,
}

/// The kinds of the model's nodes, from the topology it was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kinds {
    /// Component id → kind.
    pub components: BTreeMap<String, String>,
    /// Sensor id → kind and unit.
    pub sensors: BTreeMap<String, SensorKind>,
}

impl Kinds {
    /// The kinds a topology declares (what training writes into the manifest).
    pub fn of(topology: &Topology) -> Kinds {
        Kinds {
            components: topology.components.iter().map(|c| (c.id.to_string(), c.kind.clone())).collect(),
            sensors: topology.sensors.iter().map(|s| (s.id.to_string(), SensorKind { kind: s.kind.clone(), unit: s.unit.clone() })).collect(),
        }
    }

    /// A kind for every node of the graph and for nothing else.
    fn check(&self, spec: &GraphSpec) -> Result<(), String> {
        let components: HashSet<&str> = spec.components.iter().map(String::as_str).collect();
        let sensors: HashSet<&str> = spec.sensors.iter().map(|(id, _)| id.as_str()).collect();
        if self.components.keys().map(String::as_str).collect::<HashSet<_>>() != components {
            return Err("kinds.components must name exactly the graph's components".into());
        }
        if self.sensors.keys().map(String::as_str).collect::<HashSet<_>>() != sensors {
            return Err("kinds.sensors must name exactly the graph's sensors".into());
        }
        Ok(())
    }
}

/// The kinds of a manifest's graph: as declared, or for a manifest made before they were
/// recorded, those of the UCI rig when the manifest was trained on it (same topology hash and
/// graph). None: the model applies only to its own topology.
pub(super) fn kinds_of(manifest: &Manifest) -> Result<Option<Kinds>, ModelError> {
    if let Some(kinds) = &manifest.kinds {
        kinds.check(&manifest.graph).map_err(ModelError::Artifact)?;
        return Ok(Some(kinds.clone()));
    }
    let rig = crate::rig::rig_topology();
    Ok((rig.hash() == manifest.topology_hash && GraphSpec::from_topology(&rig) == manifest.graph).then(|| Kinds::of(&rig)))
}

/// Per target (manifest order), each model sensor's share of the target's evidence (input
/// order, summing to 1): 1 for a sensor on the component, halved for each connection further
/// away, normalised. A structural measure, the same for every window: the README's table of
/// subset accuracies shows what a given confidence has meant on the rig data.
pub(super) fn evidence(manifest: &Manifest) -> Result<Vec<Vec<f64>>, ModelError> {
    let spec = &manifest.graph;
    manifest
        .targets
        .iter()
        .map(|target| {
            let hops = hops_from(spec, spec.component_index(&target.component)?)?;
            let raw: Vec<f64> = spec
                .sensors
                .iter()
                .map(|(_, c)| Ok(hops[spec.component_index(c)?].map_or(0.0, |h| EVIDENCE_DECAY.powi(h as i32))))
                .collect::<Result<_, ModelError>>()?;
            let total: f64 = raw.iter().sum();
            Ok(raw.iter().map(|w| if total > 0.0 { w / total } else { 0.0 }).collect())
        })
        .collect()
}

/// Connections from component `from` to each component (None: unreachable).
fn hops_from(spec: &GraphSpec, from: usize) -> Result<Vec<Option<usize>>, ModelError> {
    let mut hops = vec![None; spec.components.len()];
    hops[from] = Some(0);
    let mut queue = VecDeque::from([from]);
    while let Some(at) = queue.pop_front() {
        for (a, b) in &spec.connections {
            let (a, b) = (spec.component_index(a)?, spec.component_index(b)?);
            let next = if a == at { b } else if b == at { a } else { continue };
            if hops[next].is_none() {
                hops[next] = hops[at].map(|h| h + 1);
                queue.push_back(next);
            }
        }
    }
    Ok(hops)
}

/// Why a topology does not map onto the model's graph.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Unmapped {
    #[error("the model declares no component and sensor kinds")]
    NotDeclared,
    #[error("the system has no topology")]
    NoTopology,
    #[error("component {id} ({kind}): the model has no component of that kind")]
    NoComponent { id: String, kind: String },
    #[error("sensor {id} ({kind}, {unit}) on {component}: the model has no {kind} sensor in {unit} there")]
    NoSensor { id: String, kind: String, unit: String, component: String },
    #[error("connection {from}-{to}: the model's graph has no such connection")]
    NoConnection { from: String, to: String },
    #[error("{id} could be any of the model's {candidates:?}: give it one of those ids")]
    Ambiguous { id: String, candidates: Vec<String> },
    #[error("{first} and {second} both map to the model's {model}")]
    Twice { first: String, second: String, model: String },
    #[error("none of the system's components is one the model diagnoses")]
    NoTarget,
}

impl Unmapped {
    /// A bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Unmapped::NotDeclared => "not_declared",
            Unmapped::NoTopology => "no_topology",
            Unmapped::NoComponent { .. } | Unmapped::NoSensor { .. } | Unmapped::NoConnection { .. } => "no_counterpart",
            Unmapped::Ambiguous { .. } | Unmapped::Twice { .. } => "ambiguous",
            Unmapped::NoTarget => "no_target",
        }
    }
}

/// How a system's topology sits on the model's graph: (system id, model id) pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct SubsetMap {
    pub components: Vec<(String, String)>,
    pub sensors: Vec<(String, String)>,
}

/// The one candidate, or the one the system's id names among several.
fn pick(id: &str, candidates: &[&String]) -> Result<String, Unmapped> {
    match candidates {
        [one] => Ok((*one).clone()),
        many => many.iter().find(|c| c.as_str() == id).map(|c| (*c).clone()).ok_or_else(|| Unmapped::Ambiguous { id: id.to_owned(), candidates: many.iter().map(|c| (*c).clone()).collect() }),
    }
}

/// No two of the system's nodes on one of the model's.
fn once_each(pairs: &[(String, String)]) -> Result<(), Unmapped> {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    for (system, model) in pairs {
        if let Some(first) = seen.insert(model, system) {
            return Err(Unmapped::Twice { first: first.to_owned(), second: system.clone(), model: model.clone() });
        }
    }
    Ok(())
}

impl SubsetMap {
    /// The window under the model's sensor ids (sensors the map does not know are left out).
    fn to_model(&self, window: &HashMap<String, Vec<f64>>) -> HashMap<String, Vec<f64>> {
        self.sensors.iter().filter_map(|(system, model)| Some((model.clone(), window.get(system)?.clone()))).collect()
    }

    /// The scores and drivers under the system's ids; components the system lacks get none.
    fn to_system(&self, scores: &mut Vec<ComponentScore>, drivers: &mut Drivers) {
        let components: HashMap<&str, &str> = self.components.iter().map(|(s, m)| (m.as_str(), s.as_str())).collect();
        let sensors: HashMap<&str, &str> = self.sensors.iter().map(|(s, m)| (m.as_str(), s.as_str())).collect();
        let sensor = |id: &str| sensors.get(id).map_or_else(|| id.to_owned(), |s| (*s).to_owned());
        scores.retain(|s| components.contains_key(s.component_id.as_str()));
        for score in scores.iter_mut() {
            score.component_id = components[score.component_id.as_str()].to_owned();
            if let Some(features) = score.features.take() {
                let renamed = features.into_iter().map(|(key, v)| match key.split_once('.') {
                    Some((id, rest)) => (format!("{}.{rest}", sensor(id)), v),
                    None => (key, v),
                });
                score.features = Some(renamed.collect());
            }
        }
        *drivers = std::mem::take(drivers)
            .into_iter()
            .filter_map(|(component, mut named)| {
                named.iter_mut().for_each(|d| d.sensor_id = sensor(&d.sensor_id));
                Some(((*components.get(component.as_str())?).to_owned(), named))
            })
            .collect();
    }
}

impl RigModel {
    /// The kinds of the model's nodes (see [`kinds_of`]); None: no subset maps onto it.
    pub fn kinds(&self) -> Option<&Kinds> {
        self.kinds.as_ref()
    }

    /// Maps a system's topology onto the model's graph by kind (see the module's rule).
    pub fn map_topology(&self, topology: &Topology) -> Result<SubsetMap, Unmapped> {
        let kinds = self.kinds.as_ref().ok_or(Unmapped::NotDeclared)?;
        let spec = &self.manifest.graph;
        let mut components = Vec::with_capacity(topology.components.len());
        for c in &topology.components {
            let candidates: Vec<&String> = spec.components.iter().filter(|m| kinds.components.get(*m) == Some(&c.kind)).collect();
            if candidates.is_empty() {
                return Err(Unmapped::NoComponent { id: c.id.to_string(), kind: c.kind.clone() });
            }
            components.push((c.id.to_string(), pick(c.id.as_str(), &candidates)?));
        }
        once_each(&components)?;
        let model_of = |id: &str| components.iter().find(|(s, _)| s == id).map(|(_, m)| m.as_str());
        let mut sensors = Vec::with_capacity(topology.sensors.len());
        for s in &topology.sensors {
            let on = model_of(s.component.as_str());
            let wanted = SensorKind { kind: s.kind.clone(), unit: s.unit.clone() };
            let candidates: Vec<&String> =
                spec.sensors.iter().filter(|(m, c)| Some(c.as_str()) == on && kinds.sensors.get(m) == Some(&wanted)).map(|(m, _)| m).collect();
            if candidates.is_empty() {
                return Err(Unmapped::NoSensor { id: s.id.to_string(), kind: s.kind.clone(), unit: s.unit.clone(), component: s.component.to_string() });
            }
            sensors.push((s.id.to_string(), pick(s.id.as_str(), &candidates)?));
        }
        once_each(&sensors)?;
        for k in &topology.connections {
            let (a, b) = (model_of(k.from.as_str()), model_of(k.to.as_str()));
            if !spec.connections.iter().any(|(x, y)| (Some(x.as_str()), Some(y.as_str())) == (a, b) || (Some(x.as_str()), Some(y.as_str())) == (b, a)) {
                return Err(Unmapped::NoConnection { from: k.from.to_string(), to: k.to.to_string() });
            }
        }
        if !self.manifest.targets.iter().any(|t| components.iter().any(|(_, m)| *m == t.component)) {
            return Err(Unmapped::NoTarget);
        }
        Ok(SubsetMap { components, sensors })
    }

    /// Scores one window of a system as the rig scorer does: mapped onto the model's graph by
    /// `map` (None: the system is the model's own topology), brought to the trained sampling,
    /// with each score's drivers and its [`CONFIDENCE`]; scores and drivers under the system's
    /// ids, none for a component the system lacks.
    pub fn score_system(&self, map: Option<&SubsetMap>, window: &HashMap<String, Vec<f64>>, seconds: f64) -> (Vec<ComponentScore>, Drivers) {
        let mapped;
        let window = match map {
            Some(map) => {
                mapped = map.to_model(window);
                &mapped
            }
            None => window,
        };
        let resampled = self.at_trained_sampling(window, seconds);
        let (mut scores, mut drivers) = self.score_explained(&resampled.values);
        resampled.note_refusals(&mut scores);
        let present: Vec<bool> =
            self.manifest.graph.sensors.iter().map(|(id, _)| resampled.values.get(id).is_some_and(|v| v.iter().any(|x| x.is_finite()))).collect();
        for (score, weights) in scores.iter_mut().zip(&self.evidence) {
            let confidence: f64 = weights.iter().zip(&present).filter(|(_, p)| **p).map(|(w, _)| w).sum();
            score.features.get_or_insert_with(BTreeMap::new).insert(CONFIDENCE.into(), confidence.clamp(0.0, 1.0));
        }
        if let Some(map) = map {
            map.to_system(&mut scores, &mut drivers);
        }
        (scores, drivers)
    }

    /// Per target (manifest order), each sensor's share of its evidence (input order).
    pub fn evidence(&self) -> &[Vec<f64>] {
        &self.evidence
    }
}

#[cfg(test)]
#[path = "subset_tests.rs"]
mod tests;
