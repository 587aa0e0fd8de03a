//! Start-up and shutdown of a shoal node. Phases, each logged: open and migrate the store,
//! set up the back ends of the share role, publish a first heartbeat and pool report (so the
//! node is visible as soon as the listener accepts), start the periodic tasks, then bind the
//! API. The replication endpoint is bound early (its address goes out with the first
//! heartbeat) but serves once the back ends are set up, because its `changes` and
//! `quiesce` requests reach into them and into the NFS data plane's journals. Shutdown is ordered: stop accepting HTTP, cancel the periodic tasks, wait for them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use shoal_api::{ApiState, Authenticator};
use shoal_core::config::{AuthStrategy, Role};
use shoal_core::housekeeping::Housekeeping;
use shoal_core::recycle_bin::RecycleBin;
use shoal_core::replica_updater::ReplicaUpdater;
use shoal_core::reporter::Reporter;
use shoal_core::workers::OperationWorker;
use shoal_core::workers::scheduler::SchedulerHandler;
use shoal_core::workers::share_manager::ShareManagerHandler;
use shoal_core::workers::wakeups::RemoteWakeups;
use shoal_core::{Config, Core};
use shoal_driver::DataPlane;
use shoal_driver::LocalDriver;
use shoal_keystone::{KeystoneConfig, KeystoneValidator};
use shoal_policy::Enforcer;
use shoal_replication::peer_auth::ClusterKey;
use shoal_replication::transport::server::FenceCheck;
use shoal_replication::transport::tls;
use shoal_replication::transport::{
    ClientOptions, PeerClient, QuiesceCall, QuiesceError, QuiesceHook, RootPolicy, ServerState,
};
use shoal_store::Store;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::info;

/// How long shutdown waits for tasks before giving up.
const EXIT_DEADLINE: Duration = Duration::from_secs(10);

/// A running node.
pub struct Server {
    /// Address the API listens on, when the api role runs.
    pub api_addr: Option<SocketAddr>,
    /// Address the NFS server listens on (MOUNT and NFS), when this node serves shares.
    pub nfs_addr: Option<SocketAddr>,
    /// What the NFS server exports, for tests and admin commands.
    pub nfs_exports: Option<Arc<shoal_nfs::Exports>>,
    /// The change journals of the data plane, whose changes the replica updater follows
    /// (tests wait for it to be idle).
    pub nfs_journals: Option<Arc<shoal_driver::Journals>>,
    /// The service layer, for tests and admin commands.
    pub core: Arc<Core>,
    /// The periodic reporter, so tests can tick it with `run_once()`.
    pub reporter: Arc<Reporter>,
    /// The periodic replica refresh of the share role, so tests can tick it with
    /// `run_once()` (idle on nodes without back ends).
    pub replica_updater: Arc<ReplicaUpdater>,
    /// The scheduler role's housekeeping, so tests can tick it with `run_once()` (started
    /// only where the scheduler role runs).
    pub housekeeping: Arc<Housekeeping>,
    /// Operation workers of the scheduler and share roles, so tests can run them with
    /// `run_once()`.
    pub workers: Vec<Arc<OperationWorker>>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

/// Opens the configured store and applies migrations (`shoal db sync` and start-up).
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let url = config.effective_database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    }
    let store = open_with_retries(&url).await?;
    store
        .migrate()
        .await
        .context("applying database migrations")?;
    info!(
        backend = store.backend_name(),
        "database ready ({})",
        store.backend_name()
    );
    Ok(store)
}

/// How long start-up keeps trying to reach an unreachable database, and how often: a node
/// started with its database (or the network to it) a moment behind waits for it, as
/// oslo.db's `max_retries`/`retry_interval` make Manila's services do, instead of exiting.
const DATABASE_START_WAIT: Duration = Duration::from_secs(30);
const DATABASE_START_RETRY: Duration = Duration::from_secs(1);

/// Opens the store at `url`, retrying while a database server is unavailable (connection
/// refused, no route, timed out) for at most [`DATABASE_START_WAIT`]; any other error, such
/// as a malformed URL or a refused password, and every SQLite error (a local file, nothing
/// to wait for) fails at once.
async fn open_with_retries(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    let wait = if url.starts_with("sqlite:") {
        Duration::ZERO
    } else {
        DATABASE_START_WAIT
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match shoal_store::open_store(url).await {
            Ok(store) => return Ok(store),
            Err(shoal_store::StoreError::Unavailable(reason))
                if tokio::time::Instant::now() + DATABASE_START_RETRY < deadline =>
            {
                tracing::warn!(error = %reason, "the database is unavailable ({reason}); retrying in {DATABASE_START_RETRY:?}");
                tokio::time::sleep(DATABASE_START_RETRY).await;
            }
            Err(err) => return Err(anyhow::Error::from(err).context("opening the database")),
        }
    }
}

