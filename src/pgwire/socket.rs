//! One pg connection's message loop: pgwire's own, made safe for a hostile client. Any error
//! before authentication completes, and any FATAL error after, is answered and then ends the
//! connection (nothing a client sends after a failed login is read); a failed login is answered
//! only after the address's login-throttle delay; a frame that breaks the protocol's layout
//! ([`super::frames`]) or that pgwire cannot decode gets a FATAL 08P01; and a panic while decoding or answering a message is contained to its connection and
//! answered with an ErrorResponse (XX000), never a dropped socket or a dead server. A client
//! has the login timeout to log in (then FATAL 57014), holds a place among the logins in
//! progress until it has (the listener may close it for a newcomer: FATAL 53300), and takes a
//! session place only as its login completes.

use std::io;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;
use timberline_udfs::sqlstate;

use futures::{FutureExt, SinkExt, StreamExt};
use pgwire::api::{ClientInfo, NoopHandler, PgWireConnectionState};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::server::{
    negotiate_tls, process_error, process_message, PgWireMessageServerCodec,
};
use pgwire::tokio::TlsAcceptor;
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};

use super::frames::{Checked, FrameCheck};
use super::query::Prepared;
use super::PgHandlers;
use crate::admission::Permit;
use crate::auth::AuthMethod;

/// Most rows one Execute returns before PortalSuspended (the client then executes again).
const MAX_FETCH_ROWS: i32 = 65_536;

/// How long a last error may take to reach a client that does not read.
const LAST_WORDS: Duration = Duration::from_secs(1);

/// Serves one connection until the client leaves, breaks the protocol or fails to log in.
/// `login` is the connection's place among those logging in: it has the login timeout to log
/// in, and is closed early if the listener needs its place for a newcomer. A session place is
/// taken as the login completes (past the session caps: FATAL 53300).
pub async fn serve_connection(
    tcp: TcpStream,
    peer: IpAddr,
    tls: Option<TlsAcceptor>,
    handlers: Arc<PgHandlers>,
    login: Permit,
) -> io::Result<()> {
    let evicted = login.activity().evicted();
    tokio::pin!(evicted);
    let mut login = Some(login);
    let mut session: Option<Permit> = None;
    let deadline = tokio::time::sleep(handlers.limits.login_timeout);
    tokio::pin!(deadline);
    let negotiated = tokio::select! {
        _ = &mut deadline => return Ok(()),
        _ = &mut evicted => return Ok(()),
        s = negotiate_tls::<Prepared>(tcp, tls) => s?,
    };
    // A direct TLS handshake with no TLS configured: nothing to answer in.
    let Some(socket) = negotiated else {
        return Ok(());
    };
    if socket.is_secure() && !socket.read_buffer().is_empty() {
        // Bytes sent in the clear after an SSLRequest are not the client's to vouch for
        // (CVE-2021-23214): PostgreSQL refuses them too.
        let mut socket = socket;
        let info = fatal(
            sqlstate::PROTOCOL_VIOLATION,
            "received unencrypted data after SSL request".into(),
        );
        return end_with(&mut socket, info).await;
    }
    let mut socket = checked(socket, handlers.frame_check());
    let startup = Arc::new(handlers.startup());
    let engine = handlers.engine.clone();
    let cancels = handlers.cancels.clone();
    let copy = Arc::new(NoopHandler);
    let mut passwords = 0u32;
    loop {
        let logging_in = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        );
        // Frames are checked as they are read (`frames`); catching a decoder panic stays as
        // the last line of defence.
        let next = AssertUnwindSafe(socket.next()).catch_unwind();
        let next = if logging_in {
            tokio::select! {
                _ = &mut deadline => {
                    let info = ErrorInfo::new(
                        "FATAL".into(),
                        sqlstate::QUERY_CANCELED.into(),
                        "canceling authentication due to timeout".into(),
                    );
                    return end_with(&mut socket, info).await;
                }
                _ = &mut evicted => {
                    let info = fatal(
                        sqlstate::TOO_MANY_CONNECTIONS,
                        "sorry, too many connections are logging in; this one waited longest"
                            .into(),
                    );
                    return end_with(&mut socket, info).await;
                }
                m = next => m,
            }
        } else {
            next.await
        };
        let mut msg = match next {
            Ok(Some(Ok(msg))) => msg,
            Ok(Some(Err(e))) => {
                let info = fatal(
                    sqlstate::PROTOCOL_VIOLATION,
                    format!("invalid frontend message: {e}"),
                );
                return end_with(&mut socket, info).await;
            }
            Ok(None) => return Ok(()),
            Err(panic) => {
                let why = panic_text(&panic);
                tracing::error!(%peer, panic = %why, "decoding a pg message panicked");
                let info = fatal(
                    sqlstate::PROTOCOL_VIOLATION,
                    format!("invalid frontend message: {why}"),
                );
                return end_with(&mut socket, info).await;
            }
        };
        // Terminate ends the connection (asyncpg waits for the server to close).
        if matches!(msg, PgWireFrontendMessage::Terminate(_)) {
            return Ok(());
        }
        if logging_in {
            if matches!(msg, PgWireFrontendMessage::PasswordMessageFamily(_)) {
                passwords += 1;
            }
            // The session place is taken before the message that may complete the login is
            // answered, so a full server says so instead of ReadyForQuery.
            if session.is_none() && may_complete_login(handlers.auth, &msg, passwords) {
                match handlers.caps.sessions.admit(peer) {
                    Ok(permit) => session = Some(permit),
                    Err(refused) => return refuse_session(&mut socket, refused).await,
                }
            }
        }
        // pgwire sizes a row buffer by Execute's row limit: a negative one means "all rows"
        // (as in PostgreSQL), a huge one is served in portions.
        if let PgWireFrontendMessage::Execute(e) = &mut msg {
            e.max_rows = if e.max_rows <= 0 {
                0
            } else {
                e.max_rows.min(MAX_FETCH_ROWS)
            };
        }
        let extended = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => msg.is_extended_query(),
        };
        let handled = AssertUnwindSafe(process_message(
            msg,
            &mut socket,
            startup.clone(),
            engine.clone(),
            engine.clone(),
            copy.clone(),
            cancels.clone(),
        ))
        .catch_unwind()
        .await;
        if login.is_some() && matches!(socket.state(), PgWireConnectionState::ReadyForQuery) {
            if session.is_none() {
                match handlers.caps.sessions.admit(peer) {
                    Ok(permit) => session = Some(permit),
                    Err(refused) => return refuse_session(&mut socket, refused).await,
                }
            }
            login = None;
            socket.get_mut().logged_in();
        }
        let error = match handled {
            Ok(Ok(())) => continue,
            Ok(Err(e)) => e,
            Err(panic) => {
                let why = panic_text(&panic);
                tracing::error!(%peer, panic = %why, "answering a pg message panicked");
                internal_error(why)
            }
        };
        let mut info = ErrorInfo::from(error);
        if logging_in {
            // Every failure before a session exists ends the connection, as in PostgreSQL.
            info.severity = "FATAL".into();
            if info.code.starts_with("28") {
                // The answer waits (the throttle), holding no session place; a connection
                // closed for a newcomer meanwhile goes unanswered.
                session = None;
                tokio::select! {
                    _ = &mut evicted => return Ok(()),
                    _ = handlers.throttle.failed(peer) => {}
                }
            }
        }
        if info.severity == "FATAL" {
            return end_with(&mut socket, info).await;
        }
        process_error(
            &mut socket,
            PgWireError::UserError(Box::new(info)),
            extended,
        )
        .await?;
    }
}

