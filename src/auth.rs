//! Who may connect over pgwire or send logs over HTTP, and which tenant each one is bound to.
//!
//! Users live in `<data dir>/users.json`, written by `timberline user add` and read at every
//! login (so a running server sees new users at once). Only password verifiers are stored:
//! SCRAM-SHA-256's salted password and md5's `md5(password || user)`. A fresh install also has
//! the user `timberline` (tenant `default`), whose password comes from `TIMBERLINE_PASSWORD`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use pgwire::api::auth::sasl::scram::gen_salted_password;
use serde::{Deserialize, Serialize};

use crate::model::DEFAULT_TENANT;

/// The tenant a request's API key proves (a request extension the HTTP guard sets).
#[derive(Debug, Clone)]
pub struct KeyTenant(pub String);

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

/// The user every fresh install has.
pub const BOOTSTRAP_USER: &str = "timberline";
/// Its password when `TIMBERLINE_PASSWORD` is not set (the demo's; a warning says so).
pub const DEMO_PASSWORD: &str = "timberline";
/// PBKDF2 iterations of SCRAM-SHA-256 (PostgreSQL's default).
pub const SCRAM_ITERATIONS: usize = 4096;

const FILE: &str = "users.json";

/// Errors of reading or changing the users file.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("users file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("users file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

/// One user's tenant and password verifiers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub tenant: String,
    /// SCRAM salt, hex.
    pub scram_salt: String,
    /// SCRAM `SaltedPassword` = PBKDF2(password, salt, [`SCRAM_ITERATIONS`]), hex.
    pub scram_salted: String,
    /// `md5(password || name)`, hex, for md5 authentication.
    pub md5: String,
}

impl User {
    /// Verifiers for `password`, with a fresh random salt.
    pub fn new(name: &str, tenant: &str, password: &str) -> User {
        let salt: [u8; 16] = rand::random();
        User {
            tenant: tenant.to_string(),
            scram_salt: hex::encode(salt),
            scram_salted: hex::encode(gen_salted_password(password, &salt, SCRAM_ITERATIONS)),
            md5: format!("{:x}", md5::compute(format!("{password}{name}"))),
        }
    }

    pub fn salt(&self) -> Vec<u8> {
        hex::decode(&self.scram_salt).unwrap_or_default()
    }

    pub fn salted_password(&self) -> Vec<u8> {
        hex::decode(&self.scram_salted).unwrap_or_default()
    }
}

/// The users a server accepts.
#[derive(Debug, Clone)]
pub struct Users {
    file: PathBuf,
    bootstrap: User,
    /// The key unknown users' mock SCRAM salts derive from, kept in the data directory so a
    /// restart does not change them (which would tell them from real users' salts).
    mock_key: [u8; 32],
}

impl Users {
    /// The users of `data_dir`, plus the bootstrap user with `bootstrap_password` unless the
    /// file defines `timberline` itself.
    pub fn new(data_dir: &Path, bootstrap_password: &str) -> Users {
        Users {
            file: data_dir.join(FILE),
            bootstrap: User::new(BOOTSTRAP_USER, DEFAULT_TENANT, bootstrap_password),
            mock_key: mock_key(data_dir),
        }
    }

    /// The secret unknown users' mock verifiers derive from.
    pub fn mock_key(&self) -> &[u8; 32] {
        &self.mock_key
    }

    /// Looks a user up (reading the file afresh).
    pub fn find(&self, name: &str) -> Result<Option<User>, AuthError> {
        let mut all = read_json::<User>(&self.file)?;
        if let Some(u) = all.remove(name) {
            return Ok(Some(u));
        }
        Ok((name == BOOTSTRAP_USER).then(|| self.bootstrap.clone()))
    }
}

/// The names of the users `data_dir` defines, and the bootstrap user, in name order (for
/// `pg_roles`); an unreadable users file lists the bootstrap user alone.
pub fn user_names(data_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = read_json::<User>(&data_dir.join(FILE))
        .map(|all| all.into_keys().collect())
        .unwrap_or_default();
    if !names.iter().any(|n| n == BOOTSTRAP_USER) {
        names.push(BOOTSTRAP_USER.to_string());
    }
    names.sort();
    names
}

const MOCK_KEY_FILE: &str = "mock_auth.key";

