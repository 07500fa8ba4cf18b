//! Settings: defaults, then a TOML file, then the environment (the environment wins).
//! No setting is needed to start: `intake-server serve` runs on `127.0.0.1:8080` with
//! its data in `./intake-data`. An example file is in `docs/OPERATIONS.md`.
//!
//! `database` (issue 14) names a PostgreSQL database instead of the SQLite file in the
//! data directory; its URL may carry a password, so it is wrapped ([`DatabaseUrl`]) and
//! never printed. A database on another machine is reached over TLS, checked against
//! `database_ca` or the system's CAs (`storage/postgres/tls.rs`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Limits on everything that comes off the network.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest request body as sent (compressed).
    pub max_body_bytes: usize,
    /// Largest request body once decompressed.
    pub max_decompressed_bytes: usize,
    /// Most changes in one sync request.
    pub max_changes_per_request: usize,
    /// Most records in one sync request (pushed or wanted whole).
    pub max_records_per_request: usize,
    /// Most operations in one change.
    pub max_ops_per_change: usize,
    /// Largest record document (compacted) the server will hold.
    pub max_document_bytes: usize,
    /// Largest response page (encoded, before compression).
    pub max_page_bytes: usize,
    /// Most heavy syncs doing their work at once (a body over 64 KiB, or over 512 KiB
    /// decompressed; see `gate.rs`); another one is answered `503 busy` with a
    /// `Retry-After`. 0: one per CPU, at least 2 (see [`Limits::heavy_syncs`]).
    pub max_heavy_syncs: usize,
    /// Most syncs doing their work at once, heavy or not (after their body is in).
    /// Another waits its turn, without holding a thread, for at most
    /// `max_sync_wait_ms`, and is then answered `503 busy` with a `Retry-After`: past
    /// what the server can do, devices hear at once to come back later instead of
    /// queueing until they time out. 0: four per CPU, at least 8 (see
    /// [`Limits::syncs_at_once`]).
    pub max_syncs_at_once: usize,
    /// How long a sync waits for its turn before it is answered `503 busy`.
    pub max_sync_wait_ms: u64,
    // Hostile but well-formed changes (issue 13): read off a pushed change's bytes
    // before anything decodes it (`intake_shared::record::declared`); beyond them the
    // record is refused `TooLarge`, as for `max_ops_per_change`.
    /// Most actors one change names (its own and the others its operations refer to).
    pub max_actors_per_change: usize,
    /// Most objects (maps, lists, texts) one change makes: bounds how deep it nests.
    pub max_objects_per_change: usize,
    /// Most bytes a change's runs of repeated strings may add beyond its own size.
    pub max_inflated_bytes_per_change: usize,
}

impl Limits {
    /// How many heavy syncs may run at once: `max_heavy_syncs`, or for 0 one per CPU
    /// and at least 2, so that one large push never shuts out every other.
    pub fn heavy_syncs(&self) -> usize {
        match self.max_heavy_syncs {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get().max(2)),
            n => n,
        }
    }
}

