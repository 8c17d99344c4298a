//! A system as validation sees it: its owner, and for each sensor the series its readings are
//! stored under and the range they must fall in. Loaded from the equipment tables by the
//! store's catalogue; kept here so the validator needs nothing above the domain.

use std::collections::HashMap;

use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SeriesMeta {
    pub series_id: i32,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SystemMeta {
    pub owner_id: Uuid,
    /// By sensor id.
    pub sensors: HashMap<String, SeriesMeta>,
}
