//! LISTEN on a PostgreSQL channel from a dedicated connection (LISTEN is session state, so not
//! a pooled one), reconnecting with back-off. The handler hears `Connected` after every
//! (re)connect, since notifications sent while disconnected are lost and caches must reload.

use std::time::Duration;

use futures_util::StreamExt;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use super::StoreError;
use crate::config::DatabaseConfig;

pub enum Notice {
    Connected,
    Payload(String),
}

/// Runs until `shutdown`. A handler error drops the connection and starts over.
pub async fn listen<F, Fut>(database: &DatabaseConfig, channel: &'static str, shutdown: &CancellationToken, mut handler: F)
where
    F: FnMut(Notice) -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    const FIRST_BACKOFF: Duration = Duration::from_millis(200);
    let mut backoff = FIRST_BACKOFF;
    while !shutdown.is_cancelled() {
        let mut connected = false;
        match listen_once(database, channel, shutdown, &mut handler, &mut connected).await {
            Ok(()) => return,
            Err(err) => {
                if connected {
                    backoff = FIRST_BACKOFF;
                }
                tracing::warn!(error = %err, channel, retry_in_ms = backoff.as_millis() as u64, "notification listener lost its connection");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

async fn listen_once<F, Fut>(
    database: &DatabaseConfig,
    channel: &'static str,
    shutdown: &CancellationToken,
    handler: &mut F,
    connected: &mut bool,
) -> Result<(), StoreError>
where
    F: FnMut(Notice) -> Fut,
    Fut: Future<Output = Result<(), StoreError>>,
{
    let (client, mut connection) = tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        connecting = super::open(database, "connect a listener") => connecting?,
    };
    let (notify_tx, mut notify_rx) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if notify_tx.send(n.payload().to_owned()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    });
    // Listening first, then loading: a change between the two is seen twice, never missed.
    let setup = async {
        client.batch_execute(&format!("LISTEN {channel}")).await.map_err(|e| StoreError::query("LISTEN", e))?;
        handler(Notice::Connected).await
    };
    tokio::select! {
        _ = shutdown.cancelled() => { driver.abort(); return Ok(()); }
        done = setup => done?,
    }
    *connected = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => { driver.abort(); return Ok(()); }
            payload = notify_rx.recv() => match payload {
                Some(payload) => handler(Notice::Payload(payload)).await?,
                None => {
                    let reason = match driver.await {
                        Ok(Err(err)) => err.to_string(),
                        _ => "connection closed".to_owned(),
                    };
                    return Err(StoreError::Unavailable(reason));
                }
            }
        }
    }
}
