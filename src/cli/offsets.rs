//! `manifold offsets show|reset`: where ingest resumes. The positions are stored in PostgreSQL
//! with the data (Kafka's committed offsets are only a copy for lag tools), so Kafka's own group
//! tools cannot move them; these commands move both.

use std::collections::HashMap;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use serde::Serialize;

use super::Format;
use crate::config::Config;
use crate::kafka::groups::{GroupAdmin, PartitionMarks};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum OffsetsAction {
    /// Per partition of the batches topic: the stored next offset, Kafka's watermarks, the lag,
    /// and the offset Kafka's copy for lag tools says.
    Show {
        #[command(flatten)]
        group: GroupArg,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Move where ingest resumes (stored offsets and Kafka's committed ones). Refused while a
    /// consumer of the group runs: stop every `manifold ingest` / `manifold run` of the group first.
    Reset {
        #[command(flatten)]
        group: GroupArg,
        #[command(flatten)]
        to: ResetTarget,
        /// Only this partition (default: every partition of the batches topic).
        #[arg(long)]
        partition: Option<i32>,
    },
}

#[derive(Debug, Args)]
pub struct GroupArg {
    /// The consumer group; default: the ingest group (ingest.group_id, MANIFOLD__INGEST__GROUP_ID).
    #[arg(long)]
    group: Option<String>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ResetTarget {
    /// The oldest message still in the topic.
    #[arg(long)]
    to_earliest: bool,
    /// After the newest message: nothing now in the topic is read.
    #[arg(long)]
    to_latest: bool,
    /// The first message produced at or after this time (RFC 3339), by Kafka's offsets-for-times.
    #[arg(long, value_name = "T")]
    to_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
struct PartitionState {
    partition: i32,
    /// Where ingest resumes; None: nothing stored, it starts at the oldest message.
    stored: Option<i64>,
    low: i64,
    high: i64,
    lag: i64,
    kafka_committed: Option<i64>,
}

impl PartitionState {
    fn of(marks: &PartitionMarks, stored: Option<i64>) -> Self {
        let resume = stored.unwrap_or(marks.low).max(marks.low);
        Self { partition: marks.partition, stored, low: marks.low, high: marks.high, lag: (marks.high - resume).max(0), kafka_committed: marks.committed }
    }
}

/// One partition's move: from where ingest would resume to the new offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Move {
    partition: i32,
    from: i64,
    to: i64,
}

pub async fn run(config: &Config, action: OffsetsAction) -> anyhow::Result<i32> {
    let topic = config.topics.batches.name.clone();
    match action {
        OffsetsAction::Show { group, format } => {
            let group = group.group.unwrap_or_else(|| config.ingest.group_id.clone());
            let (_, states) = states(config, &group, &topic, None).await?;
            if format == Format::Json {
                println!("{}", serde_json::json!({ "group": group, "topic": topic, "partitions": states }));
            } else {
                println!("group {group}, topic {topic}");
                println!("{:>9}{:>12}{:>12}{:>12}{:>10}{:>16}", "partition", "stored", "low", "high", "lag", "kafka-committed");
                for s in &states {
                    let stored = s.stored.map_or("-".to_owned(), |o| o.to_string());
                    let committed = s.kafka_committed.map_or("-".to_owned(), |o| o.to_string());
                    println!("{:>9}{:>12}{:>12}{:>12}{:>10}{:>16}", s.partition, stored, s.low, s.high, s.lag, committed);
                }
            }
            Ok(0)
        }
        OffsetsAction::Reset { group, to, partition } => {
            let group = group.group.unwrap_or_else(|| config.ingest.group_id.clone());
            reset(config, &group, &topic, &to, partition).await
        }
    }
}

async fn states(config: &Config, group: &str, topic: &str, only: Option<i32>) -> anyhow::Result<(GroupAdmin, Vec<PartitionState>)> {
    let admin = GroupAdmin::new(&config.kafka, group)?;
    let mut partitions = admin.partitions(topic).await?;
    if let Some(p) = only {
        anyhow::ensure!(partitions.contains(&p), "topic {topic} has no partition {p} (it has {partitions:?})");
        partitions = vec![p];
    }
    let marks = admin.marks(topic, &partitions).await?;
    let store = Store::new(&config.database)?;
    let stored = store.read_offsets(group, topic, &partitions).await?;
    let states = marks.iter().map(|m| PartitionState::of(m, stored.get(&m.partition).copied())).collect();
    Ok((admin, states))
}

async fn reset(config: &Config, group: &str, topic: &str, to: &ResetTarget, only: Option<i32>) -> anyhow::Result<i32> {
    let (admin, states) = states(config, group, topic, only).await?;
    let members = admin.members().await?;
    if !members.is_empty() {
        let who: Vec<String> = members.iter().map(|m| format!("{} on {}", m.client_id, m.host.trim_start_matches('/'))).collect();
        anyhow::bail!(
            "consumer group {group} has {} active member(s) ({}): offsets can only be reset while none of its consumers runs. \
             Stop every `manifold ingest` / `manifold run` using group {group} (SIGTERM), wait until the group is empty \
             (up to ingest.session_timeout_ms after an unclean stop), then run this again",
            members.len(),
            who.join(", ")
        );
    }
    let by_time = match to.to_time {
        Some(time) => {
            let partitions: Vec<i32> = states.iter().map(|s| s.partition).collect();
            admin.offsets_for_time(topic, &partitions, time.timestamp_millis()).await?.into_iter().collect()
        }
        None => HashMap::new(),
    };
    let moves = plan(to, &states, &by_time);
    let next: Vec<(i32, i64)> = moves.iter().map(|m| (m.partition, m.to)).collect();
    let store = Store::new(&config.database)?;
    store.reset_offsets(group, topic, &next).await.context("storing the new offsets")?;
    admin.commit(topic, &next).await.context("the stored offsets moved, but committing them to Kafka (for lag tools) failed")?;
    println!("group {group}, topic {topic}: offsets reset");
    for m in &moves {
        println!("  partition {:>3}: {} -> {}{}", m.partition, m.from, m.to, describe(m));
    }
    if moves.iter().any(|m| m.to < m.from) {
        println!("{}", reread_note(config.storage.aux_retention_days));
    }
    if moves.iter().any(|m| m.to > m.from) {
        println!("Messages skipped over are never ingested; `manifold offsets reset --to-time` can go back to them while Kafka keeps them.");
    }
    Ok(0)
}

/// The new offset of each partition; a target beyond the log is clamped to it.
fn plan(to: &ResetTarget, states: &[PartitionState], by_time: &HashMap<i32, Option<i64>>) -> Vec<Move> {
    states
        .iter()
        .map(|s| {
            let target = if to.to_earliest {
                s.low
            } else if to.to_latest {
                s.high
            } else {
                // No message at or after the time: resume after the newest.
                by_time.get(&s.partition).copied().flatten().unwrap_or(s.high)
            };
            let from = s.stored.unwrap_or(s.low).max(s.low);
            Move { partition: s.partition, from, to: target.clamp(s.low, s.high) }
        })
        .collect()
}

fn describe(m: &Move) -> String {
    match m.to.cmp(&m.from) {
        std::cmp::Ordering::Less => format!(" ({} message(s) read again)", m.from - m.to),
        std::cmp::Ordering::Greater => format!(" ({} message(s) skipped)", m.to - m.from),
        std::cmp::Ordering::Equal => " (unchanged)".to_owned(),
    }
}

/// What ingest does with messages it reads a second time.
fn reread_note(aux_retention_days: u32) -> String {
    format!(
        "On a re-read: a batch already stored is skipped as a duplicate by its (system_id, batch_id) \
         (ids are remembered for storage.aux_retention_days = {aux_retention_days} days; older batches are stored again); \
         a message that was dead-lettered is rejected again for the same reason, but recorded once: \
         its dead letter (by topic, partition and offset) exists already, so no new row and no second \
         message on the dead-letter topic."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(partition: i32, stored: Option<i64>, low: i64, high: i64) -> PartitionState {
        PartitionState::of(&PartitionMarks { partition, low, high, committed: None }, stored)
    }

    fn target(earliest: bool, latest: bool) -> ResetTarget {
        ResetTarget { to_earliest: earliest, to_latest: latest, to_time: None }
    }

    #[test]
    fn lag_counts_from_where_ingest_resumes() {
        assert_eq!(state(0, Some(7), 0, 10).lag, 3);
        assert_eq!(state(0, None, 4, 10).lag, 6, "nothing stored: ingest starts at the oldest message");
        assert_eq!(state(0, Some(2), 5, 10).lag, 5, "a stored offset below the log resumes at the log's start");
    }

    #[test]
    fn a_reset_moves_each_partition_to_its_target_within_the_log() {
        let states = [state(0, Some(7), 2, 10), state(1, None, 0, 4)];
        let earliest = plan(&target(true, false), &states, &HashMap::new());
        assert_eq!(earliest, vec![Move { partition: 0, from: 7, to: 2 }, Move { partition: 1, from: 0, to: 0 }]);
        let latest = plan(&target(false, true), &states, &HashMap::new());
        assert_eq!(latest, vec![Move { partition: 0, from: 7, to: 10 }, Move { partition: 1, from: 0, to: 4 }]);
        let by_time = HashMap::from([(0, Some(5)), (1, None)]);
        let timed = plan(&target(false, false), &states, &by_time);
        assert_eq!(timed, vec![Move { partition: 0, from: 7, to: 5 }, Move { partition: 1, from: 0, to: 4 }], "no message after the time: the end");
    }
}
