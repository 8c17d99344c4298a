//! Telling a stray fence from a duplicate instance.
//!
//! A static group member (`group.instance.id`) or a transactional producer is fenced when another
//! client claims its identity: a second replica on the same ordinal. But a lone member can be
//! fenced too: after a broker restart librdkafka may rejoin under a new member id and the
//! coordinator fences the old one, which is this same process (librdkafka #3437; seen here in
//! `make chaos`, where `manifold run` lost its infer worker for good on one of five broker
//! restarts). Recreating the client settles a stray fence at once. Two live replicas on
//! one ordinal instead fence each other back and forth, so a fence that repeats within a short
//! window is the deployment's fault, and the caller stops.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Fences tolerated within the window before the instance is taken to be a duplicate.
pub const FENCES_BEFORE_STOP: usize = 3;
/// The window, in session timeouts: two replicas on one ordinal fence each other about once per
/// restart pause and group join, well within it.
const WINDOW_SESSIONS: u32 = 10;

#[derive(Debug)]
pub struct Fences {
    window: Duration,
    times: VecDeque<Instant>,
}

impl Fences {
    /// `window`: how far back fences count.
    pub fn new(window: Duration) -> Self {
        Fences { window, times: VecDeque::new() }
    }

    /// The window for a group member with this session timeout.
    pub fn for_session(session_timeout: Duration) -> Self {
        Fences::new(WINDOW_SESSIONS * session_timeout)
    }

    /// Records a fence at `now`; true when it is the [`FENCES_BEFORE_STOP`]th within the window,
    /// so the caller must stop rather than recreate its client.
    pub fn repeated(&mut self, now: Instant) -> bool {
        self.times.push_back(now);
        while self.times.front().is_some_and(|t| now.duration_since(*t) > self.window) {
            self.times.pop_front();
        }
        self.times.len() >= FENCES_BEFORE_STOP
    }

    pub fn count(&self) -> usize {
        self.times.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_far_apart_are_strays_and_close_ones_a_duplicate() {
        let mut fences = Fences::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // One per broker restart, minutes apart: never a duplicate.
        for k in 0..10 {
            assert!(!fences.repeated(at(k * 120)), "fence {k}");
        }
        // Two live replicas fencing each other every few seconds: the third within the window stops.
        let mut duplicate = Fences::new(Duration::from_secs(60));
        assert!(!duplicate.repeated(at(0)));
        assert!(!duplicate.repeated(at(8)));
        assert!(duplicate.repeated(at(16)));
        // Two close ones, then a long quiet spell: the count starts over.
        let mut quiet = Fences::new(Duration::from_secs(60));
        assert!(!quiet.repeated(at(0)));
        assert!(!quiet.repeated(at(5)));
        assert!(!quiet.repeated(at(200)));
        assert_eq!(quiet.count(), 1);
    }
}
