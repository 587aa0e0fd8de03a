//! `shoal bench nfs`: the embedded NFSv3 server (`shoal-nfs`) against NFS-Ganesha (Debian
//! `nfs-ganesha` and `nfs-ganesha-vfs`, with `rpcbind`), exporting the same directory,
//! driven by the same client over the same path, in one run: a sequential write and a
//! sequential read of one large file, and the creation of many small files.
//!
//! The lab ([`crate::netns`]): namespace S (10.78.0.1) serves, namespace C (10.78.0.2) is
//! the client's side, joined by a veth pair. In S run Ganesha (NFS 2049, MOUNT 20048, with
//! its own rpcbind on 111 in a private mount namespace, so that its registrations stay out
//! of the host's rpcbind) and `shoal bench nfs-serve` (NFS and MOUNT on 12049). Both export
//! `<scratch>/export`. The client is `nfs3_client` in this process: a thread enters C
//! (`setns`) and runs its own tokio runtime there, so every socket it opens crosses the
//! veth to S, for both servers alike. One `Nfs3Client` does one call at a time, so the
//! client mounts each server once per stream (`--streams` TCP connections) and spreads
//! each workload over them.
//!
//! Each run does, for one server then the other (the order alternates between runs):
//! 1. sequential write: CREATE, WRITE UNSTABLE in io-size chunks (each stream writes its
//!    own contiguous range), then COMMIT; the time includes the COMMIT;
//! 2. sequential read of that file, after `sync` and dropping the page cache (so that both
//!    servers read from the disk);
//! 3. MKDIR, then per small file CREATE UNCHECKED and one WRITE FILE_SYNC (what the Linux
//!    client sends on close when the dirty data fits one WRITE and nothing waits for a
//!    COMMIT: `FLUSH_COND_STABLE` in fs/nfs/write.c), files spread over the streams.
//!
//! Before each server's turn the export is emptied (locally, outside the timings) and
//! dirty pages are flushed; names are unique per run and server, so no server ever sees a
//! name it cached earlier. The medians over the runs are reported.

use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nfs3_client::net::Connector;
use nfs3_client::nfs3_types::nfs3::{
    COMMIT3args, CREATE3args, FSINFO3args, MKDIR3args, Nfs3Option, Nfs3Result, READ3args,
    WRITE3args, createhow3, diropargs3, nfs_fh3, sattr3, stable_how,
};
use nfs3_client::nfs3_types::rpc::{auth_unix, opaque_auth};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use nfs3_client::tokio::TokioIo;
use nfs3_client::{Nfs3Client, Nfs3ConnectionBuilder};
use serde::Serialize;
use shoal_nfs::{ClientRule, ExportRoot, ExportSpec, Exports, NfsServer};
use tokio::net::{TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::bench_replication::{flush, s};
use crate::netns::{Lab, LabSpec, check_stopped, find_program};

/// Instance id of the export `nfs-serve` serves (`/shares/<id>`).
pub const INSTANCE: &str = "0c5e7a52-41d8-4b7e-9a0f-6d2b8c3e1f94";
/// Address of namespace S (both servers).
const ADDR_S: &str = "10.78.0.1";
/// Address of namespace C (the client).
const ADDR_C: &str = "10.78.0.2";
/// The clients `nfs-serve` admits read-write.
const CLIENTS: &str = "10.78.0.0/24";
/// NFS and MOUNT port of `shoal bench nfs-serve`.
const SHOAL_PORT: u16 = 12049;
/// Ganesha's standard ports.
const GANESHA_NFS_PORT: u16 = 2049;
const GANESHA_MOUNT_PORT: u16 = 20048;
/// The lab: S serves, C is the client's side.
const LAB: LabSpec = LabSpec {
    prefix: "shoalnb-",
    veth_a: "nbs",
    veth_b: "nbc",
    addr_a: ADDR_S,
    addr_b: ADDR_C,
};
/// No single call of the workloads takes this long unless a server hangs.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// Settings of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfsBench {
    /// Scratch directory (default: a temp dir under the current directory).
    pub dir: Option<PathBuf>,
    /// Bytes of the large file.
    pub size: u64,
    /// Bytes per READ and WRITE of the large file (capped by the server's rtmax/wtmax).
    pub io_size: u64,
    /// Small files.
    pub files: usize,
    /// Bytes per small file.
    pub file_size: u64,
    /// TCP connections (each with its own mount) the client uses at once.
    pub streams: usize,
    /// Repetitions; medians are reported.
    pub runs: usize,
}