/// Loads Manila's default policy plus the operator's override file.
pub fn load_policy(config: &Config) -> anyhow::Result<Enforcer> {
    let mut enforcer = Enforcer::with_manila_defaults();
    if let Some(path) = &config.api.policy_file {
        enforcer
            .load_overrides_file(path)
            .with_context(|| format!("loading policy file {}", path.display()))?;
    }
    Ok(enforcer)
}

/// Name of the file under `data_dir` that receives a generated first-admin password.
pub const ADMIN_PASSWORD_FILE: &str = "admin-password";

async fn authenticator(config: &Config, store: &Arc<dyn Store>) -> anyhow::Result<Authenticator> {
    Ok(match config.api.auth_strategy {
        AuthStrategy::Noauth => Authenticator::Noauth,
        AuthStrategy::Keystone => {
            let k = &config.keystone;
            let mut settings = KeystoneConfig::new(
                k.auth_url.clone(),
                k.username.clone(),
                k.password.clone(),
                k.project_name.clone(),
            );
            settings.user_domain_name = k.user_domain_name.clone();
            settings.project_domain_name = k.project_domain_name.clone();
            settings.www_authenticate_uri = k.www_authenticate_uri.clone();
            settings.cache_ttl = k.token_cache_time;
            let validator = KeystoneValidator::new(settings)
                .context("configuring keystone token validation")?;
            Authenticator::Keystone(Arc::new(validator))
        }
        AuthStrategy::Builtin => {
            Authenticator::Builtin(Arc::new(open_identity(config, store).await?))
        }
    })
}

/// Opens the built-in identity and seeds the first admin and the configured users. A
/// generated admin password goes to `<data_dir>/admin-password`, readable only by the owner.
async fn open_identity(
    config: &Config,
    store: &Arc<dyn Store>,
) -> anyhow::Result<shoal_identity::IdentityService> {
    let identity = shoal_identity::IdentityService::open(store.clone(), config.identity.clone())
        .await
        .context("opening the built-in identity")?;
    let configured = Some(config.identity.admin_password.as_str()).filter(|p| !p.is_empty());
    let report = identity
        .bootstrap(configured, chrono::Utc::now())
        .await
        .context("seeding the built-in identity")?;
    if report.admin_password_updated {
        info!("first admin's password replaced by the configured one");
    }
    if let Some(password) = report.generated_admin_password {
        let path = config.data_dir.join(ADMIN_PASSWORD_FILE);
        write_secret_file(&path, &password)
            .with_context(|| format!("writing the admin password to {}", path.display()))?;
        info!(path = %path.display(), "generated the first admin's password; it is in {}", path.display());
    }
    info!(
        users = config.identity.users.len(),
        "built-in identity ready at /identity/v3"
    );
    Ok(identity)
}

/// Writes `text` to a new file of mode 0600.
fn write_secret_file(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{text}")?;
    file.sync_all()
}

/// Starts the NFS server of the share role when `[nfs]` is enabled and the node has a
/// `local` back end: its address and the data plane the back ends export on. It listens
/// before the back ends are set up, so a share is never reported available on a node that
/// cannot serve it.
async fn nfs_server(
    config: &Config,
    cancel: &CancellationToken,
    tasks: &TaskTracker,
) -> anyhow::Result<Option<(SocketAddr, DataPlane)>> {
    let nfs = &config.nfs;
    if !nfs.enabled || shoal_core::drivers::local_pool_paths(config).is_empty() {
        return Ok(None);
    }
    let address = nfs
        .export_host()
        .context("nfs.export_address is needed when nfs.listen is a wildcard address")?;
    let exports = shoal_nfs::Exports::new();
    // The journals observe the exports before the server takes its first call.
    let plane = DataPlane::new(exports.clone(), address.clone());
    let server = shoal_nfs::NfsServer::bind(nfs.listen, exports)
        .await
        .context(
            "starting the NFS server (set [nfs] listen to a free address, or \
             [nfs] enabled = false to serve no shares over NFS)",
        )?;
    let bound = server.local_addr();
    info!(%bound, export_address = %address, "NFS server (NFSv3 and MOUNT) listening on {bound}, exports at {address}:/shares/<instance-id>");
    let shutdown = cancel.clone();
    tasks.spawn(async move { server.run(shutdown).await });
    Ok(Some((bound, plane)))
}

