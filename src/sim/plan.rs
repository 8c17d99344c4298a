//! When the simulator sends each cycle, and which event times it carries: never a reading
//! ahead of the wall clock, since a device clock ahead is exactly what the readiness rule
//! distrusts (the watermark is capped at now, windows wait for their end).

use std::time::Duration;

/// One load cycle of the rig: 60 s, aligned to window boundaries.
pub const CYCLE_US: i64 = 60_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimePlan {
    /// Event time where the first cycle starts, on a cycle boundary.
    pub first_start_us: i64,
    /// Wall time between cycles; None sends them all at once (a backfill).
    pub every_us: Option<i64>,
}

impl TimePlan {
    /// The plan of a run of `cycles` starting at wall time `now_us`:
    /// - `speed` None: a backfill whose last cycle ends at or before now, sent at once;
    /// - `speed` N: cycle c is sent (c + 1) × 60/N s after the start. N = 1 is live data (each
    ///   cycle from the current one on, sent once it has ended); N > 1 is a time-lapse replaying
    ///   history that ends at the wall clock when the replay ends (it starts that much earlier);
    ///   N < 1 is slow motion from the current cycle on.
    pub fn new(now_us: i64, cycles: usize, speed: Option<f64>) -> Self {
        let align = |t: i64| t - t.rem_euclid(CYCLE_US);
        let cycles = cycles as i64;
        match speed {
            None => TimePlan { first_start_us: align(now_us) - cycles * CYCLE_US, every_us: None },
            Some(speed) => {
                // Rounded up: sending a little later never puts an event time ahead of the clock.
                let every_us = (CYCLE_US as f64 / speed.max(1e-9)).ceil().min(i64::MAX as f64 / 4.0) as i64;
                // Event time outruns the wall clock by (60 s − every) per cycle; start early by
                // that much over the whole run so the last cycle ends no later than it is sent.
                let lead = cycles.saturating_mul((CYCLE_US - every_us).max(0));
                TimePlan { first_start_us: align(now_us.saturating_sub(lead)), every_us: Some(every_us) }
            }
        }
    }

    pub fn start_us(&self, cycle: usize) -> i64 {
        self.first_start_us + cycle as i64 * CYCLE_US
    }

    pub fn end_us(&self, cycle: usize) -> i64 {
        self.start_us(cycle) + CYCLE_US
    }

    /// Wall time after the run's start when `cycle` is sent.
    pub fn send_after(&self, cycle: usize) -> Duration {
        match self.every_us {
            None => Duration::ZERO,
            Some(every) => Duration::from_micros((cycle as u64 + 1).saturating_mul(every as u64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_780_000_000_123_456;

    fn plans() -> impl Iterator<Item = (i64, usize, Option<f64>, TimePlan)> {
        let nows = [NOW, NOW - NOW.rem_euclid(CYCLE_US), NOW - NOW.rem_euclid(CYCLE_US) - 1];
        let speeds = [None, Some(0.5), Some(1.0), Some(1.7), Some(60.0), Some(1000.0), Some(1e9)];
        nows.into_iter().flat_map(move |now| {
            speeds.into_iter().flat_map(move |speed| {
                [1, 2, 30, 200, 10_000].into_iter().map(move |cycles| (now, cycles, speed, TimePlan::new(now, cycles, speed)))
            })
        })
    }

    #[test]
    fn no_simulated_event_time_is_ahead_of_the_wall_clock_when_it_is_sent() {
        for (now, cycles, speed, plan) in plans() {
            for c in 0..cycles {
                let sent_at = now + plan.send_after(c).as_micros() as i64;
                assert!(plan.end_us(c) <= sent_at, "speed {speed:?}, {cycles} cycles, cycle {c}: ends {} µs after it is sent", plan.end_us(c) - sent_at);
            }
        }
    }

    #[test]
    fn cycles_are_aligned_and_consecutive_and_a_replay_ends_within_a_cycle_of_the_clock() {
        for (now, cycles, speed, plan) in plans() {
            assert_eq!(plan.first_start_us.rem_euclid(CYCLE_US), 0);
            assert_eq!(plan.start_us(1) - plan.start_us(0), CYCLE_US);
            let last = cycles - 1;
            let sent_at = now + plan.send_after(last).as_micros() as i64;
            if speed.is_none_or(|s| s >= 1.0) {
                // Backfill, live and time-lapse all end where the wall clock is, not earlier.
                assert!(plan.end_us(last) > sent_at - CYCLE_US, "speed {speed:?}, {cycles} cycles: history ends {} µs before the clock", sent_at - plan.end_us(last));
            }
        }
    }

    #[test]
    fn live_data_starts_with_the_current_cycle_and_a_time_lapse_replays_the_past() {
        let aligned = NOW - NOW.rem_euclid(CYCLE_US);
        assert_eq!(TimePlan::new(NOW, 5, Some(1.0)).first_start_us, aligned);
        assert_eq!(TimePlan::new(NOW, 5, Some(1.0)).send_after(0), Duration::from_secs(60));
        assert_eq!(TimePlan::new(NOW, 30, None).end_us(29), aligned);
        // 200 cycles at 60×: 200 min of event time in 200 s, so it starts 196⅔ min back.
        let lapse = TimePlan::new(NOW, 200, Some(60.0));
        assert_eq!(lapse.send_after(0), Duration::from_secs(1));
        let back = 11_800 * 1_000_000;
        assert!(lapse.first_start_us <= NOW - back && lapse.first_start_us > NOW - back - CYCLE_US);
    }
}