impl NfsBench {
    fn validate(&self) -> anyhow::Result<()> {
        if self.size == 0 || self.io_size == 0 || self.streams == 0 || self.runs == 0 {
            bail!("--size, --io-size, --streams and --runs must be positive");
        }
        if self.io_size > 1 << 20 || self.file_size > 1 << 20 {
            bail!("--io-size and --file-size are at most 1 MiB (one WRITE)");
        }
        Ok(())
    }
}

/// Parses a size: a whole number with an optional unit, `K`/`KiB`, `M`/`MiB`, `G`/`GiB`
/// (powers of 1024), `KB`, `MB`, `GB` (powers of 1000) or `B`; case-insensitive.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size (e.g. 4096, 4KiB, 1GiB)"))?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        other => return Err(format!("unknown size unit {other:?} in {text:?}")),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// `shoal bench nfs-serve`: serves `dir` as the export of [`INSTANCE`] to `clients`
/// (read-write) on `listen` until `shutdown` completes. Prints `listening on <addr>` once
/// bound.
pub async fn serve(
    dir: &Path,
    listen: SocketAddr,
    clients: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let exports = Exports::new();
    let spec = ExportSpec {
        root: ExportRoot::Directory(dir.to_path_buf()),
        read_only: false,
        rules: vec![ClientRule::parse(clients, "rw").map_err(anyhow::Error::msg)?],
        quota_bytes: None,
    };
    let registry = exports.clone();
    // Registering walks the tree (usage): blocking work.
    tokio::task::spawn_blocking(move || registry.export(INSTANCE, spec)).await??;
    let server = NfsServer::bind(listen, exports).await?;
    println!("listening on {}", server.local_addr());
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        shutdown.await;
        stop.cancel();
    });
    server.run(cancel).await;
    Ok(())
}

/// The servers compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Server {
    Ganesha,
    Shoal,
}

impl Server {
    fn name(self) -> &'static str {
        match self {
            Server::Ganesha => "Ganesha",
            Server::Shoal => "shoal",
        }
    }

    /// (NFS port, MOUNT port, mount path).
    fn endpoint(self, export: &Path) -> (u16, u16, String) {
        match self {
            // Ganesha's MOUNT path for NFSv3 is the export's `Path`.
            Server::Ganesha => (GANESHA_NFS_PORT, GANESHA_MOUNT_PORT, s(export).to_owned()),
            Server::Shoal => (SHOAL_PORT, SHOAL_PORT, Exports::export_path(INSTANCE)),
        }
    }
}

/// The workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    SeqWrite,
    SeqRead,
    SmallFiles,
}

/// One measurement.
#[derive(Debug, Clone)]
pub struct Sample {
    pub run: usize,
    pub server: Server,
    pub workload: Workload,
    pub seconds: f64,
}

/// What a run measured, with what it needs to print.
#[derive(Debug, Clone)]
pub struct NfsResults {
    pub settings: NfsBench,
    pub samples: Vec<Sample>,
    /// Per server: (rtmax, wtmax) from FSINFO, and the io size used for reads and writes.
    pub limits: Vec<(Server, u32, u32, u64, u64)>,
    /// Lines about the machine and the setup.
    pub notes: Vec<String>,
}

/// A connector that sets TCP_NODELAY, like the kernel's RPC client: a call must leave at
/// once, not wait for the ACK of the previous one.
pub(crate) struct NoDelay;

impl Connector for NoDelay {
    type Connection = TokioIo<TcpStream>;

    async fn connect(&self, addr: SocketAddr) -> std::io::Result<Self::Connection> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(TokioIo::new(stream))
    }

    async fn connect_with_port(
        &self,
        addr: SocketAddr,
        local_port: u16,
    ) -> std::io::Result<Self::Connection> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(
            IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            local_port,
        ))?;
        let stream = socket.connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(TokioIo::new(stream))
    }
}

