//! Scenario 3: the database fails under `manifold run` mid-stream — restarted, cut, stalled.

use std::time::{Duration, Instant};

use manifold::config::recovery::{FaultClass, recovery_bound};

use super::common::chaos::{Chaos, Proc, Role};
use super::common::proxy::Proxy;
use super::{FIRST_WORK, SERIAL, WRITTEN, due, faults, longer_than_every_timeout, restart, resumed, scenario, sleep_until};

/// A proxy in front of the pipeline's PostgreSQL, and the URL that goes through it (the
/// test's own queries never do).
async fn proxy_for(chaos: &Chaos) -> (Proxy, String) {
    let url = reqwest::Url::parse(&chaos.p.db_url).expect("database URL");
    let proxy = Proxy::start(format!("{}:{}", url.host_str().expect("host"), url.port().expect("port"))).await;
    let mut proxied = url.clone();
    proxied.set_port(Some(proxy.port)).expect("port");
    (proxy, proxied.to_string())
}

/// Starts `role` with its database connections going to `url`.
async fn started_through(chaos: &Chaos, role: Role, ordinal: u32, url: &str) -> Proc {
    chaos.started_with(role, ordinal, &[("DATABASE_URL", url)]).await
}

fn seconds(all: &[Duration]) -> String {
    all.iter().map(|d| format!("{:.1}", d.as_secs_f64())).collect::<Vec<_>>().join(",")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_mid_stream_loses_and_repeats_nothing_and_recovers_within_the_derived_bound() {
    let _turn = SERIAL.lock().await;
    let fault = FaultClass::DatabaseRestart;
    let mut chaos = scenario("pg_restart", fault, |_| Duration::from_secs(20), &[]).await;
    let run = chaos.started(Role::Run, 0).await;
    let mut stream = chaos.stream();
    let (n, mut outages, mut resumes) = (faults(), Vec::new(), Vec::new());
    for k in 0..n {
        run.working(WRITTEN, FIRST_WORK).await;
        sleep_until(due(&mut chaos, stream.started, k, n)).await;
        assert!(stream.running(), "the stream ended before restart {k}: set CHAOS_STREAM_SECONDS longer");
        outages.push(restart("postgres").await);
        let cleared = Instant::now();
        chaos.kills += 1;
        let since = chaos.progress().await;
        resumes.push(resumed(&chaos, fault, cleared).await);
        chaos.recovered(&since).await;
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_cut_mid_stream_lose_and_repeat_nothing_and_recover_within_the_derived_bound() {
    let _turn = SERIAL.lock().await;
    let fault = FaultClass::ConnectionCut;
    let mut chaos = scenario("pg_cut", fault, |_| Duration::from_secs(20), &[]).await;
    let (proxy, url) = proxy_for(&chaos).await;
    let run = started_through(&chaos, Role::Run, 0, &url).await;
    let mut stream = chaos.stream();
    let (n, outage, mut resumes) = (faults(), Duration::from_secs(3), Vec::new());
    for k in 0..n {
        run.working(WRITTEN, FIRST_WORK).await;
        sleep_until(due(&mut chaos, stream.started, k, n)).await;
        assert!(stream.running(), "the stream ended before cut {k}: set CHAOS_STREAM_SECONDS longer");
        proxy.cut();
        tokio::time::sleep(outage).await;
        proxy.restore();
        let cleared = Instant::now();
        chaos.kills += 1;
        let since = chaos.progress().await;
        resumes.push(resumed(&chaos, fault, cleared).await);
        chaos.recovered(&since).await;
    }
    println!(
        "chaos {} faults: cuts={n} outage_s={:.1} resumed_s={} derived_bound_s={:.1}",
        chaos.scenario,
        outage.as_secs_f64(),
        seconds(&resumes),
        recovery_bound(&chaos.p.config, fault).total().as_secs_f64()
    );
    let report = stream.finish().await;
    // The processes live until the harness has seen everything caught up.
    chaos.finish(&report).await;
    drop(run);
}

/// Two replicas: `run` 0 reaches the database through the proxy and leads the relay, `ingest`
/// 1 connects directly. The proxy stalls longer than every timeout: the relay lock must move
/// to replica 1 within the derived takeover bound (the stalled holder's session is ended by the
/// server), and once the stall clears replica 0 goes on without losing or repeating anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_longer_than_every_timeout_moves_the_relay_lock_and_loses_and_repeats_nothing() {
    let _turn = SERIAL.lock().await;
    let fault = FaultClass::ConnectionStall;
    let mut chaos = scenario("pg_stall", fault, |c| longer_than_every_timeout(c) + Duration::from_secs(20), &[]).await;
    let stall = longer_than_every_timeout(&chaos.p.config);
    let (proxy, url) = proxy_for(&chaos).await;
    let holder = started_through(&chaos, Role::Run, 0, &url).await;
    wait_for_log(&holder, "relay leading", FIRST_WORK).await;
    let standby = chaos.started(Role::Ingest, 1).await;
    let mut stream = chaos.stream();
    let takeover_bound = recovery_bound(&chaos.p.config, FaultClass::RelayTakeover);
    let (n, mut takeovers, mut resumes) = (faults(), Vec::new(), Vec::new());
    for k in 0..n {
        holder.working(WRITTEN, FIRST_WORK).await;
        sleep_until(due(&mut chaos, stream.started, k, n)).await;
        assert!(stream.running(), "the stream ended before stall {k}: set CHAOS_STREAM_SECONDS longer");
        let leads = standby.log_text().matches("relay leading").count();
        proxy.stall();
        let stalled = Instant::now();
        if k == 0 {
            // Only the first stall finds the proxied replica leading.
            let took = wait_for_count(&standby, "relay leading", leads + 1, takeover_bound.total()).await;
            takeovers.push(took);
        }
        sleep_until(stalled + stall).await;
        proxy.restore();
        let cleared = Instant::now();
        chaos.kills += 1;
        let since = chaos.progress().await;
        resumes.push(resumed(&chaos, fault, cleared).await);
        chaos.recovered(&since).await;
    }
    println!(
        "chaos {} faults: stalls={n} stall_s={:.1} relay_takeover_s={} takeover_bound_s={:.1} resumed_s={} derived_bound_s={:.1}",
        chaos.scenario,
        stall.as_secs_f64(),
        seconds(&takeovers),
        takeover_bound.total().as_secs_f64(),
        seconds(&resumes),
        recovery_bound(&chaos.p.config, fault).total().as_secs_f64()
    );
    let report = stream.finish().await;
    chaos.finish(&report).await;
    drop((holder, standby));
}

async fn wait_for_log(proc: &Proc, text: &str, timeout: Duration) {
    wait_for_count(proc, text, 1, timeout).await;
}

/// Waits until `proc`'s log holds `text` `count` times; fails after `timeout`.
async fn wait_for_count(proc: &Proc, text: &str, count: usize, timeout: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if proc.log_text().matches(text).count() >= count {
            return started.elapsed();
        }
        assert!(started.elapsed() <= timeout, "no {text:?} within {timeout:.1?}: {}", proc.log_text().lines().rev().take(20).collect::<Vec<_>>().join("\n"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
