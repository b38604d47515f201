//! Run-time settings (GUCs): their PostgreSQL defaults, and the per-connection values a client
//! `SET`s, carried into planning and functions as a DataFusion config extension.

use std::any::Any;
use std::collections::BTreeMap;
use std::str::FromStr;

use super::standard_settings::standard_setting;
use crate::sqlstate;
use datafusion::arrow::array::timezone::Tz;
use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::error::Result;

/// The PostgreSQL version we speak.
pub const PG_VERSION: &str = "16.6";
/// `server_version_num` of [`PG_VERSION`].
pub const PG_VERSION_NUM: &str = "160006";

/// Every setting we report, with PostgreSQL's spelling (which `SHOW` uses as its column name)
/// and its value on a fresh session.
const DEFAULTS: &[(&str, &str)] = &[
    ("application_name", ""),
    ("bytea_output", "hex"),
    ("client_encoding", "UTF8"),
    ("client_min_messages", "notice"),
    ("DateStyle", "ISO, MDY"),
    ("default_transaction_isolation", "read committed"),
    ("default_transaction_read_only", "on"),
    ("extra_float_digits", "1"),
    ("idle_in_transaction_session_timeout", "0"),
    ("in_hot_standby", "off"),
    ("integer_datetimes", "on"),
    ("IntervalStyle", "postgres"),
    ("is_superuser", "off"),
    ("lc_collate", "C.UTF-8"),
    ("lc_ctype", "C.UTF-8"),
    ("lc_messages", "C.UTF-8"),
    ("lc_monetary", "C.UTF-8"),
    ("lc_numeric", "C.UTF-8"),
    ("lc_time", "C.UTF-8"),
    ("lock_timeout", "0"),
    ("max_identifier_length", "63"),
    ("max_index_keys", "32"),
    ("search_path", "\"$user\", public"),
    ("server_encoding", "UTF8"),
    ("server_version", PG_VERSION),
    ("server_version_num", PG_VERSION_NUM),
    ("standard_conforming_strings", "on"),
    ("statement_timeout", "0"),
    ("TimeZone", "UTC"),
    ("transaction_isolation", "read committed"),
    ("transaction_read_only", "on"),
];

/// Settings a client may read but not change.
const READ_ONLY: &[&str] = &[
    "server_version",
    "server_version_num",
    "server_encoding",
    "integer_datetimes",
    "lc_collate",
    "lc_ctype",
    "max_identifier_length",
    "max_index_keys",
    "in_hot_standby",
    "is_superuser",
];

/// A `SET` that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    /// Not a setting we know (PostgreSQL: 42704).
    #[error("unrecognized configuration parameter \"{0}\"")]
    Unknown(String),
    /// A setting fixed at server start (PostgreSQL: 55P02).
    #[error("parameter \"{0}\" cannot be changed now")]
    ReadOnly(String),
    /// A value the setting does not accept (PostgreSQL: 22023).
    #[error("invalid value for parameter \"{name}\": \"{value}\"{hint}")]
    Invalid {
        name: String,
        value: String,
        hint: &'static str,
    },
}

impl SettingError {
    /// The SQLSTATE PostgreSQL gives this error.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            SettingError::Unknown(_) => sqlstate::UNDEFINED_OBJECT,
            SettingError::ReadOnly(_) => sqlstate::CANT_CHANGE_RUNTIME_PARAM,
            SettingError::Invalid { .. } => sqlstate::INVALID_PARAMETER_VALUE,
        }
    }
}

/// PostgreSQL's spelling of a setting name given in any case (`timezone` → `TimeZone`), or
/// `None` for a name we do not know.
pub fn canonical_name(name: &str) -> Option<&'static str> {
    DEFAULTS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(n, _)| *n)
        .or_else(|| standard_setting(name).map(|s| s.name.as_str()))
}

/// The value a fresh session has for `name` (any case).
pub fn default_setting(name: &str) -> Option<&'static str> {
    DEFAULTS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
        .or_else(|| standard_setting(name).and_then(|s| s.boot_val.as_deref()))
}

/// Whose rows a session sees. There is no default: a session is given its scope when it is
/// made, so a session nobody bound cannot exist (and cannot mean "everyone").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tenant {
    /// Only this tenant's rows.
    One(String),
    /// Every tenant's rows (operators' tools; no pg login has it).
    All,
}

impl Tenant {
    /// The tenant's name, or `None` for [`Tenant::All`].
    pub fn name(&self) -> Option<&str> {
        match self {
            Tenant::One(t) => Some(t),
            Tenant::All => None,
        }
    }

    /// Whether a row of `tenant` is visible in this scope.
    pub fn sees(&self, tenant: &str) -> bool {
        match self {
            Tenant::One(t) => t == tenant,
            Tenant::All => true,
        }
    }
}