pub(crate) type Client = Nfs3Client<TokioIo<TcpStream>>;

/// One mounted TCP connection.
pub(crate) struct Stream {
    pub(crate) nfs: Client,
    pub(crate) root: nfs_fh3,
}

/// Awaits one call with [`CALL_TIMEOUT`].
pub(crate) async fn call<T, E: std::fmt::Display>(
    what: &str,
    fut: impl Future<Output = Result<T, E>>,
) -> anyhow::Result<T> {
    match tokio::time::timeout(CALL_TIMEOUT, fut).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => bail!("{what}: {err}"),
        Err(_) => bail!("{what}: no reply in {CALL_TIMEOUT:?}"),
    }
}

pub(crate) fn ok<T, E>(what: &str, result: Nfs3Result<T, E>) -> anyhow::Result<T> {
    match result {
        Nfs3Result::Ok(ok) => Ok(ok),
        Nfs3Result::Err((status, _)) => bail!("{what}: {status:?}"),
    }
}

pub(crate) fn dirop<'a>(dir: &nfs_fh3, name: &'a str) -> diropargs3<'a> {
    diropargs3 {
        dir: dir.clone(),
        name: name.as_bytes().into(),
    }
}

pub(crate) fn mode(mode: u32) -> sattr3 {
    sattr3 {
        mode: Nfs3Option::Some(mode),
        ..Default::default()
    }
}

/// Mounts `server` `streams` times; returns the connections and FSINFO's (rtmax, wtmax).
async fn mount_all(
    server: Server,
    export: &Path,
    streams: usize,
) -> anyhow::Result<(Vec<Stream>, u32, u32)> {
    let (nfs_port, mount_port, path) = server.endpoint(export);
    // uid 0: Ganesha applies the credential (No_Root_Squash); shoal ignores it.
    let cred = opaque_auth::auth_unix(&auth_unix {
        stamp: 1,
        machinename: Opaque::borrowed(b"shoal-bench"),
        uid: 0,
        gid: 0,
        gids: vec![],
    });
    let mut out = Vec::with_capacity(streams);
    for _ in 0..streams {
        let conn = Nfs3ConnectionBuilder::new(NoDelay, ADDR_S, &path)
            .mount_port(mount_port)
            .nfs3_port(nfs_port)
            .connect_from_privileged_port(true)
            .credential(cred.clone())
            .mount();
        let conn = call(&format!("mounting {path} from {}", server.name()), conn).await?;
        let root = conn.root_nfs_fh3();
        out.push(Stream {
            nfs: conn.into_nfs3_client(),
            root,
        });
    }
    let first = &mut out[0];
    let info = FSINFO3args {
        fsroot: first.root.clone(),
    };
    let info = ok("FSINFO", call("FSINFO", first.nfs.fsinfo(&info)).await?)?;
    Ok((out, info.rtmax, info.wtmax))
}

/// Splits `0..size` into at most `n` contiguous ranges on `io` boundaries.
pub fn split_ranges(size: u64, io: u64, n: usize) -> Vec<(u64, u64)> {
    let chunks = size.div_ceil(io);
    let per = chunks.div_ceil(n as u64).max(1);
    (0..n as u64)
        .map(|k| ((k * per * io).min(size), ((k + 1) * per * io).min(size)))
        .filter(|(lo, hi)| lo < hi)
        .collect()
}

/// Runs `work` on every stream at once (each on its own task) and gives the streams back.
async fn on_all<F, Fut>(streams: &mut Vec<Stream>, work: F) -> anyhow::Result<()>
where
    F: Fn(usize, Stream) -> Fut,
    Fut: Future<Output = (Stream, anyhow::Result<()>)> + Send + 'static,
{
    let tasks: Vec<_> = streams
        .drain(..)
        .enumerate()
        .map(|(k, stream)| tokio::spawn(work(k, stream)))
        .collect();
    let mut first_err = None;
    for task in tasks {
        let (stream, result) = task.await?;
        streams.push(stream);
        if let Err(err) = result {
            first_err.get_or_insert(err);
        }
    }
    first_err.map_or(Ok(()), Err)
}

