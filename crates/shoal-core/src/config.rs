//! Configuration of a shoal node: which roles run, where state lives, how the API
//! authenticates, and which back ends and pools the share role owns.
//!
//! Layers, lowest first: the embedded defaults below (two `local` pools in `az1` and `az2`
//! under `./shoal-data/`, SQLite, the built-in identity, 127.0.0.1:8786), then the TOML file given with
//! `--config`, then `SHOAL_*` environment variables (`SHOAL_API__LISTEN` sets `api.listen`),
//! then command-line flags. Every field has a serde default so a partial file is enough.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Port Manila listens on.
pub const MANILA_PORT: u16 = 8786;
/// How often a service reports its heartbeat (Manila `report_interval`).
pub const REPORT_INTERVAL_DEFAULT: Duration = Duration::from_secs(10);
/// A service whose last heartbeat is older than this is `down` (Manila `service_down_time`).
pub const SERVICE_DOWN_TIME_DEFAULT: Duration = Duration::from_secs(60);
/// Manila's `replica_state_update_interval`.
pub const REPLICA_STATE_UPDATE_INTERVAL_DEFAULT: Duration = Duration::from_secs(300);
/// oslo.middleware sizelimit default (`max_request_body_size`).
pub const MAX_REQUEST_BODY_SIZE_DEFAULT: usize = 114_688;

/// The three Manila services a node can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The HTTP API (manila-api).
    Api,
    /// Placement of shares and replicas on pools (manila-scheduler).
    Scheduler,
    /// Back-end work on this host's pools (manila-share).
    Share,
}

impl Role {
    /// Every role, the default of `shoal serve`.
    pub const ALL: [Role; 3] = [Role::Api, Role::Scheduler, Role::Share];

    /// Manila's binary name for the role's service row.
    pub fn binary(self) -> &'static str {
        match self {
            Role::Api => "manila-api",
            Role::Scheduler => "manila-scheduler",
            Role::Share => "manila-share",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "api" => Ok(Role::Api),
            "scheduler" => Ok(Role::Scheduler),
            "share" => Ok(Role::Share),
            other => Err(format!(
                "unknown role {other:?}: expected api, scheduler or share"
            )),
        }
    }
}

/// How `/v2` requests are authenticated (Manila `auth_strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthStrategy {
    /// Manila's noauth: the token is `user:project` and every caller is admin.
    Noauth,
    /// Tokens validated against a Keystone v3 endpoint.
    Keystone,
    /// shoal's built-in Keystone v3 subset (`/identity`), with users from the database and
    /// the `[identity]` section.
    Builtin,
}

impl std::str::FromStr for AuthStrategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "noauth" => Ok(AuthStrategy::Noauth),
            "keystone" => Ok(AuthStrategy::Keystone),
            "builtin" => Ok(AuthStrategy::Builtin),
            other => Err(format!(
                "unknown auth strategy {other:?}: expected noauth, keystone or builtin"
            )),
        }
    }
}

/// Whole-node configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// This node's host name, the `host` of `host@backend#pool`. Defaults to the OS hostname.
    pub host: String,
    /// Directory for everything the default configuration writes (database, pools).
    pub data_dir: PathBuf,
    /// Database URL: `sqlite://PATH` or `postgres://...`. Empty means `sqlite://<data_dir>/shoal.db`.
    pub database_url: String,
    /// Roles this process runs.
    pub roles: Vec<Role>,
    /// Availability zone of the scheduler service (Manila `storage_availability_zone`).
    /// Empty means the zone of the first back end, so the default lists only `az1`/`az2`.
    pub storage_availability_zone: String,
    /// HTTP API settings.
    pub api: ApiConfig,
    /// Keystone settings, used when `api.auth_strategy = "keystone"`.
    pub keystone: KeystoneSettings,
    /// Built-in identity, used when `api.auth_strategy = "builtin"`.
    pub identity: shoal_identity::IdentityConfig,
    /// Periodic task settings shared by the scheduler and share roles.
    pub periodic: PeriodicConfig,
    /// Default quotas of every project (Manila's `quota_*` options).
    pub quota: QuotaConfig,
    /// Durable operation processing (scheduler and share roles).
    pub operations: OperationsConfig,
    /// Back ends owned by this node's share role.
    pub backends: Vec<BackendConfig>,
    /// The secret every share node of a deployment shares: replication requests between
    /// nodes are signed with it. Empty: read from `cluster_secret_file`, else from (or, on a
    /// node's first start, generated into) `<data_dir>/cluster-secret`.
    pub cluster_secret: String,
    /// A file holding the cluster secret (its trailing whitespace is ignored).
    pub cluster_secret_file: Option<PathBuf>,
    /// The replication endpoint of this node's share role.
    pub replication: ReplicationConfig,
    /// The NFS data plane of this node's share role.
    pub nfs: NfsConfig,
}

/// Port NFS clients use unless told otherwise (NFS and, with shoal, MOUNT too).
pub const NFS_PORT: u16 = 2049;

/// The embedded NFS server (`[nfs]`) that serves every share instance of this node's `local`
/// back ends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NfsConfig {
    /// Whether a share node with `local` back ends serves its shares over NFS. Off, shares
    /// keep only their admin-only `local://` location and cannot be mounted.
    pub enabled: bool,
    /// Address MOUNT and NFS listen on, one TCP port for both.
    pub listen: SocketAddr,
    /// Address clients reach the server at, the host part of every export location
    /// (`<export_address>:/shares/<instance-id>`); defaults to the IP of `listen`, which then
    /// must not be a wildcard address.
    pub export_address: Option<String>,
}

