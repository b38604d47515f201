//! Startup: trust authentication for the configured users, and the ParameterStatus set real
//! clients require (`server_version`, `server_version_num`, `DateStyle`, `integer_datetimes`, …).

use std::collections::HashMap;
use std::fmt::Debug;

use async_trait::async_trait;
use futures::sink::Sink;
use pgwire::api::auth::{
    finish_authentication, protocol_negotiation, save_startup_parameters_to_metadata,
    ServerParameterProvider, StartupHandler,
};
use pgwire::api::{
    ClientInfo, PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator,
    METADATA_USER,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use timberline_udfs::pg_compat::{PG_VERSION, PG_VERSION_NUM};

/// Trust authentication: any listed user may connect without a password.
pub struct TrustStartup {
    users: Vec<String>,
    pids: RandomPidSecretKeyGenerator,
}

impl TrustStartup {
    pub fn new(users: Vec<String>) -> TrustStartup {
        TrustStartup {
            users,
            pids: RandomPidSecretKeyGenerator::default(),
        }
    }
}

struct Parameters;

impl ServerParameterProvider for Parameters {
    fn server_parameters<C: ClientInfo>(&self, client: &C) -> Option<HashMap<String, String>> {
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
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
impl StartupHandler for TrustStartup {
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
        let PgWireFrontendMessage::Startup(ref startup) = message else {
            return Ok(());
        };
        protocol_negotiation(client, startup).await?;
        save_startup_parameters_to_metadata(client, startup);
        let user = client
            .metadata()
            .get(METADATA_USER)
            .cloned()
            .unwrap_or_default();
        if !self.users.iter().any(|u| *u == user) {
            return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                "FATAL".into(),
                "28000".into(),
                format!("role \"{user}\" does not exist"),
            ))));
        }
        let (pid, key) = self.pids.generate(client);
        client.set_pid_and_secret_key(pid, key);
        finish_authentication(client, &Parameters).await?;
        client.set_state(PgWireConnectionState::ReadyForQuery);
        Ok(())
    }
}
