//! The answering side: a share node's replication endpoint, serving the data roots of its
//! own active shares to the nodes of their secondaries.
//!
//! Every request must be signed with the cluster secret (see [`crate::peer_auth`]); an
//! unsigned, wrongly signed, stale or replayed request gets 401 before anything is read.
//! Only roots the [`RootPolicy`] admits are served (403 otherwise), and every file is opened
//! with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` below the root, so neither a
//! crafted path nor a symbolic link inside a share can reach anything outside it.
//!
//! Two kinds of request need more of the node than its pools, through hooks the node wires
//! in: `changes` reads the change journal of the active ([`JournalLookup`]) and looks at the
//! paths recorded since the requester's cursor (the same code as a local change-list sync,
//! `crate::changes::answer`); `quiesce` and `unquiesce` stop and restart writes to the
//! active during a promotion on another node ([`QuiesceHook`]). Both go through the same
//! signature check, root policy and epoch fence as the data requests.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};

use super::wire::{self, Trailer};
use super::{ENDPOINTS, signature_from_headers};
use crate::changes;
use crate::copy::{hash_open, read_full_at};
use crate::fsutil;
use crate::journal::ChangeJournal;
use crate::manifest::Writer;
use crate::peer_auth::{ClusterKey, Verifier};
use crate::walk::{self, walk_trees};

/// Largest request body (the block hashes of a delta: 32 bytes per 64 KiB block, so this
/// admits files of 128 GiB).
const MAX_REQUEST_BODY: usize = 64 << 20;

/// Capacity of each outgoing buffer: below `DATA_CHUNK` of frames plus one data frame
/// (the largest reads are `DATA_CHUNK` rounded down to whole blocks).
const SINK_CAPACITY: usize = 2 * wire::DATA_CHUNK + 4096;

/// Listing entries per `L` frame (and at most per `K` frame).
const ENTRIES_PER_FRAME: usize = 512;

/// A `K` frame is closed once it holds this many bytes (one more result is far below
/// `MAX_FRAME`: a path and a link target).
const LOOKED_FRAME_BYTES: usize = 1 << 20;

/// Longest wait for the writes under way that a `quiesce` request gets, whatever it asks.
pub const MAX_QUIESCE_WAIT: Duration = Duration::from_secs(300);

/// Which directories a node serves: the data roots `<pool>/shares/<share-instance-id>` of
/// its own pools, nothing else.
#[derive(Debug, Clone, Default)]
pub struct RootPolicy {
    share_dirs: Vec<PathBuf>,
}

impl RootPolicy {
    /// Serves share data roots in the given pool directories.
    pub fn pools(pools: impl IntoIterator<Item = PathBuf>) -> Self {
        Self {
            share_dirs: pools.into_iter().map(|p| p.join("shares")).collect(),
        }
    }

    /// Whether `root` is a data root this node serves (by its form; the directory itself is
    /// checked when it is opened).
    pub fn allows(&self, root: &Path) -> bool {
        let plain = root.is_absolute()
            && root
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        let id_ok = root
            .file_name()
            .and_then(OsStr::to_str)
            .is_some_and(fsutil::is_canonical_uuid);
        plain
            && id_ok
            && root
                .parent()
                .is_some_and(|p| self.share_dirs.iter().any(|d| d == p))
    }
}

/// Decides whether the data root of share instance `id` may be served as the active
/// replica at `epoch` (the node asks the database); `Err` says why not.
pub type FenceCheck = Arc<
    dyn Fn(String, i64) -> std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
        + Send
        + Sync,
>;

/// The change journal of share instance `id` of this node, if its data plane keeps one.
pub type JournalLookup = Arc<dyn Fn(&str) -> Option<Arc<ChangeJournal>> + Send + Sync>;

/// A request to quiesce or unquiesce an active share instance of this node.
#[derive(Debug, Clone)]
pub struct QuiesceCall {
    /// The share instance.
    pub instance: String,
    /// Its data root, admitted by the [`RootPolicy`].
    pub root: PathBuf,
    /// The replica being promoted in its place (recorded in the marker).
    pub promoting: String,
    /// `Some`: quiesce, waiting at most this long for the writes under way (already bounded
    /// by [`MAX_QUIESCE_WAIT`]); `None`: unquiesce.
    pub wait: Option<Duration>,
}