impl Default for NfsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], NFS_PORT)),
            export_address: None,
        }
    }
}

impl NfsConfig {
    /// The host part of export locations: `export_address`, else the IP of `listen` (IPv6 in
    /// brackets, as Manila writes `[addr]:/path`). `None` when neither names one.
    pub fn export_host(&self) -> Option<String> {
        let host = match &self.export_address {
            Some(a) if !a.trim().is_empty() => a.trim().to_owned(),
            _ if self.listen.ip().is_unspecified() => return None,
            _ => self.listen.ip().to_string(),
        };
        Some(if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host
        })
    }
}

/// Name of the file under `data_dir` that holds a generated cluster secret.
pub const CLUSTER_SECRET_FILE: &str = "cluster-secret";

/// Shortest cluster secret accepted, in bytes.
pub const CLUSTER_SECRET_MIN_LEN: usize = 16;

/// Node-to-node replication (`[replication]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplicationConfig {
    /// Address the replication endpoint listens on; none: no endpoint, so other nodes cannot
    /// replicate from this node's shares (one-node deployments need none).
    pub listen: Option<SocketAddr>,
    /// `host:port` other nodes reach the endpoint at, published with the heartbeat of each
    /// share service; defaults to `listen` (which then must not be a wildcard address).
    pub advertise: Option<String>,
    /// Connecting to a peer's endpoint.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Silence on an open connection to a peer before a sync fails.
    #[serde(with = "humantime_serde")]
    pub read_timeout: Duration,
    /// Largest difference between a request's signing time and the receiver's clock.
    #[serde(with = "humantime_serde")]
    pub max_clock_skew: Duration,
    /// PEM certificate chain of the endpoint: with `tls_key`, it serves HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// PEM of the CA that issued the peers' endpoint certificates: with it this node reaches
    /// every peer over HTTPS and accepts only that CA's certificates.
    pub tls_ca: Option<PathBuf>,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            listen: None,
            advertise: None,
            connect_timeout: Duration::from_secs(3),
            read_timeout: Duration::from_secs(10),
            max_clock_skew: Duration::from_secs(60),
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
        }
    }
}

impl ReplicationConfig {
    /// The address published for peers, if this node serves an endpoint.
    pub fn advertised_address(&self) -> Option<String> {
        match (&self.advertise, self.listen) {
            (Some(a), _) if !a.is_empty() => Some(a.clone()),
            (_, Some(listen)) if !listen.ip().is_unspecified() => Some(listen.to_string()),
            _ => None,
        }
    }
}

/// Settings of the API role.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Authentication strategy.
    pub auth_strategy: AuthStrategy,
    /// Largest request body accepted, in bytes (larger bodies get 413).
    pub max_request_body_size: usize,
    /// Optional oslo.policy override file (YAML or JSON).
    pub policy_file: Option<PathBuf>,
    /// Name of the share type used when a request names none (Manila `default_share_type`).
    pub default_share_type: Option<String>,
    /// Protocols shares may use (Manila `enabled_share_protocols`).
    pub enabled_share_protocols: Vec<String>,
    /// Upper bound of `limit` in list queries (Manila `osapi_max_limit`).
    pub max_limit: usize,
    /// Place shares created from snapshots with the scheduler (any pool of the snapshot's
    /// back end or replication domain, in any zone) instead of on the snapshot's pool
    /// (Manila `use_scheduler_creating_share_from_snapshot`, default false).
    pub use_scheduler_creating_share_from_snapshot: bool,
    /// Serve Prometheus metrics at `GET /metrics` on this listener, without authentication
    /// (default true). Off, `/metrics` is an unknown path.
    pub metrics: bool,
}

/// Keystone connection of the `keystone` auth strategy. The password is never logged.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeystoneSettings {
    /// Keystone v3 URL, e.g. `http://keystone:5000/v3`.
    pub auth_url: String,
    /// URL advertised in `WWW-Authenticate`; defaults to `auth_url`.
    pub www_authenticate_uri: Option<String>,
    /// Service user name shoal authenticates as to validate tokens.
    pub username: String,
    /// Service user password.
    pub password: String,
    /// Service project.
    pub project_name: String,
    /// Domain of the service user.
    pub user_domain_name: String,
    /// Domain of the service project.
    pub project_domain_name: String,
    /// How long a validated token is trusted without asking Keystone again.
    #[serde(with = "humantime_serde")]
    pub token_cache_time: Duration,
}

impl std::fmt::Debug for KeystoneSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeystoneSettings")
            .field("auth_url", &self.auth_url)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("project_name", &self.project_name)
            .finish_non_exhaustive()
    }
}

