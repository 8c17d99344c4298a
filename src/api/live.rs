//! Live scores: each API instance listens for the database's score notifications and fans
//! the scored windows out to its WebSocket clients, each seeing only the system it asked for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::alerts::AlertBody;
use super::auth::AuthUser;
use super::error::{ApiError, ErrorBody};
use super::scores::{ScoredWindowBody, bodies};
use crate::model::ConditionCatalogue;
use crate::config::DatabaseConfig;
use crate::store::notify::{self, Notice};
use crate::store::Store;

const CHANNEL: &str = "manifold_scores";
const PING_EVERY: Duration = Duration::from_secs(30);
/// A client that takes longer than this to accept a message is dropped, so it holds nothing.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// What the live feed pushes: each message says its `type` ("score": a `ScoredWindow`, its
/// fields as before; "alert": an `Alert` as `GET /alerts/systems/{system_id}` shows it).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Live {
    Score(ScoredWindowBody),
    Alert(AlertBody),
}

impl Live {
    fn system_id(&self) -> &str {
        match self {
            Live::Score(w) => &w.system_id,
            Live::Alert(a) => &a.system_id,
        }
    }
}

#[derive(Clone)]
pub struct ScoreFeed {
    sender: broadcast::Sender<Arc<Live>>,
}

impl Default for ScoreFeed {
    fn default() -> Self {
        Self { sender: broadcast::channel(1024).0 }
    }
}

/// Open WebSocket sessions per user, capped (`api.ws_sessions_per_user`): each holds a
/// connection, a broadcast receiver and a periodic database check.
#[derive(Clone)]
pub struct SessionCounts {
    open: Arc<Mutex<HashMap<uuid::Uuid, usize>>>,
    max: usize,
}

/// One open session; dropping it (the session ends, or the upgrade never happens) frees the slot.
pub struct SessionSlot {
    counts: SessionCounts,
    user_id: uuid::Uuid,
}

impl SessionCounts {
    pub fn new(max: usize) -> Self {
        Self { open: Arc::default(), max }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<uuid::Uuid, usize>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot, or `None` when the user already has `max` sessions open.
    pub fn acquire(&self, user_id: uuid::Uuid) -> Option<SessionSlot> {
        let mut open = self.lock();
        let count = open.entry(user_id).or_default();
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(SessionSlot { counts: self.clone(), user_id })
    }

    #[cfg(test)]
    fn open(&self, user_id: uuid::Uuid) -> usize {
        self.lock().get(&user_id).copied().unwrap_or(0)
    }
}

impl Drop for SessionSlot {
    fn drop(&mut self) {
        let mut open = self.counts.lock();
        if let Some(count) = open.get_mut(&self.user_id) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

/// The notifications of the channel: a window's scores written, or an alert changed (see
/// migrations 0005 and 0009).
#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    Scores { system_id: String, window_start: DateTime<Utc>, revision: i32 },
    Alert { alert_id: String },
}

impl ScoreFeed {
    /// Until `shutdown`: reads each notified window (only while someone is watching) and sends it on.
    pub async fn run(self, store: Store, database: DatabaseConfig, conditions: Arc<ConditionCatalogue>, shutdown: CancellationToken) {
        notify::listen(&database, CHANNEL, &shutdown, |notice| {
            let (feed, store, conditions) = (self.clone(), store.clone(), conditions.clone());
            async move {
                let Notice::Payload(payload) = notice else { return Ok(()) };
                if feed.sender.receiver_count() == 0 {
                    return Ok(());
                }
                match serde_json::from_str::<Written>(&payload) {
                    Ok(Written::Scores { system_id, window_start, revision }) => {
                        let parts = store.window_scores(&system_id, window_start, revision).await?;
                        if let Some(window) = bodies(parts, &conditions).into_iter().next() {
                            let _ = feed.sender.send(Arc::new(Live::Score(window)));
                        }
                    }
                    Ok(Written::Alert { alert_id }) => {
                        if let Some(alert) = store.alert(&alert_id).await? {
                            let _ = feed.sender.send(Arc::new(Live::Alert(alert.into())));
                        }
                    }
                    Err(_) => tracing::warn!(payload, "unreadable score notification"),
                }
                Ok(())
            }
        })
        .await;
    }
}

/// A WebSocket that pushes each newly scored window of the system as a JSON text message (a
/// `ScoredWindow` with `"type": "score"`) and each change of its alerts (an `Alert` with
/// `"type": "alert"`); a client too slow to keep up gets `{"type": "lagged", "lagged": n}` for
/// the n messages it missed (read them from the history routes). Browsers may pass the key as `?api_key=` (on this
/// route only). A user has at most `api.ws_sessions_per_user` sessions open (429 beyond).
#[utoipa::path(get, path = "/ws/systems/{system_id}/scores", tag = "anomalies",
    params(("system_id" = String, Path, example = "press-line-3")),
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 426, description = "Not a WebSocket upgrade request", body = ErrorBody),
        (status = 429, description = "Too many requests, or too many open sessions for this user", body = ErrorBody)),
    security(("api_key" = []), ("bearer" = [])))]
