//! Which scorer scores a window. Each [`WindowScorer`] says whether it applies to the window's
//! system; the [`ScorerChain`] asks them in order: the external GNN service when configured,
//! then the rig model (for systems built like its rig, or a subset of it), then the
//! baseline (the system against its own history), which applies to every system.

mod baseline;
mod rig;
mod service;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;

pub use baseline::{BASELINE_VERSION, BaselineScorer, robust_z};
pub use rig::RigScorer;
pub use service::{HttpScorer, HttpScorerError, SERVICE_VERSION, ScoreRequest, ServiceAnswer, ServiceScorer};

use crate::codec::WindowReady;
use crate::domain::{ComponentScore, ScoredWindow};
use crate::store::{StoreError, SystemInfo};

#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Service(#[from] HttpScorerError),
}

/// One window to score: its announcement, its readings (sensor id → values in time order)
/// and its system.
pub struct WindowToScore<'a> {
    pub event: &'a WindowReady,
    pub values: &'a HashMap<String, Vec<f64>>,
    pub system: &'a SystemInfo,
}

impl WindowToScore<'_> {
    pub fn start(&self) -> DateTime<Utc> {
        time(self.event.window_start)
    }

    pub fn end(&self) -> DateTime<Utc> {
        time(self.event.window_end)
    }

    /// A scorer's answer for this window, stamped now.
    pub fn scored(&self, model_version: &str, components: Vec<ComponentScore>) -> ScoredWindow {
        scored(self.event, model_version, components)
    }
}

/// A way to score windows: a model, a rule, a service.
pub trait WindowScorer: Send + Sync {
    /// The model version stored and published with every score it gives.
    fn version(&self) -> &str;

    /// `model`, `baseline` or `service`: a bounded label for metrics.
    fn label(&self) -> &'static str;

    /// Whether it can score this system's windows.
    fn applies(&self, system: &SystemInfo) -> bool;

    /// Scores one window of a system it applies to. A scorer that can tell what each sensor
    /// contributed puts it in the answer's `contributions`.
    fn score<'a>(&'a self, window: &'a WindowToScore<'a>) -> BoxFuture<'a, Result<ScoredWindow, ScoreError>>;
}

/// A scored window, and which scorer scored it.
#[derive(Debug, Clone)]
pub struct Scored {
    pub window: ScoredWindow,
    /// The scorer's [`WindowScorer::label`].
    pub scorer: &'static str,
}

pub struct ScorerChain {
    /// Tried in order: the first that applies to the system scores the window.
    scorers: Vec<Box<dyn WindowScorer>>,
    /// Scores what no other applies to; it applies to every system.
    fallback: Box<dyn WindowScorer>,
}

impl ScorerChain {
    /// The service when configured (it scores every system), else the rig model where it
    /// applies, else the baseline.
    pub fn new(service: Option<HttpScorer>, model: Option<RigScorer>, baseline: BaselineScorer) -> Self {
        let service = service.map(|s| Box::new(ServiceScorer::new(s)) as Box<dyn WindowScorer>);
        let model = model.map(|m| Box::new(m) as Box<dyn WindowScorer>);
        Self::in_order(service.into_iter().chain(model).collect(), Box::new(baseline))
    }

    fn in_order(scorers: Vec<Box<dyn WindowScorer>>, fallback: Box<dyn WindowScorer>) -> Self {
        Self { scorers, fallback }
    }

    /// Scores one window with the first scorer that applies to its system. A system that is
    /// gone (`None`) gets the fallback's answer with no components.
    pub async fn score(&self, event: &WindowReady, values: &HashMap<String, Vec<f64>>, system: Option<&SystemInfo>) -> Result<Scored, ScoreError> {
        let Some(system) = system else {
            // The equipment was deleted after its window closed: nothing left to score against.
            let window = scored(event, self.fallback.version(), Vec::new());
            return Ok(Scored { window, scorer: self.fallback.label() });
        };
        let scorer = self.scorers.iter().find(|s| s.applies(system)).unwrap_or(&self.fallback);
        let window = scorer.score(&WindowToScore { event, values, system }).await?;
        Ok(Scored { window, scorer: scorer.label() })
    }
}

/// An event time in microseconds; the events scored were checked to be in range.
pub(super) fn time(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

fn scored(event: &WindowReady, model_version: &str, components: Vec<ComponentScore>) -> ScoredWindow {
    ScoredWindow {
        system_id: event.system_id.clone(),
        window_start: time(event.window_start),
        window_end: time(event.window_end),
        revision: event.revision,
        model_version: model_version.to_owned(),
        computed_at: Utc::now(),
        components,
        contributions: Default::default(),
    }
}

#[cfg(test)]
mod tests;