/// Intervals of the periodic tasks. Tests shrink them; `run_once()` makes ticks explicit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeriodicConfig {
    /// Heartbeat and pool-stats period (Manila `report_interval`).
    #[serde(with = "humantime_serde")]
    pub report_interval: Duration,
    /// Age after which a service is reported `down` (Manila `service_down_time`).
    #[serde(with = "humantime_serde")]
    pub service_down_time: Duration,
    /// Period of the replica-state refresh (Manila `replica_state_update_interval`).
    #[serde(with = "humantime_serde")]
    pub replica_state_update_interval: Duration,
    /// How long a soft-deleted share stays in the recycle bin before the purge deletes it
    /// (Manila `soft_deleted_share_retention_time`, 7 days).
    #[serde(with = "humantime_serde")]
    pub soft_deleted_share_retention: Duration,
    /// Period of the recycle-bin purge (Manila
    /// `check_for_expired_shares_in_recycle_bin_interval`, 1 hour).
    #[serde(with = "humantime_serde")]
    pub expired_share_check_interval: Duration,
    /// Period of the scheduler role's housekeeping (expired quota reservations, old
    /// finished operations), 1 hour.
    #[serde(with = "humantime_serde")]
    pub housekeeping_interval: Duration,
    /// How long `done` and `failed` operations are kept before the housekeeping deletes
    /// them, 7 days.
    #[serde(with = "humantime_serde")]
    pub finished_operation_retention: Duration,
}

/// Default per-project quotas; `-1` means unlimited. Admins override them per project with
/// `PUT /v2/quota-sets/{project}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    /// Number of shares.
    pub shares: i64,
    /// Total size of shares, GiB.
    pub gigabytes: i64,
    /// Number of snapshots.
    pub snapshots: i64,
    /// Total size of snapshots, GiB.
    pub snapshot_gigabytes: i64,
    /// Number of share networks.
    pub share_networks: i64,
    /// Number of share groups.
    pub share_groups: i64,
    /// Number of share group snapshots.
    pub share_group_snapshots: i64,
    /// Number of share replicas (the active instance of a replicated share counts).
    pub share_replicas: i64,
    /// Total size of share replicas, GiB.
    pub replica_gigabytes: i64,
    /// Largest single share, GiB.
    pub per_share_gigabytes: i64,
    /// Number of backups.
    pub backups: i64,
    /// Total size of backups, GiB.
    pub backup_gigabytes: i64,
    /// Number of encryption keys.
    pub encryption_keys: i64,
    /// How long an uncommitted reservation (e.g. of an extend in flight) lives.
    #[serde(with = "humantime_serde")]
    pub reservation_expire: Duration,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            shares: 50,
            gigabytes: 1000,
            snapshots: 50,
            snapshot_gigabytes: 1000,
            share_networks: 10,
            share_groups: 50,
            share_group_snapshots: 50,
            share_replicas: 100,
            replica_gigabytes: 1000,
            per_share_gigabytes: -1,
            backups: 10,
            backup_gigabytes: 1000,
            encryption_keys: 100,
            reservation_expire: Duration::from_secs(86_400),
        }
    }
}

impl QuotaConfig {
    /// Every resource with its default limit, in Manila's view order.
    pub fn defaults(&self) -> Vec<(&'static str, i64)> {
        vec![
            ("shares", self.shares),
            ("gigabytes", self.gigabytes),
            ("snapshots", self.snapshots),
            ("snapshot_gigabytes", self.snapshot_gigabytes),
            ("share_networks", self.share_networks),
            ("share_groups", self.share_groups),
            ("share_group_snapshots", self.share_group_snapshots),
            ("share_replicas", self.share_replicas),
            ("replica_gigabytes", self.replica_gigabytes),
            ("per_share_gigabytes", self.per_share_gigabytes),
            ("backups", self.backups),
            ("backup_gigabytes", self.backup_gigabytes),
            ("encryption_keys", self.encryption_keys),
        ]
    }
}

/// How the scheduler and share roles process durable operations.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OperationsConfig {
    /// How long a claim is valid; a worker that dies loses its claims after this long.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How often an idle worker looks for work it was not woken for (other processes).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Operations a share node runs at the same time.
    pub concurrency: usize,
    /// Attempts before a failing operation is given up.
    pub max_attempts: i32,
}

impl Default for OperationsConfig {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            concurrency: 16,
            max_attempts: 10,
        }
    }
}

/// One back end (`[[backends]]`), Manila's `enabled_share_backends` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Section name, the `backend` part of `host@backend#pool`.
    pub name: String,
    /// Driver: `local` or `dummy`.
    pub driver: String,
    /// Availability zone of this back end (Manila `backend_availability_zone`).
    pub availability_zone: String,
    /// Replication domain; replicas only go to pools of the same domain.
    #[serde(default)]
    pub replication_domain: Option<String>,
    /// `replication_type` capability the back end advertises (`readable`, `dr`, ...).
    #[serde(default)]
    pub replication_type: Option<String>,
    /// Pools of this back end.
    pub pools: Vec<PoolConfig>,
    /// Delays and failure injection of the `dummy` driver (`[backends.dummy]`, keys are
    /// driver method names); ignored by `local`. Absent means no delay and no failure.
    #[serde(default)]
    pub dummy: Option<shoal_driver::DummyOptions>,
    /// Replication settings of the `local` driver (`[backends.local]`: `replication_rpo`,
    /// and the `sync_pause_after_entries`/`sync_pause` test knob for kill -9 tests); ignored
    /// by `dummy`. Absent means the defaults (RPO 10 minutes, no pause).
    #[serde(default)]
    pub local: Option<shoal_driver::LocalOptions>,
}

