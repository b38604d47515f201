//! Startup: SCRAM-SHA-256 (or md5, or trust) authentication against [`Users`], the
//! ParameterStatus set real clients require (`server_version`, `DateStyle`, …), and the
//! connection's session, bound to the user's tenant and registered for CancelRequests.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use timberline_udfs::sqlstate;

use async_trait::async_trait;
use futures::sink::Sink;
use pgwire::api::auth::md5pass::Md5PasswordAuthStartupHandler;
use pgwire::api::auth::sasl::scram::ScramAuth;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata, AuthSource,
    LoginInfo, Password, ServerParameterProvider, StartupHandler,
};
use pgwire::api::{ClientInfo, PgWireConnectionState, PidSecretKeyGenerator, METADATA_USER};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::{PasswordMessageFamily, SASLInitialResponse, SecretKey};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage, ProtocolVersion};
use timberline_udfs::pg_compat::{PgSession, Tenant, PG_VERSION, PG_VERSION_NUM};

use super::session::{Cancels, Connection};
use crate::auth::{AuthMethod, Users, SCRAM_ITERATIONS};

/// One connection's startup.
pub struct Startup {
    method: Method,
    users: Arc<Users>,
    cancels: Arc<Cancels>,
    require_tls: bool,
    /// A new session's `statement_timeout` (zero: none).
    statement_timeout: std::time::Duration,
    /// Whether the SCRAM exchange's first message (SASLInitialResponse) has been read.
    sasl_started: AtomicBool,
}

enum Method {
    Scram(SASLAuthStartupHandler<Parameters>),
    Md5(Md5PasswordAuthStartupHandler<Verifiers, Parameters>),
    Trust(Arc<Pids>),
}

/// The process ids and secret keys of BackendKeyData, shared by every connection: each
/// connection gets the next id (from a random start, so ids tell nothing of how many
/// connections came before) and a random key (4 bytes in protocol 3.0, 32 in 3.2), the pair
/// a CancelRequest must name.
#[derive(Debug)]
pub struct Pids {
    next: AtomicI32,
}

/// Ids are drawn from `FIRST_PID..=i32::MAX`, wrapping around.
const FIRST_PID: i32 = 10_000;

impl Default for Pids {
    fn default() -> Pids {
        let start = rand::Rng::gen_range(&mut rand::thread_rng(), FIRST_PID..1 << 30);
        Pids {
            next: AtomicI32::new(start),
        }
    }
}

impl Pids {
    fn next_pid(&self) -> i32 {
        let step = |p: i32| Some(p.checked_add(1).unwrap_or(FIRST_PID));
        match self
            .next
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, step)
        {
            Ok(pid) | Err(pid) => pid,
        }
    }
}

impl PidSecretKeyGenerator for Pids {
    fn generate(&self, client: &dyn ClientInfo) -> (i32, SecretKey) {
        let key = match client.protocol_version() {
            ProtocolVersion::PROTOCOL3_0 => SecretKey::I32(rand::random::<i32>()),
            _ => SecretKey::Bytes(bytes::Bytes::from(rand::random::<[u8; 32]>().to_vec())),
        };
        (self.next_pid(), key)
    }
}

impl Startup {
    /// A fresh startup state machine (one per connection: SCRAM's exchange is stateful).
    pub fn new(
        method: AuthMethod,
        users: Arc<Users>,
        cancels: Arc<Cancels>,
        require_tls: bool,
        statement_timeout: std::time::Duration,
        pids: Arc<Pids>,
    ) -> Startup {
        let verifiers = Arc::new(Verifiers {
            users: users.clone(),
            method,
        });
        let params = Arc::new(Parameters);
        let method = match method {
            AuthMethod::ScramSha256 => {
                let mut scram = ScramAuth::new(verifiers);
                scram.set_iterations(SCRAM_ITERATIONS);
                Method::Scram(
                    SASLAuthStartupHandler::new(params)
                        .with_scram(scram)
                        .with_pid_secret_key_generator(pids),
                )
            }
            AuthMethod::Md5 => Method::Md5(
                Md5PasswordAuthStartupHandler::new(verifiers, params)
                    .with_pid_secret_key_generator(pids),
            ),
            AuthMethod::Trust => Method::Trust(pids),
        };
        Startup {
            method,
            users,
            cancels,
            require_tls,
            statement_timeout,
            sasl_started: AtomicBool::new(false),
        }
    }

