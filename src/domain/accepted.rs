//! What validation hands to storage: a batch's readings resolved to series ids.

use std::collections::HashMap;

/// One row of `readings`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub series_id: i32,
    pub time_us: i64,
    pub value: f64,
}

/// A batch that passed validation, with its rows resolved to series ids.
#[derive(Debug, Clone)]
pub struct AcceptedBatch {
    pub system_id: String,
    pub batch_id: String,
    pub rows: Vec<Row>,
    /// Sensor id of each series in `rows`, for window bookkeeping.
    pub sensors: HashMap<i32, String>,
}
