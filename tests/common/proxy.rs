//! A TCP proxy between the app and PostgreSQL that a test can cut or stall, so an outage can be
//! simulated without stopping the PostgreSQL that parallel tests share.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

const PASS: u8 = 0;
const DOWN: u8 = 1;
const STALL: u8 = 2;

pub struct Proxy {
    pub port: u16,
    mode: Arc<AtomicU8>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    pub async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(AtomicU8::new(PASS));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (m, c) = (mode.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if m.load(Ordering::SeqCst) == DOWN {
                    drop(client); // refused: the server is "down"
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream).await else { continue };
                let handle = tokio::spawn(pipe(client, server, m.clone()));
                c.lock().unwrap().push(handle);
            }
        });
        Proxy { port, mode, connections }
    }

    /// Drops every open connection and refuses new ones until `restore`.
    pub fn cut(&self) {
        self.mode.store(DOWN, Ordering::SeqCst);
        for handle in self.connections.lock().unwrap().drain(..) {
            handle.abort();
        }
    }

    /// Keeps connections open but forwards nothing until `restore`: a database that hangs.
    pub fn stall(&self) {
        self.mode.store(STALL, Ordering::SeqCst);
    }

    pub fn restore(&self) {
        self.mode.store(PASS, Ordering::SeqCst);
    }
}

async fn pipe(client: TcpStream, server: TcpStream, mode: Arc<AtomicU8>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = forward(&mut cr, &mut sw, &mode);
    let down = forward(&mut sr, &mut cw, &mode);
    tokio::select! { _ = up => {}, _ = down => {} }
}

async fn forward<R: AsyncReadExt + Unpin, W: AsyncWriteExt + Unpin>(from: &mut R, to: &mut W, mode: &AtomicU8) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while mode.load(Ordering::SeqCst) == STALL {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
