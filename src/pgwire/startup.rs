//! Startup: SCRAM-SHA-256 (or md5, or trust) authentication against [`Users`], the
//! ParameterStatus set real clients require (`server_version`, `DateStyle`, …), and the
//! connection's session, bound to the user's tenant and registered for CancelRequests.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use futures::sink::Sink;
use pgwire::api::auth::md5pass::Md5PasswordAuthStartupHandler;
use pgwire::api::auth::sasl::scram::ScramAuth;
use pgwire::api::auth::sasl::SASLAuthStartupHandler;
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata, AuthSource,
    LoginInfo, Password, ServerParameterProvider, StartupHandler,
};
use pgwire::api::{
    ClientInfo, PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
    METADATA_USER,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use timberline_udfs::pg_compat::{PgSession, PG_VERSION, PG_VERSION_NUM};

use super::session::{Cancels, Connection};
use crate::auth::{Users, SCRAM_ITERATIONS};

/// How pg clients prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMethod {
    /// SCRAM-SHA-256, PostgreSQL's default since 14.
    #[value(name = "scram-sha-256")]
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    /// md5, for old clients.
    Md5,
    /// No password: any known user may connect (local development only).
    Trust,
}

/// One connection's startup.
pub struct Startup {
    method: Method,
    users: Arc<Users>,
    cancels: Arc<Cancels>,
    require_tls: bool,
}

enum Method {
    Scram(SASLAuthStartupHandler<Parameters>),
    Md5(Md5PasswordAuthStartupHandler<Verifiers, Parameters>),
    Trust(RandomPidSecretKeyGenerator),
}

impl Startup {
    /// A fresh startup state machine (one per connection: SCRAM's exchange is stateful).
    pub fn new(
        method: AuthMethod,
        users: Arc<Users>,
        cancels: Arc<Cancels>,
        require_tls: bool,
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
                Method::Scram(SASLAuthStartupHandler::new(params).with_scram(scram))
            }
            AuthMethod::Md5 => Method::Md5(Md5PasswordAuthStartupHandler::new(verifiers, params)),
            AuthMethod::Trust => Method::Trust(RandomPidSecretKeyGenerator::default()),
        };
        Startup {
            method,
            users,
            cancels,
            require_tls,
        }
    }

    /// Once authenticated: the session, bound to the user's tenant.
    fn open_session<C: ClientInfo>(&self, client: &C) -> PgWireResult<()> {
        let user = user_of(client);
        let found = self.users.find(&user).map_err(internal)?;
        let Some(found) = found else {
            return Err(no_such_user(&user));
        };
        let session = PgSession::new(user, Some(found.tenant));
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
        "28P01".into(),
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
        let user = self
            .users
            .find(name)
            .map_err(internal)?
            .ok_or_else(|| no_such_user(name))?;
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
                "28000".into(),
                "this server accepts only TLS connections (use sslmode=require)".into(),
            ))));
        }
        match &self.method {
            Method::Scram(h) => h.on_startup(client, message).await?,
            Method::Md5(h) => h.on_startup(client, message).await?,
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
