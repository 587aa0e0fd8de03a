//! `shoal bench replication-peer`: replication between two network namespaces of this host,
//! the engine over its node-to-node endpoint against `rsync -a` over ssh and against an
//! rsync daemon, in one run, on the tree of `shoal bench replication` (its generator and its
//! four steps: initial, 1% of the files changed, nothing changed, 4 KiB changed in the big
//! file).
//!
//! The lab: namespaces `A` and `B` (`ip netns add`) joined by a veth pair, 10.77.0.1/24 in A
//! and 10.77.0.2/24 in B, nothing else (no route to the host's network, so the addresses
//! cannot clash with anything). The source tree is a share data root
//! `<scratch>/pool/shares/<uuid>`; in A run the serving sides: `shoal bench peer-serve` (the
//! replication endpoint), `sshd` (throwaway host and client keys in the scratch dir) and
//! `rsync --daemon` (a read-only module on the source). Every syncing side is a fresh
//! process in B (`ip netns exec B ...`): `rsync -a root@A:<src>/`, `rsync -a
//! rsync://A/bench/` and `shoal bench peer-sync`, each writing its own destination. The
//! filesystem is shared, but every byte a destination receives crosses the veth.
//!
//! Timings are wall times of those client processes (start-up, connection and, for ssh, the
//! handshake included), with dirty pages flushed before each, outside the timing. The lab is
//! removed when the run ends, also on errors; SIGINT or SIGTERM ([`interrupt`]) kills what
//! runs in the namespaces so the run fails and cleans up; a run killed outright leaves its
//! namespaces to be swept by the next run.

use std::fs;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use shoal_core::Config;
use shoal_replication::peer_auth::ClusterKey;
use shoal_replication::transport::{ClientOptions, PeerClient, RootPolicy, ServerState, router};
use shoal_replication::{ReplicaDir, SyncOptions};

use crate::bench_replication::{
    Rng, build_tree, change_big, change_files, flush, require_tool, s, timed_cmd,
};

/// Share id of the served tree (the endpoint serves `<pool>/shares/<uuid>` only).
const SHARE: &str = "6b1f1f8e-2f0a-4c55-9d3e-5a0c7b9e4d21";
/// Address of namespace A (the source's side).
const ADDR_A: &str = "10.77.0.1";
/// Address of namespace B (the destinations' side).
const ADDR_B: &str = "10.77.0.2";
/// Port of the replication endpoint in A.
const PEER_PORT: u16 = 7390;
/// Port of sshd in A.
const SSH_PORT: u16 = 22;
/// Port of the rsync daemon in A.
const RSYNC_PORT: u16 = 873;
/// The rsync daemon's module (the source tree).
const RSYNC_MODULE: &str = "bench";
/// Names of this benchmark's namespaces: `shoalpb-<pid>-a`, `shoalpb-<pid>-b`.
const NS_PREFIX: &str = "shoalpb-";

/// Settings of one run: the same tree and scratch directory as `bench replication`.
pub type PeerBench = crate::bench_replication::ReplicationBench;

/// What `shoal bench peer-sync` reports (one JSON line on stdout).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerSyncReport {
    /// Seconds of the sync itself, inside the process.
    pub seconds: f64,
    /// Entries in the source.
    pub files_total: u64,
    /// Bytes of regular files in the source.
    pub bytes_total: u64,
    /// Entries written.
    pub files_transferred: u64,
    /// File bytes written.
    pub bytes_transferred: u64,
    /// Bytes received from the peer (listing, hashes, data, framing).
    pub wire_bytes: u64,
}

