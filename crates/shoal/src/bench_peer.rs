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
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use shoal_core::Config;
use shoal_replication::peer_auth::ClusterKey;
use shoal_replication::transport::{ClientOptions, PeerClient, RootPolicy, ServerState, router};
use shoal_replication::{ReplicaDir, SyncOptions};

use crate::bench_replication::{
    Rng, build_tree, change_big, change_files, flush, require_tool, s, timed_cmd,
};
use crate::netns::{Lab, LabSpec, check_stopped, find_program};

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

/// Stops a running benchmark (for SIGINT/SIGTERM): see [`crate::netns::interrupt`].
pub fn interrupt() {
    crate::netns::interrupt();
}

/// The lab: A serves, B syncs.
const LAB: LabSpec = LabSpec {
    prefix: NS_PREFIX,
    veth_a: "pba",
    veth_b: "pbb",
    addr_a: ADDR_A,
    addr_b: ADDR_B,
};

/// Runs `program args` in B and returns its wall time (dirty pages flushed first).
fn timed_in_b(lab: &Lab, program: &str, args: &[&str]) -> anyhow::Result<f64> {
    check_stopped()?;
    let mut all = vec!["ip", "netns", "exec", &lab.b, program];
    all.extend_from_slice(args);
    timed_cmd(&all)
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

    let mut lab = Lab::create(LAB)?;
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
        timed_in_b(&lab, "rsync", &args)
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
    let ssh_connect = timed_in_b(&lab, "ssh", &ssh_args)?;
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