impl Limits {
    /// How many syncs may do their work at once: `max_syncs_at_once`, or for 0 four
    /// per CPU and at least 8 (enough to keep the CPUs and the database busy while a
    /// few wait on a disk write).
    pub fn syncs_at_once(&self) -> usize {
        match self.max_syncs_at_once {
            0 => std::thread::available_parallelism().map_or(8, |n| (4 * n.get()).max(8)),
            n => n,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 8 << 20,
            max_decompressed_bytes: 32 << 20,
            max_changes_per_request: 20_000,
            max_records_per_request: 10_000,
            // A long narrative is one operation per character: a 2 MB testimony is a
            // change of two million operations. These allow it; `max_heavy_syncs`
            // bounds how many such syncs run at once.
            max_ops_per_change: 4_000_000,
            max_document_bytes: 8 << 20,
            max_page_bytes: 4 << 20,
            max_heavy_syncs: 0,
            max_syncs_at_once: 0,
            max_sync_wait_ms: 5_000,
            // Every session of every device that edited a record is an actor; a change
            // names those whose operations it overwrites or deletes. A thousand is
            // years of sessions; a record's creation names one.
            max_actors_per_change: 1024,
            // A record's creation makes its `fields`, `comments`, `actions` and one
            // text per long-text field; an append makes one entry.
            max_objects_per_change: 1024,
            // Our devices repeat a key only when one change sets a field twice.
            max_inflated_bytes_per_change: 1 << 20,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// PEM certificate chain and private key: when both are set, the server speaks TLS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// How long an enrolment code stays valid, in minutes.
    pub enrolment_code_minutes: i64,
    /// HTTP worker threads (0: one per CPU).
    pub workers: usize,
    pub limits: Limits,
    /// The database key file (64 hex digits, mode 0600). `None`: `intake-server.key`
    /// in the data directory. `INTAKE_SERVER_KEY` (the key itself) wins over it.
    pub key_file: Option<PathBuf>,
    /// Lost phones (issue 12): devices lock their records after this many days
    /// without a successful sync (0, the default: never). Told at enrolment and on
    /// every sync answer, so a change reaches enrolled devices at their next sync.
    pub lock_after_days: u32,
    /// `[retention]`: erase closed records after a time (off by default).
    pub retention: crate::retention::Retention,
    /// The server sits behind a reverse proxy that terminates TLS: plain HTTP on a
    /// non-loopback address is then allowed, and `X-Forwarded-For` from
    /// `trusted_proxies` gives the client's address (see `net.rs`).
    pub behind_proxy: bool,
    /// The proxies' addresses or ranges (`10.0.0.5`, `10.0.0.0/8`, `fd00::/8`).
    pub trusted_proxies: Vec<crate::net::Cidr>,
    /// Whether the HTTP admin API (`/v1/admin/*`) exists: off by default.
    pub admin_api: AdminApi,
    /// A PostgreSQL database (`postgres://…`) instead of the embedded SQLite store in
    /// the data directory (the default). From the file's `database`, else
    /// `INTAKE_SERVER_DATABASE`, else `--database` (which refuses a password).
    pub database: Option<DatabaseUrl>,
    /// A PEM file of the CA certificates that may sign the PostgreSQL database's TLS
    /// certificate (`sslmode=require`); `None`: the system's CAs. From the file's
    /// `database_ca`, else `INTAKE_SERVER_DATABASE_CA`.
    pub database_ca: Option<PathBuf>,
}

/// A PostgreSQL connection URL, checked when read. `Debug` prints `[redacted]`: the URL
/// may carry a password, and settings reach error messages and logs.
#[derive(Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct DatabaseUrl(String);

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseUrl([redacted])")
    }
}

impl DatabaseUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A URL given on the command line, where any local user can read it: one that
    /// carries a password is refused (like the database key, which is never a flag).
    pub fn from_flag(url: &str) -> Result<DatabaseUrl, String> {
        let parsed = DatabaseUrl::try_from(url.to_string())?;
        let config: postgres::Config = url.parse().map_err(|e| format!("--database: {e}"))?;
        if config.get_password().is_some() {
            return Err(
                "--database: a password on the command line is readable by every \
                 local user: set the URL in INTAKE_SERVER_DATABASE or the config file's \
                 `database` instead"
                    .into(),
            );
        }
        Ok(parsed)
    }
}

impl TryFrom<String> for DatabaseUrl {
    type Error = String;

    /// Only PostgreSQL URLs: a typo must not fall back to something else. The message
    /// never repeats the URL.
    fn try_from(url: String) -> Result<DatabaseUrl, String> {
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err("database: not a postgres:// URL".into());
        }
        url.parse::<postgres::Config>()
            .map_err(|e| format!("database: {e}"))?;
        Ok(DatabaseUrl(url))
    }
}

impl From<DatabaseUrl> for String {
    fn from(url: DatabaseUrl) -> String {
        url.0
    }
}

/// The HTTP admin API: off (answers 404 like an unknown route), only for requests
/// from this machine, or on. The `intake-server user`/`device` commands and the
/// dashboard's admin pages do the same without it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdminApi {
    #[default]
    Off,
    Loopback,
    On,
}

impl std::str::FromStr for AdminApi {
    type Err = String;

    fn from_str(s: &str) -> Result<AdminApi, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "off" => Ok(AdminApi::Off),
            "loopback" => Ok(AdminApi::Loopback),
            "on" => Ok(AdminApi::On),
            other => Err(format!("{other:?}: off, loopback or on")),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:8080".parse().expect("a valid address"),
            data_dir: PathBuf::from("intake-data"),
            tls_cert: None,
            tls_key: None,
            enrolment_code_minutes: 60,
            workers: 0,
            limits: Limits::default(),
            key_file: None,
            lock_after_days: 0,
            retention: Default::default(),
            behind_proxy: false,
            trusted_proxies: Vec::new(),
            admin_api: AdminApi::Off,
            database: None,
            database_ca: None,
        }
    }
}

