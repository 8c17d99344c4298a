//! A `manifold` process of a scenario: its log, its metrics, its peak RSS.

use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{POLL, Peaks, Role};

/// A running `manifold` process.
pub struct Proc {
    pub role: Role,
    pub ordinal: u32,
    pub(super) child: Child,
    pub(super) log: PathBuf,
    pub(super) sampler: Sampler,
    /// The listener's address, once the log said it.
    pub(super) listening: std::sync::OnceLock<String>,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    pub(super) fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The address of the listener serving its metrics (`/metrics`), from its start-up log.
    pub fn listen(&self) -> Option<String> {
        if let Some(known) = self.listening.get() {
            return Some(known.clone());
        }
        let wanted = self.role.listener_line();
        let found = self.log_text().lines().filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok()).find_map(|v| {
            let fields = if v.get("fields").is_some() { &v["fields"] } else { &v };
            (fields["message"] == wanted).then(|| fields["listen"].as_str().map(str::to_owned)).flatten()
        })?;
        Some(self.listening.get_or_init(|| found).clone())
    }

    /// The sum of a metric's series on the process's listener (None until it answers).
    pub async fn metric(&self, name: &str) -> Option<f64> {
        let listen = self.listen()?;
        let body = reqwest::get(format!("http://{listen}/metrics")).await.ok()?.text().await.ok()?;
        let values = body.lines().filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{')));
        Some(values.filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok()).sum())
    }

    /// Waits until `metric` is above zero: the process did its work at least once (ingest:
    /// `manifold_ingest_readings_written_total`, so it owns partitions and writes).
    pub async fn working(&self, metric: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.metric(metric).await.unwrap_or(0.0) <= 0.0 {
            assert!(Instant::now() < deadline, "manifold {}-{}: {metric} still 0 after {timeout:?}: {}", self.role.command(), self.ordinal, self.log_tail());
            tokio::time::sleep(POLL).await;
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Samples a process's VmHWM (peak resident set) while it lives, into the scenario's peaks.
pub(super) struct Sampler {
    pid: u32,
    role: Role,
    peaks: Peaks,
    stop: Arc<AtomicBool>,
}

fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?.trim().trim_end_matches("kB").trim().parse().ok()
}

impl Sampler {
    pub(super) fn start(pid: u32, role: Role, peaks: Peaks) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = Sampler { pid, role, peaks: peaks.clone(), stop: stop.clone() };
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                Sampler::record(pid, role, &peaks);
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        sampler
    }

    fn record(pid: u32, role: Role, peaks: &Peaks) {
        // A process that ended (a zombie) has no VmHWM any more: its last sample stands.
        if let Some(kb) = vm_hwm_kb(pid) {
            let mut peaks = peaks.lock().unwrap();
            let peak = peaks.entry(role).or_default();
            *peak = (*peak).max(kb);
        }
    }

    /// Once more, right before a signal.
    pub(super) fn sample(&self) {
        Sampler::record(self.pid, self.role, &self.peaks);
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}