/// One pg connection's identity and settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PgSession {
    /// The authenticated user.
    pub user: String,
    /// The rows this session sees.
    pub tenant: Tenant,
    /// Values `SET` on this session, by lower-cased name.
    overrides: BTreeMap<String, String>,
    /// The server's own defaults (`--statement-timeout`), which `RESET` returns to.
    server: BTreeMap<String, String>,
}

impl PgSession {
    pub fn new(user: impl Into<String>, tenant: Tenant) -> PgSession {
        PgSession {
            user: user.into(),
            tenant,
            overrides: BTreeMap::new(),
            server: BTreeMap::new(),
        }
    }

    /// Sets the server's default of a setting for this session (checked like a `SET`).
    pub fn set_server_default(&mut self, name: &str, value: &str) -> Result<(), SettingError> {
        let value = normalize(name, value)?;
        self.server.insert(name.to_ascii_lowercase(), value);
        Ok(())
    }

    /// The session's value of a setting: what it `SET`, else the default.
    pub fn get(&self, name: &str) -> Option<String> {
        let key = name.to_ascii_lowercase();
        if let Some(v) = self.overrides.get(&key).or_else(|| self.server.get(&key)) {
            return Some(v.clone());
        }
        match key.as_str() {
            "session_authorization" | "session_user" => Some(self.user.clone()),
            _ => default_setting(name).map(str::to_string),
        }
    }

    /// The session's `TimeZone`: its name and the zone, or `None` for a name the zone
    /// database does not know (read as UTC).
    pub fn time_zone(&self) -> Option<(String, Tz)> {
        let name = self.get("TimeZone")?;
        let zone = Tz::from_str(&name).ok()?;
        Some((name, zone))
    }

    /// `SET name = value`. Returns `false` for a name we do not know, which is remembered all
    /// the same (so `SHOW` reads it back) and deserves a warning; custom names with a dot
    /// (`myapp.x`) are known, as in PostgreSQL.
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, SettingError> {
        if READ_ONLY.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            return Err(SettingError::ReadOnly(name.to_string()));
        }
        // A PostgreSQL setting only the server's start or superuser sets (`shared_buffers`).
        let own = DEFAULTS.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
        if let (false, Some(standard)) = (own, standard_setting(name)) {
            if !matches!(standard.context.as_deref(), Some("user")) {
                return Err(SettingError::ReadOnly(name.to_string()));
            }
        }
        let known = canonical_name(name).is_some() || name.contains('.');
        let value = normalize(name, value)?;
        self.overrides.insert(name.to_ascii_lowercase(), value);
        Ok(known)
    }

    /// `RESET name` / `SET name TO DEFAULT`.
    pub fn reset(&mut self, name: &str) {
        self.overrides.remove(&name.to_ascii_lowercase());
    }

    /// `RESET ALL` / `DISCARD ALL`.
    pub fn reset_all(&mut self) {
        self.overrides.clear();
    }

    /// Every setting and its current value, in name order (`SHOW ALL`).
    pub fn all(&self) -> Vec<(String, String)> {
        let mut out: BTreeMap<String, (String, String)> = DEFAULTS
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), (n.to_string(), v.to_string())))
            .collect();
        for (k, v) in self.server.iter().chain(&self.overrides) {
            let name = canonical_name(k).map_or_else(|| k.clone(), str::to_string);
            out.insert(k.clone(), (name, v.clone()));
        }
        out.into_values().collect()
    }

    /// The session's own scan budget (`timberline.max_scan_bytes`), if it set one (0: none).
    pub fn max_scan_bytes(&self) -> Option<u64> {
        self.get("timberline.max_scan_bytes")
            .and_then(|v| parse_bytes(&v))
            .filter(|b| *b > 0)
    }

    /// `statement_timeout`, if one is set (0 means none).
    pub fn statement_timeout(&self) -> Option<std::time::Duration> {
        let ms = self
            .get("statement_timeout")
            .and_then(|v| parse_millis(&v))
            .unwrap_or(0);
        (ms > 0).then(|| std::time::Duration::from_millis(ms))
    }
}

/// Checks and normalises a value the way PostgreSQL stores it.
fn normalize(name: &str, value: &str) -> Result<String, SettingError> {
    let invalid = |hint| SettingError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        hint,
    };
    match name.to_ascii_lowercase().as_str() {
        "statement_timeout" | "lock_timeout" | "idle_in_transaction_session_timeout" => {
            let ms = parse_millis(value).ok_or_else(|| {
                invalid(" (a number of milliseconds, or with a unit: ms, s, min, h, d)")
            })?;
            Ok(format_millis(ms))
        }
        "client_encoding" => match value.to_ascii_uppercase().replace('-', "").as_str() {
            "UTF8" | "UNICODE" => Ok("UTF8".into()),
            _ => Err(invalid(" (only UTF8 is supported)")),
        },
        // Timberline's rollup rewrite (`off`, `on`, `require`).
        "timberline.rollups" => match value.trim().to_ascii_lowercase().as_str() {
            v @ ("off" | "on" | "require") => Ok(v.to_string()),
            _ => Err(invalid(" (off, on or require)")),
        },
        // Timberline's scan budget: bytes (units kB, MB, GB, TB, as PostgreSQL's memory
        // settings), 0 for none of the session's own.
        "timberline.max_scan_bytes" => parse_bytes(value)
            .map(|b| b.to_string())
            .ok_or_else(|| invalid(" (bytes, or with a unit: kB, MB, GB, TB; 0 for none)")),
        "extra_float_digits" => match value.trim().parse::<i32>() {
            Ok(n) if (-15..=3).contains(&n) => Ok(n.to_string()),
            _ => Err(invalid(" (an integer from -15 to 3)")),
        },
        _ => Ok(value.to_string()),
    }
}