pub(crate) async fn create(s: &mut Stream, dir: &nfs_fh3, name: &str) -> anyhow::Result<nfs_fh3> {
    let args = CREATE3args {
        where_: dirop(dir, name),
        how: createhow3::UNCHECKED(mode(0o644)),
    };
    let res = ok("CREATE", call("CREATE", s.nfs.create(&args)).await?)?;
    match res.obj {
        Nfs3Option::Some(fh) => Ok(fh),
        Nfs3Option::None => bail!("CREATE {name}: no handle in the reply"),
    }
}

/// Sequential write of `size` bytes to a new file `name`; returns seconds and its handle.
async fn seq_write(
    streams: &mut Vec<Stream>,
    name: &str,
    size: u64,
    io: u64,
    pattern: Arc<Vec<u8>>,
) -> anyhow::Result<(f64, nfs_fh3)> {
    let started = Instant::now();
    let root = streams[0].root.clone();
    let fh = create(&mut streams[0], &root, name).await?;
    let ranges = split_ranges(size, io, streams.len());
    let verfs = Arc::new(std::sync::Mutex::new(Vec::new()));
    on_all(streams, |k, mut s| {
        let (fh, pattern, verfs) = (fh.clone(), pattern.clone(), verfs.clone());
        let range = ranges.get(k).copied();
        async move {
            let result = async {
                let Some((lo, hi)) = range else {
                    return Ok(());
                };
                let mut buf = pattern[..io as usize].to_vec();
                let mut offset = lo;
                while offset < hi {
                    let count = io.min(hi - offset) as usize;
                    // Every chunk carries its offset, which the read checks.
                    buf[..8].copy_from_slice(&offset.to_be_bytes());
                    let args = WRITE3args {
                        file: fh.clone(),
                        offset,
                        count: count as u32,
                        stable: stable_how::UNSTABLE,
                        data: Opaque::borrowed(&buf[..count]),
                    };
                    let res = ok("WRITE", call("WRITE", s.nfs.write(&args)).await?)?;
                    if res.count as usize != count {
                        bail!("WRITE at {offset}: {} of {count} bytes written", res.count);
                    }
                    verfs.lock().expect("not poisoned").push(res.verf.0);
                    offset += count as u64;
                }
                Ok(())
            }
            .await;
            (s, result)
        }
    })
    .await?;
    let args = COMMIT3args {
        file: fh.clone(),
        offset: 0,
        count: 0,
    };
    let res = ok(
        "COMMIT",
        call("COMMIT", streams[0].nfs.commit(&args)).await?,
    )?;
    let seconds = started.elapsed().as_secs_f64();
    if verfs
        .lock()
        .expect("not poisoned")
        .iter()
        .any(|v| *v != res.verf.0)
    {
        bail!("the write verifier changed during the write (did the server restart?)");
    }
    Ok((seconds, fh))
}

/// Sequential read of the `size` bytes of `fh`, checking each chunk's offset stamp.
async fn seq_read(
    streams: &mut Vec<Stream>,
    fh: &nfs_fh3,
    size: u64,
    io: u64,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let ranges = split_ranges(size, io, streams.len());
    on_all(streams, |k, mut s| {
        let fh = fh.clone();
        let range = ranges.get(k).copied();
        async move {
            let result = async {
                let Some((lo, hi)) = range else {
                    return Ok(());
                };
                let mut offset = lo;
                while offset < hi {
                    let count = io.min(hi - offset);
                    let args = READ3args {
                        file: fh.clone(),
                        offset,
                        count: count as u32,
                    };
                    let res = ok("READ", call("READ", s.nfs.read(&args)).await?)?;
                    let data = res.data.as_ref();
                    if u64::from(res.count) != count || data.len() as u64 != count {
                        bail!("READ at {offset}: {} of {count} bytes", data.len());
                    }
                    if count >= 8 && data[..8] != offset.to_be_bytes() {
                        bail!("READ at {offset}: not the data written there");
                    }
                    offset += count;
                }
                Ok(())
            }
            .await;
            (s, result)
        }
    })
    .await?;
    Ok(started.elapsed().as_secs_f64())
}