/// Whether answering `msg` may complete a login: the StartupMessage under trust, the password
/// under md5, SCRAM's final message (the second password message).
fn may_complete_login(auth: AuthMethod, msg: &PgWireFrontendMessage, passwords: u32) -> bool {
    match auth {
        AuthMethod::Trust => matches!(msg, PgWireFrontendMessage::Startup(_)),
        AuthMethod::Md5 => passwords >= 1,
        AuthMethod::ScramSha256 => passwords >= 2,
    }
}

/// Ends a login the session caps have no place for (FATAL 53300).
async fn refuse_session<S>(socket: &mut S, refused: crate::admission::Refused) -> io::Result<()>
where
    S: futures::Sink<PgWireBackendMessage, Error = io::Error> + Unpin,
{
    let info = fatal(sqlstate::TOO_MANY_CONNECTIONS, format!("sorry, {refused}"));
    end_with(socket, info).await
}

type Codec = PgWireMessageServerCodec<Prepared>;

/// Puts `socket`'s stream behind `check`, the bytes it already read included.
fn checked<S>(socket: Framed<S, Codec>, check: FrameCheck) -> Framed<Checked<S>, Codec> {
    let parts = socket.into_parts();
    let (io, pass) = Checked::new(parts.io, check, &parts.read_buf);
    let mut read_buf = parts.read_buf;
    read_buf.truncate(pass);
    let mut checked = FramedParts::new::<PgWireBackendMessage>(io, parts.codec);
    checked.read_buf = read_buf;
    checked.write_buf = parts.write_buf;
    Framed::from_parts(checked)
}

/// Sends a last error and closes the connection; nothing more is read from it. A client that
/// does not read gets [`LAST_WORDS`] to take it.
async fn end_with<S>(socket: &mut S, info: ErrorInfo) -> io::Result<()>
where
    S: futures::Sink<PgWireBackendMessage, Error = io::Error> + Unpin,
{
    let last = async {
        socket
            .send(PgWireBackendMessage::ErrorResponse(info.into()))
            .await?;
        socket.close().await
    };
    tokio::time::timeout(LAST_WORDS, last)
        .await
        .unwrap_or(Ok(()))
}

fn fatal(code: &str, message: String) -> ErrorInfo {
    ErrorInfo::new("FATAL".into(), code.into(), message)
}

/// A panic's error: XX000, and the connection goes on (the panic touched only this message).
fn internal_error(why: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "ERROR".into(),
        "XX000".into(),
        format!("internal error: {why}"),
    )))
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

/// Answers a connection the listener cannot admit the way PostgreSQL does (FATAL 53300), in
/// raw bytes: no state is kept for it.
pub async fn refuse(mut tcp: TcpStream, why: String) {
    use tokio::io::AsyncWriteExt;
    let mut body = Vec::with_capacity(64 + why.len());
    for (field, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', sqlstate::TOO_MANY_CONNECTIONS),
        (b'M', why.as_str()),
    ] {
        body.push(field);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut frame = vec![b'E'];
    frame.extend_from_slice(&(body.len() as u32 + 4).to_be_bytes());
    frame.extend_from_slice(&body);
    let _ = tokio::time::timeout(LAST_WORDS, async {
        let _ = tcp.write_all(&frame).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}