/// The share role's side of node-to-node replication.
#[derive(Default)]
struct Peers {
    /// Client of other nodes' endpoints (for secondaries whose active is elsewhere).
    client: Option<Arc<PeerClient>>,
    /// Where this node's endpoint is reached, published with the heartbeats.
    advertised: Option<String>,
    /// This node's endpoint, bound but not serving until the back ends it needs exist
    /// ([`serve_replication`]).
    endpoint: Option<Endpoint>,
}

/// A bound replication endpoint waiting for its hooks.
struct Endpoint {
    listener: tokio::net::TcpListener,
    tls: Option<tls::TlsAcceptor>,
    state: ServerState,
    bound: SocketAddr,
}

/// Loads the cluster secret, builds the peer client and, with `[replication] listen`, binds
/// this node's replication endpoint serving the pools of its `local` back ends (it starts
/// serving in [`serve_replication`]). Nothing when the node has no `local` back end.
async fn replication_peers(config: &Config, store: Arc<dyn Store>) -> anyhow::Result<Peers> {
    let pools = shoal_core::drivers::local_pool_paths(config);
    if pools.is_empty() {
        return Ok(Peers::default());
    }
    let (secret, origin) = config
        .load_cluster_secret()
        .context("loading the cluster secret")?;
    info!(from = %origin, "cluster secret loaded from {origin}");
    let key = ClusterKey::derive(&secret);
    let r = &config.replication;
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("reading {}", path.display()))
    };
    let tls_ca_pem = r.tls_ca.as_deref().map(read).transpose()?;
    let client = PeerClient::new(
        &config.host,
        key.clone(),
        ClientOptions {
            connect_timeout: r.connect_timeout,
            read_timeout: r.read_timeout,
            tls_ca_pem,
        },
    )
    .context("building the replication client")?;
    let mut advertised = None;
    let mut endpoint = None;
    if let Some(listen) = r.listen {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding the replication endpoint {listen}"))?;
        let bound = listener.local_addr()?;
        advertised = r.advertised_address().map(|a| {
            // Port 0 in the configuration: publish the port actually bound.
            if a == listen.to_string() {
                bound.to_string()
            } else {
                a
            }
        });
        let state = ServerState::new(
            key,
            i64::try_from(r.max_clock_skew.as_secs()).unwrap_or(i64::MAX),
            RootPolicy::pools(pools),
        )
        .with_fence(active_fence(store, config.host.clone()));
        let tls = match (&r.tls_cert, &r.tls_key) {
            (Some(cert), Some(key)) => Some(
                tls::acceptor(&read(cert)?, &read(key)?)
                    .context("setting up the replication endpoint's TLS")?,
            ),
            _ => None,
        };
        endpoint = Some(Endpoint {
            listener,
            tls,
            state,
            bound,
        });
    }
    Ok(Peers {
        client: Some(Arc::new(client)),
        advertised,
        endpoint,
    })
}

/// Starts serving the replication endpoint, once the back ends exist: `changes` reads the
/// journals of the data plane (`journals`), `quiesce` and `unquiesce` go to the `local`
/// back end holding the data root.
fn serve_replication(
    endpoint: Endpoint,
    advertised: Option<&str>,
    journals: Option<Arc<shoal_driver::Journals>>,
    backends: &[shoal_core::drivers::Backend],
    cancel: &CancellationToken,
    tasks: &TaskTracker,
) {
    let Endpoint {
        listener,
        tls,
        mut state,
        bound,
    } = endpoint;
    if let Some(journals) = journals {
        state = state.with_journals(Arc::new(move |id: &str| journals.get(id)));
    }
    let drivers: Vec<Arc<dyn shoal_driver::ShareDriver>> =
        backends.iter().map(|b| b.driver.clone()).collect();
    state = state.with_quiesce(quiesce_hook(drivers));
    let app = shoal_replication::transport::router(Arc::new(state));
    let shutdown = cancel.clone();
    let scheme = match tls {
        Some(acceptor) => {
            let listener = tls::TlsListener::new(listener, acceptor);
            tasks.spawn(serve_endpoint(listener, app, shutdown));
            "https"
        }
        None => {
            tasks.spawn(serve_endpoint(listener, app, shutdown));
            "http"
        }
    };
    info!(
        %bound,
        advertised = advertised.unwrap_or(""),
        "replication endpoint listening on {scheme}://{bound}, advertised as {}",
        advertised.unwrap_or("")
    );
}

