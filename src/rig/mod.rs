//! The UCI hydraulic test rig (Helwig et al. 2015) as equipment and as data: its topology and
//! sensors, and the reader of the data set recorded on it. The simulator replays the data set
//! and training learns from it; neither owns the rig, so both use it from here.

mod conditions;
mod dataset;
mod topology;

pub use conditions::{RIG_TARGETS, RigClass, RigTarget};
pub use dataset::{Conditions, Cycle, DatasetError, load};
pub use topology::{RIG_SENSORS, RigSensor, rig_topology};

/// The sample committed with the repository (144 cycles), so a clone without ../shared can run
/// the demo and the tests.
pub const SAMPLE_DATA: &str = "data/uci-sample";
