//! Scenario 1: SIGKILL of `manifold ingest` at random moments while it owns partitions and
//! writes; it comes back as the same static member each time.

use super::common::chaos::{Chaos, Role};
use super::{FIRST_WORK, SERIAL, WRITTEN, due, sleep_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_ingest_while_it_writes_stores_every_reading_once() {
    let _turn = SERIAL.lock().await;
    let mut chaos = Chaos::new("ingest_sigkill", &[]).await;
    let _api = chaos.started(Role::Api, 0).await;
    let _infer = chaos.started(Role::Infer, 0).await;
    let mut ingest = chaos.started(Role::Ingest, 0).await;
    let stream = chaos.stream();
    let kills = chaos.sizes.kills;
    for k in 0..kills {
        ingest.working(WRITTEN, FIRST_WORK).await;
        sleep_until(due(&mut chaos, stream.started, k, kills)).await;
        assert!(stream.more_to_come(), "kill {k} would come after the last cycle of the stream: set CHAOS_STREAM_SECONDS longer");
        let since = chaos.progress().await;
        chaos.sigkill(ingest);
        ingest = chaos.start(Role::Ingest, 0);
        chaos.recovered(&since).await;
    }
    let report = stream.finish().await;
    chaos.finish(&report).await;
}