/// Why a quiesce did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuiesceError {
    /// The writes under way did not finish within the wait; the share stays quiesced until
    /// it is unquiesced.
    #[error("{0}")]
    TimedOut(String),
    /// The node could not do it.
    #[error("{0}")]
    Failed(String),
}

/// Quiesces or unquiesces an active share instance of this node (the data plane's side).
pub type QuiesceHook = Arc<
    dyn Fn(QuiesceCall) -> std::pin::Pin<Box<dyn Future<Output = Result<(), QuiesceError>> + Send>>
        + Send
        + Sync,
>;

/// What the endpoint needs.
pub struct ServerState {
    key: ClusterKey,
    verifier: Verifier,
    roots: RootPolicy,
    journals: Option<JournalLookup>,
    quiesce: Option<QuiesceHook>,
    fence: Option<FenceCheck>,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState")
            .field("roots", &self.roots)
            .field("fenced", &self.fence.is_some())
            .finish_non_exhaustive()
    }
}

impl ServerState {
    /// An endpoint accepting requests signed with `key` whose clocks are within
    /// `max_skew_secs` of ours, serving the roots `roots` admits.
    pub fn new(key: ClusterKey, max_skew_secs: i64, roots: RootPolicy) -> Self {
        Self {
            verifier: Verifier::new(key.clone(), max_skew_secs),
            key,
            roots,
            fence: None,
            journals: None,
            quiesce: None,
        }
    }

    /// Answers `changes` from the journals `lookup` finds; without it every `changes`
    /// request is told to walk.
    pub fn with_journals(mut self, lookup: JournalLookup) -> Self {
        self.journals = Some(lookup);
        self
    }

    /// Carries out `quiesce` and `unquiesce` with `hook`; without it they fail.
    pub fn with_quiesce(mut self, hook: QuiesceHook) -> Self {
        self.quiesce = Some(hook);
        self
    }

    /// Serves a root only when `check` admits its share instance at the request's epoch:
    /// a former active (promoted away while its node was gone) is refused with 409.
    pub fn with_fence(mut self, check: FenceCheck) -> Self {
        self.fence = Some(check);
        self
    }
}

/// The endpoint's routes (`POST /replication/v1/{walk,files,delta,hash,changes,quiesce,
/// unquiesce}`).
pub fn router(state: Arc<ServerState>) -> Router {
    let mut router = Router::new();
    for endpoint in ENDPOINTS {
        router = router.route(&format!("/replication/v1/{endpoint}"), post(handle));
    }
    router
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BODY))
        .with_state(state)
}

fn refuse(status: StatusCode, message: String) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "error": message }).to_string(),
    )
        .into_response()
}

/// Serves one request and counts it by endpoint and status.
async fn handle(
    state: State<Arc<ServerState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Only the fixed endpoints are routed here, so the label set is bounded.
    let endpoint = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
    let response = handle_unmetered(state, uri, headers, body).await;
    crate::metrics::served(endpoint, response.status().as_u16());
    response
}