/// Parses a size setting: bare numbers are bytes; units B, kB, MB, GB, TB (powers of 1024, as
/// PostgreSQL reads them).
pub fn parse_bytes(text: &str) -> Option<u64> {
    let units = [
        ("", 1.0),
        ("b", 1.0),
        ("kb", 1024.0),
        ("mb", 1024.0 * 1024.0),
        ("gb", 1024.0 * 1024.0 * 1024.0),
        ("tb", 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ];
    parse_scaled(text, &units, 9.0e18)
}

/// Parses a duration setting: bare numbers are milliseconds; units ms, s, min, h, d.
fn parse_millis(text: &str) -> Option<u64> {
    let units = [
        ("", 1.0),
        ("ms", 1.0),
        ("s", 1e3),
        ("min", 60e3),
        ("h", 3600e3),
        ("d", 86_400e3),
    ];
    parse_scaled(text, &units, i32::MAX as f64)
}

/// A number with one of `units` (name, scale; names lower case, matched in any case) as a
/// whole count of the smallest unit, no more than `max`.
fn parse_scaled(text: &str, units: &[(&str, f64)], max: f64) -> Option<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit = unit.trim().to_ascii_lowercase();
    let scale = units.iter().find(|(u, _)| *u == unit)?.1;
    let v = (n * scale).round();
    (v.is_finite() && v >= 0.0 && v <= max).then_some(v as u64)
}

/// PostgreSQL's display of a millisecond setting (`5000` → `5s`).
fn format_millis(ms: u64) -> String {
    match ms {
        0 => "0".into(),
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}min", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

impl ConfigExtension for PgSession {
    const PREFIX: &'static str = "pg_session";
}

impl ExtensionOptions for PgSession {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        PgSession::set(self, key, value)
            .map(|_| ())
            .map_err(|e| datafusion::error::DataFusionError::Configuration(e.to_string()))
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        self.all()
            .into_iter()
            .map(|(key, value)| ConfigEntry {
                key: format!("{}.{key}", Self::PREFIX),
                value: Some(value),
                description: "a PostgreSQL run-time setting of this session",
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn pg_settings_match_postgres() {
        use crate::pg_compat::{default_setting, version_string};
        assert_eq!(default_setting("server_version_num"), Some("160006"));
        assert_eq!(default_setting("TimeZone"), Some("UTC"));
        assert_eq!(default_setting("no.such"), None);
        assert!(version_string().starts_with("PostgreSQL 16.6 (Timberline "));
    }

    #[test]
    fn session_settings_set_reset_and_refuse_like_postgres() {
        use crate::pg_compat::PgSession;
        use std::time::Duration;
        let mut s = PgSession::new("u", crate::pg_compat::Tenant::One("t".into()));
        s.set("TimeZone", "Europe/Paris").unwrap();
        assert_eq!(s.get("timezone").as_deref(), Some("Europe/Paris"));
        // Durations: bare numbers are ms; stored the way PostgreSQL shows them.
        for (given, shown, ms) in [
            ("5000", "5s", 5000),
            ("1.5 min", "90s", 90_000),
            ("2min", "2min", 120_000),
            ("250", "250ms", 250),
        ] {
            s.set("statement_timeout", given).unwrap();
            assert_eq!(
                s.get("statement_timeout").as_deref(),
                Some(shown),
                "{given}"
            );
            assert_eq!(s.statement_timeout(), Some(Duration::from_millis(ms)));
        }
        assert_eq!(
            s.set("statement_timeout", "soon").unwrap_err().sqlstate(),
            "22023"
        );
        assert_eq!(
            s.set("server_version", "1").unwrap_err().sqlstate(),
            "55P02"
        );
        assert_eq!(
            s.set("client_encoding", "LATIN1").unwrap_err().sqlstate(),
            "22023"
        );
        // Unknown names are remembered but reported as unknown (the caller warns).
        assert_eq!(s.set("nope", "1"), Ok(false));
        assert_eq!(s.get("nope").as_deref(), Some("1"));
        assert_eq!(s.set("myapp.flag", "on"), Ok(true));
        s.reset("timezone");
        assert_eq!(s.get("TimeZone").as_deref(), Some("UTC"));
        s.reset_all();
        assert_eq!(s.statement_timeout(), None);
        assert_eq!((s.get("myapp.flag"), s.get("nope")), (None, None));
    }
}
