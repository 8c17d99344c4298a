//! librdkafka reports why it cannot talk to a broker (wrong SASL credentials, a certificate it
//! cannot verify) through the client's error callback, while the request that needed the broker
//! only times out. This context keeps that reason so a caller can name the real problem.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::config::KafkaConfig;
use rdkafka::types::RDKafkaErrorCode;

/// What librdkafka last said had gone wrong with the connection to a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerProblem {
    pub kind: ProblemKind,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// SASL: the credentials or the mechanism were refused.
    Authentication,
    /// TLS: the handshake failed (an unverifiable certificate, a plaintext listener).
    Tls,
    /// Anything else (a broker down, a name that does not resolve).
    Other,
}

impl ProblemKind {
    pub fn of(code: RDKafkaErrorCode) -> ProblemKind {
        use RDKafkaErrorCode as K;
        match code {
            K::Authentication | K::SaslAuthenticationFailed | K::UnsupportedSASLMechanism | K::IllegalSASLState => ProblemKind::Authentication,
            K::SSL => ProblemKind::Tls,
            _ => ProblemKind::Other,
        }
    }
}

/// A client context that remembers background errors (logged at debug only: the caller reports
/// them) and keeps the most telling: an authentication or TLS problem is kept over a later "all
/// brokers down", which is only its consequence.
#[derive(Clone, Default)]
pub struct ErrorRecorder {
    last: Arc<Mutex<Option<BrokerProblem>>>,
}

impl ErrorRecorder {
    pub fn problem(&self) -> Option<BrokerProblem> {
        self.last.lock().map(|last| last.clone()).unwrap_or_default()
    }
}

impl ClientContext for ErrorRecorder {
    fn error(&self, error: KafkaError, reason: &str) {
        // Whoever asked reports the problem; this is only the trail.
        tracing::debug!(error = %error, reason, "kafka client error");
        let kind = error.rdkafka_error_code().map(ProblemKind::of).unwrap_or(ProblemKind::Other);
        if let Ok(mut last) = self.last.lock() {
            let keep = matches!(&*last, Some(p) if p.kind != ProblemKind::Other) && kind == ProblemKind::Other;
            if !keep {
                *last = Some(BrokerProblem { kind, reason: reason.to_owned() });
            }
        }
    }
}

/// So a threaded producer, whose thread serves the error callbacks, can carry it; nothing is
/// produced through it.
impl ProducerContext for ErrorRecorder {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// What one metadata request found: the brokers and topic names, or why none answered.
#[derive(Debug)]
pub struct MetadataProbe {
    pub answer: Result<(usize, Vec<String>), rdkafka::error::KafkaError>,
    /// What librdkafka reported meanwhile; an authentication or TLS problem ends the wait.
    pub problem: Option<BrokerProblem>,
}

/// Asks for metadata in short rounds until `timeout`, with a threaded producer whose thread
/// serves the error callbacks (an admin client's never does), so a refused login or TLS
/// handshake is known at once and by name. `settings` go over the configuration's.
pub async fn probe_metadata(config: &KafkaConfig, timeout: Duration, settings: &[(&str, &str)]) -> Result<MetadataProbe, super::KafkaError> {
    let mut client = super::client_config(config);
    for (key, value) in settings {
        client.set(*key, *value);
    }
    let recorder = ErrorRecorder::default();
    let producer: ThreadedProducer<ErrorRecorder> =
        client.create_with_context(recorder.clone()).map_err(|e| super::KafkaError::Config(e.to_string()))?;
    let answer = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + timeout;
        loop {
            let round = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(500));
            match producer.client().fetch_metadata(None, round) {
                Ok(m) => return Ok((m.brokers().len(), m.topics().iter().map(|t| t.name().to_owned()).collect())),
                Err(err) => {
                    let refused = recorder.problem().is_some_and(|p| p.kind != ProblemKind::Other);
                    if refused || Instant::now() >= deadline {
                        return Err((err, recorder.problem()));
                    }
                }
            }
        }
    })
    .await
    .map_err(|source| super::KafkaError::Join { context: "metadata probe", source })?;
    Ok(match answer {
        Ok(found) => MetadataProbe { answer: Ok(found), problem: None },
        Err((err, problem)) => MetadataProbe { answer: Err(err), problem },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_authentication_failure_is_kept_over_the_brokers_down_that_follows() {
        let recorder = ErrorRecorder::default();
        recorder.error(KafkaError::Global(RDKafkaErrorCode::Authentication), "SASL authentication error: invalid credentials");
        recorder.error(KafkaError::Global(RDKafkaErrorCode::AllBrokersDown), "1/1 brokers are down");
        let problem = recorder.problem().expect("recorded");
        assert_eq!(problem.kind, ProblemKind::Authentication);
        assert!(problem.reason.contains("invalid credentials"));
        recorder.error(KafkaError::Global(RDKafkaErrorCode::SSL), "certificate verify failed");
        assert_eq!(recorder.problem().map(|p| p.kind), Some(ProblemKind::Tls));
    }
}
