//! Scenario 5: `manifold run` (ingest, infer and the API on ordinal 0) streams alone; then a
//! second and a third ingest and infer replica join, and leave again: the second gracefully
//! (SIGTERM), the third by SIGKILL. `CHAOS_KILLS` sets the rounds (one per three kills).

use super::common::chaos::{Chaos, Role};
use super::{SERIAL, sleep_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_joining_and_leaving_midway_lose_and_repeat_nothing() {
    let _turn = SERIAL.lock().await;
    let mut chaos = Chaos::new("scale_out_in", &[]).await;
    let _run = chaos.started(Role::Run, 0).await;
    let stream = chaos.stream();
    let rounds = chaos.sizes.kills.div_ceil(3).max(1);
    // Three steps a round (join, graceful leave, kill), spread over the stream.
    let step = chaos.sizes.stream / (3 * rounds as u32 + 1);
    let started = stream.started;
    for round in 0..rounds {
        let at = |i: u32| started + step * (3 * round as u32 + i + 1);
        sleep_until(at(0)).await;
        let since = chaos.progress().await;
        let mut joined = Vec::new();
        for ordinal in [1, 2] {
            joined.push((chaos.start(Role::Ingest, ordinal), chaos.start(Role::Infer, ordinal)));
        }
        chaos.recovered(&since).await;

        sleep_until(at(1)).await;
        assert!(stream.more_to_come(), "round {round} would go on after the last cycle of the stream: set CHAOS_STREAM_SECONDS longer");
        let since = chaos.progress().await;
        let (ingest, infer) = joined.remove(0);
        chaos.sigterm(ingest).await;
        chaos.sigterm(infer).await;
        chaos.recovered(&since).await;

        sleep_until(at(2)).await;
        assert!(stream.more_to_come(), "round {round} would go on after the last cycle of the stream: set CHAOS_STREAM_SECONDS longer");
        let since = chaos.progress().await;
        let (ingest, infer) = joined.remove(0);
        chaos.sigkill(ingest);
        chaos.sigkill(infer);
        chaos.recovered(&since).await;
    }
    let report = stream.finish().await;
    chaos.finish(&report).await;
}
