use anyhow::Context;
use chrono::Utc;

use super::{Command, Format, MigrateDirection, TopicsAction};
use crate::config::Config;
use crate::kafka::topics::{self, TopicOutcome};
use crate::startup::ProcessSet;
use crate::store::maintenance::Maintenance;
use crate::store::{Store, migrate};
use crate::telemetry::Metrics;

pub async fn dispatch(command: Command, config: Config) -> anyhow::Result<i32> {
    match command {
        Command::Migrate { direction } => migrate_cmd(direction.unwrap_or(MigrateDirection::Up), &config).await,
        Command::Topics { action: TopicsAction::Create } => topics_create(&config).await,
        Command::Check { format } => check(&config, format).await,
        Command::Maintain { once } => maintain(&config, once).await,
        Command::Ingest => serve(ProcessSet::Ingest, config).await,
        Command::Schemas { action: super::SchemasAction::Register } => super::pipeline::register_schemas(&config).await,
        Command::Simulate(args) => super::pipeline::simulate(&config, args).await,
        Command::Dlq { action } => super::pipeline::dlq(&config, action).await,
        Command::Offsets { action } => super::offsets::run(&config, action).await,
        Command::Outbox { action } => super::outbox::run(&config, action).await,
        // HOME locates libpq's default certificates for --admin-url, as for DATABASE_URL.
        Command::Grants { action } => super::grants::run(&config, action, std::env::var_os("HOME").as_deref().map(std::path::Path::new)).await,
        Command::Infer => serve(ProcessSet::Infer, config).await,
        Command::Api => serve(ProcessSet::Api, config).await,
        Command::Users { action: super::UsersAction::CreateAdmin { email, name } } => create_admin(&config, &email, &name).await,
        Command::Run => serve(ProcessSet::All, config).await,
        Command::Rescore { from, to, system, failed } => super::scoring::rescore(&config, from, to, system, failed).await,
        Command::Model { action } => super::scoring::model(action),
    }
}

async fn migrate_cmd(direction: MigrateDirection, config: &Config) -> anyhow::Result<i32> {
    let mut client = Store::dedicated(&config.database)
        .await
        .with_context(|| format!("connecting to {}", config.database.url))?;
    match direction {
        MigrateDirection::Up => {
            let report = migrate::up(&mut client).await?;
            println!("schema at version {} (applied: {:?})", report.version, report.changed);
            if let Some(choice) = &report.engine {
                println!("readings storage: {} ({})", choice.engine.variant(), choice.reason);
            }
            // The next step opens a connection of its own; a single-connection server (such as
            // the test TimescaleDB) would wait for this one forever.
            drop(client);
            // Readings need a partition for today before anything can be written.
            let maintenance = Maintenance::new(config.database.clone(), config.storage.clone(), Metrics::new());
            let pass = maintenance.run_once(Utc::now()).await?;
            println!(
                "readings partitions: {} created, {} dropped, {} deferred",
                pass.partitions.created.len(),
                pass.partitions.dropped.len(),
                pass.partitions.deferred.len()
            );
        }
        MigrateDirection::Down { steps, all } => {
            let report = migrate::down(&mut client, if all { usize::MAX } else { steps }).await?;
            println!("schema at version {} (reverted: {:?})", report.version, report.changed);
        }
        MigrateDirection::Status => {
            let version = migrate::current_version(&client).await?;
            println!("schema at version {version}; this binary knows up to {}", migrate::latest_version());
        }
    }
    Ok(0)
}

async fn topics_create(config: &Config) -> anyhow::Result<i32> {
    let report = topics::create(&config.kafka, &config.topics).await?;
    for topic in &report {
        match topic.outcome {
            TopicOutcome::Created { partitions } => println!("created  {} ({partitions} partitions)", topic.name),
            TopicOutcome::Exists { partitions } if topic.partition_mismatch() => println!(
                "exists   {} with {partitions} partitions, config says {}: left as is (adding partitions moves keys)",
                topic.name, topic.configured_partitions
            ),
            TopicOutcome::Exists { partitions } => println!("exists   {} ({partitions} partitions)", topic.name),
        }
    }
    Ok(0)
}

async fn check(config: &Config, format: Format) -> anyhow::Result<i32> {
    let reports = crate::check::run(config).await;
    match format {
        Format::Text => {
            print!("{}", crate::check::render_text(&reports));
            // What the configured timeouts promise once a fault clears (README, "Failures").
            println!("\nrecovery after a fault clears, from the configured timeouts:");
            for bound in crate::config::recovery::recovery_bounds(config) {
                println!("  {bound}");
            }
        }
        Format::Json => println!("{}", serde_json::to_string(&reports)?),
    }
    Ok(if reports.iter().any(|r| r.is_failure()) { 1 } else { 0 })
}

async fn maintain(config: &Config, once: bool) -> anyhow::Result<i32> {
    let maintenance = Maintenance::new(config.database.clone(), config.storage.clone(), Metrics::new());
    if once {
        let report = maintenance.run_once(Utc::now()).await?;
        println!("{}", serde_json::json!({
            "created": report.partitions.created,
            "dropped": report.partitions.dropped,
            "deferred": report.partitions.deferred,
            "pruned_rows": report.pruned_rows,
        }));
    } else {
        maintenance.run(crate::shutdown::on_signals()).await;
    }
    Ok(0)
}

/// A long-running process set until SIGINT or SIGTERM.
async fn serve(set: ProcessSet, config: Config) -> anyhow::Result<i32> {
    crate::startup::run(set, config, Metrics::new(), crate::shutdown::on_signals()).await?;
    Ok(0)
}

async fn create_admin(config: &Config, email: &str, name: &str) -> anyhow::Result<i32> {
    let state = crate::api::AppState::new(config, Store::new(&config.database)?, Metrics::new())?;
    let created = state.create_admin(email, name).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{}", serde_json::to_string_pretty(&created)?);
    eprintln!("the API key is shown once; store it now");
    Ok(0)
}