impl Settings {
    /// Where the database key file is: `key_file`, else `intake-server.key` in the
    /// data directory.
    pub fn key_file_path(&self) -> PathBuf {
        self.key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("intake-server.key"))
    }

    /// Loads settings: `file` if given, else `intake-server.toml` in the data
    /// directory if it exists; then `INTAKE_SERVER_*` variables from `env`. The data
    /// directory comes from `data_dir`, else `INTAKE_SERVER_DATA`, else the file given
    /// with `--config`, else the default.
    pub fn load(
        file: Option<&Path>,
        data_dir: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Settings> {
        let explicit = data_dir
            .map(Path::to_path_buf)
            .or_else(|| env("INTAKE_SERVER_DATA").map(PathBuf::from));
        let dir = explicit
            .clone()
            .unwrap_or_else(|| Settings::default().data_dir);
        let path = file
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.join("intake-server.toml"));
        let mut settings = match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.is_none() => {
                Settings::default()
            }
            Err(e) => return Err(anyhow::anyhow!("{}: {e}", path.display())),
        };
        // `--data`/INTAKE_SERVER_DATA win; else a file given with `--config` may say
        // where the data lives; else the default (where the file was looked for).
        settings.data_dir = match explicit {
            Some(d) => d,
            None if file.is_some() => settings.data_dir,
            None => dir,
        };
        if let Some(v) = env("INTAKE_SERVER_LISTEN") {
            settings.listen = v
                .parse()
                .map_err(|e| anyhow::anyhow!("INTAKE_SERVER_LISTEN: {e}"))?;
        }
        if let Some(v) = env("INTAKE_SERVER_TLS_CERT") {
            settings.tls_cert = Some(v.into());
        }
        if let Some(v) = env("INTAKE_SERVER_TLS_KEY") {
            settings.tls_key = Some(v.into());
        }
        if let Some(v) = env("INTAKE_SERVER_WORKERS") {
            settings.workers = v
                .parse()
                .map_err(|e| anyhow::anyhow!("INTAKE_SERVER_WORKERS: {e}"))?;
        }
        if let Some(v) = env("INTAKE_SERVER_KEY_FILE") {
            settings.key_file = Some(v.into());
        }
        if let Some(v) = env("INTAKE_SERVER_LOCK_AFTER_DAYS") {
            settings.lock_after_days = v
                .parse()
                .map_err(|e| anyhow::anyhow!("INTAKE_SERVER_LOCK_AFTER_DAYS: {e}"))?;
        }
        if let Some(v) = env("INTAKE_SERVER_RETENTION_DAYS") {
            settings.retention.erase_closed_after_days = v
                .parse()
                .map_err(|e| anyhow::anyhow!("INTAKE_SERVER_RETENTION_DAYS: {e}"))?;
        }
        if let Some(v) = env("INTAKE_SERVER_BEHIND_PROXY") {
            settings.behind_proxy = match v.trim() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" | "" => false,
                other => {
                    anyhow::bail!("INTAKE_SERVER_BEHIND_PROXY: {other:?} is not true or false")
                }
            };
        }
        if let Some(v) = env("INTAKE_SERVER_TRUSTED_PROXIES") {
            settings.trusted_proxies = v
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|e| anyhow::anyhow!("INTAKE_SERVER_TRUSTED_PROXIES: {e}"))?;
        }
        if let Some(v) = env("INTAKE_SERVER_ADMIN_API") {
            settings.admin_api = v
                .parse()
                .map_err(|e| anyhow::anyhow!("INTAKE_SERVER_ADMIN_API: {e}"))?;
        }
        if let Some(v) = env("INTAKE_SERVER_DATABASE") {
            settings.database = Some(
                DatabaseUrl::try_from(v)
                    .map_err(|e| anyhow::anyhow!("INTAKE_SERVER_DATABASE: {e}"))?,
            );
        }
        if let Some(v) = env("INTAKE_SERVER_DATABASE_CA") {
            settings.database_ca = Some(v.into());
        }
        if settings.tls_cert.is_some() != settings.tls_key.is_some() {
            anyhow::bail!("TLS needs both tls_cert and tls_key");
        }
        Ok(settings)
    }

    /// Whether the server speaks TLS itself.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// Whether browsers reach the server over HTTPS (its own TLS, or a proxy's): then
    /// cookies are `Secure` and answers carry `Strict-Transport-Security`.
    pub fn https(&self) -> bool {
        self.tls() || self.behind_proxy
    }

    /// Refuses to serve in ways that expose records or tokens on the network: plain
    /// HTTP on an address other machines can reach, unless a TLS-terminating proxy is
    /// in front (`behind_proxy`); and a proxy setup that names no proxy, which would
    /// leave every client address unknown. `listening` is the address actually bound.
    pub fn check_transport(&self, listening: SocketAddr) -> anyhow::Result<()> {
        if self.behind_proxy && self.trusted_proxies.is_empty() {
            anyhow::bail!(
                "behind_proxy = true needs trusted_proxies (INTAKE_SERVER_TRUSTED_PROXIES): \
                 the addresses of the proxies in front of this server. Without them every \
                 request seems to come from the proxy, so one person's failed codes would \
                 lock everyone out and the audit trail could not say where a request came from."
            );
        }
        if !self.tls() && !self.behind_proxy && !listening.ip().is_loopback() {
            anyhow::bail!(
                "refusing to serve plain HTTP on {listening}: records and device tokens would \
                 cross the network unencrypted. Either set tls_cert and tls_key, or put a \
                 TLS-terminating reverse proxy in front and set behind_proxy = true with \
                 trusted_proxies (see \"TLS and a reverse proxy\" in docs/OPERATIONS.md), or \
                 listen on 127.0.0.1."
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("intake-server.toml"),
            "listen = \"0.0.0.0:9000\"\nworkers = 3\n",
        )
        .unwrap();
        let env = |k: &str| (k == "INTAKE_SERVER_LISTEN").then(|| "127.0.0.1:9100".to_string());
        let s = Settings::load(None, Some(dir.path()), env).unwrap();
        assert_eq!(s.listen.port(), 9100);
        assert_eq!(s.workers, 3);
        assert!(
            Settings::load(None, Some(dir.path()), |k| (k == "INTAKE_SERVER_TLS_KEY")
                .then(|| "k.pem".into()))
            .is_err()
        );
    }

    #[test]
    fn proxy_and_admin_settings_come_from_the_file_and_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("intake-server.toml"),
            "behind_proxy = true\ntrusted_proxies = [\"10.0.0.0/8\"]\nadmin_api = \"loopback\"\n",
        )
        .unwrap();
        let s = Settings::load(None, Some(dir.path()), |_| None).unwrap();
        assert!(s.behind_proxy);
        assert_eq!(s.trusted_proxies, vec!["10.0.0.0/8".parse().unwrap()]);
        assert_eq!(s.admin_api, AdminApi::Loopback);
        let env = |k: &str| match k {
            "INTAKE_SERVER_TRUSTED_PROXIES" => Some("192.0.2.1, fd00::/8".to_string()),
            "INTAKE_SERVER_ADMIN_API" => Some("on".to_string()),
            "INTAKE_SERVER_BEHIND_PROXY" => Some("false".to_string()),
            _ => None,
        };
        let s = Settings::load(None, Some(dir.path()), env).unwrap();
        assert!(!s.behind_proxy);
        assert_eq!(s.trusted_proxies.len(), 2);
        assert_eq!(s.admin_api, AdminApi::On);
        let bad = |k: &str| (k == "INTAKE_SERVER_TRUSTED_PROXIES").then(|| "proxy.lan".into());
        assert!(Settings::load(None, Some(dir.path()), bad).is_err());
        assert_eq!(Settings::default().admin_api, AdminApi::Off);
    }

    #[test]
    fn the_database_comes_from_the_file_the_environment_or_a_flag_and_is_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings::load(None, Some(dir.path()), |_| None).unwrap();
        assert_eq!(s.database, None, "SQLite in the data directory by default");
        std::fs::write(
            dir.path().join("intake-server.toml"),
            "database = \"postgres://intake:s3cret@db.lan/intake\"\n",
        )
        .unwrap();
        let s = Settings::load(None, Some(dir.path()), |_| None).unwrap();
        let url = s.database.as_ref().unwrap();
        assert_eq!(url.expose(), "postgres://intake:s3cret@db.lan/intake");
        assert!(
            !format!("{s:?}").contains("s3cret"),
            "Debug redacts the URL"
        );
        let env = |k: &str| {
            (k == "INTAKE_SERVER_DATABASE").then(|| "postgresql://intake@127.0.0.1/other".into())
        };
        let s = Settings::load(None, Some(dir.path()), env).unwrap();
        assert_eq!(
            s.database.unwrap().expose(),
            "postgresql://intake@127.0.0.1/other"
        );
        let typo = |k: &str| (k == "INTAKE_SERVER_DATABASE").then(|| "postgre://x".into());
        let e = Settings::load(None, Some(dir.path()), typo).unwrap_err();
        assert!(e.to_string().contains("not a postgres:// URL"), "{e}");
        assert!(DatabaseUrl::from_flag("postgres://intake@127.0.0.1:5433/intake").is_ok());
        let e = DatabaseUrl::from_flag("postgres://intake:s3cret@127.0.0.1/intake").unwrap_err();
        assert!(
            e.contains("INTAKE_SERVER_DATABASE") && !e.contains("s3cret"),
            "{e}"
        );
    }

    #[test]
    fn heavy_syncs_default_to_the_cpus_and_at_least_two() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("intake-server.toml"),
            "[limits]\nmax_heavy_syncs = 1\n",
        )
        .unwrap();
        let s = Settings::load(None, Some(dir.path()), |_| None).unwrap();
        assert_eq!(s.limits.heavy_syncs(), 1);
        assert_eq!(s.limits.max_body_bytes, Limits::default().max_body_bytes);
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert_eq!(Limits::default().heavy_syncs(), cpus.max(2));
    }
}
