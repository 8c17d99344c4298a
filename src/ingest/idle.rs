//! The processing-time fallback of windows: close those that stopped receiving data.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::Store;
use crate::window::WindowSpec;

pub async fn close_idle_windows(store: Store, spec: WindowSpec, shutdown: CancellationToken) {
    let every = Duration::from_micros((spec.idle_timeout_us / 4).max(1_000_000) as u64);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        match store.close_idle_windows(&spec).await {
            Ok(closed) if !closed.is_empty() => tracing::info!(windows = closed.len(), "idle windows closed"),
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "closing idle windows failed; retrying"),
        }
    }
}
