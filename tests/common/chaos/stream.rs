//! `manifold simulate` streaming in the background.

use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use manifold::sim::SimulateReport;

use super::POLL;

/// The simulator streaming in the background; its JSON summary is read when it ends.
pub struct Stream {
    pub(super) child: Child,
    /// What it prints, read as it comes (a summary with checksums may outgrow a pipe's buffer).
    pub(super) out: Option<std::thread::JoinHandle<String>>,
    pub(super) log: PathBuf,
    pub started: Instant,
    /// When it sends its last cycle.
    pub(super) last_cycle: Instant,
}

impl Stream {
    /// Whether a cycle is still to be sent: a fault injected now is followed by data.
    pub fn more_to_come(&self) -> bool {
        Instant::now() + Duration::from_millis(500) < self.last_cycle
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the simulator to end and returns its summary (with per-series checksums).
    pub async fn finish(mut self) -> SimulateReport {
        while self.running() {
            tokio::time::sleep(POLL).await;
        }
        let out = self.out.take().map(|reader| reader.join().unwrap_or_default()).unwrap_or_default();
        let status = self.child.wait().expect("simulate status");
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        assert!(status.success(), "manifold simulate failed ({status}): {log}");
        let summary: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("simulate summary {out:?}: {e}"));
        let series = serde_json::from_value(summary["series"].clone()).expect("per-series checksums");
        let count = |k: &str| summary[k].as_u64().unwrap_or_else(|| panic!("{k} in {summary}"));
        SimulateReport { batches: count("batches"), readings: count("readings"), bad: count("bad"), series }
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