/// The data directory's mock-authentication key, made on first use; a random one (with a
/// warning) if it cannot be read or written.
fn mock_key(data_dir: &Path) -> [u8; 32] {
    let path = data_dir.join(MOCK_KEY_FILE);
    if let Ok(bytes) = std::fs::read(&path) {
        if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return key;
        }
    }
    let key: [u8; 32] = rand::random();
    if let Err(e) = crate::storage::replace_file(&path, "tmp", &key) {
        tracing::warn!(error = %e, path = %path.display(), "cannot keep the mock authentication key");
    }
    key
}

/// Adds or replaces a user in `data_dir`'s users file (written atomically).
pub fn add_user(
    data_dir: &Path,
    name: &str,
    tenant: &str,
    password: &str,
) -> Result<(), AuthError> {
    check_name("user name", name)?;
    check_name("tenant", tenant)?;
    if password.is_empty() {
        return Err(AuthError::Invalid("the password is empty".into()));
    }
    let path = data_dir.join(FILE);
    let mut all = read_json::<User>(&path)?;
    all.insert(name.to_string(), User::new(name, tenant, password));
    write_json(data_dir, &path, &all)
}

fn check_name(what: &str, s: &str) -> Result<(), AuthError> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if !ok {
        return Err(AuthError::Invalid(format!(
            "{what} {s:?}: use 1 to 63 letters, digits, '_', '-' or '.'"
        )));
    }
    if what == "tenant" && s.starts_with('_') {
        return Err(AuthError::Invalid(format!(
            "tenant {s:?}: names starting with '_' are reserved (the audit log is tenant {})",
            crate::audit::AUDIT_TENANT
        )));
    }
    Ok(())
}

/// Replaces `path` atomically with `all` as JSON.
fn write_json<T: Serialize>(
    data_dir: &Path,
    path: &Path,
    all: &BTreeMap<String, T>,
) -> Result<(), AuthError> {
    let io = |source| AuthError::Io {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let text = serde_json::to_vec_pretty(all).map_err(|source| AuthError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    crate::storage::replace_file(path, "json.tmp", &text).map_err(io)?;
    crate::storage::sync_dir(data_dir).map_err(io)
}

fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<BTreeMap<String, T>, AuthError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| AuthError::Parse {
            path: path.to_path_buf(),
            source,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(source) => Err(AuthError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// The ingest key every fresh install accepts when `TIMBERLINE_API_KEY` is not set.
pub const DEMO_API_KEY: &str = "timberline";

const KEYS_FILE: &str = "api_keys.json";

/// Least time between two reads of the keys file prompted by unknown keys: a key added since
/// the last read is found after at most this wait, and unknown keys make the server read the
/// file at most this often (and only when it changed).
const MIN_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// What tells one version of the keys file from another (`None`: there is no file).
type FileVersion = Option<(std::time::SystemTime, u64, u64)>;

fn version_of(path: &Path) -> FileVersion {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len(), m.ino()))
}

/// The keys file as last read.
#[derive(Debug, Default)]
struct Loaded {
    version: FileVersion,
    /// When it was read (`None`: never).
    at: Option<std::time::Instant>,
}

/// HTTP API keys, each bound to a tenant. Only their SHA-256 is stored, in
/// `<data dir>/api_keys.json` (written by `timberline key add`), read at start and again when a
/// key is not known and the file changed since; the bootstrap key (`TIMBERLINE_API_KEY`)
/// belongs to tenant `default`.
#[derive(Debug)]
pub struct ApiKeys {
    file: PathBuf,
    bootstrap: String,
    known: std::sync::RwLock<BTreeMap<String, String>>,
    /// Held while the file is read: a request whose key is not known waits here for a read in
    /// progress and then looks again, so no key in the file is ever answered "unknown" because
    /// another request was reading it; the version read lets a guessed key cost a `stat`.
    loaded: tokio::sync::Mutex<Loaded>,
    reads: std::sync::atomic::AtomicU64,
}

/// A key's name in the audit log: the first 12 hex digits of the SHA-256 the keys file stores.
pub fn key_id(key: &str) -> String {
    let mut id = key_hash(key);
    id.truncate(12);
    id
}

fn key_hash(key: &str) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, key.as_bytes()))
}

impl ApiKeys {
    pub fn new(data_dir: &Path, bootstrap_key: &str) -> ApiKeys {
        ApiKeys {
            file: data_dir.join(KEYS_FILE),
            bootstrap: key_hash(bootstrap_key),
            known: Default::default(),
            loaded: Default::default(),
            reads: Default::default(),
        }
    }

