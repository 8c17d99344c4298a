//! Subcommands of the scoring side: rescore, model.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::{Format, ModelAction};
use crate::config::Config;
use crate::store::Store;
use crate::train;

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
        ModelAction::Train { data, version, out, seed, epochs, features, cross_validate, jobs, held_out } => {
            let out = out.unwrap_or_else(|| Path::new("models").join(&version));
            let config = crate::model::TrainConfig { features, ..crate::model::TrainConfig::new(seed, epochs) };
            let report = train::train_and_save(&data, &out, &version, &config, held_out.into(), cross_validate.then_some(jobs))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        ModelAction::Eval { data, cross_validate: true, untouched, later_cycles, later_cycles_of_folds, runs, folds, seed, epochs, sensor_dropout, hidden, weight_decay, features, jobs, format, .. } => {
            let mut recipe = crate::model::TrainConfig { features, ..crate::model::TrainConfig::new(seed, epochs) };
            if let Some(p) = sensor_dropout {
                anyhow::ensure!((0.0..1.0).contains(&p), "--sensor-dropout must be in [0, 1)");
                recipe.sensor_dropout = p;
            }
            if let Some(width) = hidden {
                anyhow::ensure!(width >= 1, "--hidden must be at least 1");
                (recipe.hidden, recipe.head_hidden) = (width, width);
            }
            if let Some(decay) = weight_decay {
                anyhow::ensure!(decay.is_finite() && decay >= 0.0, "--weight-decay must be a finite number >= 0");
                recipe.weight_decay = decay;
            }
            anyhow::ensure!(runs >= 1, "--runs must be at least 1");
            let report = train::cross_validate(&data, &train::CvSettings { recipe, runs, folds, untouched, later_cycles, later_cycles_of_folds, jobs })?;
            match format {
                Format::Text => print!("{report}"),
                Format::Json => println!("{}", report.to_json()),
            }
        }
        ModelAction::Eval { data, model: dir, held_out, format, .. } => {
            let report = if held_out { train::evaluate_split(&dir, &data)? } else { train::evaluate(&dir, &data)? };
            match format {
                Format::Text => print!("{report}"),
                Format::Json => println!("{}", report.to_json()),
            }
        }
    }
    Ok(0)
}
