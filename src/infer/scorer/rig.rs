//! The rig model as a window scorer: it scores the systems built like the UCI rig it was
//! trained on, that is whose topology hash matches its manifest's.

use futures_util::future::BoxFuture;

use super::{ScoreError, WindowScorer, WindowToScore};
use crate::domain::ScoredWindow;
use crate::model::RigModel;
use crate::store::SystemInfo;

pub struct RigScorer {
    model: RigModel,
}

impl RigScorer {
    pub fn new(model: RigModel) -> Self {
        Self { model }
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
        self.model.manifest().topology_hash == system.topology_hash
    }

    fn score<'a>(&'a self, window: &'a WindowToScore<'a>) -> BoxFuture<'a, Result<ScoredWindow, ScoreError>> {
        // The forward passes are short and run on the calling thread (see the model's `fast.rs`):
        // one for the score, one per present sensor for its drivers (`occlusion.rs`), on the
        // window brought to the model's trained sampling first, whatever the device's rate.
        let seconds = (window.event.window_end - window.event.window_start) as f64 / 1e6;
        let (components, drivers) = self.model.score_window_explained(window.values, seconds);
        let mut scored = window.scored(self.version(), components);
        scored.contributions = drivers;
        Box::pin(std::future::ready(Ok(scored)))
    }
}
