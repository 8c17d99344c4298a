//! Validated domain types. Constructors check their input, so code that holds one of these
//! never sees invalid data.

mod accepted;
pub mod alerts;
mod batch;
mod close_reason;
mod equipment;
mod error;
mod ids;
mod score;
mod severity;
pub mod text;
mod topic_role;
mod topology;
mod validate;

pub use accepted::{AcceptedBatch, Row};
pub use alerts::{Alert, AlertEvent, AlertEventKind, WindowLevel};
pub use batch::{BatchLimits, RawBatch, RawSeries, Reading, SensorBatch, Series};
pub use close_reason::CloseReason;
pub use equipment::{SeriesMeta, SystemMeta};
pub use error::{DomainError, RejectKind};
pub use ids::{ComponentId, SensorId, SystemId};
pub use topic_role::TopicRole;
pub use score::{ComponentScore, Driver, MAX_DRIVERS, ScoredWindow};
pub use severity::{AlertLevel, Severity};
pub use topology::{Component, Connection, Sensor, Topology};
pub use validate::{BadReadingsPolicy, Validator, Verdict};
