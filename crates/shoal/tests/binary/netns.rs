//! Multi-node harness: every node is a real `shoal serve` in its own Linux network namespace
//! with its own address, and all of them share one PostgreSQL schema.
//!
//! Layout of one [`Cluster`] (subnet `10.A.B.0/24`, `XXXX` = the subnet's index in hex):
//!
//! ```text
//!  root namespace                                   namespace shoal-XXXX-<node>
//!  bridge shbXXXX 10.A.B.1 ── veth shvXXXXn<i> ═══ shpXXXXn<i> 10.A.B.(10+i), lo
//!  PostgreSQL forwarder on 10.A.B.1:<ephemeral> → TEST_DATABASE_URL's host:port
//! ```
//!
//! The namespaces cannot reach the root namespace's 127.0.0.1, where the test PostgreSQL
//! listens, so a TCP forwarder in the test process listens on the bridge address and passes
//! connections on. Taking a node's veth down ([`Host::link_down`]) cuts it off from the
//! database, from the test process and from the other nodes at once, which is what a host
//! death looks like to the rest of the cluster.
//!
//! The subnet and the interface names are claimed atomically: creating the bridge fails when
//! the name is taken, so parallel tests (in this process or another) never share a subnet.
//! Everything (namespaces, veths, bridge, forwarder, schema) is removed on drop, also when a
//! test panics. What a killed test process left (its bridge's alias names the dead pid) is
//! swept, namespaces and veths too, by the next cluster; its schema stays, as with
//! `shoal_store::testing`.
//!
//! Tests skip, saying why, unless they run as root with `ip netns` working and
//! `TEST_DATABASE_URL` set (CI's PostgreSQL pass runs them).

use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::BIN;

/// How long a node may take from spawn to its readiness log line.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// Port every node's API listens on, inside its own namespace (nothing else uses it there).
pub const API_PORT: u16 = 8786;

/// Port of every node's replication endpoint (each node has its own address).
pub const REPLICATION_PORT: u16 = 8787;

/// Port every node's NFS server listens on, inside its own namespace (the standard one).
pub const NFS_PORT: u16 = 2049;

/// The cluster secret's file in the cluster's directory.
const CLUSTER_SECRET: &str = "cluster-secret";

/// Subnets `10.200.0.0/24` to `10.249.255.0/24`, numbered from 0.
const SUBNETS: u32 = 50 * 256;

/// Prefix of the bridge alias that records the owning process, for sweeping leftovers.
const ALIAS_PREFIX: &str = "shoal-netns-test pid ";

/// Clusters created by this process, so parallel tests start from different subnets.
static CLUSTERS: AtomicU32 = AtomicU32::new(0);

/// Why the netns tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    if std::env::var_os("TEST_DATABASE_URL").is_none() {
        return Some("TEST_DATABASE_URL is not set".to_owned());
    }
    let root = std::os::unix::fs::MetadataExt::uid(
        &std::fs::metadata("/proc/self").expect("/proc/self exists on Linux"),
    ) == 0;
    if !root {
        return Some("network namespaces need root".to_owned());
    }
    let probe = format!(
        "shoal-probe-{}-{}",
        std::process::id(),
        CLUSTERS.fetch_add(1, Ordering::Relaxed)
    );
    if let Err(e) = ip(&["netns", "add", &probe]) {
        return Some(format!("`ip netns add` does not work here: {e}"));
    }
    if let Err(e) = ip(&["netns", "del", &probe]) {
        return Some(format!("`ip netns del` does not work here: {e}"));
    }
    None
}

/// Runs `ip args`; the error is its stderr (or why it could not run).
fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running ip: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `ip args` and panics if it fails (set-up steps).
fn ip_ok(args: &[&str]) -> String {
    ip(args).unwrap_or_else(|e| panic!("{e}"))
}

/// One machine of the cluster: a network namespace with its own address, and a directory
/// for its data and config. Cheap to clone; the namespace belongs to the [`Cluster`].
#[derive(Debug, Clone)]
pub struct Host {
    /// The node's name, also its `host` setting (the host part of `host@backend#pool`).
    pub name: String,
    /// The network namespace, for `ip netns exec`.
    pub netns: String,
    /// The node's address (on the cluster bridge).
    pub ip: Ipv4Addr,
    /// The node's directory: `data/` is its `data_dir`, its config file sits next to it.
    pub dir: PathBuf,
    /// Root-namespace end of the node's veth pair, on the bridge.
    veth: String,
}