/// The endpoint's quiesce hook: the `local` back end whose pool holds the data root
/// quiesces or unquiesces it, as it does for a promotion on this node.
fn quiesce_hook(drivers: Vec<Arc<dyn shoal_driver::ShareDriver>>) -> QuiesceHook {
    Arc::new(move |call: QuiesceCall| {
        let drivers = drivers.clone();
        Box::pin(async move {
            let driver = drivers.iter().find_map(|d| {
                d.as_any()
                    .downcast_ref::<LocalDriver>()
                    .filter(|local| local.has_active_at(&call.root))
            });
            let Some(driver) = driver else {
                return Err(QuiesceError::Failed(format!(
                    "{} is not an active share instance of this node",
                    call.root.display()
                )));
            };
            match call.wait {
                Some(wait) => {
                    driver
                        .quiesce_active(&call.root, &call.promoting, wait)
                        .await
                }
                None => driver.unquiesce_active(&call.root).await,
            }
        })
    })
}

/// Serves the replication endpoint on `listener` until `shutdown`.
async fn serve_endpoint<L>(listener: L, app: axum::Router, shutdown: CancellationToken)
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await;
    if let Err(err) = served {
        tracing::error!(error = %err, "replication endpoint failed: {err}");
    }
}

/// The endpoint's fence: a share instance's data is served only while the database says it
/// is the active replica, on this node, at the epoch the requester expects. A node that
/// comes back after its replica was promoted away (or that cannot read the database) thus
/// never passes its copy off as the active's.
fn active_fence(store: Arc<dyn Store>, host: String) -> FenceCheck {
    Arc::new(move |instance: String, epoch: i64| {
        let (store, host) = (store.clone(), host.clone());
        Box::pin(async move {
            let id = uuid::Uuid::parse_str(&instance)
                .map_err(|_| format!("{instance} is not a share instance id"))?;
            let row = store
                .get_share_instance(id)
                .await
                .map_err(|err| format!("share instance {instance}: {err}"))?;
            let on_this_node = row.host.split('@').next().is_some_and(|node| node == host);
            if row.replica_state.as_deref() != Some("active") || !on_this_node {
                return Err(format!(
                    "share instance {instance} is not an active replica on this node \
                     (replica_state {:?}, host {:?})",
                    row.replica_state, row.host
                ));
            }
            if row.replica_epoch != epoch {
                return Err(format!(
                    "share instance {instance} is the active replica at epoch {}, not {epoch}",
                    row.replica_epoch
                ));
            }
            Ok(())
        })
    })
}