async fn handle_unmetered(
    State(state): State<Arc<ServerState>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let signature = signature_from_headers(&headers);
    if let Err(err) = state
        .verifier
        .verify(signature.as_ref(), "POST", &path, &body, now)
    {
        tracing::warn!(path, error = %err, "refused a replication request: {err}");
        return refuse(StatusCode::UNAUTHORIZED, err.to_string());
    }
    let nonce = signature.map(|s| s.nonce).unwrap_or_default();
    let endpoint = path.rsplit('/').next().unwrap_or_default().to_owned();
    let Some((epoch, request)) = wire::split_epoch(&body) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("malformed {endpoint} request"),
        );
    };
    let parsed = match endpoint.as_str() {
        "walk" => wire::parse_walk(request).map(Job::Walk),
        "files" => wire::parse_files(request).map(Job::Files),
        "delta" => wire::parse_delta(request).map(Job::Delta),
        "hash" => wire::parse_hash(request).map(|(root, rels)| Job::Hash(root, rels)),
        "changes" => wire::parse_changes(request).map(Job::Changes),
        "quiesce" | "unquiesce" => {
            wire::parse_quiesce(request).map(|q| Job::Quiesce(q, endpoint == "quiesce"))
        }
        _ => None,
    };
    let Some(job) = parsed else {
        return refuse(
            StatusCode::BAD_REQUEST,
            format!("malformed {endpoint} request"),
        );
    };
    let root = PathBuf::from(OsStr::from_bytes(job.root()));
    if !state.roots.allows(&root) {
        tracing::warn!(root = %root.display(), "refused a replication request for {}: not a share data root of this node", root.display());
        return refuse(
            StatusCode::FORBIDDEN,
            format!("{} is not a share data root of this node", root.display()),
        );
    }
    if job.rels().any(|rel| !plain_relative(rel)) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "malformed relative path".to_owned(),
        );
    }
    let instance = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(fence) = &state.fence
        && let Err(reason) = fence(instance.clone(), epoch).await
    {
        tracing::warn!(root = %root.display(), epoch, "refused to serve {} at epoch {epoch}: {reason}", root.display());
        return refuse(StatusCode::CONFLICT, reason);
    }
    let mac = state.key.response_mac(&nonce);
    match job {
        Job::Changes(request) => {
            let journal = state.journals.as_ref().and_then(|lookup| lookup(&instance));
            stream(mac, move |sink| {
                send_changes(&root, journal.as_deref(), request, sink)
            })
        }
        Job::Quiesce(request, on) => {
            let payload = quiesce(&state, instance, root, request, on).await;
            stream(mac, move |sink| sink.frame(wire::TAG_QUIESCE, &payload))
        }
        job => stream(mac, move |sink| job.run(&root, sink)),
    }
}

/// Carries out a `quiesce` (`on`) or `unquiesce` through the node's hook; the `Q` payload.
async fn quiesce(
    state: &ServerState,
    instance: String,
    root: PathBuf,
    request: wire::QuiesceRequest,
    on: bool,
) -> Vec<u8> {
    let wait = on.then(|| Duration::from_millis(request.wait_ms).min(MAX_QUIESCE_WAIT));
    let outcome = match &state.quiesce {
        None => Err(QuiesceError::Failed(
            "this node does not quiesce shares for its peers".to_owned(),
        )),
        Some(hook) => {
            let promoting = String::from_utf8_lossy(&request.promoting).into_owned();
            tracing::info!(share_instance.id = %instance, promoting = %promoting, ?wait, "{} share instance {instance} for the promotion of {promoting}", if on { "quiescing" } else { "unquiescing" });
            hook(QuiesceCall {
                instance: instance.clone(),
                root,
                promoting,
                wait,
            })
            .await
        }
    };
    let (status, message) = match outcome {
        Ok(()) => (wire::QUIESCE_DONE, String::new()),
        Err(QuiesceError::TimedOut(m)) => (wire::QUIESCE_TIMED_OUT, m),
        Err(QuiesceError::Failed(m)) => {
            tracing::warn!(share_instance.id = %instance, error = %m, "could not quiesce or unquiesce share instance {instance}: {m}");
            (wire::QUIESCE_FAILED, m)
        }
    };
    let mut payload = vec![status];
    payload.extend_from_slice(message.as_bytes());
    payload
}

