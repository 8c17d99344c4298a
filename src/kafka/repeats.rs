//! Consumer errors logged once per stretch instead of once per occurrence.
//!
//! librdkafka queues an error event for every failed connection attempt to every broker, so while
//! a broker restarts a consumer hands back thousands of identical `AllBrokersDown` or transport
//! errors within milliseconds (seen in `make chaos`). Logging each buries whatever else the log
//! says; logging none hides the outage. The first of a kind is logged at once, repeats of the same
//! text within the period are counted, and the next one logged says how many were held back.

use std::time::{Duration, Instant};

/// How long repeats of one error are held back before it is logged again.
pub const REPEAT_PERIOD: Duration = Duration::from_secs(10);

#[derive(Debug)]
pub struct Repeats {
    period: Duration,
    last: Option<(String, Instant)>,
    held_back: u64,
}

impl Repeats {
    pub fn new(period: Duration) -> Self {
        Repeats { period, last: None, held_back: 0 }
    }

    /// Whether the error with text `what` seen at `now` is to be logged: `Some(n)` with the
    /// number of repeats held back since the last line, `None` to count it and stay quiet.
    pub fn admit(&mut self, what: &str, now: Instant) -> Option<u64> {
        if let Some((text, logged)) = &self.last
            && text == what
            && now.saturating_duration_since(*logged) < self.period
        {
            self.held_back += 1;
            return None;
        }
        self.last = Some((what.to_owned(), now));
        Some(std::mem::take(&mut self.held_back))
    }

    /// Logs a non-fatal consumer error unless it repeats the last one within the period.
    pub fn warn(&mut self, err: &rdkafka::error::KafkaError) {
        let text = err.to_string();
        if let Some(held_back) = self.admit(&text, Instant::now()) {
            tracing::warn!(error = %text, repeats_held_back = held_back, "kafka consumer error");
        }
    }
}

impl Default for Repeats {
    fn default() -> Self {
        Repeats::new(REPEAT_PERIOD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_one_error_is_logged_once_then_again_with_the_count_held_back() {
        let mut repeats = Repeats::new(Duration::from_secs(10));
        let start = Instant::now();
        assert_eq!(repeats.admit("all brokers down", start), Some(0));
        for ms in 1..=5000 {
            assert_eq!(repeats.admit("all brokers down", start + Duration::from_millis(ms)), None);
        }
        // After the period the same error is logged again, saying how many were held back.
        assert_eq!(repeats.admit("all brokers down", start + Duration::from_secs(11)), Some(5000));
        // Another error is logged at once, whatever the period.
        assert_eq!(repeats.admit("transport failure", start + Duration::from_secs(12)), Some(0));
        assert_eq!(repeats.admit("all brokers down", start + Duration::from_secs(12)), Some(0));
    }
}