/// One pool of a back end.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Pool name, the `pool` part of `host@backend#pool`.
    pub name: String,
    /// Directory holding the pool's data (`local` driver). Relative paths are under `data_dir`.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Capacity in GiB the `dummy` driver reports; ignored by `local`.
    #[serde(default)]
    pub total_capacity_gb: Option<u64>,
    /// Percentage of capacity kept free (Manila `reserved_share_percentage`).
    #[serde(default)]
    pub reserved_percentage: u32,
}

impl BackendConfig {
    /// A `local` back end as the embedded default has them: one pool `pool1` at
    /// `pools/<name>` under the data dir, replication domain `shoal`, `readable`.
    pub fn local(name: &str, az: &str) -> Self {
        BackendConfig {
            name: name.to_owned(),
            driver: "local".to_owned(),
            availability_zone: az.to_owned(),
            replication_domain: Some("shoal".to_owned()),
            replication_type: Some("readable".to_owned()),
            pools: vec![PoolConfig {
                name: "pool1".to_owned(),
                path: Some(PathBuf::from(format!("pools/{name}"))),
                total_capacity_gb: None,
                reserved_percentage: 0,
            }],
            dummy: None,
            local: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            host: default_host(),
            data_dir: PathBuf::from("./shoal-data"),
            database_url: String::new(),
            roles: Role::ALL.to_vec(),
            storage_availability_zone: String::new(),
            api: ApiConfig::default(),
            keystone: KeystoneSettings::default(),
            identity: shoal_identity::IdentityConfig::default(),
            periodic: PeriodicConfig::default(),
            quota: QuotaConfig::default(),
            operations: OperationsConfig::default(),
            backends: vec![
                BackendConfig::local("local1", "az1"),
                BackendConfig::local("local2", "az2"),
            ],
            cluster_secret: String::new(),
            cluster_secret_file: None,
            replication: ReplicationConfig::default(),
            nfs: NfsConfig::default(),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], MANILA_PORT)),
            auth_strategy: AuthStrategy::Builtin,
            max_request_body_size: MAX_REQUEST_BODY_SIZE_DEFAULT,
            policy_file: None,
            default_share_type: None,
            enabled_share_protocols: vec!["NFS".to_owned(), "CIFS".to_owned()],
            max_limit: 1000,
            use_scheduler_creating_share_from_snapshot: false,
            metrics: true,
        }
    }
}

impl Default for KeystoneSettings {
    fn default() -> Self {
        Self {
            auth_url: "http://127.0.0.1:5000/v3".to_owned(),
            www_authenticate_uri: None,
            username: "manila".to_owned(),
            password: String::new(),
            project_name: "service".to_owned(),
            user_domain_name: "Default".to_owned(),
            project_domain_name: "Default".to_owned(),
            token_cache_time: Duration::from_secs(300),
        }
    }
}

impl Default for PeriodicConfig {
    fn default() -> Self {
        Self {
            report_interval: REPORT_INTERVAL_DEFAULT,
            service_down_time: SERVICE_DOWN_TIME_DEFAULT,
            replica_state_update_interval: REPLICA_STATE_UPDATE_INTERVAL_DEFAULT,
            soft_deleted_share_retention: Duration::from_secs(604_800),
            expired_share_check_interval: Duration::from_secs(3600),
            housekeeping_interval: Duration::from_secs(3600),
            finished_operation_retention: Duration::from_secs(604_800),
        }
    }
}

/// The OS host name, or `shoal` when it cannot be read or is not a valid pool host part.
fn default_host() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| format!("{h}@b#p").parse::<shoal_types::HostRef>().is_ok())
        .unwrap_or_else(|| "shoal".to_owned())
}

/// `SHOAL_ADMIN_PASSWORD` without its prefix: the first admin's password of the built-in
/// identity.
const ADMIN_PASSWORD_ENV_KEY: &str = "admin_password";