impl Host {
    /// The node's `data_dir`.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Cuts the node off the network (its veth goes down on the bridge side): no database,
    /// no API, no peers, until [`Host::link_up`].
    pub fn link_down(&self) {
        ip_ok(&["link", "set", "dev", &self.veth, "down"]);
    }

    /// Restores the link that [`Host::link_down`] cut.
    pub fn link_up(&self) {
        ip_ok(&["link", "set", "dev", &self.veth, "up"]);
    }

    /// A command that runs `program` inside the node's namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.netns]).arg(program);
        command
    }
}

/// The bridge, the namespaces and the veth pairs of one cluster; removed on drop.
struct Net {
    /// Subnet index: the subnet is `10.(200 + id / 256).(id % 256).0/24`.
    id: u32,
    bridge: String,
    hosts: Vec<Host>,
}

impl Net {
    /// Claims a free subnet by creating its bridge, and gives the bridge the `.1` address.
    fn new() -> Net {
        sweep_stale();
        let counter = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let start = std::process::id()
            .wrapping_mul(131)
            .wrapping_add(counter.wrapping_mul(7))
            % SUBNETS;
        for step in 0..256 {
            let id = (start + step) % SUBNETS;
            let bridge = format!("shb{id:04x}");
            let add = || ip(&["link", "add", "name", &bridge, "type", "bridge"]).is_ok();
            if !(add() || sweep_if_stale(id, &bridge) && add()) {
                continue;
            }
            let net = Net {
                id,
                bridge,
                hosts: Vec::new(),
            };
            ip_ok(&[
                "link",
                "set",
                "dev",
                &net.bridge,
                "alias",
                &format!("{ALIAS_PREFIX}{}", std::process::id()),
            ]);
            // A route of the machine's own covering this subnet: try the next one (drop
            // removes the bridge).
            let routes = ip_ok(&[
                "-4",
                "route",
                "show",
                "to",
                "match",
                &net.addr(1).to_string(),
            ]);
            if routes.lines().any(|l| !l.starts_with("default")) {
                continue;
            }
            ip_ok(&[
                "addr",
                "add",
                &format!("{}/24", net.addr(1)),
                "dev",
                &net.bridge,
            ]);
            ip_ok(&["link", "set", "dev", &net.bridge, "up"]);
            return net;
        }
        panic!("no free 10.x.y.0/24 subnet for a test bridge after 256 tries");
    }

    /// Address `.last` of the subnet.
    fn addr(&self, last: u8) -> Ipv4Addr {
        let [_, _, hi, lo] = self.id.to_be_bytes();
        Ipv4Addr::new(10, 200 + hi, lo, last)
    }

    /// A namespace with a veth pair to the bridge, an address and loopback up.
    fn add_host(&mut self, name: &str, dir: PathBuf) -> Host {
        let index = self.hosts.len();
        let last = u8::try_from(10 + index).expect("at most 245 nodes per cluster");
        let host = Host {
            name: name.to_owned(),
            netns: format!("shoal-{:04x}-{name}", self.id),
            ip: self.addr(last),
            dir,
            veth: format!("shv{:04x}n{index}", self.id),
        };
        let peer = format!("shp{:04x}n{index}", self.id);
        // Recorded first, so drop cleans up a half-built host too.
        self.hosts.push(host.clone());
        ip_ok(&["netns", "add", &host.netns]);
        ip_ok(&[
            "link",
            "add",
            &host.veth,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            &host.netns,
        ]);
        ip_ok(&["link", "set", "dev", &host.veth, "master", &self.bridge]);
        ip_ok(&["link", "set", "dev", &host.veth, "up"]);
        let ns = ["-n", host.netns.as_str()];
        let cidr = format!("{}/24", host.ip);
        ip_ok(&[&ns[..], &["addr", "add", &cidr, "dev", &peer]].concat());
        ip_ok(&[&ns[..], &["link", "set", "dev", &peer, "up"]].concat());
        ip_ok(&[&ns[..], &["link", "set", "dev", "lo", "up"]].concat());
        host
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for host in &self.hosts {
            remove_netns(&host.netns);
            // Usually gone with its peer already; errors only mean that.
            let _ = ip(&["link", "del", "dev", &host.veth]);
        }
        if let Err(e) = ip(&["link", "del", "dev", &self.bridge]) {
            eprintln!("netns harness: could not remove bridge: {e}");
        }
    }
}

