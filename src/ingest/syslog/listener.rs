//! The syslog listener: UDP datagrams and TCP connections on one address, each message parsed
//! and handed to a batcher that accepts records through the [`Ingestor`] (WAL, then the hot
//! buffer) under the listener's tenant. A full buffer holds the batch and retries, so TCP
//! senders are slowed (their reads stop) instead of losing lines.
//!
//! A TCP connection must send its first byte within the login timeout and then never be
//! silent for longer than the idle timeout. Past the connection caps the idlest connection
//! (one that never sent a byte first) is closed to admit the newcomer, after what it already
//! sent is read and stored: a sender is never accepted only to have its message dropped, and
//! every eviction or refusal is counted (`/ready`) and logged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::mpsc;

use super::framing::{Frame, Framer};
use crate::admission::{Admission, Permit};
use crate::ingest::{IngestError, Ingestor};
use crate::model::{now_micros, LogRecord, MAX_MSG_BYTES};

/// Longest syslog message read; longer ones are cut and flagged `truncated`.
const MAX_FRAME: usize = MAX_MSG_BYTES + 2048;
/// Records waiting for the batcher (TCP readers wait when it is full).
const QUEUE: usize = 16_384;
/// Most records accepted in one WAL append.
const BATCH: usize = 4_096;
/// Bytes read from a TCP connection at a time.
const READ_BYTES: usize = 16 * 1024;
/// Most bytes read from an evicted connection before it is closed.
const DRAIN_BYTES: usize = 1 << 20;

/// The TCP side's caps and timeouts.
#[derive(Debug, Clone)]
pub struct TcpLimits {
    pub admission: Arc<Admission>,
    /// Time a new connection has to send its first byte.
    pub first_byte: Duration,
    /// Time a connection may then send nothing.
    pub idle: Duration,
}

/// Serves syslog on `udp` and `tcp` until the process ends; rows belong to `tenant`.
pub fn spawn(
    udp: UdpSocket,
    tcp: TcpListener,
    tenant: String,
    ingestor: Ingestor,
    limits: TcpLimits,
) {
    let (tx, rx) = mpsc::channel(QUEUE);
    tokio::spawn(batcher(rx, ingestor, tenant));
    tokio::spawn(serve_udp(udp, tx.clone()));
    tokio::spawn(serve_tcp(tcp, tx, limits));
}

async fn batcher(mut rx: mpsc::Receiver<LogRecord>, ingestor: Ingestor, tenant: String) {
    let mut batch = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut batch, BATCH).await > 0 {
        for r in &mut batch {
            r.tenant.clone_from(&tenant);
        }
        // Over its quota, the listener stores what fits and waits for the rest, and its
        // senders' TCP windows fill: syslog has no way to slow a sender down but to stop reading.
        if let Err(e) = ingestor.prepare(&mut batch, "syslog") {
            tracing::error!(error = %e, rows = batch.len(), "syslog batch dropped");
            batch.clear();
            continue;
        }
        let mut rest: &mut [LogRecord] = &mut batch;
        while !rest.is_empty() {
            match ingestor.admit_prefix(rest, "syslog") {
                Ok(n) => {
                    let (now, later) = std::mem::take(&mut rest).split_at_mut(n.max(1));
                    ingestor.accept_waiting(now, "syslog", None).await;
                    rest = later;
                }
                Err(IngestError::OverQuota { retry_after, .. }) => {
                    tokio::time::sleep(retry_after.max(Duration::from_millis(10))).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "syslog quota check failed; storing the batch");
                    ingestor.accept_waiting(rest, "syslog", None).await;
                    break;
                }
            }
        }
        batch.clear();
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

async fn serve_tcp(listener: TcpListener, tx: mpsc::Sender<LogRecord>, limits: TcpLimits) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "syslog TCP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // A refusal is counted and logged by the admission; the sender sees the close.
        let Ok(permit) = limits.admission.admit(peer.ip()) else {
            continue;
        };
        let tx = tx.clone();
        let limits = limits.clone();
        tokio::spawn(connection(stream, peer, tx, permit, limits));
    }
}

async fn connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    tx: mpsc::Sender<LogRecord>,
    permit: Permit,
    limits: TcpLimits,
) {
    let activity = permit.activity().clone();
    let evicted = activity.evicted();
    tokio::pin!(evicted);
    let mut framer = Framer::new(MAX_FRAME);
    let mut buf = vec![0u8; READ_BYTES];
    let mut frames = Vec::new();
    loop {
        let wait = if activity.is_settled() {
            limits.idle
        } else {
            limits.first_byte
        };
        let read = tokio::select! {
            read = tokio::time::timeout(wait, stream.read(&mut buf)) => read,
            _ = &mut evicted => {
                drain(&stream, &mut buf, &mut framer, &mut frames);
                break;
            }
        };
        let n = match read {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => n,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "syslog TCP read failed");
                break;
            }
        };
        activity.settle();
        framer.push(&buf[..n], &mut frames);
        if !send_all(&tx, &mut frames, &peer).await {
            return;
        }
    }
    frames.extend(framer.finish());
    send_all(&tx, &mut frames, &peer).await;
    drop(permit);
}

/// Reads what an evicted connection already sent (up to [`DRAIN_BYTES`]) without waiting.
fn drain(stream: &TcpStream, buf: &mut [u8], framer: &mut Framer, frames: &mut Vec<Frame>) {
    let mut drained = 0;
    while drained < DRAIN_BYTES {
        match stream.try_read(buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                drained += n;
                framer.push(&buf[..n], frames);
            }
        }
    }
}

/// Hands `frames` to the batcher (waiting while it is full); false once it has stopped.
async fn send_all(
    tx: &mpsc::Sender<LogRecord>,
    frames: &mut Vec<Frame>,
    peer: &SocketAddr,
) -> bool {
    for f in frames.drain(..) {
        if tx.send(record(&f.bytes, f.truncated, peer)).await.is_err() {
            return false;
        }
    }
    true
}
