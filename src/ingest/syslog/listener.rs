//! The syslog listener: UDP datagrams and TCP connections on one address, each message parsed
//! and handed to a batcher that accepts records through the [`Ingestor`] (WAL, then the hot
//! buffer) under the listener's tenant. A full buffer holds the batch and retries, so TCP
//! senders are slowed (their reads stop) instead of losing lines.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use super::framing::Framer;
use crate::admission::Admission;
use crate::ingest::{IngestError, Ingestor};
use crate::model::{now_micros, LogRecord, MAX_MSG_BYTES};

/// Longest syslog message read; longer ones are cut and flagged `truncated`.
const MAX_FRAME: usize = MAX_MSG_BYTES + 2048;
/// Records waiting for the batcher (TCP readers wait when it is full).
const QUEUE: usize = 16_384;
/// Most records accepted in one WAL append.
const BATCH: usize = 4_096;
/// A TCP connection that sends nothing for this long is closed.
const IDLE: Duration = Duration::from_secs(600);

/// Serves syslog on `udp` and `tcp` until the process ends; rows belong to `tenant`.
pub fn spawn(
    udp: UdpSocket,
    tcp: TcpListener,
    tenant: String,
    ingestor: Ingestor,
    admission: Arc<Admission>,
) {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(batcher(rx, ingestor, tenant));
    tokio::spawn(serve_udp(udp, tx.clone()));
    tokio::spawn(serve_tcp(tcp, tx, admission));
}

async fn batcher(mut rx: mpsc::Receiver<LogRecord>, ingestor: Ingestor, tenant: String) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        for r in &mut batch {
            r.tenant.clone_from(&tenant);
        }
        store(&ingestor, &mut batch).await;
        batch.clear();
    }
}

/// Stores `records`, waiting while the buffer is full; a batch larger than the whole buffer is
/// stored in halves (a single record always fits: labels and messages are capped).
async fn store(ingestor: &Ingestor, records: &mut [LogRecord]) {
    let mut wait = Duration::from_millis(5);
    loop {
        match ingestor.accept(records).await {
            Ok(_) => return,
            Err(IngestError::BufferFull { .. }) => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(500));
            }
            Err(IngestError::TooLarge { .. }) if records.len() > 1 => {
                let (a, b) = records.split_at_mut(records.len() / 2);
                Box::pin(store(ingestor, a)).await;
                Box::pin(store(ingestor, b)).await;
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, rows = records.len(), "syslog batch not stored; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

fn record(bytes: &[u8], truncated: bool, peer: &SocketAddr) -> LogRecord {
    let text = String::from_utf8_lossy(bytes);
    let mut r = super::parse(&text, &peer.ip().to_string(), now_micros());
    r.truncated |= truncated;
    r
}

async fn serve_udp(socket: UdpSocket, tx: mpsc::Sender<LogRecord>) {
    let mut buf = vec![0u8; 65_536];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, peer)) => {
                let truncated = n > MAX_FRAME;
                let r = record(&buf[..n.min(MAX_FRAME)], truncated, &peer);
                if tx.send(r).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "syslog UDP receive failed");
            }
        }
    }
}

async fn serve_tcp(listener: TcpListener, tx: mpsc::Sender<LogRecord>, admission: Arc<Admission>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "syslog TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = admission.admit(peer.ip()) else {
            tracing::debug!(%peer, "syslog TCP connection refused: too many");
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            connection(stream, peer, tx).await;
            drop(permit);
        });
    }
}

async fn connection(mut stream: TcpStream, peer: SocketAddr, tx: mpsc::Sender<LogRecord>) {
    let mut framer = Framer::new(MAX_FRAME);
    let mut buf = vec![0u8; 64 * 1024];
    let mut frames = Vec::new();
    loop {
        let n = match tokio::time::timeout(IDLE, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "syslog TCP read failed");
                break;
            }
        };
        framer.push(&buf[..n], &mut frames);
        for f in frames.drain(..) {
            if tx.send(record(&f.bytes, f.truncated, &peer)).await.is_err() {
                return;
            }
        }
    }
    if let Some(f) = framer.finish() {
        let _ = tx.send(record(&f.bytes, f.truncated, &peer)).await;
    }
}