/// Kills whatever still runs in `netns` (a namespace lives on while a process is in it,
/// and with it the veth) and deletes it.
fn remove_netns(netns: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pids = ip(&["netns", "pids", netns]).unwrap_or_default();
        if pids.trim().is_empty() {
            break;
        }
        for pid in pids.split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
        if Instant::now() > deadline {
            eprintln!("netns harness: processes {pids:?} outlive SIGKILL in {netns}");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Err(e) = ip(&["netns", "del", netns]) {
        eprintln!("netns harness: {e}");
    }
}

/// Sweeps every subnet a killed test process left behind.
fn sweep_stale() {
    for entry in std::fs::read_dir("/sys/class/net").into_iter().flatten() {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(hex) = name.strip_prefix("shb")
            && let Ok(id) = u32::from_str_radix(hex, 16)
        {
            sweep_if_stale(id, &name);
        }
    }
}

/// Removes what a killed test process left of subnet `id` (namespaces, veths, bridge) if the
/// bridge's alias names a process that no longer runs. Returns whether it did.
fn sweep_if_stale(id: u32, bridge: &str) -> bool {
    let alias =
        std::fs::read_to_string(format!("/sys/class/net/{bridge}/ifalias")).unwrap_or_default();
    let Some(pid) = alias.trim().strip_prefix(ALIAS_PREFIX) else {
        return false;
    };
    if Path::new("/proc").join(pid).exists() {
        return false;
    }
    let prefix = format!("shoal-{id:04x}-");
    for line in ip(&["netns", "list"]).unwrap_or_default().lines() {
        if let Some(name) = line.split_whitespace().next()
            && name.starts_with(&prefix)
        {
            remove_netns(name);
        }
    }
    let veths = format!("shv{id:04x}n");
    for entry in std::fs::read_dir("/sys/class/net").into_iter().flatten() {
        let name = entry.map(|e| e.file_name().to_string_lossy().into_owned());
        if let Ok(name) = name
            && name.starts_with(&veths)
        {
            let _ = ip(&["link", "del", "dev", &name]);
        }
    }
    ip(&["link", "del", "dev", bridge]).is_ok()
}

/// A TCP forwarder on its own thread and runtime (so a test blocking its own runtime cannot
/// stall the nodes' database traffic): accepts on the bridge address, connects each
/// connection on to `target`. Stops, closing every connection, on drop.
struct Forwarder {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Forwarder {
    fn start(listen: Ipv4Addr, target: SocketAddr) -> Forwarder {
        let listener = std::net::TcpListener::bind((listen, 0)).expect("bind the forwarder");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the forwarder's address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the forwarder");
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
                let mut stopped = stopped;
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => {
                            let Ok((mut inbound, _)) = accepted else { continue };
                            tokio::spawn(async move {
                                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                                }
                            });
                        }
                    }
                }
            });
            // Dropping the runtime drops every connection task and closes its sockets.
        });
        Forwarder {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The cluster's PostgreSQL schema and the forwarder the nodes reach it through.
struct Database {
    /// `TEST_DATABASE_URL`: where the schema is created and dropped.
    admin_url: String,
    schema: String,
    /// The schema through the forwarder, for the nodes' configs.
    node_url: String,
    /// The schema directly, for `shoal db sync` from the root namespace.
    local_url: String,
    /// `None` once stopped (before the schema is dropped).
    forwarder: Option<Forwarder>,
}

impl Database {
    async fn new(bridge: Ipv4Addr) -> Database {
        use sqlx::Connection as _;
        let admin_url = std::env::var("TEST_DATABASE_URL").expect("checked by skip_reason");
        let options = sqlx::postgres::PgConnectOptions::from_str(&admin_url)
            .expect("TEST_DATABASE_URL is a postgres url");
        let target = (options.get_host(), options.get_port())
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .unwrap_or_else(|| {
                panic!("TEST_DATABASE_URL must name a TCP host:port (not a unix socket)")
            });
        let schema = format!("t_{}", uuid_like());
        let mut conn = sqlx::postgres::PgConnection::connect_with(&options)
            .await
            .expect("connect to TEST_DATABASE_URL");
        sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
            .execute(&mut conn)
            .await
            .expect("create the cluster's schema");
        let _ = conn.close().await;
        let forwarder = Forwarder::start(bridge, target);
        let local_url = with_search_path(&admin_url, None, &schema);
        let node_url = with_search_path(&admin_url, Some(forwarder.addr), &schema);
        Database {
            admin_url,
            schema,
            node_url,
            local_url,
            forwarder: Some(forwarder),
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // Stopping the forwarder closes the nodes' sessions, so nothing holds a lock.
        drop(self.forwarder.take());
        let (url, schema) = (self.admin_url.clone(), self.schema.clone());
        // Drop may run on a runtime thread and cannot await: a helper thread and runtime.
        let dropped = std::thread::spawn(move || {
            use sqlx::Connection as _;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let mut conn = sqlx::postgres::PgConnection::connect(&url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query("SET lock_timeout = '5s'")
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
                    .execute(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                conn.close().await.map_err(|e| e.to_string())
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("netns harness: could not drop schema {}: {e}", self.schema);
        }
    }
}

/// A unique enough lower-case hex name part (pid, counter, time).
fn uuid_like() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{:x}_{:x}_{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with its host:port replaced by `addr` (if given) and `search_path` set to `schema`
/// (the `options` parameter, as `shoal_store::testing` does with connect options).
fn with_search_path(url: &str, addr: Option<SocketAddr>, schema: &str) -> String {
    let scheme_end = url.find("://").expect("a postgres:// url") + 3;
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match (addr, authority.rfind('@')) {
        (None, _) => authority.to_owned(),
        (Some(addr), Some(at)) => format!("{}@{addr}", &authority[..at]),
        (Some(addr), None) => addr.to_string(),
    };
    let separator = if tail.contains('?') { '&' } else { '?' };
    let tail = if tail.is_empty() { "/" } else { tail };
    format!(
        "{}{authority}{tail}{separator}options=-c%20search_path%3D{schema}",
        &url[..scheme_end]
    )
}

/// Deep merge of `extra` into `base`: tables merge key by key, an array of tables updates
/// the base's elements in order (and appends the rest), anything else replaces.
fn merge(base: &mut toml::Table, extra: toml::Table) {
    for (key, value) in extra {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(old)), toml::Value::Table(new)) => merge(old, new),
            (Some(toml::Value::Array(old)), toml::Value::Array(new))
                if new.iter().all(toml::Value::is_table)
                    && old.iter().all(toml::Value::is_table) =>
            {
                for (i, item) in new.into_iter().enumerate() {
                    match (old.get_mut(i), item) {
                        (Some(toml::Value::Table(old)), toml::Value::Table(new)) => merge(old, new),
                        (_, item) => old.push(item),
                    }
                }
            }
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Keeps the test's own `SHOAL_*` variables (if any) away from a node: its config file
/// is all there is.
fn remove_shoal_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("SHOAL_") {
            command.env_remove(key);
        }
    }
}

/// The text of `docs/examples/multinode/<name>.toml`.
pub fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/examples/multinode")
        .join(format!("{name}.toml"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// One test's cluster: a bridge with a namespace per node, a fresh PostgreSQL schema
/// (migrated with `shoal db sync`) reachable from the namespaces, and a temp dir for the
/// nodes' data and configs. Drop removes all of it; drop the [`Node`]s first (declare them
/// after the cluster), although the cluster kills anything still running in its namespaces.
pub struct Cluster {
    // Field order is drop order: the namespaces (and any process left in them) go first,
    // then the database (forwarder, then schema), then the files.
    net: Net,
    db: Database,
    dir: tempfile::TempDir,
}

impl Cluster {
    /// A fresh cluster with no hosts yet, or `None` (having printed why) when the test has to
    /// skip: not root, no working `ip netns`, or no `TEST_DATABASE_URL`.
    pub async fn new() -> Option<Cluster> {
        if let Some(reason) = skip_reason() {
            eprintln!("skipping netns test: {reason}");
            return None;
        }
        let net = Net::new();
        let db = Database::new(net.addr(1)).await;
        let dir = tempfile::tempdir().expect("a temp dir for the cluster");
        let mut sync = Command::new(BIN);
        remove_shoal_env(&mut sync);
        let out = sync
            .args(["db", "sync"])
            .env("SHOAL_DATABASE_URL", &db.local_url)
            .env("SHOAL_DATA_DIR", dir.path())
            .output()
            .expect("run shoal db sync");
        assert!(
            out.status.success(),
            "shoal db sync: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(
            dir.path().join(CLUSTER_SECRET),
            "the cluster secret every node of this test cluster holds\n",
        )
        .expect("write the cluster secret");
        Some(Cluster { net, db, dir })
    }

    /// The bridge's address in the root namespace (where the test process and the
    /// PostgreSQL forwarder are).
    pub fn bridge_ip(&self) -> Ipv4Addr {
        self.net.addr(1)
    }

    /// The cluster's database as the nodes reach it (through the forwarder, with the
    /// cluster's `search_path`).
    pub fn database_url(&self) -> &str {
        &self.db.node_url
    }

    /// Adds a host: a namespace `shoal-XXXX-<name>` with the next free address and a
    /// directory. `name` becomes the node's `host` setting, so keep it to letters, digits
    /// and `-`.
    pub fn add_host(&mut self, name: &str) -> Host {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).expect("a directory for the host");
        self.net.add_host(name, dir)
    }

    /// A node's config: `base` (TOML, e.g. an [`example`]), then the harness's settings for
    /// `host` (its `host` name, `data_dir`, the cluster's `database_url`, `[api] listen` on
    /// its address and [`API_PORT`], `auth_strategy = "noauth"`, the cluster's secret file,
    /// the replication endpoint on its address and [`REPLICATION_PORT`], and short intervals:
    /// reports every 500 ms, `service_down_time` 3 s, operations polled every 100 ms with a
    /// 3 s lease), then `extra` (TOML) on top; see [`merge`] for how tables and arrays of
    /// tables merge.
    pub fn config(&self, host: &Host, base: &str, extra: &str) -> String {
        let mut table: toml::Table = base.parse().expect("the base config is TOML");
        let harness = format!(
            "host = {host_name}\ndata_dir = {data_dir}\ndatabase_url = {url}\n\
             cluster_secret_file = {secret}\n\
             [api]\nlisten = \"{ip}:{API_PORT}\"\nauth_strategy = \"noauth\"\n\
             [nfs]\nlisten = \"{ip}:{NFS_PORT}\"\n\
             [replication]\nlisten = \"{ip}:{REPLICATION_PORT}\"\n\
             advertise = \"{ip}:{REPLICATION_PORT}\"\n\
             [periodic]\nreport_interval = \"500ms\"\nservice_down_time = \"3s\"\n\
             [operations]\nlease = \"3s\"\npoll_interval = \"100ms\"\n",
            host_name = toml::Value::from(host.name.as_str()),
            data_dir = toml::Value::from(host.data_dir().to_string_lossy().as_ref()),
            url = toml::Value::from(self.db.node_url.as_str()),
            secret = toml::Value::from(
                self.dir
                    .path()
                    .join(CLUSTER_SECRET)
                    .to_string_lossy()
                    .as_ref()
            ),
            ip = host.ip,
        );
        merge(
            &mut table,
            harness.parse().expect("the harness settings are TOML"),
        );
        merge(&mut table, extra.parse().expect("the extra config is TOML"));
        toml::to_string(&table).expect("a TOML table serializes")
    }

    /// Writes `config` next to the host's data and starts `shoal serve` in the host's
    /// namespace; returns once the node has logged that it is ready.
    pub async fn start(&self, host: &Host, config: &str) -> Node {
        let path = host.dir.join("shoal.toml");
        std::fs::write(&path, config).expect("write the node's config");
        let table: toml::Table = config.parse().expect("the node's config is TOML");
        let api = table
            .get("roles")
            .and_then(toml::Value::as_array)
            .is_none_or(|roles| roles.iter().any(|r| r.as_str() == Some("api")));
        let mut node = Node {
            host: host.clone(),
            config: path,
            api,
            base: format!("http://{}:{API_PORT}", host.ip),
            child: None,
            log: None,
            lines: Vec::new(),
            cursor: 0,
        };
        node.spawn().await;
        node
    }

    /// The file holding the cluster's secret (every node's `cluster_secret_file`).
    pub fn secret_path(&self) -> PathBuf {
        self.dir.path().join(CLUSTER_SECRET)
    }

    /// [`Cluster::add_host`], [`Cluster::config`] and [`Cluster::start`] in one.
    pub async fn node(&mut self, name: &str, base: &str, extra: &str) -> Node {
        let host = self.add_host(name);
        let config = self.config(&host, base, extra);
        self.start(&host, &config).await
    }
}

/// A `shoal serve` process in a host's namespace, with its stderr captured line by line.
/// Killed on drop.
pub struct Node {
    /// Where the node runs.
    pub host: Host,
    /// The node's config file.
    pub config: PathBuf,
    /// `http://<ip>:<port>` of the node's API (meaningful when it runs the `api` role).
    pub base: String,
    /// Whether the node runs the `api` role (then readiness is its API listening).
    api: bool,
    child: Option<Child>,
    log: Option<tokio::sync::mpsc::UnboundedReceiver<String>>,
    /// Every line read so far, over restarts.
    lines: Vec<String>,
    /// First line of `lines` that [`Node::wait_for_log`] has not looked at.
    cursor: usize,
}

impl Node {
    /// `<base>/v2`.
    pub fn v2(&self) -> String {
        format!("{}/v2", self.base)
    }

    /// The node's `data_dir`.
    pub fn data_dir(&self) -> PathBuf {
        self.host.data_dir()
    }

    /// Spawns the process and waits for its readiness line.
    async fn spawn(&mut self) {
        assert!(self.child.is_none(), "node {} already runs", self.host.name);
        let mut command = self.host.command(BIN);
        command.arg("serve").arg("--config").arg(&self.config);
        remove_shoal_env(&mut command);
        let mut child = command
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shoal in its namespace");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        self.child = Some(child);
        self.log = Some(rx);
        self.cursor = self.lines.len();
        let marker = if self.api {
            "API listening on http://"
        } else {
            "operation workers started"
        };
        self.wait_for_log(marker, START_DEADLINE).await;
    }

    /// Waits until the node logs a line containing `needle` that no earlier wait returned
    /// (earlier lines of the current process count), and returns it. Panics with the log
    /// after `within`, or when the process ends first.
    pub async fn wait_for_log(&mut self, needle: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            while self.cursor < self.lines.len() {
                let line = &self.lines[self.cursor];
                self.cursor += 1;
                if line.contains(needle) {
                    return line.clone();
                }
            }
            let log = self.log.as_mut().expect("the node was started");
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, log.recv()).await {
                Ok(Some(line)) => self.lines.push(line),
                Ok(None) => panic!(
                    "node {} ended before logging {needle:?}; log:\n{}",
                    self.host.name,
                    self.lines.join("\n")
                ),
                Err(_) => panic!(
                    "node {} did not log {needle:?} within {within:?}; log:\n{}",
                    self.host.name,
                    self.lines.join("\n")
                ),
            }
        }
    }

    /// Every line the node has logged so far (over restarts).
    pub fn log_lines(&mut self) -> &[String] {
        if let Some(log) = self.log.as_mut() {
            while let Ok(line) = log.try_recv() {
                self.lines.push(line);
            }
        }
        &self.lines
    }

    /// `kill -9` the node and reap it (no-op if it is not running).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Keep what it logged before dying.
        self.log_lines();
    }

    /// Kills the node if it runs, then starts it again with its config file (which a test
    /// may have rewritten) and waits until it is ready.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }

    /// Cuts the node's link ([`Host::link_down`]).
    pub fn link_down(&self) {
        self.host.link_down();
    }

    /// Restores the node's link ([`Host::link_up`]).
    pub fn link_up(&self) {
        self.host.link_up();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[path = "multinode.rs"]
mod multinode;

#[path = "replication.rs"]
mod replication;

#[path = "nfs_clients.rs"]
mod nfs_clients;