/// Names of the top-level settings (`host`, `api`, `identity`, ...), read off the defaults
/// so the list cannot fall behind the struct.
fn top_level_keys() -> Vec<String> {
    match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Problems found while loading or checking a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or environment could not be parsed.
    #[error("{0}")]
    Parse(#[from] Box<figment::Error>),
    /// The configuration parsed but makes no sense.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl Config {
    /// Loads defaults, then `file` (if any), then `SHOAL_*` environment variables.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                return Err(ConfigError::Invalid(format!(
                    "config file {} does not exist",
                    file.display()
                )));
            }
            figment = figment.merge(Toml::file(file));
        }
        // Only SHOAL_* variables that name a setting are settings: SHOAL_CONFIG is the
        // --config flag's, and a user's own SHOAL_BIN or the like must not stop the node.
        // SHOAL_ADMIN_PASSWORD is the documented short name of identity.admin_password.
        let settings = top_level_keys();
        for (var, _) in std::env::vars() {
            if let Some(key) = var.strip_prefix("SHOAL_") {
                let key = key.to_ascii_lowercase();
                let first = key.split("__").next().unwrap_or_default();
                if !settings.iter().any(|s| s == first)
                    && key != ADMIN_PASSWORD_ENV_KEY
                    && key != "config"
                {
                    tracing::warn!(variable = %var, "ignoring {var}: it names no setting");
                }
            }
        }
        figment = figment
            .merge(
                Env::prefixed("SHOAL_")
                    .filter(move |key| {
                        let first = key.as_str().split("__").next().unwrap_or_default();
                        settings.iter().any(|s| s.eq_ignore_ascii_case(first))
                    })
                    .split("__"),
            )
            .merge(
                Env::prefixed("SHOAL_")
                    .only(&[ADMIN_PASSWORD_ENV_KEY])
                    .map(|_| "identity.admin_password".into()),
            );
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// Checks invariants that serde cannot express.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if format!("{}@b#p", self.host)
            .parse::<shoal_types::HostRef>()
            .is_err()
        {
            return invalid(format!(
                "host {:?} may only hold letters, digits, '-', '_' and '.'",
                self.host
            ));
        }
        if self.roles.is_empty() {
            return invalid("at least one role must run".to_owned());
        }
        let mut seen = std::collections::BTreeSet::new();
        for backend in &self.backends {
            if !matches!(backend.driver.as_str(), "local" | "dummy") {
                return invalid(format!(
                    "backend {}: unknown driver {:?}",
                    backend.name, backend.driver
                ));
            }
            if let Some(rt) = &backend.replication_type
                && !shoal_types::REPLICATION_TYPES.contains(&rt.as_str())
            {
                return invalid(format!(
                    "backend {}: unknown replication_type {rt:?}",
                    backend.name
                ));
            }
            if backend.driver == "local" && backend.replication_type.as_deref() == Some("writable")
            {
                return invalid(format!(
                    "backend {}: the local back end supports readable and dr replication; \
                     writable needs the NFS data plane",
                    backend.name
                ));
            }
            if backend.availability_zone.is_empty() {
                return invalid(format!(
                    "backend {}: availability_zone is empty",
                    backend.name
                ));
            }
            if backend.pools.is_empty() {
                return invalid(format!("backend {} has no pools", backend.name));
            }
            for pool in &backend.pools {
                let reference = format!("{}@{}#{}", self.host, backend.name, pool.name);
                if reference.parse::<shoal_types::HostRef>().is_err() {
                    return invalid(format!(
                        "pool name {reference:?} is not a valid host@backend#pool"
                    ));
                }
                if !seen.insert(reference.clone()) {
                    return invalid(format!("pool {reference} is configured twice"));
                }
                if backend.driver == "local" && pool.path.is_none() {
                    return invalid(format!("pool {reference}: the local driver needs a path"));
                }
                if pool.reserved_percentage > 100 {
                    return invalid(format!("pool {reference}: reserved_percentage above 100"));
                }
            }
        }
        let keystone_api =
            self.api.auth_strategy == AuthStrategy::Keystone && self.roles.contains(&Role::Api);
        if keystone_api && (self.keystone.auth_url.is_empty() || self.keystone.password.is_empty())
        {
            return invalid(
                "keystone auth needs keystone.auth_url and keystone.password".to_owned(),
            );
        }
        self.identity.validate().map_err(ConfigError::Invalid)?;
        if let Some(listen) = self.replication.listen
            && self.replication.advertised_address().is_none()
        {
            return invalid(format!(
                "replication.listen {listen} is a wildcard address: set replication.advertise \
                 to the host:port other nodes reach this node at"
            ));
        }
        if let Some(advertise) = &self.replication.advertise
            && advertise
                .rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        {
            return invalid(format!(
                "replication.advertise {advertise:?} is not host:port"
            ));
        }
        let serves_nfs = self.nfs.enabled
            && self.roles.contains(&Role::Share)
            && self.backends.iter().any(|b| b.driver == "local");
        if serves_nfs && self.nfs.export_host().is_none() {
            return invalid(format!(
                "nfs.listen {} is a wildcard address: set nfs.export_address to the address \
                 clients mount this node's shares at",
                self.nfs.listen
            ));
        }
        if let Some(address) = &self.nfs.export_address
            && (address.contains('/') || address.chars().any(char::is_whitespace))
        {
            return invalid(format!(
                "nfs.export_address {address:?} must be a host name or an IP address"
            ));
        }
        if self.replication.tls_cert.is_some() != self.replication.tls_key.is_some() {
            return invalid("replication.tls_cert and replication.tls_key go together".to_owned());
        }
        if !self.cluster_secret.is_empty() && self.cluster_secret.len() < CLUSTER_SECRET_MIN_LEN {
            return invalid(format!(
                "cluster_secret is shorter than {CLUSTER_SECRET_MIN_LEN} bytes"
            ));
        }
        Ok(())
    }

    /// The cluster secret: `cluster_secret`, else the contents of `cluster_secret_file`,
    /// else `<data_dir>/cluster-secret`, generated (mode 0600) when it does not exist yet.
    /// The second value names where it came from, for the log.
    pub fn load_cluster_secret(&self) -> Result<(Vec<u8>, String), ConfigError> {
        let invalid = |m: String| ConfigError::Invalid(m);
        if !self.cluster_secret.is_empty() {
            return Ok((
                self.cluster_secret.as_bytes().to_vec(),
                "cluster_secret".to_owned(),
            ));
        }
        let (path, generate) = match &self.cluster_secret_file {
            Some(path) => (path.clone(), false),
            None => (self.data_dir.join(CLUSTER_SECRET_FILE), true),
        };
        if generate && !path.exists() {
            let mut bytes = [0u8; 32];
            getrandom::getrandom(&mut bytes)
                .map_err(|e| invalid(format!("no randomness for a cluster secret: {e}")))?;
            let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| invalid(format!("creating {}: {e}", dir.display())))?;
            }
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
            {
                Ok(mut file) => file
                    .write_all(format!("{text}\n").as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| invalid(format!("writing {}: {e}", path.display())))?,
                // Another process of this node wrote it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(invalid(format!("creating {}: {e}", path.display()))),
            }
        }
        let text = std::fs::read(&path).map_err(|e| {
            invalid(format!(
                "reading the cluster secret {}: {e}",
                path.display()
            ))
        })?;
        let secret = text.trim_ascii_end().to_vec();
        if secret.len() < CLUSTER_SECRET_MIN_LEN {
            return Err(invalid(format!(
                "the cluster secret in {} is shorter than {CLUSTER_SECRET_MIN_LEN} bytes",
                path.display()
            )));
        }
        Ok((secret, path.display().to_string()))
    }

    /// A copy with every secret replaced, for `shoal config check` and logs.
    pub fn redacted(&self) -> Config {
        const REDACTED: &str = "<redacted>";
        let mut config = self.clone();
        if !config.database_url.is_empty() {
            config.database_url = self.effective_database_url_redacted();
        }
        if !config.keystone.password.is_empty() {
            config.keystone.password = REDACTED.to_owned();
        }
        if !config.cluster_secret.is_empty() {
            config.cluster_secret = REDACTED.to_owned();
        }
        if !config.identity.admin_password.is_empty() {
            config.identity.admin_password = REDACTED.to_owned();
        }
        for user in &mut config.identity.users {
            if user.password.is_some() {
                user.password = Some(REDACTED.to_owned());
            }
        }
        config
    }

    /// The database URL in effect: the configured one, or SQLite under `data_dir`.
    pub fn effective_database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!("sqlite://{}", self.data_dir.join("shoal.db").display())
        } else {
            self.database_url.clone()
        }
    }

    /// The database URL with any password replaced, for logs and messages.
    pub fn effective_database_url_redacted(&self) -> String {
        let url = self.effective_database_url();
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &url[scheme + 3..at];
                match userinfo.split_once(':') {
                    Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                    None => url,
                }
            }
            _ => url,
        }
    }

    /// Resolves a pool path against `data_dir`.
    pub fn pool_path(&self, pool: &PoolConfig) -> Option<PathBuf> {
        pool.path.as_ref().map(|p| {
            if p.is_absolute() {
                p.clone()
            } else {
                self.data_dir.join(p)
            }
        })
    }

    /// Zone of services that own no back end (the scheduler).
    pub fn service_availability_zone(&self) -> String {
        if !self.storage_availability_zone.is_empty() {
            return self.storage_availability_zone.clone();
        }
        self.backends
            .first()
            .map_or_else(|| "nova".to_owned(), |b| b.availability_zone.clone())
    }

    /// True when this node runs `role`.
    pub fn runs(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Config::load` reads the process environment, which `file_and_env_layers_override_defaults`
    /// changes; every test that loads a configuration holds this lock so none of them sees
    /// another's variables.
    static PROCESS_ENV: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn env_guard() -> std::sync::MutexGuard<'static, ()> {
        PROCESS_ENV
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[test]
    fn embedded_default_is_valid_and_replicating() {
        let config = Config::default();
        config.validate().expect("default config is valid");
        assert_eq!(config.api.listen.port(), MANILA_PORT);
        let azs: Vec<_> = config
            .backends
            .iter()
            .map(|b| b.availability_zone.as_str())
            .collect();
        assert_eq!(azs, ["az1", "az2"]);
        assert!(
            config
                .backends
                .iter()
                .all(|b| b.replication_domain.as_deref() == Some("shoal"))
        );
        assert!(config.effective_database_url().starts_with("sqlite://"));
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment's Jail API fixes the error type"
    )]
    fn file_and_env_layers_override_defaults() {
        let _env = env_guard();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shoal.toml");
        std::fs::write(
            &file,
            "host = \"node7\"\n[api]\nlisten = \"127.0.0.1:9999\"\n[periodic]\nreport_interval = \"2s\"\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            jail.set_env("SHOAL_API__AUTH_STRATEGY", "keystone");
            jail.set_env("SHOAL_KEYSTONE__PASSWORD", "secret");
            let config = Config::load(Some(&file)).expect("loads");
            assert_eq!(config.host, "node7");
            assert_eq!(config.api.listen.port(), 9999);
            assert_eq!(config.api.auth_strategy, AuthStrategy::Keystone);
            assert_eq!(config.periodic.report_interval, Duration::from_secs(2));
            assert!(!format!("{:?}", config.keystone).contains("secret"));
            Ok(())
        });
    }

    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment::Jail's closure returns figment::Error"
    )]
    fn admin_password_comes_from_its_short_variable_and_identity_users_from_the_file() {
        let _env = env_guard();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shoal.toml");
        std::fs::write(
            &file,
            "[identity]\nadmin_password = \"from-file\"\ntoken_expiration = \"30m\"\n\
             [[identity.users]]\nname = \"demo\"\npassword = \"pw\"\nproject = \"demo\"\n\
             roles = [\"member\"]\n",
        )
        .unwrap();
        figment::Jail::expect_with(|jail| {
            let config = Config::load(Some(&file)).expect("loads");
            assert_eq!(
                config.api.auth_strategy,
                AuthStrategy::Builtin,
                "the default"
            );
            assert_eq!(config.identity.admin_password, "from-file");
            assert_eq!(config.identity.token_expiration, Duration::from_secs(1800));
            assert_eq!(config.identity.users[0].roles, ["member"]);
            jail.set_env("SHOAL_ADMIN_PASSWORD", "from-env");
            // Variables that name no setting are not settings.
            jail.set_env("SHOAL_BIN", "/usr/local/bin/shoal");
            jail.set_env("SHOAL_CONFIG", "ignored-here.toml");
            let config = Config::load(Some(&file)).expect("loads");
            assert_eq!(config.identity.admin_password, "from-env");
            let shown = toml::to_string(&config.redacted()).expect("renders");
            assert!(
                !shown.contains("from-env") && !shown.contains("\"pw\""),
                "{shown}"
            );
            Ok(())
        });
    }

    /// docs/shoal.example.toml documents every setting; it must stay loadable and equal to
    /// the defaults it claims to show.
    #[test]
    #[expect(
        clippy::result_large_err,
        reason = "figment::Jail's closure returns figment::Error"
    )]
    fn example_config_loads_and_shows_the_defaults() {
        let _env = env_guard();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/shoal.example.toml");
        figment::Jail::expect_with(|_| {
            let config = Config::load(Some(&path)).expect("the example loads");
            let defaults = Config::default();
            assert_eq!(config.api.auth_strategy, defaults.api.auth_strategy);
            assert_eq!(
                format!("{:?}", config.identity),
                format!("{:?}", defaults.identity)
            );
            assert_eq!(config.backends.len(), defaults.backends.len());
            assert_eq!(format!("{:?}", config.nfs), format!("{:?}", defaults.nfs));
            assert_eq!(
                format!("{:?}", config.replication),
                format!("{:?}", defaults.replication)
            );
            Ok(())
        });
    }

    #[test]
    fn redacts_database_passwords() {
        let config = Config {
            database_url: "postgres://shoal:hunter2@db:5432/shoal".into(),
            ..Config::default()
        };
        assert_eq!(
            config.effective_database_url_redacted(),
            "postgres://shoal:***@db:5432/shoal"
        );
    }

    #[test]
    fn rejects_bad_configs() {
        let _env = env_guard();
        let mut config = Config::default();
        config.backends[1].name = "local1".to_owned();
        assert!(config.validate().is_err(), "duplicate pools");
        let mut config = Config::default();
        config.backends[0].driver = "nfs".to_owned();
        assert!(config.validate().is_err());
        let config = Config {
            host: "bad host".to_owned(),
            ..Config::default()
        };
        assert!(config.validate().is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "unknown_key = 1\n").unwrap();
        assert!(Config::load(Some(&file)).is_err());
        assert!(Config::load(Some(&dir.path().join("missing.toml"))).is_err());
    }

    #[test]
    fn dummy_backend_takes_delays_and_failures() {
        let _env = env_guard();
        use shoal_driver::DummyMethod;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shoal.toml");
        let backend = "[[backends]]\nname = \"dummy1\"\ndriver = \"dummy\"\navailability_zone = \"az1\"\n\
                       [[backends.pools]]\nname = \"pool1\"\n";
        std::fs::write(
            &file,
            format!(
                "{backend}[backends.dummy.delays]\ncreate_share = \"3.98s\"\n\
                 [backends.dummy.fail]\ndelete_share = 0.5\n"
            ),
        )
        .unwrap();
        let config = Config::load(Some(&file)).expect("loads");
        let dummy = config.backends[0].dummy.as_ref().expect("dummy table");
        assert_eq!(
            dummy.delays[&DummyMethod::CreateShare],
            Duration::from_millis(3980)
        );
        assert_eq!(dummy.fail[&DummyMethod::DeleteShare], 0.5);

        std::fs::write(&file, backend).unwrap();
        assert!(
            Config::load(Some(&file)).unwrap().backends[0]
                .dummy
                .is_none()
        );
        for bad in [
            "[backends.dummy.delays]\nno_such_method = \"1s\"\n",
            "[backends.dummy.fail]\ncreate_share = 2.0\n",
            "[backends.dummy]\nunknown = 1\n",
        ] {
            std::fs::write(&file, format!("{backend}{bad}")).unwrap();
            assert!(Config::load(Some(&file)).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_backend_takes_replication_options_and_refuses_writable() {
        let _env = env_guard();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shoal.toml");
        let backend = |replication_type: &str| {
            format!(
                "[[backends]]\nname = \"local1\"\ndriver = \"local\"\navailability_zone = \"az1\"\n\
                 replication_type = \"{replication_type}\"\n\
                 [[backends.pools]]\nname = \"pool1\"\npath = \"pools/pool1\"\n"
            )
        };
        std::fs::write(
            &file,
            format!(
                "{}[backends.local]\nreplication_rpo = \"2m\"\n\
                 sync_pause_after_entries = 100\nsync_pause = \"30s\"\n",
                backend("dr")
            ),
        )
        .unwrap();
        let config = Config::load(Some(&file)).expect("loads");
        let local = config.backends[0].local.as_ref().expect("local table");
        assert_eq!(local.replication_rpo, Duration::from_secs(120));
        assert_eq!(local.sync_pause_after_entries, Some(100));
        assert_eq!(local.sync_pause, Some(Duration::from_secs(30)));

        std::fs::write(&file, backend("readable")).unwrap();
        assert!(
            Config::load(Some(&file)).unwrap().backends[0]
                .local
                .is_none()
        );
        std::fs::write(&file, format!("{}[backends.local]\n", backend("readable"))).unwrap();
        assert_eq!(
            Config::load(Some(&file)).unwrap().backends[0].local,
            Some(shoal_driver::LocalOptions::default())
        );
        assert_eq!(
            shoal_driver::LocalOptions::default().replication_rpo,
            Duration::from_secs(600)
        );
        for bad in [
            "[backends.local]\nreplication_rpo = \"soon\"\n",
            "[backends.local]\nunknown = 1\n",
        ] {
            std::fs::write(&file, format!("{}{bad}", backend("readable"))).unwrap();
            assert!(Config::load(Some(&file)).is_err(), "{bad}");
        }

        std::fs::write(&file, backend("writable")).unwrap();
        let err = Config::load(Some(&file)).unwrap_err().to_string();
        assert!(
            err.contains("the local back end supports readable and dr replication"),
            "{err}"
        );
    }

    #[test]
    fn cluster_secret_is_configured_read_from_a_file_or_generated_once() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        let (first, origin) = config.load_cluster_secret().unwrap();
        let path = dir.path().join("data").join(CLUSTER_SECRET_FILE);
        assert_eq!(origin, path.display().to_string());
        assert_eq!(first.len(), 64, "32 random bytes in hex");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // The next start reads the same secret.
        assert_eq!(config.load_cluster_secret().unwrap().0, first);

        let file = dir.path().join("secret");
        std::fs::write(&file, "a shared secret of the cluster\n").unwrap();
        let from_file = Config {
            cluster_secret_file: Some(file.clone()),
            ..config.clone()
        };
        assert_eq!(
            from_file.load_cluster_secret().unwrap().0,
            b"a shared secret of the cluster"
        );
        let inline = Config {
            cluster_secret: "another secret, inline".to_owned(),
            ..from_file.clone()
        };
        assert_eq!(
            inline.load_cluster_secret().unwrap().0,
            b"another secret, inline"
        );
        assert!(inline.redacted().cluster_secret.contains("redacted"));

        std::fs::write(&file, "short\n").unwrap();
        assert!(from_file.load_cluster_secret().is_err());
        let missing = Config {
            cluster_secret_file: Some(dir.path().join("nope")),
            ..config.clone()
        };
        assert!(
            missing.load_cluster_secret().is_err(),
            "a named file is never generated"
        );
        let short = Config {
            cluster_secret: "short".to_owned(),
            ..config
        };
        assert!(short.validate().is_err());
    }

    #[test]
    fn nfs_export_address_defaults_to_the_listen_address() {
        let mut config = Config::default();
        assert_eq!(config.nfs.listen, "127.0.0.1:2049".parse().unwrap());
        assert_eq!(config.nfs.export_host().as_deref(), Some("127.0.0.1"));
        config.nfs.listen = "0.0.0.0:2049".parse().unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("nfs.export_address"), "{err}");
        config.nfs.export_address = Some("fd00::5".to_owned());
        config.validate().unwrap();
        assert_eq!(config.nfs.export_host().as_deref(), Some("[fd00::5]"));
        config.nfs.export_address = Some("10.0.0.1:/x".to_owned());
        assert!(config.validate().is_err());
        // Nothing to export: a node without local back ends needs no address.
        config.nfs.export_address = None;
        config.backends.clear();
        config.validate().unwrap();
        let toml: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string("[nfs]\nlisten = \"10.0.0.7:12049\"\n"))
            .extract()
            .unwrap();
        assert_eq!(toml.nfs.export_host().as_deref(), Some("10.0.0.7"));
        assert!(toml.nfs.enabled);
    }

    #[test]
    fn replication_endpoint_addresses_are_checked() {
        let mut config = Config::default();
        assert_eq!(config.replication.advertised_address(), None);
        config.replication.listen = Some("10.1.2.3:8787".parse().unwrap());
        assert_eq!(
            config.replication.advertised_address().as_deref(),
            Some("10.1.2.3:8787")
        );
        config.validate().unwrap();
        config.replication.listen = Some("0.0.0.0:8787".parse().unwrap());
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("replication.advertise"), "{err}");
        config.replication.advertise = Some("n1.example:8787".to_owned());
        config.validate().unwrap();
        assert_eq!(
            config.replication.advertised_address().as_deref(),
            Some("n1.example:8787")
        );
        config.replication.advertise = Some("n1.example".to_owned());
        assert!(config.validate().is_err());
        config.replication.advertise = None;
        config.replication.listen = Some("10.1.2.3:8787".parse().unwrap());
        config.replication.tls_cert = Some(PathBuf::from("/etc/shoal/replication.crt"));
        assert!(config.validate().is_err(), "a certificate needs its key");
        config.replication.tls_key = Some(PathBuf::from("/etc/shoal/replication.key"));
        config.validate().unwrap();
    }
}