/// MKDIR `name`, then `files` files of `file_size` bytes in it (CREATE UNCHECKED + one
/// WRITE FILE_SYNC each), spread over the streams.
async fn small_files(
    streams: &mut Vec<Stream>,
    name: &str,
    files: usize,
    file_size: u64,
    pattern: Arc<Vec<u8>>,
) -> anyhow::Result<f64> {
    let started = Instant::now();
    let root = streams[0].root.clone();
    let args = MKDIR3args {
        where_: dirop(&root, name),
        attributes: mode(0o755),
    };
    let res = ok("MKDIR", call("MKDIR", streams[0].nfs.mkdir(&args)).await?)?;
    let Nfs3Option::Some(dir) = res.obj else {
        bail!("MKDIR {name}: no handle in the reply");
    };
    let n = streams.len();
    on_all(streams, |k, mut s| {
        let (dir, pattern) = (dir.clone(), pattern.clone());
        async move {
            let result = async {
                for i in (k..files).step_by(n) {
                    let fh = create(&mut s, &dir, &format!("f{i:06}")).await?;
                    if file_size == 0 {
                        continue;
                    }
                    let args = WRITE3args {
                        file: fh,
                        offset: 0,
                        count: file_size as u32,
                        stable: stable_how::FILE_SYNC,
                        data: Opaque::borrowed(&pattern[..file_size as usize]),
                    };
                    let res = ok("WRITE", call("WRITE", s.nfs.write(&args)).await?)?;
                    if u64::from(res.count) != file_size || res.committed != stable_how::FILE_SYNC {
                        bail!(
                            "WRITE FILE_SYNC of f{i:06}: {} bytes, {}",
                            res.count,
                            res.committed
                        );
                    }
                }
                Ok(())
            }
            .await;
            (s, result)
        }
    })
    .await?;
    Ok(started.elapsed().as_secs_f64())
}

/// `sync`, then drops the page cache, dentries and inodes (both servers then read from
/// the disk).
fn drop_caches() -> anyhow::Result<()> {
    flush();
    fs::write("/proc/sys/vm/drop_caches", "3").context("dropping the page cache")
}

/// Removes everything in `dir` (not `dir`).
fn empty_dir(dir: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        }
        .with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// Runs `f` on a new thread inside network namespace `ns` (`/run/netns/<ns>`): every
/// socket it, and the threads it starts, opens is in that namespace.
fn in_netns<T: Send>(ns: &str, f: impl FnOnce() -> anyhow::Result<T> + Send) -> anyhow::Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let handle = fs::File::open(format!("/run/netns/{ns}"))
                    .with_context(|| format!("opening namespace {ns}"))?;
                nix::sched::setns(&handle, nix::sched::CloneFlags::CLONE_NEWNET)
                    .with_context(|| format!("entering namespace {ns}"))?;
                f()
            })
            .join()
            .unwrap_or_else(|_| bail!("the client thread panicked"))
    })
}

fn text_of(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "?".to_owned())
}