/// A `changes` answer: `C` (the position, and whether the journal covered the cursor),
/// then, when it did, the looked-at results in `K` frames and the counts in `Z`. A node
/// without a journal for the root answers a `C` without a position: walk, keep no cursor.
fn send_changes(
    root: &Path,
    journal: Option<&ChangeJournal>,
    request: wire::ChangesRequest,
    sink: &mut Sink,
) -> io::Result<()> {
    fsutil::require_real_dir(root)?;
    let Some(journal) = journal else {
        return sink.frame(wire::TAG_POSITION, &wire::put_position(None, false));
    };
    let dirs: HashSet<Vec<u8>> = request.dirs.into_iter().collect();
    let answer = changes::answer(root, journal, request.cursor, &request.must, &dirs)
        .map_err(walk_io_error)?;
    let Some((looked, scan)) = answer.looked else {
        return sink.frame(
            wire::TAG_POSITION,
            &wire::put_position(Some(answer.position), false),
        );
    };
    sink.frame(
        wire::TAG_POSITION,
        &wire::put_position(Some(answer.position), true),
    )?;
    let mut batch = Writer(Vec::new());
    let mut count: u32 = 0;
    let flush = |batch: &mut Writer, count: &mut u32, sink: &mut Sink| {
        if *count == 0 {
            return Ok(());
        }
        let mut payload = Vec::with_capacity(4 + batch.0.len());
        payload.extend_from_slice(&count.to_le_bytes());
        payload.append(&mut batch.0);
        *count = 0;
        sink.frame(wire::TAG_LOOKED, &payload)
    };
    for item in &looked {
        wire::put_looked(&mut batch, item);
        count += 1;
        if count as usize >= ENTRIES_PER_FRAME || batch.0.len() >= LOOKED_FRAME_BYTES {
            flush(&mut batch, &mut count, sink)?;
        }
    }
    flush(&mut batch, &mut count, sink)?;
    sink.frame(wire::TAG_LOOKED_END, &wire::put_scan(scan))
}

fn walk_io_error(e: walk::WalkError) -> io::Error {
    io::Error::new(
        e.source.kind(),
        format!("{}: {}", e.path.display(), e.source),
    )
}

/// A relative path of a walk: non-empty components, no `.`, `..` or leading slash.
fn plain_relative(rel: &[u8]) -> bool {
    !rel.is_empty()
        && rel
            .split(|&b| b == b'/')
            .all(|c| !c.is_empty() && c != b"." && c != b"..")
}

/// One parsed request.
enum Job {
    Walk(Vec<u8>),
    Files(wire::FilesRequest),
    Delta(wire::DeltaRequest),
    Hash(Vec<u8>, Vec<Vec<u8>>),
    Changes(wire::ChangesRequest),
    /// `true`: quiesce; `false`: unquiesce.
    Quiesce(wire::QuiesceRequest, bool),
}

impl Job {
    fn root(&self) -> &[u8] {
        match self {
            Job::Walk(root) | Job::Hash(root, _) => root,
            Job::Files(f) => &f.root,
            Job::Delta(d) => &d.root,
            Job::Changes(c) => &c.root,
            Job::Quiesce(q, _) => &q.root,
        }
    }

    fn rels(&self) -> Box<dyn Iterator<Item = &[u8]> + '_> {
        match self {
            // The paths of a `changes` request are looked at below the root without
            // following links, whatever they say (see `crate::changes`).
            Job::Walk(_) | Job::Changes(_) | Job::Quiesce(..) => Box::new(std::iter::empty()),
            Job::Files(f) => Box::new(f.files.iter().map(|(rel, _)| rel.as_slice())),
            Job::Delta(d) => Box::new(std::iter::once(d.rel.as_slice())),
            Job::Hash(_, rels) => Box::new(rels.iter().map(Vec::as_slice)),
        }
    }

    fn run(self, root: &Path, sink: &mut Sink) -> io::Result<()> {
        match self {
            Job::Walk(_) => send_walk(root, sink),
            Job::Files(f) => {
                let dir = open_root(root)?;
                for (rel, block) in &f.files {
                    send_file(&dir, rel, *block as usize, f.check, sink)?;
                }
                Ok(())
            }
            Job::Delta(d) => send_delta(&open_root(root)?, &d, sink),
            Job::Hash(_, rels) => {
                let dir = open_root(root)?;
                for rel in &rels {
                    let mut payload = Vec::with_capacity(33);
                    match open_beneath(&dir, rel)? {
                        None => payload.push(wire::HEAD_VANISHED),
                        Some((file, _)) => {
                            payload.push(wire::HEAD_OK);
                            payload.extend_from_slice(hash_open(&file)?.as_bytes());
                        }
                    }
                    sink.frame(wire::TAG_HASHES, &payload)?;
                }
                Ok(())
            }
            Job::Changes(_) | Job::Quiesce(..) => Err(io::Error::other("not a request for data")),
        }
    }
}

