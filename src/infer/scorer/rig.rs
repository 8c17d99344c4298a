//! The rig model as a window scorer: it scores the systems built like the UCI rig it was
//! trained on (topology hash equal to its manifest's) and those whose topology maps onto the
//! model's graph by component and sensor kind (a subset of the rig, `model/subset.rs`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use prometheus::IntCounterVec;

use super::{ScoreError, WindowScorer, WindowToScore};
use crate::domain::ScoredWindow;
use crate::model::{RigModel, SubsetMap, Unmapped};
use crate::store::SystemInfo;

/// Topologies whose mapping is remembered; past this many the memory starts again (a mapping
/// is cheap to redo, the bound only keeps a stream of one-off topologies from growing it).
const REMEMBERED_TOPOLOGIES: usize = 4096;

pub struct RigScorer {
    model: RigModel,
    /// Per topology (hash and units), how it maps onto the model, or why it does not: decided
    /// (and a refusal logged) once per topology, not per window.
    maps: Mutex<HashMap<String, Result<Arc<SubsetMap>, &'static str>>>,
    /// Windows the model did not apply to, by `Unmapped::reason`.
    refusals: Option<IntCounterVec>,
}

impl RigScorer {
    pub fn new(model: RigModel) -> Self {
        Self { model, maps: Mutex::default(), refusals: None }
    }

    /// Counts each window the model does not apply to in `refusals{reason}`.
    pub fn with_refusals(self, refusals: IntCounterVec) -> Self {
        Self { refusals: Some(refusals), ..self }
    }

    /// How the system maps onto the model: Ok(None) for the model's own topology.
    fn map(&self, system: &SystemInfo) -> Result<Option<Arc<SubsetMap>>, &'static str> {
        if self.model.manifest().topology_hash == system.topology_hash {
            return Ok(None);
        }
        let Some(topology) = &system.topology else { return Err(Unmapped::NoTopology.reason()) };
        // The topology hash leaves units out, and the mapping depends on them.
        let mut units: Vec<(&str, &str)> = topology.sensors.iter().map(|s| (s.id.as_str(), s.unit.as_str())).collect();
        units.sort_unstable();
        let key = units.iter().fold(system.topology_hash.clone(), |key, (_, unit)| key + "/" + unit);
        let mut maps = self.maps.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(known) = maps.get(&key) {
            return known.clone().map(Some);
        }
        let decided = match self.model.map_topology(topology) {
            Ok(map) => {
                tracing::info!(topology = %system.topology_hash, sensors = map.sensors.len(), "rig model applies to a subset of its rig");
                Ok(Arc::new(map))
            }
            Err(why) => {
                tracing::info!(topology = %system.topology_hash, reason = why.reason(), detail = %why, "rig model does not apply; baseline scores this topology");
                Err(why.reason())
            }
        };
        if maps.len() >= REMEMBERED_TOPOLOGIES {
            maps.clear();
        }
        maps.insert(key, decided.clone());
        decided.map(Some)
    }
}

impl WindowScorer for RigScorer {
    fn version(&self) -> &str {
        &self.model.manifest().version
    }

    fn label(&self) -> &'static str {
        "model"
    }

    fn applies(&self, system: &SystemInfo) -> bool {
        match self.map(system) {
            Ok(_) => true,
            Err(reason) => {
                if let Some(refusals) = &self.refusals {
                    refusals.with_label_values(&[reason]).inc();
                }
                false
            }
        }
    }

    fn score<'a>(&'a self, window: &'a WindowToScore<'a>) -> BoxFuture<'a, Result<ScoredWindow, ScoreError>> {
        // The forward passes are short and run on the calling thread (see the model's `fast.rs`):
        // one for the score, one per present sensor for its drivers (`occlusion.rs`), on the
        // window brought to the model's trained sampling first, whatever the device's rate.
        let seconds = (window.event.window_end - window.event.window_start) as f64 / 1e6;
        // `applies` said yes, so the mapping is known; were it forgotten meanwhile, it is redone.
        let map = self.map(window.system).ok().flatten();
        let (components, drivers) = self.model.score_system(map.as_deref(), window.values, seconds);
        let mut scored = window.scored(self.version(), components);
        scored.contributions = drivers;
        Box::pin(std::future::ready(Ok(scored)))
    }
}