/// Starts rpcbind and Ganesha in S, exporting `export`; config and logs in `root`.
fn start_ganesha(lab: &mut Lab, root: &Path, export: &Path) -> anyhow::Result<()> {
    let ganesha = find_program("ganesha.nfsd")?;
    let rpcbind = find_program("rpcbind")?;
    let unshare = find_program("unshare")?;
    let conf = root.join("ganesha.conf");
    fs::write(
        &conf,
        format!(
            "NFS_CORE_PARAM {{ Protocols = 3; NFS_Port = {GANESHA_NFS_PORT}; \
             MNT_Port = {GANESHA_MOUNT_PORT}; Enable_NLM = false; Enable_RQUOTA = false; }}\n\
             NFSV4 {{ Graceless = true; }}\n\
             EXPORT {{ Export_Id = 1; Path = {export}; Pseudo = /export; Protocols = 3; \
             Transports = TCP; Access_Type = RW; Squash = No_Root_Squash; SecType = sys; \
             FSAL {{ Name = VFS; }} }}\n\
             LOG {{ Default_Log_Level = EVENT; }}\n",
            export = s(export)
        ),
    )?;
    // rpcbind's socket directory must be private to this mount namespace: Ganesha registers
    // through the socket it finds there, and must find this namespace's rpcbind.
    let script = format!(
        "set -e; mkdir -p /run/rpcbind; mount -t tmpfs tmpfs /run/rpcbind; \
         {rpcbind} -w -f & \
         for i in $(seq 200); do [ -S /run/rpcbind/rpcbind.sock ] && break; sleep 0.05; done; \
         exec {ganesha} -F -f {conf} -L {log} -p {pid}",
        rpcbind = s(&rpcbind),
        ganesha = s(&ganesha),
        conf = s(&conf),
        log = s(&root.join("ganesha.log")),
        pid = s(&root.join("ganesha.pid")),
    );
    lab.start_server(
        "ganesha.nfsd",
        s(&unshare),
        &["-m", "bash", "-c", &script],
        root.join("ganesha.out"),
        GANESHA_NFS_PORT,
    )?;
    lab.wait_listening(GANESHA_MOUNT_PORT)
}

/// Runs the benchmark: the lab, both servers, `runs` rounds of the three workloads.
pub fn run(settings: &NfsBench) -> anyhow::Result<NfsResults> {
    settings.validate()?;
    find_program("ip")?;
    find_program("bash")?;
    let dir = settings.dir.clone().unwrap_or_else(|| PathBuf::from("."));
    fs::create_dir_all(&dir)?;
    let scratch = tempfile::tempdir_in(&dir)?;
    let root = scratch.path().canonicalize()?;
    let export = root.join("export");
    fs::create_dir(&export)?;

    let mut lab = Lab::create(LAB)?;
    start_ganesha(&mut lab, &root, &export)?;
    let exe = std::env::current_exe().context("the path of this program")?;
    let listen = format!("{ADDR_S}:{SHOAL_PORT}");
    lab.start_server(
        "shoal bench nfs-serve",
        s(&exe),
        &[
            "bench",
            "nfs-serve",
            "--dir",
            s(&export),
            "--listen",
            &listen,
            "--client",
            CLIENTS,
        ],
        root.join("nfs-serve.log"),
        SHOAL_PORT,
    )?;

    let mut notes = vec![
        format!(
            "command: {}",
            std::env::args().collect::<Vec<_>>().join(" ")
        ),
        format!(
            "kernel {}, {} CPUs, export dir {} on {} (shared by both servers, emptied before \
             each server's turn)",
            fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim(),
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            export.display(),
            text_of("findmnt", &["-n", "-o", "FSTYPE", "--target", s(&export)]),
        ),
        format!(
            "NFS-Ganesha {} (VFS FSAL), rpcbind {}; both servers in namespace S, the client \
             (nfs3_client, {} TCP connections per server, AUTH_UNIX) in namespace C, over a \
             veth pair",
            text_of("dpkg-query", &["-W", "-f", "${Version}", "nfs-ganesha"]),
            text_of("dpkg-query", &["-W", "-f", "${Version}", "rpcbind"]),
            settings.streams,
        ),
        "reads follow `sync` and `echo 3 > /proc/sys/vm/drop_caches`: both servers read \
         from the disk"
            .to_owned(),
    ];
    let netns = lab.b.clone();
    let result = in_netns(&netns, || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        runtime.block_on(workloads(settings, &export))
    });
    drop(lab);
    let (samples, limits) = result?;
    notes.push(format!(
        "small files: CREATE UNCHECKED + one WRITE FILE_SYNC of {} bytes each",
        settings.file_size
    ));
    Ok(NfsResults {
        settings: settings.clone(),
        samples,
        limits,
        notes,
    })
}

type Limits = Vec<(Server, u32, u32, u64, u64)>;