/// Frames on their way to the requester, with the running response MAC.
struct Sink {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    mac: blake3::Hasher,
    buf: Vec<u8>,
}

impl Sink {
    fn frame(&mut self, tag: u8, payload: &[u8]) -> io::Result<()> {
        let head = wire::header(tag, payload.len());
        if wire::maced(tag) {
            self.mac.update(&head);
            self.mac.update(payload);
        }
        self.buf.extend_from_slice(&head);
        self.buf.extend_from_slice(payload);
        if self.buf.len() >= wire::DATA_CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    /// A `D` frame of up to `max` bytes read from `file` straight into the outgoing
    /// buffer; `inspect` sees the data (to hash it). Returns the bytes read, fewer than
    /// `max` only at the end of the file (no frame for 0).
    fn data_from(
        &mut self,
        file: &mut File,
        max: usize,
        inspect: impl FnOnce(&[u8]),
    ) -> io::Result<usize> {
        debug_assert!(!wire::maced(wire::TAG_DATA));
        let start = self.buf.len();
        self.buf.reserve(5 + max);
        self.buf.extend_from_slice(&wire::header(wire::TAG_DATA, 0));
        // `read_to_end` reads into the spare capacity: no zeroing, no intermediate buffer.
        let n = match Read::take(&mut *file, max as u64).read_to_end(&mut self.buf) {
            Ok(n) => n,
            Err(err) => {
                self.buf.truncate(start);
                return Err(err);
            }
        };
        if n == 0 {
            self.buf.truncate(start);
            return Ok(0);
        }
        self.buf[start..start + 5].copy_from_slice(&wire::header(wire::TAG_DATA, n));
        inspect(&self.buf[start + 5..]);
        if self.buf.len() >= wire::DATA_CHUNK {
            self.flush()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        // The next buffer holds what accumulates below DATA_CHUNK plus one data frame
        // without growing (growing would copy it).
        let next = Vec::with_capacity(SINK_CAPACITY);
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, next));
        crate::metrics::sent(chunk.len());
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the requester went away"))
    }

    fn finish(mut self) {
        let mac = self.mac.finalize();
        let head = wire::header(wire::TAG_MAC, 32);
        self.buf.extend_from_slice(&head);
        self.buf.extend_from_slice(mac.as_bytes());
        let _ = self.flush();
    }
}

/// Runs `produce` on a blocking thread and streams its frames; a read error becomes an `E`
/// frame, and the response always ends with the MAC.
fn stream(
    mac: blake3::Hasher,
    produce: impl FnOnce(&mut Sink) -> io::Result<()> + Send + 'static,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::task::spawn_blocking(move || {
        let mut sink = Sink {
            tx,
            mac,
            buf: Vec::with_capacity(SINK_CAPACITY),
        };
        match produce(&mut sink) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::BrokenPipe => return,
            Err(err) => {
                if sink
                    .frame(wire::TAG_ERROR, err.to_string().as_bytes())
                    .is_err()
                {
                    return;
                }
            }
        }
        sink.finish();
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, io::Error>(chunk), rx))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(axum::http::header::CONTENT_TYPE, "application/octet-stream")
        .body(Body::from_stream(body))
        .expect("a static response head is valid")
}

fn send_walk(root: &Path, sink: &mut Sink) -> io::Result<()> {
    fsutil::require_real_dir(root)?;
    let walked = walk_trees(&[root], false)
        .pop()
        .expect("one result per root")
        .map_err(walk_io_error)?;
    for chunk in walked.entries.chunks(ENTRIES_PER_FRAME) {
        let mut w = Writer(Vec::with_capacity(chunk.len() * 64));
        w.u32(chunk.len() as u32);
        for e in chunk {
            wire::put_entry(&mut w, e);
        }
        sink.frame(wire::TAG_LIST, &w.0)?;
    }
    let mut w = Writer(Vec::new());
    w.u64(walked.vanished);
    w.u32(walked.specials.len() as u32);
    for s in &walked.specials {
        w.bytes(s);
    }
    sink.frame(wire::TAG_LIST_END, &w.0)
}

