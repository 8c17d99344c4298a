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
        // The forward pass is short and runs on the calling thread (see the model's `fast.rs`);
        // the window is brought to the model's trained sampling first, whatever the device's rate.
        let seconds = (window.event.window_end - window.event.window_start) as f64 / 1e6;
        let components = self.model.score_window(window.values, seconds);
        Box::pin(std::future::ready(Ok(window.scored(self.version(), components))))
    }
}
