//! Scenario 2b: two `manifold ingest` replicas; the one holding the relay's advisory lock is
//! killed, the other takes the relay over, and the killed one comes back as the standby.

use super::common::chaos::{Chaos, Role};
use super::{FIRST_WORK, PUBLISHED, SERIAL, due, sleep_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_relay_holder_hands_the_relay_over_and_publishes_every_event_once() {
    let _turn = SERIAL.lock().await;
    let mut chaos = Chaos::new("relay_sigkill", &[]).await;
    let mut ingests = vec![chaos.started(Role::Ingest, 0).await, chaos.started(Role::Ingest, 1).await];
    let _infer = chaos.started(Role::Infer, 0).await;
    let stream = chaos.stream();
    let kills = chaos.sizes.kills;
    for k in 0..kills {
        let holder = chaos.relay_holder(&ingests).await;
        ingests[holder].working(PUBLISHED, FIRST_WORK).await;
        sleep_until(due(&mut chaos, stream.started, k, kills)).await;
        assert!(stream.more_to_come(), "kill {k} would come after the last cycle of the stream: set CHAOS_STREAM_SECONDS longer");
        let since = chaos.progress().await;
        let leader = ingests.remove(holder);
        let ordinal = leader.ordinal;
        chaos.sigkill(leader);
        // The survivor takes the relay over before the killed replica is back.
        let survivor = chaos.relay_holder(&ingests).await;
        assert_eq!(ingests[survivor].ordinal, 1 - ordinal);
        ingests.push(chaos.start(Role::Ingest, ordinal));
        chaos.recovered(&since).await;
    }
    let report = stream.finish().await;
    chaos.finish(&report).await;
}
