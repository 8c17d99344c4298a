//! Scenario 4: the Kafka broker restarts under `manifold run` mid-stream.

use std::time::{Duration, Instant};

use manifold::config::recovery::{FaultClass, recovery_bound};

use super::common::chaos::Role;
use super::{FIRST_WORK, SERIAL, WRITTEN, due, faults, input_flows, restart, resumed, scenario, sleep_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_and_repeats_nothing_and_recovers_within_the_derived_bound() {
    let _turn = SERIAL.lock().await;
    let fault = FaultClass::BrokerRestart;
    // A restart takes 10-40 s here (a controlled shutdown, then a JVM start).
    let mut chaos = scenario("kafka_restart", fault, |_| Duration::from_secs(60), &[]).await;
    let run = chaos.started(Role::Run, 0).await;
    let mut stream = chaos.stream();
    let (n, mut outages, mut inputs, mut resumes) = (faults(), Vec::new(), Vec::new(), Vec::new());
    for k in 0..n {
        run.working(WRITTEN, FIRST_WORK).await;
        sleep_until(due(&mut chaos, stream.started, k, n)).await;
        assert!(stream.running(), "the stream ended before restart {k}: set CHAOS_STREAM_SECONDS longer");
        outages.push(restart("kafka").await);
        let answered = Instant::now();
        chaos.kills += 1;
        // The simulator, not manifold, must send again first (its producer reconnects on its
        // own schedule): manifold's recovery is counted from there.
        let flowing = input_flows(&chaos, answered).await;
        inputs.push(flowing - answered);
        let since = chaos.progress().await;
        resumes.push(resumed(&chaos, fault, answered).await);
        chaos.recovered(&since).await;
    }
    let seconds = |all: &[Duration]| all.iter().map(|d| format!("{:.1}", d.as_secs_f64())).collect::<Vec<_>>().join(",");
    println!(
        "chaos {} faults: restarts={n} restart_s={} input_again_s={} resumed_s={} derived_bound_s={:.1}",
        chaos.scenario,
        seconds(&outages),
        seconds(&inputs),
        seconds(&resumes),
        recovery_bound(&chaos.p.config, fault).total().as_secs_f64()
    );
    let report = stream.finish().await;
    // The processes live until the harness has seen everything caught up.
    chaos.finish(&report).await;
    drop(run);
}
