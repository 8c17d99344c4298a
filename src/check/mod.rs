//! `manifold check`: connects to every configured dependency and says, for each, OK or what is
//! wrong and how to fix it. It never panics on a dependency that is down: that is what it is for.

pub mod misconfig;
mod probes;

use serde::Serialize;

use crate::config::Config;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Outcome {
    Ok { detail: String },
    Fail { problem: String, fix: String },
    /// Not configured, so not needed (e.g. no external GNN service).
    Skipped { detail: String },
}

#[derive(Debug, Clone, Serialize)]
pub struct DependencyReport {
    pub dependency: &'static str,
    /// Where it was looked for, with any password hidden.
    pub target: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

impl DependencyReport {
    pub fn is_failure(&self) -> bool {
        matches!(self.outcome, Outcome::Fail { .. })
    }
}

/// Checks all dependencies concurrently; each probe has its own timeout.
pub async fn run(config: &Config) -> Vec<DependencyReport> {
    let (database, kafka, registry, gnn) = tokio::join!(
        probes::database(config),
        probes::kafka(config),
        probes::schema_registry(config),
        probes::gnn_service(config),
    );
    vec![database, kafka, registry, gnn]
}

/// A block per dependency, aligned, for people.
pub fn render_text(reports: &[DependencyReport]) -> String {
    const INDENT: &str = "                      ";
    let mut out = String::new();
    for report in reports {
        let status = match report.outcome {
            Outcome::Ok { .. } => "OK",
            Outcome::Skipped { .. } => "SKIP",
            Outcome::Fail { .. } => "FAIL",
        };
        out.push_str(&format!("{:<16}{:<6}{}\n", report.dependency, status, report.target));
        match &report.outcome {
            Outcome::Ok { detail } | Outcome::Skipped { detail } => out.push_str(&format!("{INDENT}{detail}\n")),
            Outcome::Fail { problem, fix } => out.push_str(&format!("{INDENT}{problem}\n{INDENT}fix: {fix}\n")),
        }
    }
    out
}