    /// The tenant of a key already known (the bootstrap key, or one read before), without I/O.
    pub fn known(&self, key: &str) -> Option<String> {
        let hash = key_hash(key);
        if hash == self.bootstrap {
            return Some(DEFAULT_TENANT.to_string());
        }
        self.known
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&hash)
            .cloned()
    }

    /// Reads the keys file now (the server does before its listeners serve); how many keys
    /// it holds.
    pub async fn load(&self) -> Result<usize, AuthError> {
        let mut loaded = self.loaded.lock().await;
        self.read(&mut loaded).await
    }

    /// The tenant of `key`, if it is a key. One not known yet waits for a read of the keys
    /// file in progress, then reads the file itself if it changed since it was last read.
    pub async fn tenant_of(&self, key: &str) -> Result<Option<String>, AuthError> {
        if let Some(tenant) = self.known(key) {
            return Ok(Some(tenant));
        }
        let mut loaded = self.loaded.lock().await;
        // The file may have been read while this request waited.
        if let Some(tenant) = self.known(key) {
            return Ok(Some(tenant));
        }
        let file = self.file.clone();
        let version = tokio::task::spawn_blocking(move || version_of(&file))
            .await
            .unwrap_or(None);
        if loaded.at.is_some() && version == loaded.version {
            return Ok(None);
        }
        if let Some(at) = loaded.at {
            tokio::time::sleep_until((at + MIN_RELOAD_INTERVAL).into()).await;
        }
        self.read(&mut loaded).await?;
        Ok(self.known(key))
    }

    /// Times the keys file was read.
    pub fn reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Reads the file (off the async workers) and makes its keys the known ones.
    async fn read(&self, loaded: &mut Loaded) -> Result<usize, AuthError> {
        // A failed read counts too: a broken file is not read again in a loop.
        loaded.at = Some(std::time::Instant::now());
        let file = self.file.clone();
        let (version, all) = tokio::task::spawn_blocking(move || {
            let version = version_of(&file);
            read_json::<String>(&file).map(|all| (version, all))
        })
        .await
        .map_err(|e| AuthError::Invalid(format!("reading API keys: {e}")))??;
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = all.len();
        *self.known.write().unwrap_or_else(|p| p.into_inner()) = all;
        loaded.version = version;
        Ok(n)
    }
}

/// Makes a new random key for `tenant`, stores its hash, and returns the key.
pub fn add_api_key(data_dir: &Path, tenant: &str) -> Result<String, AuthError> {
    check_name("tenant", tenant)?;
    let bytes: [u8; 24] = rand::random();
    let key = format!("tl_{}", hex::encode(bytes));
    let path = data_dir.join(KEYS_FILE);
    let mut all = read_json::<String>(&path)?;
    all.insert(key_hash(&key), tenant.to_string());
    write_json(data_dir, &path, &all)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_key_in_the_file_is_never_unknown_and_guesses_do_not_reread_it() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let keys = Arc::new(ApiKeys::new(dir.path(), "boot"));
        assert_eq!(keys.load().await.ok(), Some(0));
        // Many keys, written after the server read the file: every concurrent first request
        // of one of them waits for the one read instead of being told "unknown".
        let mut all = BTreeMap::new();
        let wanted: Vec<String> = (0..32).map(|i| format!("key-{i}")).collect();
        for i in 0..50_000 {
            all.insert(key_hash(&format!("filler-{i}")), "t0".to_string());
        }
        for k in &wanted {
            all.insert(key_hash(k), "t1".to_string());
        }
        assert!(write_json(dir.path(), &dir.path().join(KEYS_FILE), &all).is_ok());
        let tasks: Vec<_> = wanted
            .iter()
            .map(|k| {
                let (keys, k) = (keys.clone(), k.clone());
                tokio::spawn(async move { keys.tenant_of(&k).await.ok().flatten() })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.ok().flatten().as_deref(), Some("t1"));
        }
        let reads = keys.reads();
        assert_eq!(reads, 2, "the start, then one read for all 32");
        for i in 0..100 {
            assert_eq!(keys.tenant_of(&format!("guess-{i}")).await.ok(), Some(None));
        }
        assert_eq!(keys.reads(), reads, "guesses do not read an unchanged file");
        assert_eq!(
            keys.tenant_of("boot").await.ok().flatten().as_deref(),
            Some(DEFAULT_TENANT)
        );
    }
}