async fn workloads(settings: &NfsBench, export: &Path) -> anyhow::Result<(Vec<Sample>, Limits)> {
    // Not all zeros, so that no layer can shortcut the data.
    let mut pattern = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for chunk in pattern.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    let pattern = Arc::new(pattern);
    let mut mounted = Vec::new();
    let mut limits = Vec::new();
    for server in [Server::Ganesha, Server::Shoal] {
        let (streams, rtmax, wtmax) = mount_all(server, export, settings.streams).await?;
        let (read_io, write_io) = (
            settings.io_size.min(u64::from(rtmax)),
            settings.io_size.min(u64::from(wtmax)),
        );
        limits.push((server, rtmax, wtmax, read_io, write_io));
        mounted.push((server, streams, read_io, write_io));
    }
    let mut samples = Vec::new();
    for run in 1..=settings.runs {
        // Alternate the order so that neither server always goes first.
        let order: Vec<usize> = if run % 2 == 1 { vec![0, 1] } else { vec![1, 0] };
        for i in order {
            let (server, streams, read_io, write_io) = &mut mounted[i];
            let server = *server;
            let tag = format!("{}-{run}", server.name().to_lowercase());
            check_stopped()?;
            empty_dir(export)?;
            flush();
            eprintln!("run {run}, {}: sequential write ...", server.name());
            let (seconds, fh) = seq_write(
                streams,
                &format!("big-{tag}"),
                settings.size,
                *write_io,
                pattern.clone(),
            )
            .await?;
            samples.push(Sample {
                run,
                server,
                workload: Workload::SeqWrite,
                seconds,
            });
            check_stopped()?;
            drop_caches()?;
            eprintln!("run {run}, {}: sequential read ...", server.name());
            let seconds = seq_read(streams, &fh, settings.size, *read_io).await?;
            samples.push(Sample {
                run,
                server,
                workload: Workload::SeqRead,
                seconds,
            });
            check_stopped()?;
            flush();
            eprintln!("run {run}, {}: small files ...", server.name());
            let seconds = small_files(
                streams,
                &format!("small-{tag}"),
                settings.files,
                settings.file_size,
                pattern.clone(),
            )
            .await?;
            samples.push(Sample {
                run,
                server,
                workload: Workload::SmallFiles,
                seconds,
            });
        }
    }
    empty_dir(export)?;
    Ok((samples, limits))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => values[n / 2],
        _ => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// One line of the report per workload, also printed as JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub workload: Workload,
    pub unit: &'static str,
    /// Median rate of Ganesha and of shoal (higher is better).
    pub ganesha: f64,
    pub shoal: f64,
    /// shoal / Ganesha.
    pub ratio: f64,
    /// Each run's rate, in run order.
    pub ganesha_runs: Vec<f64>,
    pub shoal_runs: Vec<f64>,
}

/// The rows of the report: rates (MB/s of 10^6 bytes, or files/s), medians over the runs.
pub fn rows(results: &NfsResults) -> Vec<Row> {
    let st = &results.settings;
    [
        (Workload::SeqWrite, "MB/s", st.size as f64 / 1e6),
        (Workload::SeqRead, "MB/s", st.size as f64 / 1e6),
        (Workload::SmallFiles, "files/s", st.files as f64),
    ]
    .into_iter()
    .map(|(workload, unit, amount)| {
        let rates = |server| -> Vec<f64> {
            results
                .samples
                .iter()
                .filter(|s| s.workload == workload && s.server == server)
                .map(|s| amount / s.seconds)
                .collect()
        };
        let (g, sh) = (rates(Server::Ganesha), rates(Server::Shoal));
        let (ganesha, shoal) = (median(g.clone()), median(sh.clone()));
        Row {
            workload,
            unit,
            ganesha,
            shoal,
            ratio: shoal / ganesha,
            ganesha_runs: g,
            shoal_runs: sh,
        }
    })
    .collect()
}

fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 && b % (1 << 30) == 0 => format!("{} GiB", b >> 30),
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