    /// Once authenticated: the session, bound to the user's tenant.
    fn open_session<C: ClientInfo>(&self, client: &C) -> PgWireResult<()> {
        let user = user_of(client);
        let found = self.users.find(&user).map_err(internal)?;
        let Some(found) = found else {
            return Err(no_such_user(&user));
        };
        let mut session = PgSession::new(user, Tenant::One(found.tenant));
        if !self.statement_timeout.is_zero() {
            let ms = format!("{}ms", self.statement_timeout.as_millis());
            session
                .set_server_default("statement_timeout", &ms)
                .map_err(|e| internal_setting(e.to_string()))?;
        }
        self.cancels
            .register(client, Arc::new(Connection::new(session)));
        Ok(())
    }
}

fn user_of<C: ClientInfo>(client: &C) -> String {
    client
        .metadata()
        .get(METADATA_USER)
        .cloned()
        .unwrap_or_default()
}

/// PostgreSQL says the same for an unknown user as for a wrong password.
fn no_such_user(user: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        sqlstate::INVALID_PASSWORD.into(),
        format!("password authentication failed for user \"{user}\""),
    )))
}

fn internal(e: crate::auth::AuthError) -> PgWireError {
    tracing::error!(error = %e, "reading users");
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        "XX000".into(),
        "the server cannot read its users; see its log".into(),
    )))
}

fn internal_setting(e: String) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".into(),
        "XX000".into(),
        format!("the server's default statement_timeout is invalid: {e}"),
    )))
}

/// The password verifiers pgwire's SCRAM and md5 exchanges check against.
#[derive(Debug)]
struct Verifiers {
    users: Arc<Users>,
    method: AuthMethod,
}

#[async_trait]
impl AuthSource for Verifiers {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let name = login.user().unwrap_or_default();
        let Some(user) = self.users.find(name).map_err(internal)? else {
            return Ok(mock_password(name, self.method, self.users.mock_key()));
        };
        Ok(match self.method {
            AuthMethod::Md5 => {
                let salt: [u8; 4] = rand::random();
                let mut salted = user.md5.into_bytes();
                salted.extend_from_slice(&salt);
                let expect = format!("md5{:x}", md5::compute(salted));
                Password::new(Some(salt.to_vec()), expect.into_bytes())
            }
            _ => Password::new(Some(user.salt()), user.salted_password()),
        })
    }
}

/// A verifier for a user that does not exist, so the exchange runs to its end and fails at
/// the proof exactly as a wrong password does (PostgreSQL's mock authentication): the SCRAM
/// salt is the same for the same name on every try and across restarts, as a real user's is;
/// the secret is random.
fn mock_password(name: &str, method: AuthMethod, key: &[u8; 32]) -> Password {
    let secret: [u8; 32] = rand::random();
    match method {
        AuthMethod::Md5 => {
            let salt: [u8; 4] = rand::random();
            let fake = format!("md5{}", hex::encode(&secret[..16]));
            Password::new(Some(salt.to_vec()), fake.into_bytes())
        }
        _ => {
            let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
            let tag = ring::hmac::sign(&key, name.as_bytes());
            Password::new(Some(tag.as_ref()[..16].to_vec()), secret.to_vec())
        }
    }
}

/// Reads a SASLInitialResponse body (mechanism, then a length-prefixed payload or -1) without
/// trusting its lengths: a short, empty or overlong one is a protocol violation (08P01).
fn sasl_initial_response(raw: &[u8]) -> PgWireResult<SASLInitialResponse> {
    let malformed = || {
        PgWireError::UserError(Box::new(ErrorInfo::new(
            "FATAL".into(),
            sqlstate::PROTOCOL_VIOLATION.into(),
            "malformed SASLInitialResponse message".into(),
        )))
    };
    let nul = raw.iter().position(|b| *b == 0).ok_or_else(malformed)?;
    let method = std::str::from_utf8(&raw[..nul]).map_err(|_| malformed())?;
    let rest = &raw[nul + 1..];
    let len_bytes: [u8; 4] = rest
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(malformed)?;
    let len = i32::from_be_bytes(len_bytes);
    let payload = &rest[4..];
    let data = match len {
        -1 if payload.is_empty() => None,
        n if n >= 0 && n as usize == payload.len() => Some(bytes::Bytes::copy_from_slice(payload)),
        _ => return Err(malformed()),
    };
    Ok(SASLInitialResponse::new(method.to_string(), data))
}