fn open_root(root: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
        .open(root)
}

/// Opens the regular file `rel` below `dir` without following any symbolic link and
/// without leaving `dir`. `None` when it is gone or is not a regular file (any more).
fn open_beneath(dir: &File, rel: &[u8]) -> io::Result<Option<(File, std::fs::Metadata)>> {
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let fd = match openat2(dir, OsStr::from_bytes(rel), how) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR) => {
            return Ok(None);
        }
        Err(err) => return Err(err.into()),
    };
    let file = File::from(fd);
    let meta = file.metadata()?;
    Ok(meta.is_file().then_some((file, meta)))
}

fn same_stamp(a: &std::fs::Metadata, b: &std::fs::Metadata) -> bool {
    a.len() == b.len() && walk::ts_mtime(a) == walk::ts_mtime(b)
}

fn head(sink: &mut Sink, status: u8, size: u64) -> io::Result<()> {
    let mut payload = Vec::with_capacity(9);
    payload.push(status);
    payload.extend_from_slice(&size.to_le_bytes());
    sink.frame(wire::TAG_HEAD, &payload)
}

/// `H`, the data in `D` frames, then `T` with the content hash (or one hash per `block`).
fn send_file(dir: &File, rel: &[u8], block: usize, check: bool, sink: &mut Sink) -> io::Result<()> {
    let Some((mut file, before)) = open_beneath(dir, rel)? else {
        return head(sink, wire::HEAD_VANISHED, 0);
    };
    head(sink, wire::HEAD_OK, before.len())?;
    let mut whole = blake3::Hasher::new();
    let mut blocks = Vec::new();
    let chunk = wire::DATA_CHUNK
        .max(block)
        .checked_div(block)
        .map_or(wire::DATA_CHUNK, |blocks| blocks * block);
    let mut sent: u64 = 0;
    loop {
        let n = sink.data_from(&mut file, chunk, |data| {
            if block > 0 {
                blocks.extend(data.chunks(block).map(|b| *blake3::hash(b).as_bytes()));
            } else {
                whole.update(data);
            }
        })?;
        sent += n as u64;
        if n < chunk {
            break;
        }
    }
    let after = file.metadata()?;
    let hashes = if block > 0 {
        blocks
    } else {
        vec![*whole.finalize().as_bytes()]
    };
    let trailer = Trailer {
        changed: check && (!same_stamp(&before, &after) || sent != after.len()),
        size: sent,
        mtime: walk::ts_mtime(&after),
        hashes,
    };
    sink.frame(wire::TAG_TRAILER, &wire::put_trailer(&trailer))
}

/// `H`, the blocks whose hash differs from the requester's in `B` frames, then `T` with
/// every block's hash.
fn send_delta(dir: &File, d: &wire::DeltaRequest, sink: &mut Sink) -> io::Result<()> {
    let Some((file, before)) = open_beneath(dir, &d.rel)? else {
        return head(sink, wire::HEAD_VANISHED, 0);
    };
    head(sink, wire::HEAD_OK, before.len())?;
    let block = d.block as usize;
    let mut frame = Vec::with_capacity(8 + block);
    let mut hashes = Vec::new();
    let mut offset: u64 = 0;
    loop {
        frame.clear();
        frame.extend_from_slice(&(hashes.len() as u64).to_le_bytes());
        frame.resize(8 + block, 0);
        let n = read_full_at(&file, &mut frame[8..], offset)?;
        if n == 0 {
            break;
        }
        frame.truncate(8 + n);
        let h = *blake3::hash(&frame[8..]).as_bytes();
        if d.old.get(hashes.len()) != Some(&h) {
            sink.frame(wire::TAG_BLOCK, &frame)?;
        }
        hashes.push(h);
        offset += n as u64;
        if n < block {
            break;
        }
    }
    let after = file.metadata()?;
    let trailer = Trailer {
        changed: d.check && (!same_stamp(&before, &after) || offset != after.len()),
        size: offset,
        mtime: walk::ts_mtime(&after),
        hashes,
    };
    sink.frame(wire::TAG_TRAILER, &wire::put_trailer(&trailer))
}
