//! The named tasks of one process: workers (consumers, the relay, background loops) that drain
//! first, and listeners that stop once the workers are done, all within one deadline.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tokio::task::{AbortHandle, Id, JoinError, JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a listener gets to stop in when the workers used up the deadline: enough to answer
/// the requests in hand, not to wait on a slow client.
const LISTENER_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{task} failed: {source:#}")]
    Failed {
        task: &'static str,
        #[source]
        source: anyhow::Error,
    },
    /// Every task runs until shutdown; one that ends before leaves a process that looks
    /// healthy and is not.
    #[error("{task} stopped before shutdown was asked for")]
    Stopped { task: &'static str },
}

/// How a task ends: a worker's result, or `()` for a loop that handles its own failures.
pub(super) trait Ending {
    fn into_result(self) -> anyhow::Result<()>;
}

impl Ending for () {
    fn into_result(self) -> anyhow::Result<()> {
        Ok(())
    }
}

impl<E: Into<anyhow::Error>> Ending for Result<(), E> {
    fn into_result(self) -> anyhow::Result<()> {
        self.map_err(Into::into)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Worker,
    Listener,
}

struct Running {
    name: &'static str,
    role: Role,
    /// Ends the task itself (a listener's is its server task, not the watcher in the set).
    abort: AbortHandle,
}

pub(super) struct Tasks {
    set: JoinSet<anyhow::Result<()>>,
    running: HashMap<Id, Running>,
    workers: CancellationToken,
    listeners: CancellationToken,
}

impl Tasks {
    /// Workers stop when `shutdown` is cancelled; listeners only once the workers are done.
    pub(super) fn new(shutdown: &CancellationToken) -> Self {
        Self { set: JoinSet::new(), running: HashMap::new(), workers: shutdown.child_token(), listeners: CancellationToken::new() }
    }

    /// The token every worker stops on: a signal, or another task failing.
    pub(super) fn worker_token(&self) -> CancellationToken {
        self.workers.clone()
    }

    /// The token a listener is served with.
    pub(super) fn listener_token(&self) -> CancellationToken {
        self.listeners.clone()
    }

    pub(super) fn spawn<F>(&mut self, name: &'static str, task: F)
    where
        F: Future + Send + 'static,
        F::Output: Ending,
    {
        let abort = self.set.spawn(async move { task.await.into_result() });
        self.running.insert(abort.id(), Running { name, role: Role::Worker, abort });
    }

    /// A listener already serving on [`Tasks::listener_token`].
    pub(super) fn listener(&mut self, name: &'static str, server: JoinHandle<()>) {
        let abort = server.abort_handle();
        let watcher = self.set.spawn(async move { server.await.map_err(anyhow::Error::from) });
        self.running.insert(watcher.id(), Running { name, role: Role::Listener, abort });
    }

    /// Runs until shutdown or the first task to end, then stops the workers and after them the
    /// listeners, abandoning whatever is still running when `deadline` has passed. Returns the
    /// first failure.
    pub(super) async fn run(mut self, deadline: Duration) -> Result<(), StartupError> {
        let mut failure = None;
        while failure.is_none() {
            tokio::select! {
                biased;
                _ = self.workers.cancelled() => break,
                joined = self.set.join_next_with_id() => match joined {
                    Some(joined) => failure = self.ended(joined, true),
                    None => break,
                },
            }
        }
        self.workers.cancel();
        let until = Instant::now() + deadline;
        self.drain(Role::Worker, until, &mut failure).await;
        self.listeners.cancel();
        self.drain(Role::Listener, until.max(Instant::now() + LISTENER_GRACE), &mut failure).await;
        failure.map_or(Ok(()), Err)
    }

    /// Waits for every task of `role` until `until`, then abandons the rest.
    async fn drain(&mut self, role: Role, until: Instant, failure: &mut Option<StartupError>) {
        while self.left(role) > 0 {
            match tokio::time::timeout_at(until, self.set.join_next_with_id()).await {
                Ok(Some(joined)) => {
                    if let Some(failed) = self.ended(joined, false) {
                        failure.get_or_insert(failed);
                    }
                }
                Ok(None) => return,
                Err(_) => return self.abandon(role).await,
            }
        }
    }

    fn left(&self, role: Role) -> usize {
        self.running.values().filter(|r| r.role == role).count()
    }

    async fn abandon(&mut self, role: Role) {
        let names: Vec<&str> = self.running.values().filter(|r| r.role == role).map(|r| r.name).collect();
        tracing::warn!(tasks = ?names, "shutdown deadline passed; abandoning unfinished work (stored offsets keep it safe)");
        for running in self.running.values().filter(|r| r.role == role) {
            running.abort.abort();
        }
        // An aborted task ends at its next await; one stuck in a blocking call is left behind.
        let reaped = tokio::time::timeout(LISTENER_GRACE, async {
            while self.left(role) > 0 {
                let Some(joined) = self.set.join_next_with_id().await else { break };
                let id = joined.as_ref().map_or_else(JoinError::id, |(id, _)| *id);
                self.running.remove(&id);
            }
        });
        let _ = reaped.await;
    }

    /// Forgets a task that ended and says whether that was a failure. Before shutdown
    /// (`early`), ending at all is one.
    fn ended(&mut self, joined: Result<(Id, anyhow::Result<()>), JoinError>, early: bool) -> Option<StartupError> {
        let (id, result) = match joined {
            Ok((id, result)) => (id, result),
            // A panic, or (for a listener's watcher) its server task's.
            Err(join) => (join.id(), Err(anyhow::Error::from(join))),
        };
        let task = self.running.remove(&id)?.name;
        let failed = match result {
            Ok(()) if early => StartupError::Stopped { task },
            Ok(()) => return None,
            Err(source) => StartupError::Failed { task, source },
        };
        tracing::error!(task, error = %failed, "task ended; stopping the others");
        self.workers.cancel();
        Some(failed)
    }
}

impl Drop for Tasks {
    /// A set that fails to start leaves nothing serving behind it.
    fn drop(&mut self) {
        self.workers.cancel();
        self.listeners.cancel();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A listener like the real ones: serves until its token, then records that it stopped.
    fn listener(tasks: &Tasks, log: &Arc<Mutex<Vec<&'static str>>>) -> JoinHandle<()> {
        let (stop, log) = (tasks.listener_token(), log.clone());
        tokio::spawn(async move {
            stop.cancelled().await;
            log.lock().unwrap().push("listener stopped");
        })
    }

    fn crash() {
        panic!("a bug");
    }

    #[tokio::test]
    async fn workers_drain_before_the_listeners_stop() {
        let shutdown = CancellationToken::new();
        let mut tasks = Tasks::new(&shutdown);
        let log = Arc::new(Mutex::new(Vec::new()));
        let (stop, drained) = (tasks.worker_token(), log.clone());
        tasks.spawn("consumer", async move {
            stop.cancelled().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            drained.lock().unwrap().push("consumer drained");
        });
        let server = listener(&tasks, &log);
        tasks.listener("listener", server);
        shutdown.cancel();
        tasks.run(Duration::from_secs(5)).await.unwrap();
        assert_eq!(*log.lock().unwrap(), ["consumer drained", "listener stopped"]);
    }

    #[tokio::test]
    async fn a_task_that_does_not_stop_is_abandoned_at_the_deadline() {
        let shutdown = CancellationToken::new();
        let mut tasks = Tasks::new(&shutdown);
        let log = Arc::new(Mutex::new(Vec::new()));
        tasks.spawn("stuck", std::future::pending::<()>());
        let server = listener(&tasks, &log);
        tasks.listener("listener", server);
        shutdown.cancel();
        let started = Instant::now();
        tasks.run(Duration::from_millis(200)).await.expect("abandoning at the deadline is not a failure");
        assert!(started.elapsed() < Duration::from_millis(200) + LISTENER_GRACE, "{:?}", started.elapsed());
        assert_eq!(*log.lock().unwrap(), ["listener stopped"], "the listener still stops, last");
    }

    #[tokio::test]
    async fn a_failing_task_stops_the_others_and_is_named() {
        let mut tasks = Tasks::new(&CancellationToken::new());
        let stop = tasks.worker_token();
        tasks.spawn("patient", async move { stop.cancelled().await });
        tasks.spawn("broken", async { Err::<(), _>(anyhow::anyhow!("no broker")) });
        let err = tasks.run(Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, StartupError::Failed { task: "broken", .. }), "{err}");
        assert_eq!(err.to_string(), "broken failed: no broker");
    }

    #[tokio::test]
    async fn a_task_that_ends_before_shutdown_or_panics_fails_the_process() {
        let mut tasks = Tasks::new(&CancellationToken::new());
        tasks.spawn("quitter", async {});
        assert!(matches!(tasks.run(Duration::from_secs(5)).await, Err(StartupError::Stopped { task: "quitter" })));

        let mut tasks = Tasks::new(&CancellationToken::new());
        tasks.spawn("panicky", async { crash() });
        let err = tasks.run(Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, StartupError::Failed { task: "panicky", .. }) && err.to_string().contains("panicked"), "{err}");
    }
}