/// One row of the result table.
#[derive(Debug, Clone)]
pub struct PeerRow {
    /// Scenario.
    pub step: &'static str,
    /// Wall time of `shoal bench peer-sync`, in seconds.
    pub shoal: f64,
    /// `rsync -a` over ssh, seconds.
    pub ssh: f64,
    /// `rsync -a` from the rsync daemon, seconds.
    pub daemon: f64,
    /// The engine's report of the step.
    pub report: PeerSyncReport,
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct PeerResults {
    /// One row per step.
    pub rows: Vec<PeerRow>,
    /// Seconds of `ssh root@A true` from B (the connection cost rsync over ssh pays).
    pub ssh_connect: f64,
}

/// Reads the cluster secret the way a node reads `cluster_secret_file`.
fn load_key(secret_file: &Path) -> anyhow::Result<ClusterKey> {
    let config = Config {
        cluster_secret_file: Some(secret_file.to_path_buf()),
        ..Config::default()
    };
    let (secret, _) = config.load_cluster_secret()?;
    Ok(ClusterKey::derive(&secret))
}

/// `shoal bench peer-serve`: the replication endpoint for the share data roots of `pool`,
/// on `listen`, until `shutdown` completes. Prints `listening on <addr>` once bound.
pub async fn serve(
    pool: &Path,
    listen: SocketAddr,
    secret_file: &Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let key = load_key(secret_file)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let state = Arc::new(ServerState::new(
        key,
        60,
        RootPolicy::pools([pool.to_path_buf()]),
    ));
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// `shoal bench peer-sync`: one sync of the replica `replica` from the share data root
/// `root` of the node whose endpoint is `peer`, with the engine's default options. Must run
/// inside a multi-threaded tokio runtime.
pub async fn sync_once(
    replica: PathBuf,
    peer: String,
    root: PathBuf,
    secret_file: &Path,
) -> anyhow::Result<PeerSyncReport> {
    let key = load_key(secret_file)?;
    let client = PeerClient::new("bench-b", key, ClientOptions::default())?;
    tokio::task::spawn_blocking(move || {
        let replica = ReplicaDir::open(&replica)?;
        // No fence on the bench endpoint: every epoch is served.
        let source = client.source(&peer, &root, 0);
        let started = Instant::now();
        let report = replica.sync_from_peer(&source, &SyncOptions::default())?;
        Ok(PeerSyncReport {
            seconds: started.elapsed().as_secs_f64(),
            files_total: report.files_total,
            bytes_total: report.bytes_total,
            files_transferred: report.files_transferred,
            bytes_transferred: report.bytes_transferred,
            wire_bytes: report.wire_bytes,
        })
    })
    .await?
}

/// Set by [`interrupt`]: the run stops at its next step.
static STOPPED: AtomicBool = AtomicBool::new(false);
/// Namespaces of the running lab, for [`interrupt`].
static ACTIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Stops a running benchmark (for SIGINT/SIGTERM): kills every process in its namespaces,
/// so the step under way fails and the run removes the lab and its scratch dir.
pub fn interrupt() {
    STOPPED.store(true, Ordering::SeqCst);
    let names = ACTIVE.lock().map(|a| a.clone()).unwrap_or_default();
    for ns in names {
        kill_all_in(&ns);
    }
}

fn check_stopped() -> anyhow::Result<()> {
    if STOPPED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Runs `ip args`; the error carries its stderr.
fn ip(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// SIGKILLs every process in namespace `ns` (a namespace lives on while a process is in it).
fn kill_all_in(ns: &str) {
    let pids = ip(&["netns", "pids", ns]).unwrap_or_default();
    for pid in pids.split_whitespace() {
        let _ = Command::new("kill")
            .args(["-KILL", pid])
            .stderr(Stdio::null())
            .status();
    }
}

fn remove_netns(ns: &str) {
    kill_all_in(ns);
    // Killed processes may take a moment to leave the namespace.
    for _ in 0..50 {
        if ip(&["netns", "pids", ns]).is_ok_and(|p| p.trim().is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Err(err) = ip(&["netns", "del", ns]) {
        eprintln!("bench: could not remove namespace {ns}: {err}");
    }
}

/// Whether process `pid` runs (a zombie does not).
fn alive(pid: &str) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the parenthesised command name.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    state.is_some_and(|s| s != 'Z' && s != 'X')
}

/// Removes the namespaces of earlier runs whose process is gone (killed outright).
fn sweep_stale() {
    let list = ip(&["netns", "list"]).unwrap_or_default();
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(NS_PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !alive(pid) {
            eprintln!("bench: removing namespace {name} left by an earlier run");
            remove_netns(name);
        }
    }
}

/// The two namespaces, their veth pair and the servers in A; all removed on drop.
struct Lab {
    a: String,
    b: String,
    /// Serving processes in A, by name, each with its log file.
    servers: Vec<(&'static str, Child, PathBuf)>,
}

impl Lab {
    fn create() -> anyhow::Result<Lab> {
        sweep_stale();
        let pid = std::process::id();
        let lab = Lab {
            a: format!("{NS_PREFIX}{pid}-a"),
            b: format!("{NS_PREFIX}{pid}-b"),
            servers: Vec::new(),
        };
        if let Ok(mut active) = ACTIVE.lock() {
            active.extend([lab.a.clone(), lab.b.clone()]);
        }
        ip(&["netns", "add", &lab.a])?;
        ip(&["netns", "add", &lab.b])?;
        let (veth_a, veth_b) = (format!("pba{pid}"), format!("pbb{pid}"));
        ip(&[
            "link", "add", &veth_a, "netns", &lab.a, "type", "veth", "peer", "name", &veth_b,
            "netns", &lab.b,
        ])?;
        for (ns, dev, addr) in [(&lab.a, &veth_a, ADDR_A), (&lab.b, &veth_b, ADDR_B)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", "dev", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "dev", "lo", "up"])?;
        }
        Ok(lab)
    }

    /// `program` to be run in namespace `ns`.
    fn exec_in(ns: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns, program]);
        command
    }

    /// Starts a server in A (its output goes to `log`) and waits until `port` accepts
    /// connections from B.
    fn start_server(
        &mut self,
        name: &'static str,
        program: &str,
        args: &[&str],
        log: PathBuf,
        port: u16,
    ) -> anyhow::Result<()> {
        let out = fs::File::create(&log)?;
        let child = Self::exec_in(&self.a, program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.servers.push((name, child, log.clone()));
        let deadline = Instant::now() + Duration::from_secs(15);
        let probe = format!("exec 3<>/dev/tcp/{ADDR_A}/{port}");
        loop {
            let up = Self::exec_in(&self.b, "bash")
                .args(["-c", &probe])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|st| st.success());
            if up {
                return Ok(());
            }
            let exited = self
                .servers
                .last_mut()
                .and_then(|(_, child, _)| child.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let text = fs::read_to_string(&log).unwrap_or_default();
                bail!(
                    "{name} did not start listening on {ADDR_A}:{port} ({}); its log:\n{text}",
                    exited.map_or("timed out".to_owned(), |st| st.to_string())
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `program args` in B and returns its wall time (dirty pages flushed first).
    fn timed_in_b(&self, program: &str, args: &[&str]) -> anyhow::Result<f64> {
        check_stopped()?;
        let mut all = vec!["ip", "netns", "exec", &self.b, program];
        all.extend_from_slice(args);
        timed_cmd(&all)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (name, child, _) in &mut self.servers {
            if let Err(err) = child.kill() {
                eprintln!("bench: could not kill {name}: {err}");
            }
            let _ = child.wait();
        }
        remove_netns(&self.a);
        remove_netns(&self.b);
        if let Ok(mut active) = ACTIVE.lock() {
            active.retain(|ns| *ns != self.a && *ns != self.b);
        }
    }
}

/// `path`, or `name` found on `PATH` or in /usr/sbin and /sbin.
fn find_program(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("`{name}` is required by this benchmark but was not found"))
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))
}

/// A fresh cluster secret (64 hex digits) in `path`.
fn write_secret(path: &Path) -> anyhow::Result<()> {
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(path, &format!("{text}\n"))
}

/// Starts sshd in A with throwaway keys in `dir`; returns rsync's `-e` command.
fn start_sshd(lab: &mut Lab, dir: &Path) -> anyhow::Result<String> {
    let sshd = find_program("sshd")?;
    find_program("ssh")?;
    fs::create_dir(dir)?;
    for key in ["host_key", "client_key"] {
        let path = dir.join(key);
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f", s(&path)])
            .status()
            .context("running ssh-keygen")?;
        if !status.success() {
            bail!("ssh-keygen failed: {status}");
        }
    }
    fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys"))?;
    let config = dir.join("sshd_config");
    write_private(
        &config,
        &format!(
            "ListenAddress {ADDR_A}:{SSH_PORT}\nHostKey {}\nAuthorizedKeysFile {}\n\
             PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile none\n",
            s(&dir.join("host_key")),
            s(&dir.join("authorized_keys")),
        ),
    )?;
    // sshd refuses to start without its privilege separation directory.
    fs::create_dir_all("/run/sshd")?;
    lab.start_server(
        "sshd",
        s(&sshd),
        &["-D", "-e", "-f", s(&config)],
        dir.join("sshd.log"),
        SSH_PORT,
    )?;
    Ok(format!(
        "ssh -i {} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no \
         -o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR",
        s(&dir.join("client_key"))
    ))
}

/// Starts an rsync daemon in A serving `src` read-only as module `bench`.
fn start_rsyncd(lab: &mut Lab, root: &Path, src: &Path) -> anyhow::Result<()> {
    let config = root.join("rsyncd.conf");
    write_private(
        &config,
        &format!(
            "use chroot = no\nlog file = {}\n[{RSYNC_MODULE}]\n    path = {}\n    \
             read only = yes\n    uid = root\n    gid = root\n",
            s(&root.join("rsyncd.log")),
            s(src)
        ),
    )?;
    let port = RSYNC_PORT.to_string();
    lab.start_server(
        "rsync daemon",
        "rsync",
        &[
            "--daemon",
            "--no-detach",
            "--config",
            s(&config),
            "--address",
            ADDR_A,
            "--port",
            &port,
        ],
        root.join("rsyncd.out"),
        RSYNC_PORT,
    )
}

/// Runs the four steps and returns one row each.
pub fn run(settings: &PeerBench) -> anyhow::Result<PeerResults> {
    require_tool("rsync")?;
    find_program("ip")?;
    find_program("bash")?;
    find_program("ssh-keygen")?;
    let dir = settings.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    fs::create_dir_all(&dir)?;
    let scratch = tempfile::tempdir_in(&dir)?;
    // The endpoint admits a root by its exact path: make it absolute and plain.
    let root = scratch.path().canonicalize()?;
    let result = run_in(&root, settings);
    // The replica is read-only: remove it with the engine, then the rest.
    if let Ok(replica) = ReplicaDir::open(&root.join("replica")) {
        let _ = replica.remove();
    }
    drop(scratch);
    result
}

fn run_in(root: &Path, settings: &PeerBench) -> anyhow::Result<PeerResults> {
    let mut rng = Rng(settings.seed.max(1));
    let pool = root.join("pool");
    let src = pool.join("shares").join(SHARE);
    fs::create_dir_all(&src)?;
    eprintln!("building the source tree in {} ...", src.display());
    let paths = build_tree(&src, settings.files, settings.big_gib, &mut rng)?;
    check_stopped()?;

    let mut lab = Lab::create()?;
    let secret = root.join("cluster-secret");
    write_secret(&secret)?;
    let exe = std::env::current_exe().context("the path of this program")?;
    let listen = format!("{ADDR_A}:{PEER_PORT}");
    lab.start_server(
        "shoal bench peer-serve",
        s(&exe),
        &[
            "bench",
            "peer-serve",
            "--pool",
            s(&pool),
            "--listen",
            &listen,
            "--secret-file",
            s(&secret),
        ],
        root.join("peer-serve.log"),
        PEER_PORT,
    )?;
    let ssh = start_sshd(&mut lab, &root.join("ssh"))?;
    start_rsyncd(&mut lab, root, &src)?;

    let ssh_dst = format!("{}/", s(&root.join("rsync-ssh")));
    let daemon_dst = format!("{}/", s(&root.join("rsync-daemon")));
    let ssh_src = format!("root@{ADDR_A}:{}/", s(&src));
    let daemon_src = format!("rsync://{ADDR_A}/{RSYNC_MODULE}/");
    let replica = root.join("replica");
    let rsync = |extra: &[&str], from: &str, to: &str| -> anyhow::Result<f64> {
        let mut args = vec!["-a"];
        args.extend_from_slice(extra);
        if from == ssh_src {
            args.extend(["-e", ssh.as_str()]);
        }
        args.extend([from, to]);
        lab.timed_in_b("rsync", &args)
    };
    let shoal = || -> anyhow::Result<(f64, PeerSyncReport)> {
        check_stopped()?;
        let args = [
            "bench",
            "peer-sync",
            "--replica",
            s(&replica),
            "--peer",
            &listen,
            "--root",
            s(&src),
            "--secret-file",
            s(&secret),
        ];
        flush();
        let started = Instant::now();
        let out = Lab::exec_in(&lab.b, s(&exe))
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .context("running shoal bench peer-sync")?;
        let secs = started.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!("shoal bench peer-sync failed: {}", out.status);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().last().unwrap_or_default();
        let report = serde_json::from_str(line)
            .with_context(|| format!("reading the report of shoal bench peer-sync: {line:?}"))?;
        Ok((secs, report))
    };
    // What a connection costs rsync over ssh before any file: key exchange, authentication
    // and a remote command.
    let mut ssh_args: Vec<&str> = ssh.split(' ').skip(1).collect();
    let login = format!("root@{ADDR_A}");
    ssh_args.extend([login.as_str(), "true"]);
    let ssh_connect = lab.timed_in_b("ssh", &ssh_args)?;
    let mut rows = Vec::new();
    let mut step = |name: &'static str, extra: &[&str]| -> anyhow::Result<()> {
        eprintln!("{name} ...");
        let ssh = rsync(extra, &ssh_src, &ssh_dst)?;
        let daemon = rsync(extra, &daemon_src, &daemon_dst)?;
        let (shoal, report) = shoal()?;
        rows.push(PeerRow {
            step: name,
            shoal,
            ssh,
            daemon,
            report,
        });
        Ok(())
    };

    // 1. Initial, each into a fresh destination.
    step("initial", &[])?;
    // 2. 1% of the files changed (half overwritten at the start, half appended to).
    change_files(&paths, &mut rng)?;
    step("1% of files changed", &[])?;
    // 3. Nothing changed.
    step("nothing changed", &[])?;
    // 4. 4 KiB in the middle of the big file.
    if settings.big_gib > 0 {
        change_big(&src, settings.big_gib, &mut rng)?;
        step(
            "4 KiB changed in the big file",
            &["--inplace", "--no-whole-file"],
        )?;
    }
    drop(lab);
    let diffs = ReplicaDir::open(&replica)?.verify_against(&src)?;
    if !diffs.is_empty() {
        bail!(
            "the replica differs from the source: {:?}",
            &diffs[..diffs.len().min(5)]
        );
    }
    eprintln!("the replica matches the source");
    Ok(PeerResults { rows, ssh_connect })
}

/// Prints the rows as a Markdown table.
pub fn print(results: &PeerResults) {
    let rows = &results.rows;
    println!(
        "| step | shoal s | (sync inside) | rsync over ssh s | rsync daemon s | shoal/ssh | \
         shoal/daemon | files sent | bytes sent | wire bytes |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2} | {:.2} | {} | {} | {} |",
            r.step,
            r.shoal,
            r.report.seconds,
            r.ssh,
            r.daemon,
            r.shoal / r.ssh,
            r.shoal / r.daemon,
            r.report.files_transferred,
            r.report.bytes_transferred,
            r.report.wire_bytes
        );
    }
    if let Some(first) = rows.first() {
        println!(
            "\nsource: {} entries, {:.2} GB",
            first.report.files_total,
            first.report.bytes_total as f64 / 1e9
        );
    }
    println!(
        "`ssh root@A true` from B (connection alone): {:.3} s",
        results.ssh_connect
    );
}
