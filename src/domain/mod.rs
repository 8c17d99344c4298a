//! Validated domain types. Constructors check their input, so code that holds one of these
//! never sees invalid data.

mod batch;
mod error;
mod ids;
mod score;
pub mod text;
mod topology;

pub use batch::{BatchLimits, RawBatch, RawSeries, Reading, SensorBatch, Series};
pub use error::{DomainError, RejectKind};
pub use ids::{ComponentId, SensorId, SystemId};
pub use score::{ComponentScore, ScoredWindow};
pub use topology::{Component, Connection, Sensor, Topology};
