//! Consumer lag per partition, from librdkafka's statistics, for every consumer manifold runs.

use prometheus::IntGaugeVec;
use rdkafka::statistics::Statistics;

/// How often librdkafka reports statistics (and so how fresh the lag gauge is), in ms.
pub const STATISTICS_INTERVAL_MS: (&str, &str) = ("statistics.interval.ms", "5000");

/// Sets `gauge{partition}` to each partition's lag on `topic`: messages between the end of the
/// partition (the last stable offset, since every consumer reads committed) and the furthest
/// position librdkafka knows. That is the committed offset for a consumer that commits through
/// the consumer and stores no offsets (ingest, which commits for lag tools), or the offset
/// librdkafka stores as it hands messages over (transaction markers included) for a consumer
/// whose offsets are committed in a producer's transaction (infer): that consumer never hears
/// of those commits, so its committed offset stays where the assignment found it. Messages in
/// hand but not yet committed (at most one batch) do not count as lag then.
pub fn record(statistics: &Statistics, topic: &str, gauge: &IntGaugeVec) {
    let Some(topic) = statistics.topics.get(topic) else { return };
    for (id, partition) in &topic.partitions {
        if let Some(lag) = lag(partition.consumer_lag, partition.consumer_lag_stored)
            && *id >= 0
        {
            gauge.with_label_values(&[&id.to_string()]).set(lag);
        }
    }
}

/// The smaller of the two lags librdkafka computes (-1 when it has no position to compute from).
fn lag(committed: i64, stored: i64) -> Option<i64> {
    [committed, stored].into_iter().filter(|lag| *lag >= 0).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_furthest_known_position_decides_the_lag() {
        assert_eq!(lag(7, -1), Some(7), "ingest: only committed offsets");
        assert_eq!(lag(40, 2), Some(2), "infer: the stored offset moved past the assignment's commit");
        assert_eq!(lag(0, 3), Some(0), "a commit ahead of what was handed over (another member's) counts");
        assert_eq!(lag(-1, -1), None, "no position yet: no value rather than a wrong one");
    }
}
