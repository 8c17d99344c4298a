//! manifold: the data plane of a hydraulic-diagnostics service.
//!
//! Flow: `codec → ingest → store → window → infer`, with `api` beside them. This crate is the
//! library; `main.rs` only parses the command line and calls [`cli::run`].

pub mod api;
pub mod check;
pub mod codec;
pub mod domain;
pub mod failure;
pub mod infer;
pub mod cli;
pub mod config;
pub mod ingest;
pub mod kafka;
pub mod model;
pub mod relay;
pub mod rig;
pub mod shutdown;
pub mod sim;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod train;
pub mod window;