/// A frontend message's name, for errors.
fn message_name(m: &PgWireFrontendMessage) -> &'static str {
    match m {
        PgWireFrontendMessage::Query(_) => "Query",
        PgWireFrontendMessage::Parse(_) => "Parse",
        PgWireFrontendMessage::Bind(_) => "Bind",
        PgWireFrontendMessage::Execute(_) => "Execute",
        PgWireFrontendMessage::Describe(_) => "Describe",
        PgWireFrontendMessage::Sync(_) => "Sync",
        PgWireFrontendMessage::Startup(_) => "StartupMessage",
        _ => "other",
    }
}

struct Parameters;

impl ServerParameterProvider for Parameters {
    fn server_parameters<C: ClientInfo>(&self, client: &C) -> Option<HashMap<String, String>> {
        let user = user_of(client);
        let app = client
            .metadata()
            .get("application_name")
            .cloned()
            .unwrap_or_default();
        let pairs = [
            ("server_version", PG_VERSION.to_string()),
            ("server_version_num", PG_VERSION_NUM.to_string()),
            ("server_encoding", "UTF8".into()),
            ("client_encoding", "UTF8".into()),
            ("DateStyle", "ISO, MDY".into()),
            ("IntervalStyle", "postgres".into()),
            ("TimeZone", "UTC".into()),
            ("integer_datetimes", "on".into()),
            ("standard_conforming_strings", "on".into()),
            ("is_superuser", "off".into()),
            ("in_hot_standby", "off".into()),
            ("default_transaction_read_only", "on".into()),
            ("search_path", "\"$user\", public".into()),
            ("session_authorization", user),
            ("application_name", app),
        ];
        Some(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if self.require_tls
            && !client.is_secure()
            && matches!(message, PgWireFrontendMessage::Startup(_))
        {
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".into(),
                sqlstate::INVALID_AUTHORIZATION_SPECIFICATION.into(),
                "this server accepts only TLS connections (use sslmode=require)".into(),
            ))));
        }
        // While authenticating, only password messages are allowed (PostgreSQL: 08P01).
        if matches!(
            client.state(),
            PgWireConnectionState::AuthenticationInProgress
        ) && !matches!(message, PgWireFrontendMessage::PasswordMessageFamily(_))
        {
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".into(),
                sqlstate::PROTOCOL_VIOLATION.into(),
                format!(
                    "expected password response, got message type {}",
                    message_name(&message)
                ),
            ))));
        }
        // A wrong proof says what an unknown user's does: nothing tells the two apart.
        let same_refusal = |e: PgWireError, client: &C| match e {
            PgWireError::InvalidPassword(_) => no_such_user(&user_of(client)),
            e => e,
        };
        match &self.method {
            Method::Scram(h) => {
                let message = match message {
                    PgWireFrontendMessage::PasswordMessageFamily(PasswordMessageFamily::Raw(
                        raw,
                    )) if !self.sasl_started.swap(true, Ordering::SeqCst) => {
                        PgWireFrontendMessage::PasswordMessageFamily(
                            PasswordMessageFamily::SASLInitialResponse(sasl_initial_response(
                                &raw,
                            )?),
                        )
                    }
                    other => other,
                };
                if let Err(e) = h.on_startup(client, message).await {
                    return Err(same_refusal(e, client));
                }
            }
            Method::Md5(h) => {
                if let Err(e) = h.on_startup(client, message).await {
                    return Err(same_refusal(e, client));
                }
            }
            Method::Trust(pids) => {
                let PgWireFrontendMessage::Startup(ref startup) = message else {
                    return Ok(());
                };
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let user = user_of(client);
                if self.users.find(&user).map_err(internal)?.is_none() {
                    return Err(no_such_user(&user));
                }
                let (pid, key) = pids.generate(client);
                client.set_pid_and_secret_key(pid, key);
                finish_authentication(client, &Parameters).await?;
            }
        }
        if matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            self.open_session(client)?;
        }
        Ok(())
    }
}
