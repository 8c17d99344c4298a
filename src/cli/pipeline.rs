//! Subcommands of the data path: schemas, simulate, dlq.

use std::io::IsTerminal;

use anyhow::Context;
use chrono::{DateTime, Utc};
use rdkafka::producer::FutureRecord;

use super::{DlqAction, Format, SimulateArgs};
use crate::codec::registry;
use crate::config::Config;
use crate::sim::{self, SimulateOptions};
use crate::store::{ReplayFilter, Store};

pub async fn register_schemas(config: &Config) -> anyhow::Result<i32> {
    for registered in registry::register_all(&config.schema_registry, &config.topics).await? {
        println!("{}  id {}", registered.subject, registered.id);
    }
    Ok(0)
}

pub async fn simulate(config: &Config, args: SimulateArgs) -> anyhow::Result<i32> {
    let speed = match args.speed.as_str() {
        "max" => None,
        text => Some(text.parse::<f64>().ok().filter(|s| *s > 0.0).context("--speed takes a positive number or \"max\"")?),
    };
    let options = SimulateOptions {
        data: args.data,
        systems: args.systems,
        system_prefix: args.prefix,
        cycles: args.cycles,
        speed,
        bad_every: args.bad_every,
        format: args.format,
        offset: args.offset,
        native_rates: args.native_rates,
    };
    let mut report = sim::run(config, &options).await?;
    if !args.checksums {
        report.series.clear();
    }
    println!("{}", serde_json::to_string(&report)?);
    Ok(0)
}

pub async fn dlq(config: &Config, action: DlqAction) -> anyhow::Result<i32> {
    let store = Store::new(&config.database)?;
    match action {
        DlqAction::List { reason, limit, format } => {
            let summary = store.dead_letter_summary().await?;
            let examples = store.dead_letter_examples(reason.as_deref(), limit).await?;
            let unpublished = store.outbox_failure_count().await?;
            if format == Format::Json {
                println!("{}", serde_json::json!({ "reasons": summary, "newest": examples, "outbox_failures": unpublished }));
                return Ok(0);
            }
            if unpublished > 0 {
                println!("{unpublished} outbox event(s) could not be published: manifold outbox failed\n");
            }
            println!("{:<18}{:>10}{:>10}  newest", "reason", "total", "pending");
            for r in &summary {
                println!("{:<18}{:>10}{:>10}  {}", r.reason, r.total, r.pending, r.newest.to_rfc3339());
            }
            println!();
            for e in &examples {
                let source = (e.partition, e.offset);
                println!("{}\n    {}", letter_line(e.id, &e.received_at, &e.reason, e.system_id.as_deref(), e.batch_id.as_deref(), source), e.message);
            }
        }
        DlqAction::Replay { reason, system, since, dry_run } => {
            replay(config, &store, &ReplayFilter { reason, system_id: system, since }, dry_run).await?;
        }
    }
    Ok(0)
}

/// Sends the matching dead letters to the input topic and marks them replayed; with `dry_run`,
/// prints one line per dead letter instead and sends or marks nothing.
async fn replay(config: &Config, store: &Store, filter: &ReplayFilter, dry_run: bool) -> anyhow::Result<()> {
    let producer = if dry_run { None } else { Some(crate::kafka::producer(&config.kafka)?) };
    let topic = &config.topics.batches.name;
    let bar = if !dry_run && std::io::stderr().is_terminal() { indicatif::ProgressBar::no_length() } else { indicatif::ProgressBar::hidden() };
    let (mut after, mut count) = (0, 0u64);
    loop {
        let letters = store.dead_letters_to_replay(filter, after, 500).await?;
        let Some(last) = letters.last() else { break };
        after = last.id;
        let Some(producer) = &producer else {
            for l in &letters {
                let line = letter_line(l.id, &l.received_at, &l.reason, l.system_id.as_deref(), l.batch_id.as_deref(), (l.partition, l.offset));
                println!("would replay {line} ({} bytes)", l.value.as_ref().map_or(0, Vec::len));
            }
            count += letters.len() as u64;
            continue;
        };
        for letter in &letters {
            let mut record = FutureRecord::to(topic).payload(letter.value.as_deref().unwrap_or_default());
            if let Some(key) = &letter.key {
                record = record.key(key.as_slice());
            }
            producer.send(record, std::time::Duration::from_secs(30)).await.map_err(|(e, _)| e)?;
            bar.inc(1);
        }
        let ids: Vec<i64> = letters.iter().map(|l| l.id).collect();
        count += store.mark_replayed(&ids).await?;
    }
    bar.finish_and_clear();
    if dry_run {
        println!("{}", serde_json::json!({ "dry_run": true, "would_replay": count }));
    } else {
        println!("{}", serde_json::json!({ "replayed": count }));
    }
    Ok(())
}

/// A dead letter in one line: id, time, reason, system, batch and where it was read.
fn letter_line(id: i64, received_at: &DateTime<Utc>, reason: &str, system: Option<&str>, batch: Option<&str>, source: (i32, i64)) -> String {
    let (partition, offset) = source;
    format!(
        "#{id} {} {reason} system={} batch={} p{partition}@{offset}",
        received_at.to_rfc3339(),
        system.unwrap_or("-"),
        batch.unwrap_or("-")
    )
}
