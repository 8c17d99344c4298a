use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::model::RigModel;

/// A scorer that applies where it is told to and scores one component; `calls` counts the
/// windows it was asked to score.
struct Fake {
    version: &'static str,
    applies: bool,
    calls: Arc<AtomicUsize>,
}

impl WindowScorer for Fake {
    fn version(&self) -> &str {
        self.version
    }

    fn label(&self) -> &'static str {
        self.version
    }

    fn applies(&self, _: &SystemInfo) -> bool {
        self.applies
    }

    fn score<'a>(&'a self, window: &'a WindowToScore<'a>) -> BoxFuture<'a, Result<ScoredWindow, ScoreError>> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let component = ComponentScore { component_id: "pump".into(), score: 0.5, condition: None, condition_name: None, severity: None, probabilities: Default::default(), features: None };
        Box::pin(std::future::ready(Ok(window.scored(self.version, vec![component]))))
    }
}

/// A chain of fakes (`(version, applies)`, the last one the fallback) and each one's call count.
fn chain(fakes: &[(&'static str, bool)]) -> (ScorerChain, Vec<Arc<AtomicUsize>>) {
    let counts: Vec<Arc<AtomicUsize>> = fakes.iter().map(|_| Arc::default()).collect();
    let mut boxed: Vec<Box<dyn WindowScorer>> =
        fakes.iter().zip(&counts).map(|(&(version, applies), calls)| Box::new(Fake { version, applies, calls: calls.clone() }) as Box<dyn WindowScorer>).collect();
    let fallback = boxed.pop().expect("a fallback");
    (ScorerChain::in_order(boxed, fallback), counts)
}

fn calls(counts: &[Arc<AtomicUsize>]) -> Vec<usize> {
    counts.iter().map(|c| c.load(Ordering::SeqCst)).collect()
}

fn event() -> WindowReady {
    WindowReady {
        system_id: "rig-1".into(),
        window_start: 1_767_225_600_000_000,
        window_end: 1_767_225_660_000_000,
        revision: 3,
        reading_count: 1,
        sensors: vec![],
        closed_by: crate::domain::CloseReason::Watermark,
    }
}

fn system() -> SystemInfo {
    SystemInfo { owner_id: uuid::Uuid::nil(), topology_hash: "h".into(), topology: None }
}

#[tokio::test]
async fn the_first_scorer_that_applies_scores_the_window() {
    let (chain, counts) = chain(&[("a", false), ("b", true), ("c", true), ("z", true)]);
    let scored = chain.score(&event(), &HashMap::new(), Some(&system())).await.unwrap();
    assert_eq!((scored.scorer, scored.window.model_version.as_str()), ("b", "b"));
    assert_eq!(scored.window.components.len(), 1);
    assert_eq!(scored.window.window_start, DateTime::from_timestamp_micros(1_767_225_600_000_000).unwrap());
    assert_eq!((scored.window.system_id.as_str(), scored.window.revision), ("rig-1", 3));
    assert_eq!(calls(&counts), [0, 1, 0, 0]);
}

#[tokio::test]
async fn when_none_applies_the_fallback_scores() {
    let (chain, counts) = chain(&[("a", false), ("z", true)]);
    let scored = chain.score(&event(), &HashMap::new(), Some(&system())).await.unwrap();
    assert_eq!(scored.scorer, "z");
    assert_eq!(scored.window.components.len(), 1);
    assert_eq!(calls(&counts), [0, 1]);
}

#[tokio::test]
async fn a_system_that_is_gone_gets_the_fallback_version_and_no_components() {
    let (chain, counts) = chain(&[("a", true), ("z", true)]);
    let scored = chain.score(&event(), &HashMap::new(), None).await.unwrap();
    assert_eq!((scored.scorer, scored.window.model_version.as_str()), ("z", "z"));
    assert!(scored.window.components.is_empty());
    assert_eq!(calls(&counts), [0, 0], "nothing is asked to score");
}

#[tokio::test]
async fn the_rig_scorer_brings_a_native_rate_window_to_the_trained_sampling() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = RigModel::load(&root.join(crate::model::DEFAULT_MODEL_DIR)).unwrap();
    let system = SystemInfo { topology_hash: model.manifest().topology_hash.clone(), ..system() };
    let scorer = RigScorer::new(model);
    let cycles = crate::rig::load(&root.join(crate::rig::SAMPLE_DATA)).unwrap();
    // A 60 s window (`event()`), sent at 1 Hz and at the rig's native rates.
    let event = event();
    for cycle in cycles.iter().step_by(20) {
        let (slow, fast) = (cycle.window(), cycle.native_window());
        let a = scorer.score(&WindowToScore { event: &event, values: &slow, system: &system }).await.unwrap();
        let b = scorer.score(&WindowToScore { event: &event, values: &fast, system: &system }).await.unwrap();
        let classes = |w: &ScoredWindow| w.components.iter().map(|c| c.condition.clone()).collect::<Vec<_>>();
        assert_eq!(classes(&a), classes(&b));
        for (a, b) in a.components.iter().zip(&b.components) {
            assert!((a.score - b.score).abs() < 1e-6, "{a:?} vs {b:?}");
            assert!(!b.features.as_ref().unwrap().keys().any(|k| k.contains("refused")), "nothing refused: {b:?}");
        }
    }
}

#[tokio::test]
async fn a_subset_of_the_rig_is_scored_by_the_model_and_a_topology_that_does_not_map_is_left_to_the_baseline() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let model = RigModel::load(&root.join(crate::model::DEFAULT_MODEL_DIR)).unwrap();
    let refusals = prometheus::IntCounterVec::new(prometheus::Opts::new("refusals", "test"), &["reason"]).unwrap();
    let scorer = RigScorer::new(model).with_refusals(refusals.clone());
    let mut subset = crate::rig::rig_topology();
    subset.sensors.retain(|s| s.id.as_str() != "PS3");
    let mut other = subset.clone();
    other.sensors.iter_mut().find(|s| s.id.as_str() == "PS2").unwrap().id = crate::domain::SensorId::parse("P-valve").unwrap();
    let system = |t: crate::domain::Topology| SystemInfo { owner_id: uuid::Uuid::nil(), topology_hash: t.hash(), topology: Some(t) };
    let (subset, other) = (system(subset), system(other));
    assert!(scorer.applies(&subset));
    assert!(!scorer.applies(&other), "P-valve could be PS2 or PS3");
    assert!(!scorer.applies(&other));
    assert_eq!(refusals.with_label_values(&["ambiguous"]).get(), 2, "counted per window");
    // The same ids and kinds in psi: the topology hash is the same, the mapping is not.
    let mut psi = subset.topology.clone().unwrap();
    psi.sensors.iter_mut().filter(|s| s.unit == "bar").for_each(|s| s.unit = "psi".into());
    assert!(!scorer.applies(&SystemInfo { topology: Some(psi), ..subset.clone() }), "a pressure in psi has no counterpart");
    let cycles = crate::rig::load(&root.join(crate::rig::SAMPLE_DATA)).unwrap();
    let event = event();
    let scored = scorer.score(&WindowToScore { event: &event, values: &cycles[0].window(), system: &subset }).await.unwrap();
    assert_eq!(scored.components.len(), 4, "the subset has every labelled component");
    assert!(scored.components.iter().all(|c| c.condition.is_some() && !c.features.as_ref().unwrap().contains_key("PS3.mean")), "{scored:?}");
}