impl Server {
    /// Starts every role of `config`. Returns once the API (if any) is accepting.
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        config.validate()?;
        info!(host = %config.host, roles = ?config.roles, "starting shoal node {}", config.host);
        let store = open_store(&config).await?;
        Self::start_with_store(config, store).await
    }

    /// Starts every role of `config` over an already opened and migrated store (tests hand
    /// in a private database).
    pub async fn start_with_store(config: Config, store: Arc<dyn Store>) -> anyhow::Result<Self> {
        config.validate()?;
        let config = Arc::new(config);
        let core = Arc::new(Core::new(config.clone(), store));

        let cancel = CancellationToken::new();
        let tasks = TaskTracker::new();
        let mut peers = if config.runs(Role::Share) {
            replication_peers(&config, core.store.clone()).await?
        } else {
            Peers::default()
        };
        let nfs = if config.runs(Role::Share) {
            nfs_server(&config, &cancel, &tasks).await?
        } else {
            None
        };
        let backends = if config.runs(Role::Share) {
            let plane = nfs.as_ref().map(|(_, plane)| plane.clone());
            let backends =
                shoal_core::drivers::build_backends(&config, peers.client.clone(), plane);
            for backend in &backends {
                backend
                    .driver
                    .do_setup()
                    .await
                    .with_context(|| format!("setting up back end {}", backend.service_host))?;
                info!(
                    backend = %backend.service_host,
                    driver = backend.driver.driver_name(),
                    az = %backend.config.availability_zone,
                    "back end {} ({}) ready in {}",
                    backend.service_host,
                    backend.driver.driver_name(),
                    backend.config.availability_zone
                );
            }
            if let Some(endpoint) = peers.endpoint.take() {
                serve_replication(
                    endpoint,
                    peers.advertised.as_deref(),
                    nfs.as_ref().map(|(_, plane)| plane.journals.clone()),
                    &backends,
                    &cancel,
                    &tasks,
                );
            }
            backends
        } else {
            Vec::new()
        };

        let mut workers = Vec::new();
        if config.runs(Role::Scheduler) {
            workers.push(Arc::new(OperationWorker::new(
                core.clone(),
                None,
                Arc::new(SchedulerHandler::new(core.clone())),
            )));
        }
        for backend in &backends {
            let handler = Arc::new(ShareManagerHandler::new(core.clone(), backend.clone()));
            workers.push(Arc::new(OperationWorker::new(
                core.clone(),
                Some(backend.service_host.clone()),
                handler,
            )));
        }
        // Listen before the first heartbeat, so a node the others see as up hears their
        // enqueues (the notice of a (re)connection wakes the workers once more anyway).
        if let Some(wakeups) = RemoteWakeups::subscribe(&core, &workers).await {
            let cancel = cancel.clone();
            tasks.spawn(async move { wakeups.run(cancel).await });
        }
        let replica_updater = Arc::new(ReplicaUpdater::new(core.clone(), backends.clone()));
        let reporter = Arc::new(
            Reporter::new(core.clone(), backends).with_replication_address(peers.advertised),
        );
        if config.runs(Role::Scheduler) || config.runs(Role::Share) {
            reporter.run_once().await.context("first service report")?;
            let (reporter, cancel) = (reporter.clone(), cancel.clone());
            tasks.spawn(async move { reporter.run(cancel).await });
        }
        let housekeeping = Arc::new(Housekeeping::new(core.clone()));
        if config.runs(Role::Scheduler) {
            let (housekeeping, cancel) = (housekeeping.clone(), cancel.clone());
            tasks.spawn(async move { housekeeping.run(cancel).await });
            info!(
                interval = ?config.periodic.housekeeping_interval,
                retention = ?config.periodic.finished_operation_retention,
                "housekeeping started"
            );
        }
        if config.runs(Role::Share) {
            // Manila runs `delete_expired_share` in the share service too.
            let (purge, purge_cancel) = (Arc::new(RecycleBin::new(core.clone())), cancel.clone());
            tasks.spawn(async move { purge.run(purge_cancel).await });
            info!(
                interval = ?config.periodic.expired_share_check_interval,
                retention = ?config.periodic.soft_deleted_share_retention,
                "recycle bin purge started"
            );
            let (updater, stop) = (replica_updater.clone(), cancel.clone());
            tasks.spawn(async move { updater.run(stop).await });
            if let Some((_, plane)) = &nfs {
                // Secondaries follow the writes made through the data plane.
                let (updater, journals, stop) = (
                    replica_updater.clone(),
                    plane.journals.clone(),
                    cancel.clone(),
                );
                tasks.spawn(async move { updater.follow_changes(journals, stop).await });
            }
            info!(
                interval = ?config.periodic.replica_state_update_interval,
                "periodic replica update started"
            );
        }
        for worker in &workers {
            let (worker, cancel) = (worker.clone(), cancel.clone());
            tasks.spawn(async move { worker.run(cancel).await });
        }
        info!(workers = workers.len(), "operation workers started");

        let mut api_addr = None;
        if config.runs(Role::Api) {
            let state = ApiState {
                core: core.clone(),
                policy: Arc::new(load_policy(&config)?),
                auth: authenticator(&config, &core.store).await?,
                config: Arc::new(config.api.clone()),
                // `/healthcheck` answers 503 from the moment shutdown begins.
                shutdown: cancel.clone(),
            };
            let listener = tokio::net::TcpListener::bind(config.api.listen)
                .await
                .with_context(|| format!("binding {}", config.api.listen))?;
            let addr = listener.local_addr()?;
            info!(%addr, auth = ?config.api.auth_strategy, "API listening on http://{addr}");
            api_addr = Some(addr);
            let service = shoal_api::service(state);
            let shutdown = cancel.clone();
            tasks.spawn(async move {
                // The peer address feeds the identity's per-address failure limit.
                let make = axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<SocketAddr>(service);
                if let Err(err) = axum::serve(listener, make)
                    .with_graceful_shutdown(async move { shutdown.cancelled().await })
                    .await
                {
                    tracing::error!(error = %err, "API server failed: {err}");
                }
            });
        }
        tasks.close();
        Ok(Self {
            api_addr,
            nfs_addr: nfs.as_ref().map(|(addr, _)| *addr),
            nfs_journals: nfs.as_ref().map(|(_, plane)| plane.journals.clone()),
            nfs_exports: nfs.map(|(_, plane)| plane.exports),
            core,
            reporter,
            replica_updater,
            housekeeping,
            workers,
            cancel,
            tasks,
        })
    }

    /// Ordered shutdown: stop the listener and the periodic tasks, wait with a deadline.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        if tokio::time::timeout(EXIT_DEADLINE, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("tasks still running after {EXIT_DEADLINE:?}; exiting anyway");
        }
        self.core.store.close().await;
        info!("shoal stopped");
    }

    /// Resolves when the node stops on its own (a task ended).
    pub async fn wait(&self) {
        self.tasks.wait().await;
    }
}