/// Prints the Markdown table, the notes and one JSON line per workload.
pub fn print(results: &NfsResults) {
    let st = &results.settings;
    let rows = rows(results);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| workload | Ganesha | shoal | shoal/Ganesha |\n|---|---:|---:|---:|"
    );
    for row in &rows {
        let label = match row.workload {
            Workload::SeqWrite => format!(
                "sequential write, {} (UNSTABLE + COMMIT), {}",
                size_text(st.size),
                row.unit
            ),
            Workload::SeqRead => format!(
                "sequential read, {} (cold cache), {}",
                size_text(st.size),
                row.unit
            ),
            Workload::SmallFiles => format!(
                "create + write {} × {} files, {}",
                st.files,
                size_text(st.file_size),
                row.unit
            ),
        };
        let _ = writeln!(
            out,
            "| {label} | {:.1} | {:.1} | {:.2} |",
            row.ganesha, row.shoal, row.ratio
        );
    }
    let _ = writeln!(
        out,
        "\nmedians of {} runs, {} streams; per run (Ganesha / shoal):",
        st.runs, st.streams
    );
    for row in &rows {
        let runs = |v: &[f64]| {
            v.iter()
                .map(|r| format!("{r:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "- {:?}: {} / {}",
            row.workload,
            runs(&row.ganesha_runs),
            runs(&row.shoal_runs)
        );
    }
    for (server, rtmax, wtmax, read_io, write_io) in &results.limits {
        let _ = writeln!(
            out,
            "- {}: FSINFO rtmax {rtmax}, wtmax {wtmax}; READ {read_io} and WRITE {write_io} \
             bytes per call",
            server.name()
        );
    }
    for note in &results.notes {
        let _ = writeln!(out, "- {note}");
    }
    print!("{out}");
    for row in &rows {
        if let Ok(line) = serde_json::to_string(row) {
            println!("{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4KiB"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("2gib"), Ok(2 << 30));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("10B"), Ok(10));
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("1 TiB").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999G").is_err());
    }

    #[test]
    fn ranges_cover_the_file_on_io_boundaries() {
        let mib = 1 << 20;
        assert_eq!(
            split_ranges(4 * mib, mib, 4),
            vec![
                (0, mib),
                (mib, 2 * mib),
                (2 * mib, 3 * mib),
                (3 * mib, 4 * mib)
            ]
        );
        // 5 chunks over 4 streams: 2, 2, 1, and the last stream idles.
        assert_eq!(
            split_ranges(5 * mib, mib, 4),
            vec![(0, 2 * mib), (2 * mib, 4 * mib), (4 * mib, 5 * mib)]
        );
        // A tail shorter than one io.
        assert_eq!(split_ranges(mib + 10, mib, 1), vec![(0, mib + 10)]);
        assert_eq!(split_ranges(100, mib, 4), vec![(0, 100)]);
    }

    #[test]
    fn rows_report_medians_and_ratios() {
        let settings = NfsBench {
            dir: None,
            size: 1_000_000_000,
            io_size: 1 << 20,
            files: 1000,
            file_size: 4096,
            streams: 4,
            runs: 3,
        };
        let mut samples = Vec::new();
        for (run, g, sh) in [(1, 2.0, 1.0), (2, 4.0, 2.0), (3, 1.0, 4.0)] {
            for workload in [Workload::SeqWrite, Workload::SeqRead, Workload::SmallFiles] {
                samples.push(Sample {
                    run,
                    server: Server::Ganesha,
                    workload,
                    seconds: g,
                });
                samples.push(Sample {
                    run,
                    server: Server::Shoal,
                    workload,
                    seconds: sh,
                });
            }
        }
        let results = NfsResults {
            settings,
            samples,
            limits: vec![],
            notes: vec![],
        };
        let rows = rows(&results);
        assert_eq!(rows.len(), 3);
        // Ganesha: 500, 250, 1000 MB/s -> 500; shoal: 1000, 500, 250 -> 500.
        assert_eq!(rows[0].ganesha, 500.0);
        assert_eq!(rows[0].shoal, 500.0);
        assert_eq!(rows[0].ratio, 1.0);
        assert_eq!(rows[2].unit, "files/s");
        assert_eq!(rows[2].ganesha, 500.0);
        let json = serde_json::to_string(&rows[2]).unwrap();
        assert!(json.contains("\"workload\":\"small_files\""), "{json}");
        assert_eq!(median(vec![3.0, 1.0, 2.0, 10.0]), 2.5);
    }
}
