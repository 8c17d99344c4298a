//! Batches the API handed to Kafka, recorded for "pending" status in groups by one writer task:
//! a database write per ingest request would cost more than the request itself.

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::store::Store;

/// How long accepted batches gather before one insert writes them.
const GATHER: Duration = Duration::from_millis(25);

/// (system id, batch id, readings)
type Submitted = (String, String, i32);

#[derive(Default)]
pub struct SubmittedLog {
    buffer: Mutex<Vec<Submitted>>,
    wake: Notify,
}

impl SubmittedLog {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Submitted>> {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn record(&self, system_id: &str, batch_id: &str, readings: i32) {
        self.lock().push((system_id.to_owned(), batch_id.to_owned(), readings));
        self.wake.notify_one();
    }

    /// Batches with this id accepted in the last few milliseconds, not yet written:
    /// (system id, readings) each; the caller keeps the ones of its own systems.
    pub fn unwritten(&self, batch_id: &str) -> Vec<(String, i32)> {
        self.lock().iter().filter(|b| b.1 == batch_id).map(|b| (b.0.clone(), b.2)).collect()
    }

    /// Writes what gathered until `stop`, then the rest. A failed write is logged and dropped:
    /// the batches are in Kafka and show as stored once ingest stores them.
    pub async fn run(&self, store: Store, stop: CancellationToken) {
        loop {
            let stopping = tokio::select! {
                _ = stop.cancelled() => true,
                _ = self.wake.notified() => false,
            };
            if !stopping {
                tokio::time::sleep(GATHER).await;
            }
            let pending = self.lock().clone();
            if !pending.is_empty() {
                match store.record_submitted_batches(&pending).await {
                    Ok(()) => {
                        self.lock().drain(..pending.len());
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, batches = pending.len(), "submitted batches not recorded; they show once stored");
                        self.lock().drain(..pending.len());
                    }
                }
            }
            if stopping {
                return;
            }
        }
    }
}
