//! Scenario 2a: SIGKILL of `manifold infer` at random moments while it scores; it comes back
//! on the same ordinal, fencing its predecessor's open transaction.

use super::common::chaos::{Chaos, Role};
use super::{FIRST_WORK, SCORED, SERIAL, due, sleep_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_infer_while_it_scores_publishes_every_window_once() {
    let _turn = SERIAL.lock().await;
    let mut chaos = Chaos::new("infer_sigkill", &[]).await;
    let _ingest = chaos.started(Role::Ingest, 0).await;
    let mut infer = chaos.started(Role::Infer, 0).await;
    let stream = chaos.stream();
    let kills = chaos.sizes.kills;
    for k in 0..kills {
        infer.working(SCORED, FIRST_WORK).await;
        sleep_until(due(&mut chaos, stream.started, k, kills)).await;
        assert!(stream.more_to_come(), "kill {k} would come after the last cycle of the stream: set CHAOS_STREAM_SECONDS longer");
        let since = chaos.progress().await;
        chaos.sigkill(infer);
        infer = chaos.start(Role::Infer, 0);
        chaos.recovered(&since).await;
    }
    let report = stream.finish().await;
    chaos.finish(&report).await;
}
