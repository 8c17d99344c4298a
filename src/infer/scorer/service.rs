//! The external GNN service of the replaced backend: POST the window, get per-component scores.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{ScoreError, WindowScorer, WindowToScore};
use crate::domain::{ComponentScore, Driver, ScoredWindow};
use crate::store::SystemInfo;

pub const SERVICE_VERSION: &str = "gnn-service";

#[derive(Debug, Serialize)]
pub struct ScoreRequest<'a> {
    pub user_id: String,
    pub system_id: &'a str,
    pub window_start: String,
    pub window_end: String,
    pub revision: i32,
}

/// The service's answer: a score per component and, optionally, per component the sensors that
/// drove it (`{"valve": [{"sensor_id": "PS2", "effect": 0.4}]}`; larger effect is stronger,
/// the three strongest positive ones are kept). A service that does not explain itself leaves
/// `drivers` out.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ServiceAnswer {
    pub anomaly_scores: BTreeMap<String, f64>,
    #[serde(default)]
    pub drivers: BTreeMap<String, Vec<Driver>>,
}

#[derive(Debug, thiserror::Error)]
pub enum HttpScorerError {
    #[error("the GNN service did not answer in time")]
    Timeout,
    #[error("the GNN service answered HTTP {0}")]
    Status(u16),
    #[error("the GNN service is unreachable: {0}")]
    Unreachable(String),
    #[error("the GNN service's answer is not valid: {0}")]
    Invalid(String),
}

impl HttpScorerError {
    /// What kind of failure this is: an invalid answer is the window's (it is set aside), an
    /// HTTP status is classified in [`crate::failure`], anything else is the service being away.
    pub fn failure(&self) -> crate::failure::FailureKind {
        match self {
            HttpScorerError::Invalid(_) => crate::failure::FailureKind::DataPermanent,
            HttpScorerError::Status(code) => crate::failure::classify_http_status(*code),
            HttpScorerError::Timeout | HttpScorerError::Unreachable(_) => crate::failure::FailureKind::Transient,
        }
    }

    /// 4xx (other than 408/429) and invalid answers will not improve with a retry.
    fn retryable(&self) -> bool {
        match self {
            HttpScorerError::Status(code) => *code >= 500 || *code == 408 || *code == 429,
            HttpScorerError::Invalid(_) => false,
            _ => true,
        }
    }
}

pub struct HttpScorer {
    client: reqwest::Client,
    url: String,
    attempts: u32,
}

impl HttpScorer {
    pub fn new(url: &str, timeout: Duration, attempts: u32) -> Result<Self, HttpScorerError> {
        let client = reqwest::Client::builder().timeout(timeout).build().map_err(|e| HttpScorerError::Unreachable(e.to_string()))?;
        Ok(Self { client, url: url.to_owned(), attempts: attempts.max(1) })
    }

    /// Scores one window, retrying transient failures with a short doubling back-off.
    pub async fn score(&self, request: &ScoreRequest<'_>) -> Result<BTreeMap<String, f64>, HttpScorerError> {
        Ok(self.answer(request).await?.anomaly_scores)
    }

    /// As [`HttpScorer::score`], with the drivers the service names (each component's strongest
    /// [`crate::domain::MAX_DRIVERS`]).
    pub async fn answer(&self, request: &ScoreRequest<'_>) -> Result<ServiceAnswer, HttpScorerError> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 1;
        loop {
            match self.once(request).await {
                Ok(scores) => return Ok(scores),
                Err(err) if attempt < self.attempts && err.retryable() => {
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn once(&self, request: &ScoreRequest<'_>) -> Result<ServiceAnswer, HttpScorerError> {
        let response = self.client.post(&self.url).json(request).send().await.map_err(|e| {
            if e.is_timeout() { HttpScorerError::Timeout } else { HttpScorerError::Unreachable(e.to_string()) }
        })?;
        if !response.status().is_success() {
            return Err(HttpScorerError::Status(response.status().as_u16()));
        }
        let mut body: ServiceAnswer = response.json().await.map_err(|e| {
            if e.is_timeout() { HttpScorerError::Timeout } else { HttpScorerError::Invalid(e.to_string()) }
        })?;
        match body.anomaly_scores.iter().find(|(_, s)| !(0.0..=1.0).contains(*s)) {
            Some((component, s)) => Err(HttpScorerError::Invalid(format!("{component} scored {s}, outside [0, 1]"))),
            None => {
                body.drivers = std::mem::take(&mut body.drivers).into_iter().map(|(c, d)| (c, Driver::strongest(d, 0.0))).filter(|(_, d)| !d.is_empty()).collect();
                Ok(body)
            }
        }
    }
}

/// The service as a window scorer: configured, it scores every system's windows.
pub struct ServiceScorer {
    http: HttpScorer,
}

impl ServiceScorer {
    pub fn new(http: HttpScorer) -> Self {
        Self { http }
    }
}

impl WindowScorer for ServiceScorer {
    fn version(&self) -> &str {
        SERVICE_VERSION
    }

    fn label(&self) -> &'static str {
        "service"
    }

    fn applies(&self, _: &SystemInfo) -> bool {
        true
    }

    fn score<'a>(&'a self, window: &'a WindowToScore<'a>) -> BoxFuture<'a, Result<ScoredWindow, ScoreError>> {
        Box::pin(async move {
            let request = ScoreRequest {
                user_id: window.system.owner_id.to_string(),
                system_id: &window.event.system_id,
                window_start: window.start().to_rfc3339(),
                window_end: window.end().to_rfc3339(),
                revision: window.event.revision,
            };
            let answer = self.http.answer(&request).await?;
            let components = answer
                .anomaly_scores
                .into_iter()
                .map(|(component_id, score)| ComponentScore { component_id, score, condition: None, condition_name: None, severity: None, probabilities: BTreeMap::new(), features: None })
                .collect();
            let mut scored = window.scored(SERVICE_VERSION, components);
            scored.contributions = answer.drivers;
            Ok(scored)
        })
    }
}
