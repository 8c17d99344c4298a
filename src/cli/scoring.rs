//! Subcommands of the scoring side: infer, run, rescore, model.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::{Format, ModelAction};
use crate::config::Config;
use crate::store::Store;
use crate::telemetry::Metrics;
use crate::train;

pub async fn infer(config: Config) -> anyhow::Result<i32> {
    crate::infer::run(config, Metrics::new(), crate::shutdown::on_signals()).await?;
    Ok(0)
}

/// Ingest, infer and the API share one registry and one shutdown token; consumers drain first,
/// the API stops last.
pub async fn run_all(config: Config) -> anyhow::Result<i32> {
    let metrics = Metrics::new();
    let shutdown = crate::shutdown::on_signals();
    let api_token = tokio_util::sync::CancellationToken::new();
    let state = crate::api::AppState::new(&config, crate::api::store_for(&config)?, metrics.clone())?;
    let (bound, api) = crate::api::serve(config.api.listen, state, api_token.clone()).await?;
    tracing::info!(listen = %bound, "API listening");
    // One side failing stops the other: a half-running pipeline would look healthy and not be.
    let stop_on_error = |result: anyhow::Result<()>| {
        if result.is_err() {
            shutdown.cancel();
        }
        result
    };
    let (ingest, infer) = tokio::join!(
        async { stop_on_error(crate::ingest::run(config.clone(), metrics.clone(), shutdown.clone()).await) },
        async { stop_on_error(crate::infer::run(config.clone(), metrics.clone(), shutdown.clone()).await) },
    );
    api_token.cancel();
    let _ = api.await;
    ingest?;
    infer?;
    Ok(0)
}

/// New revisions of the windows in a range, or (`--failed`) of the windows whose scoring failed.
pub async fn rescore(config: &Config, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>, system: Option<String>, failed: bool) -> anyhow::Result<i32> {
    let store = Store::new(&config.database)?;
    if failed {
        let (_, report) = store.rescore_failed(system.as_deref()).await?;
        println!("{}", serde_json::to_string(&report)?);
        return Ok(0);
    }
    let (Some(from), Some(to)) = (from, to) else { anyhow::bail!("give --from and --to, or --failed") };
    anyhow::ensure!(from < to, "--from must be before --to");
    let windows = store.rescore(from, to, system.as_deref()).await?;
    println!("{}", serde_json::json!({ "windows": windows.len() }));
    Ok(0)
}

pub fn model(action: ModelAction) -> anyhow::Result<i32> {
    match action {
        ModelAction::Train { data, version, out, seed, epochs } => {
            let out = out.unwrap_or_else(|| Path::new("models").join(&version));
            let report = train::train_and_save(&data, &out, &version, seed, epochs)?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        ModelAction::Eval { data, model: dir, held_out, format } => {
            let report = if held_out { train::evaluate_split(&dir, &data)? } else { train::evaluate(&dir, &data)? };
            match format {
                Format::Text => print!("{report}"),
                Format::Json => println!("{}", report.to_json()),
            }
        }
    }
    Ok(0)
}