pub async fn scores(
    State(state): State<AppState>,
    AuthUser(user, key_id): AuthUser,
    Path(system_id): Path<String>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    state.owned_system(&user, &system_id).await?;
    let upgrade = upgrade.map_err(|_| ApiError::UpgradeRequired)?;
    let slot = state.ws_sessions.acquire(user.user_id).ok_or(ApiError::TooManySessions { limit: state.ws_sessions.max })?;
    let receiver = state.scores.sender.subscribe();
    let session = Session { store: state.store.clone(), key_id, system_id, shutdown: state.shutdown.clone(), recheck: state.config.ws_recheck_ms };
    Ok(upgrade.on_upgrade(move |socket| async move {
        push(socket, session, receiver).await;
        drop(slot);
    }))
}

struct Session {
    store: Store,
    key_id: uuid::Uuid,
    system_id: String,
    shutdown: CancellationToken,
    recheck: Duration,
}

/// A session ends when its key is revoked, its user disabled or the system no longer theirs:
/// checked every `api.ws_recheck_ms` (a database hiccup does not end it).
async fn still_granted(session: &Session) -> bool {
    session.store.key_still_grants(session.key_id, &session.system_id).await.unwrap_or(true)
}

async fn push(mut socket: WebSocket, session: Session, mut scores: broadcast::Receiver<Arc<Live>>) {
    let system_id = session.system_id.as_str();
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut recheck = tokio::time::interval(session.recheck);
    recheck.tick().await;
    loop {
        let outgoing = tokio::select! {
            _ = session.shutdown.cancelled() => Some(Message::Close(None)),
            _ = ping.tick() => Some(Message::Ping(Default::default())),
            _ = recheck.tick() => (!still_granted(&session).await).then_some(Message::Close(None)),
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => None,
            },
            received = scores.recv() => match received {
                Ok(live) if live.system_id() == system_id => serde_json::to_string(&*live).ok().map(|t| Message::Text(t.into())),
                Ok(_) => None,
                // A slow client misses windows rather than slowing the others; it is told so.
                Err(broadcast::error::RecvError::Lagged(missed)) => Some(Message::Text(format!("{{\"type\":\"lagged\",\"lagged\":{missed}}}").into())),
                Err(broadcast::error::RecvError::Closed) => Some(Message::Close(None)),
            },
        };
        if let Some(message) = outgoing {
            let closing = matches!(message, Message::Close(_));
            let sent = tokio::time::timeout(SEND_TIMEOUT, socket.send(message)).await;
            if !matches!(sent, Ok(Ok(()))) || closing {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_holds_at_most_the_configured_sessions_and_a_closed_one_frees_its_slot() {
        let counts = SessionCounts::new(2);
        let (alice, bob) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let first = counts.acquire(alice).unwrap();
        let _second = counts.acquire(alice).unwrap();
        assert!(counts.acquire(alice).is_none());
        assert!(counts.acquire(bob).is_some(), "another user has slots of their own");
        drop(first);
        assert_eq!(counts.open(alice), 1);
        assert!(counts.acquire(alice).is_some());
    }
}
