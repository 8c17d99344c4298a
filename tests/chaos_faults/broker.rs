//! Scenario 4: the Kafka broker restarts under `manifold run` mid-stream.

use std::time::{Duration, Instant};

use manifold::config::recovery::{FaultClass, recovery_bound};

use rdkafka::consumer::{BaseConsumer, Consumer};

use super::common::chaos::{Chaos, Role};
use super::{FIRST_WORK, SERIAL, WRITTEN, due, faults, restart, resumed, scenario, sleep_until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_and_repeats_nothing_and_recovers_within_the_derived_bound() {
    let _turn = SERIAL.lock().await;
    let fault = FaultClass::BrokerRestart;
    // A restart takes 10-40 s here (a controlled shutdown, then a JVM start).
    let mut chaos = scenario("kafka_restart", fault, |_| Duration::from_secs(60), &[]).await;
    let run = chaos.started(Role::Run, 0).await;
    let mut stream = chaos.stream();
    let (n, mut outages, mut resumes) = (faults(), Vec::new(), Vec::new());
    for k in 0..n {
        run.working(WRITTEN, FIRST_WORK).await;
        sleep_until(due(&mut chaos, stream.started, k, n)).await;
        assert!(stream.running(), "the stream ended before restart {k}: set CHAOS_STREAM_SECONDS longer");
        outages.push(restart("kafka").await);
        let cleared = Instant::now();
        chaos.kills += 1;
        leaders_elected(&chaos).await;
        let since = chaos.progress().await;
        resumes.push(resumed(&chaos, fault, cleared).await);
        chaos.recovered(&since).await;
    }
    let seconds = |all: &[Duration]| all.iter().map(|d| format!("{:.1}", d.as_secs_f64())).collect::<Vec<_>>().join(",");
    println!(
        "chaos {} faults: restarts={n} restart_s={} resumed_s={} derived_bound_s={:.1}",
        chaos.scenario,
        seconds(&outages),
        seconds(&resumes),
        recovery_bound(&chaos.p.config, fault).total().as_secs_f64()
    );
    let report = stream.finish().await;
    // The processes live until the harness has seen everything caught up.
    chaos.finish(&report).await;
    drop(run);
}

/// A restarted broker answers metadata before it leads its partitions again: waits until the
/// input topic's watermarks can be read (what the harness's progress needs).
async fn leaders_elected(chaos: &Chaos) {
    let client: BaseConsumer = manifold::kafka::client_config(&chaos.p.config.kafka).create().expect("client");
    let topic = chaos.p.config.topics.batches.name.clone();
    let partitions = chaos.p.config.topics.partitions_of(&chaos.p.config.topics.batches);
    let started = Instant::now();
    tokio::task::spawn_blocking(move || {
        while (0..partitions).any(|p| client.fetch_watermarks(&topic, p, Duration::from_secs(2)).is_err()) {
            assert!(started.elapsed() < Duration::from_secs(60), "the restarted broker leads no partition of {topic} after 60 s");
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .expect("join");
}
