//! Inference: the anomaly-scoring model (the worker loop comes later).

pub mod model;
