//! `manifold outbox failed`: the outbox events the relay set aside because the broker can never
//! take them (each was also counted and logged at error level when it happened).

use clap::Subcommand;

use super::Format;
use crate::config::Config;
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum OutboxAction {
    /// Events that could not be published, newest first, with the reason.
    Failed {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
}

pub async fn run(config: &Config, action: OutboxAction) -> anyhow::Result<i32> {
    let store = Store::new(&config.database)?;
    match action {
        OutboxAction::Failed { limit, format } => {
            let total = store.outbox_failure_count().await?;
            let failures = store.outbox_failures(limit).await?;
            if format == Format::Json {
                println!("{}", serde_json::json!({ "total": total, "failures": failures }));
                return Ok(0);
            }
            println!("{total} outbox event(s) could not be published");
            if total > 0 {
                println!("{:>10}  {:<14}{:<20}{:<34}message", "seq", "role", "reason", "failed at");
            }
            for f in &failures {
                println!("{:>10}  {:<14}{:<20}{:<34}{}", f.seq, f.topic_role, f.reason, f.failed_at.to_rfc3339(), f.message);
            }
        }
    }
    Ok(0)
}
